"""Collection verdict benchmark (issue 21): does the collection stage cry wolf, and does it still
catch what the real run fails on? On the example and real projects with heavy dependencies, from
their sdists on PyPI, with zero settings:

- false failures: files the collection image fails on that the execution image (the real run)
  collects;
- planted real errors, one at a time, each of which must fail the stage: a syntax error in a test
  module, an import of a project module that does not exist, a broken conftest, an import of a
  package that no dependency declares;
- the share of the real run's node ids the collection image finds, without the last real
  collection's ids (a first run) and with them;
- the collection image's size over its base;
- the time to a first verdict from a cold cache (the image's build, then the collection in it),
  against the execution image's (its build, then the collection in it), twice: with nothing cached
  (BuildKit's cache emptied before each build, downloads included: a CI runner's first build),
  and with no image layer cached but the downloads cached (pip's and uv's caches, in BuildKit's
  cache mounts): building alone, not the network.

    python bench/verdict.py [PROJECT ...]   # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE (scripts/engine.sh)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from build import docker_cli  # bench/build.py, beside this file
from collect import Quiet, chosen, project_root  # bench/collect.py
from overhead import remove_images  # bench/overhead.py

from testdock import engine
from testdock.engine.builds import BuildOptions, build_images
from testdock.images.initialize import InitOptions, apply, place_plugin, plan
from testdock.run.collect import Collection, collect, collect_in, history_volume
from testdock.workspace import Workspace
from testdock_pytest.sizes import format_size, parse_size

# name -> PyPI version (None: the bundled example): a geospatial, a plotting and a machine
# learning library, none of them used to build testdock
PROJECTS: dict[str, str | None] = {"example": None, "geopandas": "1.2.0", "plotnine": "0.15.9",
                                   "imbalanced-learn": "0.14.2"}
PLANTED = ("syntax error", "missing project module", "broken conftest", "undeclared package")


@dataclass
class Row:
    project: str
    tests: int = 0
    false_failures: list[str] = field(default_factory=list)
    unverifiable: int = 0
    share_first: float = 0.0
    share_history: float = 0.0
    image_over_base: int = 0
    verdict_seconds: float = 0.0
    execution_seconds: float = 0.0
    cold_verdict_seconds: float = 0.0
    cold_execution_seconds: float = 0.0
    caught: dict[str, bool] = field(default_factory=dict)
    error: str = ""


def _share(collection: Collection, execution: Collection) -> float:
    real = set(execution.nodeids)
    return len(real & set(collection.nodeids)) / len(real) if real else 1.0


def _false_failures(collection: Collection, execution: Collection) -> list[str]:
    return [name for name in collection.errors if name not in execution.errors]


def _build(root: Path, phase: str, no_cache: bool) -> tuple[float, int]:
    started = time.monotonic()
    results = build_images(root, BuildOptions(phases=(phase,), tag="latest", no_cache=no_cache), Quiet())
    if not all(result.ok for result in results):
        raise RuntimeError(f"the {phase} image failed to build: {results[0].error_tail[-1:]}")
    return time.monotonic() - started, results[0].size or 0


def _plant(kind: str, folder: Path, package: str) -> list[Path]:
    """Write the planted error next to the project's tests; the files to remove afterwards."""
    if kind == "syntax error":
        path = folder / "test_planted_syntax.py"
        path.write_text("def test_planted(:\n    pass\n")
        return [path]
    if kind == "missing project module":
        path = folder / "test_planted_missing.py"
        path.write_text(f"from {package}.planted_no_such_module import thing\n\n\n"
                        "def test_planted():\n    assert thing\n")
        return [path]
    if kind == "broken conftest":
        sub = folder / "planted_conftest"
        sub.mkdir()
        (sub / "conftest.py").write_text("import pytest\n\n\n@pytest.fixture\ndef planted(:\n    pass\n")
        (sub / "test_planted.py").write_text("def test_planted():\n    pass\n")
        return [sub]
    path = folder / "test_planted_undeclared.py"
    path.write_text("import planted_undeclared_package\n\n\ndef test_planted():\n    pass\n")
    return [path]


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _empty_build_cache() -> None:
    """BuildKit's whole cache, its cache mounts (pip's and uv's downloads) included."""
    docker_cli("builder", "prune", "--all", "--force")


def _verdict(root: Path) -> tuple[float, Collection, int]:
    """The collection image built with no layer cached, then its collection: the seconds to the
    verdict, the collection, the image's size."""
    built, size = _build(root, "collection", no_cache=True)
    started = time.monotonic()
    first = collect(root)[0]
    return built + time.monotonic() - started, first, size


def _real_collection(root: Path, workspace: Workspace) -> tuple[float, Collection]:
    """The execution image built with no layer cached, then its collection (which leaves its node
    ids for the next stubbed collection)."""
    settings = workspace.settings
    built, _ = _build(root, "execution", no_cache=True)
    started = time.monotonic()
    execution = collect_in(engine.client(), "execution", workspace.image("execution", "latest"),
                           parse_size(settings.phases.execution.memory or "2g"),
                           volumes=history_volume(root),
                           environment=dict(settings.phases.execution.environment))
    return built + time.monotonic() - started, execution


def measure(name: str, root: Path, base_image: str) -> Row:
    row = Row(name)
    _, planned, _ = plan(root, InitOptions(base_image=base_image))
    apply(root, planned)
    place_plugin(root)
    workspace = Workspace.load(root)
    base_size = int(engine.client().images.get(base_image).attrs["Size"])
    try:
        # nothing cached, downloads included: each image's first build on a fresh CI runner
        _empty_build_cache()
        row.cold_verdict_seconds, _, _ = _verdict(root)
        _empty_build_cache()
        row.cold_execution_seconds, _ = _real_collection(root, workspace)
        # no layer cached, the downloads cached by the builds above: the first verdict, its
        # collection judged (no node ids of a real run yet: the execution image's collection
        # leaves them, below)
        shutil.rmtree(root / ".testdock", ignore_errors=True)
        row.verdict_seconds, first, size = _verdict(root)
        row.image_over_base = size - base_size
        row.execution_seconds, execution = _real_collection(root, workspace)
        row.tests = len(execution.nodeids)
        row.share_first = _share(first, execution)
        again = collect(root)[0]
        row.share_history = _share(again, execution)
        row.false_failures = sorted({*_false_failures(first, execution), *_false_failures(again, execution)})
        row.unverifiable = len(first.unverifiable)
        print(f"    first: exit {first.exit_code}, {len(first.nodeids)} ids, errors {first.errors[:3]}; "
              f"real: exit {execution.exit_code}, {len(execution.nodeids)} ids, "
              f"errors {execution.errors[:3]}",
              file=sys.stderr)
        tests = next((root / nodeid.split("::")[0] for nodeid in execution.nodeids), root / "tests")
        package = workspace.project.packages[0] if workspace.project.packages else "tests"
        for kind in PLANTED:
            planted = _plant(kind, tests.parent, package)
            try:
                _build(root, "collection", no_cache=False)
                result = collect(root)[0]
                named = any(str(path.relative_to(root)) in " ".join(result.errors) for path in planted)
                row.caught[kind] = result.exit_code != 0 and named
                print(f"    planted {kind}: exit {result.exit_code}, errors {result.errors[:2]}",
                      file=sys.stderr)
            finally:
                _remove(planted)
    except RuntimeError as error:
        row.error = str(error)
    finally:
        remove_images(workspace.prefix)
    return row


def main() -> None:
    base_image, names = chosen(PROJECTS, "project")
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        for name in names:
            print(f"== {name}", file=sys.stderr)
            root = project_root(name, PROJECTS[name], Path(temporary), f"bench-verdict-{name}")
            rows.append(measure(name, root, base_image))
    print(f"{'project':<18}{'tests':>7}{'false fail':>11}{'unverif.':>9}{'ids found':>10}{'w/ hist.':>9}"
          f"{'image-base':>12}{'verdict':>9}{'exec':>8}{'ratio':>7}{'cold':>8}{'exec':>8}{'ratio':>7}"
          "  planted errors caught")
    for row in rows:
        if row.error:
            print(f"{row.project:<18} {row.error}")
            continue
        caught = ", ".join(f"{kind}: {'yes' if ok else 'NO'}" for kind, ok in row.caught.items())
        print(f"{row.project:<18}{row.tests:>7}{len(row.false_failures):>11}{row.unverifiable:>9}"
              f"{row.share_first:>9.1%}{row.share_history:>9.1%}{format_size(row.image_over_base):>12}"
              f"{row.verdict_seconds:>8.1f}s{row.execution_seconds:>7.1f}s"
              f"{row.verdict_seconds / max(row.execution_seconds, 1e-9):>7.2f}"
              f"{row.cold_verdict_seconds:>7.1f}s{row.cold_execution_seconds:>7.1f}s"
              f"{row.cold_verdict_seconds / max(row.cold_execution_seconds, 1e-9):>7.2f}  {caught}")
        for name in row.false_failures[:3]:
            print(f"{'':<18}  false failure: {name}")
    print("verdict / exec: image build with no layer cached (downloads cached) + collection; "
          "cold: the same with nothing cached (downloads included); "
          "unverif.: files left to the real run (not verifiable with stand-ins)")
    print("targets: 0 false failures; every planted error caught; ids found >= 95% without "
          "history, 100% with it; image - base <= 30 MB; verdict <= 0.25 x exec")


if __name__ == "__main__":
    main()
