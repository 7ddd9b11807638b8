#!/usr/bin/env bash
# testdock's test command: venv, a real Docker engine with a local base image, lint, type
# check, then every test (unit, plugin and integration). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
eval "$(scripts/engine.sh)"
# A real registry for the push tests (Debian's package; served on 127.0.0.1 by the tests).
if ! command -v docker-registry >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "test: installing docker-registry (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >&2 \
        || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive \
             apt-get install -y -qq --no-install-recommends docker-registry >&2; }
fi
echo "test: ruff" >&2
.venv/bin/ruff check src tests bench
echo "test: mypy --strict" >&2
.venv/bin/mypy
echo "test: pytest" >&2
exec .venv/bin/python -m pytest "$@"
