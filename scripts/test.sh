#!/usr/bin/env bash
# testdock's test command: venv, a real Docker engine with a local base image, lint, type
# check, then every test (unit, plugin and integration). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
eval "$(scripts/engine.sh)"
# linux/arm64 under QEMU user emulation, and an arm64 base image, for the multi-platform tests
eval "$(scripts/arm64.sh)"
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
# The tests leave the engine as they found it: what exists now is all that may exist afterwards
# (the images scripts/ make, testdock-local/*, are the machine's set-up, not the tests').
engine_state() {
    {
        /usr/bin/docker images -aq --no-trunc | sort -u | comm -23 - \
            <(/usr/bin/docker images -aq --no-trunc --filter 'reference=testdock-local/*' | sort -u) \
            | sed 's/^/image /'
        # a tag added to an image that was there already is left behind too
        /usr/bin/docker images --format '{{.Repository}}:{{.Tag}}' | grep -v -e '^testdock-local/' -e ':<none>$' \
            | sed 's/^/tag /'
        /usr/bin/docker ps -aq --no-trunc | sed 's/^/container /'
        /usr/bin/docker volume ls -q | sed 's/^/volume /'
    } | sort
}
scripts/service-images.sh >/dev/null  # set-up, before the snapshot: the backend tests need it
before="$(engine_state)"
echo "test: pytest" >&2
status=0
.venv/bin/python -m pytest "$@" || status=$?
left="$(comm -13 <(echo "$before") <(engine_state))"
if [ -n "$left" ]; then
    echo "test: the tests left $(echo "$left" | wc -l) thing(s) on the engine:" >&2
    echo "$left" | head -20 >&2
    [ "$status" -ne 0 ] || status=1
else
    echo "test: the engine is as the tests found it (no image, tag, container or volume left)" >&2
fi
exit "$status"
