"""Collection benchmark (issue 6): the collection image (imports stubbed) against the execution
image (real dependencies), on the example project and five real projects with heavy
dependencies, from their sdists on PyPI: node ids compared, wall time and peak RSS of
`pytest --collect-only` (the median of three runs after a warm-up, so that neither image pays for
a cold page cache), image sizes, and the floor: pytest with its plugins collecting an empty folder
in the collection image, which no stubbing can go below.

    python bench/collect.py      # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE (scripts/engine.sh)
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import docker

from testdock.engine.builds import BuildOptions, build_images
from testdock.images.initialize import InitOptions, apply, plan
from testdock.run.collect import Collection, collect, collect_in, differences
from testdock_pytest.sizes import format_size

REPO = Path(__file__).resolve().parent.parent
REAL = [("seaborn", "0.13.2"), ("xarray", "2026.9.0"), ("sqlalchemy-utils", "0.43.0"), ("pingouin", "0.7.0"),
        ("lifelines", "0.30.3")]
# What a project's dependencies need from the system to build (here, on the Debian base image)
SETTINGS = {"sqlalchemy-utils": '[tool.testdock]\nsystem_packages = ["libpq5", "libodbc2"]\n'
                                'build_packages = ["gcc", "libpq-dev", "unixodbc-dev", "python3-dev"]\n',
            # its test modules compute at import time (class bodies, decorators) with numpy arrays,
            # pandas date ranges, dask and sparse arrays and hypothesis strategies: no stand-in can.
            # test_dask.py skips itself without dask.dataframe (and so pyarrow); test_distributed.py
            # without distributed: the real run has both through the project's dask[complete].
            "xarray": '[tool.testdock.collection]\n'
                      'install = ["numpy", "pandas", "dask[dataframe]", "distributed", "hypothesis", '
                      '"sparse"]\n'}
CACHE = Path.home() / ".cache" / "testdock-tests"
RUNS = 3


class Quiet:
    def state(self, phase: str, state: str, detail: str = "") -> None:
        print(f"    [{phase}] {state}", file=sys.stderr)

    def line(self, phase: str, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        print(f"    {text}"[:110], file=sys.stderr)


def sdist(name: str, version: str, folder: Path) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    archives = [p for p in CACHE.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(
        f"{name}-{version}".lower())]
    if not archives:
        # the index's file itself: `pip download --no-binary :all:` prepares the metadata, which
        # builds the build backend from source too (narwhals' uv_build: Rust)
        with urllib.request.urlopen(f"https://pypi.org/simple/{name}/", timeout=60) as answer:
            page = answer.read().decode()
        spelled = "[-_.]+".join(re.escape(part) for part in re.split(r"[-_.]+", name))  # python_dateutil
        wanted = re.compile(rf'href="([^"#]*/{spelled}-{re.escape(version)}\.tar\.gz)[#"]', re.IGNORECASE)
        url = urllib.parse.urljoin(f"https://pypi.org/simple/{name}/",
                                   next(match.group(1) for match in wanted.finditer(page)))
        urllib.request.urlretrieve(url, CACHE / url.rsplit("/", 1)[1])
        return sdist(name, version, folder)
    with tarfile.open(archives[0]) as tar:
        tar.extractall(folder, filter="data")
    return next(p for p in folder.iterdir() if p.is_dir())


def chosen(known: Iterable[str], what: str) -> tuple[str, list[str]]:
    """The base image (from scripts/engine.sh's environment) and the names given on the command
    line, all of them by default; a clear exit for an unknown name."""
    base_image = os.environ.get("TESTDOCK_BASE_IMAGE")
    if not base_image:
        raise SystemExit("set TESTDOCK_BASE_IMAGE (eval \"$(scripts/engine.sh)\")")
    names = sys.argv[1:] or list(known)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown[0]!r}; choose from {', '.join(known)}")
    return base_image, names


def project_root(name: str, version: str | None, folder: Path, project: str) -> Path:
    """A fresh copy of the example (version None) or of the project's sdist under `folder`, its
    images named `project` (the benchmark's own: never a developer's images of the same project)."""
    if version is None:
        root = folder / "example" / "shop"
        shutil.copytree(REPO / "examples" / "shop", root)
    else:
        root = sdist(name, version, folder / name)
    pyproject = root / "pyproject.toml"
    pyproject.write_text((pyproject.read_text() if pyproject.is_file() else "")
                         + f'\n[tool.testdock]\nproject = "{project}"\n')
    return root


@dataclass
class Row:
    collection: Collection | None = None
    execution: Collection | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    floor: Collection | None = None
    differ: int = 0
    examples: list[str] = field(default_factory=list)
    error: str = ""
    items_floor: Collection | None = None


def measure(root: Path, base_image: str, client: docker.DockerClient) -> Row:
    _, planned, _ = plan(root, InitOptions(base_image=base_image))
    apply(root, planned)
    results = build_images(root, BuildOptions(phases=("collection", "execution"), tag="latest"), Quiet())
    failed = [r for r in results if not r.ok]
    if failed:
        return Row(error=f"{failed[0].image} failed to build: {failed[0].error_tail[-1:]}")
    sizes = {r.phase: r.size or 0 for r in results}
    collect(root, "latest", compare=True)  # warm-up: both images' files in the page cache
    runs = [collect(root, "latest", compare=True) for _ in range(RUNS)]
    collection, execution = (_median([run[index] for run in runs]) for index in (0, 1))
    only_stubbed, only_real = differences(collection, execution)
    image = next(r.image for r in results if r.phase == "collection")
    # an empty folder: the interpreter, pytest and its plugins, none of the project
    floor = _median([collect_in(client, "collection", image, 2 << 30, ["/tmp"]) for _ in range(RUNS)])
    items = _items_floor(client, image, len(execution.nodeids))
    return Row(collection, execution, sizes, floor, len(only_stubbed) + len(only_real),
               (only_stubbed + only_real)[:3], items_floor=items)


def _items_floor(client: docker.DockerClient, image: str, count: int) -> Collection:
    """pytest and its plugins collecting as many items as the project has, in their cheapest
    form (one empty function parametrized `count` times): what pytest's own items cost, which no
    stubbing removes. Real tests (classes, fixtures, marks) cost more per item."""
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        folder.chmod(0o755)
        module = folder / "test_items.py"
        module.write_text(f"import pytest\n\n\n@pytest.mark.parametrize('n', range({count}))\n"
                          "def test_item(n):\n    pass\n")
        module.chmod(0o644)
        volumes = {str(folder): {"bind": "/items", "mode": "ro"}}
        return _median([collect_in(client, "collection", image, 2 << 30, ["/items/test_items.py"], volumes)
                        for _ in range(RUNS)])


def _median(runs: list[Collection]) -> Collection:
    """The run of median time, carrying the median peak RSS (they vary apart)."""
    chosen = sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]
    chosen.peak_rss = int(statistics.median(run.peak_rss for run in runs))
    return chosen


def main() -> None:
    base_image = os.environ.get("TESTDOCK_BASE_IMAGE")
    if not base_image:
        raise SystemExit("set TESTDOCK_BASE_IMAGE (eval \"$(scripts/engine.sh)\")")
    client = docker.from_env(timeout=600)
    rows: list[tuple[str, Row]] = []
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        example = folder / "example" / "shop"
        shutil.copytree(REPO / "examples" / "shop", example)
        projects = [("example (shop)", example)]
        for name, version in REAL:
            root = sdist(name, version, folder / name)
            if name in SETTINGS:
                pyproject = root / "pyproject.toml"
                pyproject.write_text(pyproject.read_text() + "\n" + SETTINGS[name])
            projects.append((f"{name} {version}", root))
        for label, root in projects:
            print(f"== {label}", file=sys.stderr)
            rows.append((label, measure(root, base_image, client)))
    print(f"{'project':<24}{'tests (coll/exec)':>19}{'same ids':>10}{'time coll/exec':>18}"
          f"{'ratio':>7}{'peak RSS coll/exec':>24}{'ratio':>7}{'floor':>16}{'items floor':>14}"
          f"{'image coll/exec':>24}  stubbed")
    for label, row in rows:
        coll, exe, sizes = row.collection, row.execution, row.sizes
        if row.error or coll is None or exe is None:
            print(f"{label:<24} {row.error}")
            continue
        same_errors = sorted(coll.errors) == sorted(exe.errors)
        same = ("yes" if coll.exit_code == exe.exit_code == 0 else "yes*" if same_errors else
                f"exit {coll.exit_code}/{exe.exit_code}") if row.differ == 0 else f"{row.differ} differ"
        print(f"{label:<24}{len(coll.nodeids):>9} / {len(exe.nodeids):<7}{same:>10}"
              f"{coll.seconds:>8.2f}s / {exe.seconds:<6.2f}s{coll.seconds / max(exe.seconds, 1e-9):>6.2f}"
              f"{format_size(coll.peak_rss):>12} / {format_size(exe.peak_rss):<9}"
              f"{coll.peak_rss / max(exe.peak_rss, 1):>6.2f}"
              f"{_floor(row.floor, exe):>16}{_floor(row.items_floor, exe):>14}"
              f"{format_size(sizes['collection']):>12} / {format_size(sizes['execution']):<10}"
              f"  {', '.join(coll.stubbed)[:60]}")
        for nodeid in row.examples:
            print(f"{'':<24}  differs: {nodeid}")
        for error in coll.errors[:3]:
            print(f"{'':<24}  collection error (stubbed): {error}")
        for error in exe.errors[:3]:
            print(f"{'':<24}  collection error (real): {error}")
    print("floor: pytest and its plugins alone in the collection image (an empty folder), as ratios of "
          "the execution image's time and RSS: the least any collection image can reach")
    print("items floor: the same, collecting as many items as the project has (one empty function "
          "parametrized that many times): pytest's own cost for the items, which no stubbing removes")
    print("yes*: the same node ids, and the same collection errors in both images (the project's own)")
    print("targets: identical node ids; on the heavy projects, collection time and peak RSS <= 0.25 x the "
          "execution image's")


def _floor(floor: Collection | None, execution: Collection) -> str:
    if floor is None:
        return "-"
    return (f"{floor.seconds / max(execution.seconds, 1e-9):.2f} / "
            f"{floor.peak_rss / max(execution.peak_rss, 1):.2f}")


if __name__ == "__main__":
    main()
