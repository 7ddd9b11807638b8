#!/usr/bin/env bash
# testdock end to end on the bundled example project (examples/shop): install, engine, init,
# build the four images, run the collection, execution, backend (on PostgreSQL) and stress
# phases, print the stress report and a shard plan, then a summary.
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
testdock build "$work" --tag demo --cleanup --keep 1   # older demo images and build leftovers go
echo; echo "== testdock collect --compare (the tiny image, imports stubbed, against the real one)"
set +e
testdock collect "$work" --compare --tag demo
collection=$?
echo; echo "== testdock run execution (the suite under a 1 GiB limit, --dist memory)"
testdock run execution "$work" --tag demo 2>&1 | tail -22
execution=${PIPESTATUS[0]}
echo; echo "== testdock run backend (the app under uvicorn on PostgreSQL, its integration tests over HTTP)"
scripts/service-images.sh >/dev/null
testdock run backend "$work" --tag demo 2>&1 | tail -8
backend=${PIPESTATUS[0]}
echo; echo "== testdock run stress (benchmarks, leak hunt, memray profiles, load test, HTML report)"
testdock run stress "$work" --tag demo >/dev/null 2>&1
stress=$?
testdock report "$work"
echo; echo "== testdock shard --shards 2 (the suite split on the memory history just recorded)"
testdock shard "$work" --shards 2 --tag demo
set -e
echo; echo "== summary"
docker images --filter label=io.testdock.project=shop --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep ':demo'
echo "base image $TESTDOCK_BASE_IMAGE: $(docker images --format '{{.Size}}' "$TESTDOCK_BASE_IMAGE")"
echo "collection vs execution: exit $collection (0: the same node ids)"
echo "execution exit code:    $execution; results in $work/test-results/, plot in $work/monitoring/"
echo "backend exit code:      $backend; stress exit code: $stress; report: $work/monitoring/report.html"
ls "$work/test-results" "$work/monitoring"
for code in "$collection" "$execution" "$backend" "$stress"; do
    [ "$code" -eq 0 ] || exit "$code"
done
