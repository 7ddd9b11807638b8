#!/usr/bin/env bash
# testdock at the lowest versions pyproject.toml allows (uv's --resolution lowest-direct): its
# wheel in a bare venv, every command on a copy of the example, each command's exit code printed.
# Not part of scripts/test.sh (a few minutes); run it when a lower bound changes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh
eval "$(scripts/engine.sh)"
scripts/service-images.sh >/dev/null
.venv/bin/python -m pip install --quiet uv build 2>&1 | grep -v '^WARNING: Location' >&2 || true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
.venv/bin/python -m build --wheel --outdir "$work/dist" . >/dev/null 2>&1
.venv/bin/uv venv --quiet --python "$(.venv/bin/python -c 'import sys; print(sys.executable)')" "$work/venv"
# each declared dependency at its lower bound (name>=X becomes name==X); theirs at the newest
.venv/bin/python - > "$work/lowest.txt" <<'PYTHON'
import re, tomllib
for requirement in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    name, bound = re.fullmatch(r"([\w.-]+)>=([\w.]+)", requirement).groups()
    print(f"{name}=={bound}")
PYTHON
VIRTUAL_ENV="$work/venv" .venv/bin/uv pip install --quiet --constraint "$work/lowest.txt" "$work"/dist/*.whl
echo "lowest versions:" $(VIRTUAL_ENV="$work/venv" .venv/bin/uv pip freeze 2>/dev/null | grep -iE \
    '^(click|docker|jinja2|matplotlib|packaging|prometheus-client|psutil|pydantic|pyyaml|rich|tomlkit)==')
project="$work/shop"
cp -r examples/shop "$project"
find "$project" -name __pycache__ -prune -exec rm -rf {} +
name="lowest-$$"
printf '\n[tool.testdock]\nproject = "%s"\n' "$name" >> "$project/pyproject.toml"
testdock="$work/venv/bin/testdock"
failed=0
while read -r line; do
    eval "set -- $line"
    if "$testdock" "$@" >"$work/output.log" 2>&1; then code=0; else code=$?; failed=1; fi
    echo "exit $code  testdock ${line//$project/PROJECT}"
    [ "$code" -eq 0 ] || tail -5 "$work/output.log"
done <<LINES
--version
init $project --base-image $TESTDOCK_BASE_IMAGE
inspect $project
build $project --tag lowest
collect $project --compare --tag lowest
run collection $project --tag lowest
run execution $project --tag lowest
run stress $project --tag lowest
run backend $project --tag lowest
report $project
shard $project --shards 2 --plan --tag lowest
history merge $project/merged.json $project/.testdock/memory-history.json
ci github $project --output -
ci gitlab $project --output -
k8s job $project --output - --tag lowest
LINES
# every image of this throw-away project, the build's untagged intermediate stage included
/usr/bin/docker images -aq --filter "label=io.testdock.project=$name" | sort -u | xargs -r /usr/bin/docker rmi -f >/dev/null
exit "$failed"
