#!/usr/bin/env bash
# testdock's test command: venv, a real Docker engine with a local base image, lint, type
# check, then every test (unit, plugin and integration). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
eval "$(scripts/engine.sh)"
echo "test: ruff" >&2
.venv/bin/ruff check src tests
echo "test: mypy --strict" >&2
.venv/bin/mypy
echo "test: pytest" >&2
exec .venv/bin/python -m pytest "$@"
