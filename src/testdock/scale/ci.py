"""`testdock ci github|gitlab`: a CI pipeline with the seed's four stages. The images are built
once (pushed to the platform's registry with their BuildKit cache inline, the previous build's
images seeding the cache), then collection fails fast, execution runs as a matrix of shards
balanced on the memory history, the shards' histories are merged and carried to the next
pipeline, the backend's integration tests run, and stress runs on a schedule or on demand."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from testdock import __version__
from testdock.errors import BadInput
from testdock.images.stamps import Ownership, ownership, stamp
from testdock.safepaths import write_atomically
from testdock_pytest.contract import HISTORY_FILE, REAL_IDS_FILE

HISTORY = f".testdock/{HISTORY_FILE}"
# the node ids of the last real collection, per file: the collection stage lists unchanged files
# with them, without stand-ins
REAL_IDS = f".testdock/{REAL_IDS_FILE}"
BENCHMARK_BASELINE = ".testdock/benchmarks-baseline.json"
_LOWER_CASE_REGISTRY = 'echo "REGISTRY=ghcr.io/${GITHUB_REPOSITORY_OWNER,,}" >> "$GITHUB_ENV"'
_GITLAB_LOGIN = ('echo "$CI_REGISTRY_PASSWORD" | '
                 'docker login -u "$CI_REGISTRY_USER" --password-stdin "$CI_REGISTRY"')
PLATFORMS = ("github", "gitlab")
DEFAULT_OUTPUT = {"github": ".github/workflows/testdock.yml", "gitlab": ".gitlab-ci.yml"}


@dataclass(frozen=True)
class CiOptions:
    shards: int = 4
    python: str = "3.12"
    install: str = f"pip install testdock=={__version__}"  # the version that wrote the file
    schedule: str = "17 3 * * 1"  # stress: weekly, at a quiet hour
    project: str = "."  # the project's folder, relative to the repository's root


def repository_root(path: Path) -> Path:
    try:
        result = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return path
    return Path(result.stdout.strip()) if result.returncode == 0 and result.stdout.strip() else path


def _within(project: str, *paths: str) -> list[str]:
    return [str(PurePosixPath(project) / path) if project != "." else path for path in paths]


def _dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=110, default_flow_style=False)


def github(options: CiOptions) -> str:
    n = options.shards
    tag = "${{ github.sha }}"
    common = {"--tag": tag, "--registry": '"$REGISTRY"'}
    flags = " ".join(f"{key} {value}" for key, value in common.items())

    def setup(login: bool = True) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = [
            {"uses": "actions/checkout@v4"},
            {"uses": "actions/setup-python@v5", "with": {"python-version": options.python}},
            {"name": "Install testdock", "run": options.install},
            # registry paths must be lower case, and owners' names need not be
            {"name": "Registry", "run": _LOWER_CASE_REGISTRY},
        ]
        if login:
            steps.append({"uses": "docker/login-action@v3", "with": {
                "registry": "ghcr.io", "username": "${{ github.actor }}",
                "password": "${{ secrets.GITHUB_TOKEN }}"}})
        return steps

    def results(name: str, *extra: str) -> dict[str, Any]:
        return {"name": "Upload results", "if": "always()", "uses": "actions/upload-artifact@v4", "with": {
            "name": name, "include-hidden-files": True, "if-no-files-found": "ignore",
            "path": "\n".join(_within(options.project, "test-results/", "monitoring/", *extra))}}

    def job(name: str, needs: list[str], run: str, artifact: str, **extra: Any) -> dict[str, Any]:
        return {"name": name, "needs": needs, "runs-on": "ubuntu-latest", "timeout-minutes": 60, **extra,
                "steps": [*setup(), {"name": name, "run": run}, results(artifact)]}

    history_key = "testdock-history-${{ github.ref_name }}"
    run_key = f"{history_key}-${{{{ github.run_id }}}}"
    history_path = _within(options.project, HISTORY)[0]
    # one cache entry for both files (a cache's paths are part of its key)
    carried = "\n".join(_within(options.project, HISTORY, REAL_IDS))
    restore = {"uses": "actions/cache/restore@v4", "with": {
        "path": carried, "key": run_key, "restore-keys": f"{history_key}-\ntestdock-history-"}}
    shard = "${{ matrix.shard }}"
    execution = {
        "name": f"execution (shard {shard} of {n})", "needs": ["collection"],
        "runs-on": "ubuntu-latest", "timeout-minutes": 60,
        "strategy": {"fail-fast": False, "matrix": {"shard": list(range(n))}},
        "steps": [
            *setup(),
            {"name": "Memory history of earlier runs", **restore},
            {"name": "Execution", "run": f"testdock run execution {flags} --shard {shard}/{n}"},
            results(f"execution-shard-{shard}", HISTORY, REAL_IDS),
        ]}
    history = {
        "name": "memory history", "needs": ["execution"], "if": "always()", "runs-on": "ubuntu-latest",
        "steps": [
            {"uses": "actions/checkout@v4"},
            {"uses": "actions/setup-python@v5", "with": {"python-version": options.python}},
            {"name": "Install testdock", "run": options.install},
            {"uses": "actions/download-artifact@v4",
             "with": {"pattern": "execution-shard-*", "path": "shards"}},
            # an artifact holds the uploaded paths from their common folder down: the project's
            {"name": "Merge the shards' histories", "working-directory": ".",
             "run": f"testdock history merge --ignore-missing {history_path} shards/*/{HISTORY}"},
            # every shard collects every test (shards select after collecting): any one's ids do
            {"name": "Keep the real collection's node ids", "working-directory": ".",
             "run": f"for ids in shards/*/{REAL_IDS}; do cp \"$ids\" {_within(options.project, REAL_IDS)[0]}"
                    "; break; done; true"},
            {"uses": "actions/cache/save@v4", "with": {"path": carried, "key": run_key}},
        ]}
    collection = job("collection", ["build"], f"testdock run collection {flags}", "collection")
    collection["steps"][-2:-2] = [{"name": "Node ids of the last real collection", **restore}]
    stress_when = ("github.event_name == 'schedule' || "
                   "(github.event_name == 'workflow_dispatch' && inputs.stress)")
    stress_job = job("stress", ["execution"], f"testdock run stress {flags}", "stress", **{"if": stress_when})
    # the previous run's benchmark results, for the comparison; saved again after the run
    benchmarks = {"path": _within(options.project, BENCHMARK_BASELINE)[0],
                  "key": "testdock-benchmarks-${{ github.run_id }}"}
    stress_job["steps"][-2:-2] = [{"name": "Benchmarks of the previous run",
                                   "uses": "actions/cache/restore@v4",
                                   "with": {**benchmarks, "restore-keys": "testdock-benchmarks-"}}]
    stress_job["steps"].append({"name": "Keep the benchmarks for the next run", "if": "always()",
                                "uses": "actions/cache/save@v4", "with": benchmarks})
    document: dict[str, Any] = {
        "name": "testdock",
        "on": {
            "push": None, "pull_request": None,
            "schedule": [{"cron": options.schedule}],
            "workflow_dispatch": {"inputs": {"stress": {
                "description": "Run the stress stage too", "type": "boolean", "default": False}}},
        },
        "permissions": {"contents": "read", "packages": "write"},
        # a newer push supersedes a pull request's run; the default branch's runs (their memory
        # history, a scheduled stress run) always finish
        "concurrency": {"group": "testdock-${{ github.ref }}-${{ github.event_name }}",
                        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}"},
        "defaults": {"run": {"working-directory": options.project}},
        "jobs": {
            "build": {
                "name": "build the test images", "runs-on": "ubuntu-latest", "timeout-minutes": 60,
                "steps": [*setup(), {
                    "name": "Build (BuildKit, cache seeded from the last pushed images)",
                    "run": f"testdock build {flags} --push --cache-from latest --test"},
                    {"name": "Upload the build log", "if": "always()", "uses": "actions/upload-artifact@v4",
                     "with": {"name": "build-log", "if-no-files-found": "ignore",
                              "path": _within(options.project, "logs/")[0]}}]},
            "collection": collection,
            "execution": execution,
            "history": history,
            "backend": job("backend integration", ["execution"], f"testdock run backend {flags}",
                           "backend"),
            "stress": stress_job,
        },
    }
    return _dump(document).replace("push: null", "push:").replace("pull_request: null", "pull_request:")


def gitlab(options: CiOptions) -> str:
    n = options.shards
    flags = '--tag "$CI_COMMIT_SHORT_SHA" --registry "$CI_REGISTRY_IMAGE"'
    project = options.project

    def paths(*extra: str) -> list[str]:
        return _within(project, "test-results/", "monitoring/", *extra)

    def job(stage: str, script: list[str], **extra: Any) -> dict[str, Any]:
        return {"extends": ".testdock", "stage": stage, "script": script, **extra}

    def artifacts(*extra: str, junit: str = "junit.xml") -> dict[str, Any]:
        return {"when": "always", "expire_in": "2 weeks", "paths": paths(*extra),
                "reports": {"junit": _within(project, f"test-results/{junit}")[0]}}

    cd = [f"cd {project}"] if project != "." else []
    document: dict[str, Any] = {
        "stages": ["build", "collection", "execution", "backend", "stress"],
        "variables": {"DOCKER_HOST": "tcp://docker:2375", "DOCKER_TLS_CERTDIR": "", "DOCKER_BUILDKIT": "1"},
        ".testdock": {
            "image": "docker:27",
            "services": ["docker:27-dind"],
            "before_script": [
                "apk add --no-cache python3 py3-pip git",
                "python3 -m venv /opt/testdock && export PATH=/opt/testdock/bin:$PATH",
                options.install,
                _GITLAB_LOGIN,
                *cd,
            ],
        },
        "build": job("build", [f"testdock build {flags} --push --cache-from latest --test"],
                     artifacts={"when": "always", "paths": _within(project, "logs/")}),
        # the history cache holds the last real collection's node ids too (.testdock/)
        "collection": job("collection", [f"testdock run collection {flags}"], artifacts=artifacts(),
                          cache={"key": "testdock-history", "paths": _within(project, ".testdock/"),
                                 "policy": "pull"}),
        "execution": job("execution", [
            f'testdock run execution {flags} --shard "$((CI_NODE_INDEX - 1))/$CI_NODE_TOTAL"'],
            parallel=n,
            cache={"key": "testdock-history", "paths": _within(project, ".testdock/"), "policy": "pull"},
            after_script=[*cd, "mkdir -p shard-histories",
                          f"cp {HISTORY} shard-histories/$CI_NODE_INDEX.json || true",
                          f"cp {REAL_IDS} shard-histories/ids.json || true"],
            artifacts=artifacts(*_within(project, "shard-histories/"))),
        "memory history": job("backend", [
            f"testdock history merge --ignore-missing {HISTORY} shard-histories/*[0-9].json",
            f"cp shard-histories/ids.json {REAL_IDS} || true"],
            needs=[{"job": "execution", "artifacts": True}], when="always",
            cache={"key": "testdock-history", "paths": _within(project, ".testdock/"), "policy": "push"}),
        "backend": job("backend", [f"testdock run backend {flags}"],
                       artifacts=artifacts(junit="backend-junit.xml")),
        "stress": job("stress", [f"testdock run stress {flags}"],
                      artifacts=artifacts(junit="stress-junit.xml"),
                      cache={"key": "testdock-benchmarks", "paths": _within(project, BENCHMARK_BASELINE)},
                      rules=[
            {"if": '$CI_PIPELINE_SOURCE == "schedule"'},
            {"when": "manual", "allow_failure": True}]),
    }
    return _dump(document)


def render(platform: str, options: CiOptions) -> str:
    if platform not in PLATFORMS:
        raise BadInput(f"unknown CI platform {platform!r}; choose from {', '.join(PLATFORMS)}")
    if options.shards < 1:
        raise BadInput(f"--shards {options.shards}: at least 1")
    header = (f"# testdock's {platform} pipeline: build once, collection, execution in {options.shards} "
              "shards, backend, stress (scheduled or on demand).\n")
    body = header + (github(options) if platform == "github" else gitlab(options))
    return stamp(body, __version__, "testdock ci")


def write(path: Path, text: str, force: bool) -> None:
    """Write a pipeline, refusing to overwrite one that was edited or not written by testdock."""
    existing = path.read_text(encoding="utf-8") if path.is_file() else None
    if path.exists() and not path.is_file():
        raise BadInput(f"{path} exists and is not a file")
    state = ownership(existing)
    if state in (Ownership.EDITED, Ownership.FOREIGN) and not force:
        what = ("was edited since testdock wrote it" if state is Ownership.EDITED
                else "was not written by testdock")
        raise BadInput(f"{path} {what}; pass --force to overwrite it, or --output elsewhere")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text)
