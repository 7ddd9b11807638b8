#!/usr/bin/env bash
# testdock end to end on the bundled example project (examples/shop): install, engine, init,
# build the four images, run the collection and execution images, print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
eval "$(scripts/engine.sh)"
export PATH="$PWD/.venv/bin:$PATH"
work=".testdock-demo/shop"
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -r examples/shop "$work"
echo; echo "== testdock init $work"
testdock init "$work" --base-image "$TESTDOCK_BASE_IMAGE"
echo; echo "== testdock build $work"
testdock build "$work" --tag demo
echo; echo "== testdock run collection (pytest --collect-only in the tiny image)"
set +e
testdock run collection "$work" --tag demo | tail -8
collection=${PIPESTATUS[0]}
echo; echo "== testdock run execution (the suite under a 1 GiB limit)"
testdock run execution "$work" --tag demo | tail -8
execution=${PIPESTATUS[0]}
set -e
echo; echo "== summary"
docker images --filter label=io.testdock.project=shop --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep ':demo'
echo "base image $TESTDOCK_BASE_IMAGE: $(docker images --format '{{.Size}}' "$TESTDOCK_BASE_IMAGE")"
echo "collection exit code: $collection (2 means some modules failed to import: the collection"
echo "  image has none of the project's dependencies; import stubs are on the roadmap)"
echo "execution exit code:  $execution; results in $work/test-results/"
ls "$work/test-results"
exit "$execution"
