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
echo; echo "== testdock collect --compare (the tiny image, imports stubbed, against the real one)"
set +e
testdock collect "$work" --compare --tag demo
collection=$?
echo; echo "== testdock run execution (the suite under a 1 GiB limit, --dist memory)"
testdock run execution "$work" --tag demo 2>&1 | tail -22
execution=${PIPESTATUS[0]}
set -e
echo; echo "== summary"
docker images --filter label=io.testdock.project=shop --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep ':demo'
echo "base image $TESTDOCK_BASE_IMAGE: $(docker images --format '{{.Size}}' "$TESTDOCK_BASE_IMAGE")"
echo "collection vs execution: exit $collection (0: the same node ids)"
echo "execution exit code:    $execution; results in $work/test-results/, plot in $work/monitoring/"
ls "$work/test-results" "$work/monitoring"
[ "$collection" -eq 0 ] && exit "$execution"
exit "$collection"
