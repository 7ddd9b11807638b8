"""Build benchmark (issue 3): cold and warm builds of the four images, sizes against a naive
single-stage image, on the example project and a real third-party project from PyPI.

    python bench/build.py            # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE (scripts/engine.sh)

Prints one table of figures and ratios, all measured in this run. Every cold build starts with an
empty BuildKit cache (pip's cache mount included), so dependencies are downloaded again.

The size side of the images (uv against pip, pruning, the distroless image, test outcomes in
each, against the naive image on heavy projects) is bench/lean.py's table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import docker

from testdock.engine.builds import BuildOptions, ImageResult, build_images
from testdock.images.initialize import InitOptions, apply, plan
from testdock.project.inspection import inspect_project
from testdock.project.settings import PHASES
from testdock.workspace import Workspace
from testdock_pytest.sizes import format_size

REPO = Path(__file__).resolve().parent.parent
REAL = ("flask", "3.0.3")
MiB = 2**20


class Quiet:
    def state(self, phase: str, state: str, detail: str = "") -> None:
        print(f"    [{phase}] {state} {detail}"[:110], file=sys.stderr)

    def line(self, phase: str, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        print(f"    {text}"[:110], file=sys.stderr)


def docker_cli(*args: str) -> str:
    return subprocess.run(["/usr/bin/docker", *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "DOCKER_BUILDKIT": "1"}).stdout


def prune(client: docker.DockerClient, prefix: str, keep: tuple[str, ...] = ()) -> None:
    for image in client.images.list():
        if any(t.startswith(f"{prefix}-") for t in image.tags) and not any(
                t.startswith(k) for t in image.tags for k in keep):
            client.images.remove(str(image.id), force=True)
    docker_cli("builder", "prune", "--all", "--force")


def build(root: Path, phases: tuple[str, ...], tag: str,
          parallel: int = 3) -> tuple[float, list[ImageResult]]:
    started = time.monotonic()
    results = build_images(root, BuildOptions(phases=phases, tag=tag, parallel=parallel), Quiet())
    wall = time.monotonic() - started
    failed = [r for r in results if not r.ok]
    if failed:
        raise SystemExit(f"build failed: {failed[0].image}: {failed[0].error_tail}")
    return wall, results


def prepare(name: str, workdir: Path, base_image: str) -> Path:
    if name == "example":
        root = workdir / "shop"
        shutil.copytree(REPO / "examples" / "shop", root, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        cache = Path.home() / ".cache" / "testdock-tests"
        cache.mkdir(parents=True, exist_ok=True)
        archive = cache / f"{REAL[0]}-{REAL[1]}.tar.gz"
        if not archive.is_file():
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                            ":all:", f"{REAL[0]}=={REAL[1]}", "-d", str(cache)], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(workdir, filter="data")
        root = workdir / f"{REAL[0]}-{REAL[1]}"
    # images of their own (bench-*), pruned by name: never a developer's images of the project
    pyproject = root / "pyproject.toml"
    pyproject.write_text((pyproject.read_text() if pyproject.is_file() else "")
                         + f'\n[tool.testdock]\nproject = "bench-{name}"\n')
    _, planned, _ = plan(root, InitOptions(base_image=base_image))
    apply(root, planned)
    return root


def naive_dockerfile(root: Path, base_image: str) -> Path:
    """The way most projects do it: one stage, the whole project, pip install with test deps."""
    project = inspect_project(root)
    (root / "naive-test-requirements.txt").write_text("\n".join(project.test_dependencies) + "\n")
    path = root / "naive.Dockerfile"
    path.write_text(
        f"FROM {base_image}\nWORKDIR /app\nCOPY . /app\n"
        "RUN python3 -m venv /venv && /venv/bin/pip install --no-cache-dir . "
        "-r naive-test-requirements.txt\nENV PATH=/venv/bin:$PATH\nCMD [\"pytest\"]\n")
    return path


def naive_build(root: Path, dockerfile: Path, tag: str) -> float:
    started = time.monotonic()
    docker_cli("build", "--network=host", "-q", "-f", str(dockerfile), "-t", tag, str(root))
    return time.monotonic() - started


def touch_source(root: Path) -> None:
    project = inspect_project(root)
    package = root / project.source_roots[0] / project.packages[0] / "__init__.py"
    package.write_text(package.read_text() + f"\n# benchmark edit {time.time()}\n")


def measure(name: str, client: docker.DockerClient, base_image: str, workdir: Path) -> dict[str, float]:
    print(f"== {name}", file=sys.stderr)
    root = prepare(name, workdir, base_image)
    prefix = Workspace.load(root).prefix
    figures: dict[str, float] = {}
    # cold, one image at a time (stress needs the execution image: it is kept for it)
    single: dict[str, float] = {}
    for phase in PHASES:
        keep = (f"{prefix}-execution",) if phase == "stress" else ()
        prune(client, prefix, keep)
        if phase == "stress" and not client.images.list(name=f"{prefix}-execution"):
            build(root, ("execution",), "single")
            docker_cli("builder", "prune", "--all", "--force")
        print(f"  cold single {phase}", file=sys.stderr)
        single[phase] = build(root, (phase,), "single")[0]
    # cold, all four at once
    prune(client, prefix)
    print("  cold parallel", file=sys.stderr)
    wall, results = build(root, PHASES, "cold", parallel=3)
    figures["cold_parallel_wall"] = wall
    figures["cold_single_sum"] = sum(single.values())
    figures["cold_single_slowest"] = max(single.values())
    for result in results:
        figures[f"size_{result.phase}"] = float(result.size or 0)
    # warm: one source file changed, no dependency change
    touch_source(root)
    print("  rebuild after a code change", file=sys.stderr)
    _, results = build(root, PHASES, "warm", parallel=3)
    for result in results:
        figures[f"rebuild_{result.phase}"] = result.seconds
    # the execution image's dependencies, as installed
    venv = client.containers.run(f"{prefix}-execution:warm", ["du", "-sb", "/opt/venv"], remove=True,
                                 network_mode="host")
    figures["venv_size"] = float(venv.decode().split()[0])
    # naive single-stage image: cold build, size, rebuild after the same kind of change
    docker_cli("builder", "prune", "--all", "--force")
    naive = naive_dockerfile(root, base_image)
    print("  naive single-stage", file=sys.stderr)
    figures["naive_cold"] = naive_build(root, naive, f"{prefix}-naive:bench")
    figures["size_naive"] = float(client.images.get(f"{prefix}-naive:bench").attrs["Size"])
    touch_source(root)
    figures["naive_rebuild"] = naive_build(root, naive, f"{prefix}-naive:bench")
    client.images.remove(f"{prefix}-naive:bench", force=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", default="example,real", help="comma-separated: example, real")
    args = parser.parse_args()
    base_image = os.environ.get("TESTDOCK_BASE_IMAGE")
    if not base_image:
        raise SystemExit("set TESTDOCK_BASE_IMAGE (eval \"$(scripts/engine.sh)\")")
    client = docker.from_env(timeout=600)
    base = float(client.images.get(base_image).attrs["Size"])
    names = args.projects.split(",")
    columns: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            columns[name] = measure(name, client, base_image, Path(folder))
    labels = {"example": "example (shop)", "real": f"{REAL[0]} {REAL[1]}"}
    rows: list[tuple[str, list[str], str]] = []

    def row(title: str, values: list[str], target: str = "") -> None:
        rows.append((title, values, target))

    def each(fn: object) -> list[str]:
        return [fn(columns[name]) for name in names]  # type: ignore[operator]

    row("base image size", each(lambda c: format_size(int(base))))
    row("cold, all 4 at --parallel 3: wall", each(lambda c: f"{c['cold_parallel_wall']:.1f} s"))
    row("cold, sum of single-image times", each(lambda c: f"{c['cold_single_sum']:.1f} s"))
    row("cold, slowest single image", each(lambda c: f"{c['cold_single_slowest']:.1f} s"))
    row("  parallel wall / slowest single", each(
        lambda c: f"{c['cold_parallel_wall'] / c['cold_single_slowest']:.2f}"), "<= 1.30")
    row("  parallel wall / sum of singles", each(
        lambda c: f"{c['cold_parallel_wall'] / c['cold_single_sum']:.2f}"))
    for phase in PHASES:
        row(f"rebuild after code change: {phase}", each(lambda c, p=phase: f"{c[f'rebuild_{p}']:.1f} s"),
            "<= 5 s")
    for phase in PHASES:
        row(f"size {phase}", each(lambda c, p=phase: f"{format_size(int(c[f'size_{p}']))} "
                                                     f"(base + {(c[f'size_{p}'] - base) / MiB:.1f} MiB)"))
    row("  collection - base", each(lambda c: f"{(c['size_collection'] - base) / MiB:.1f} MiB"), "<= 20 MiB")
    row("  execution deps installed (venv)", each(lambda c: format_size(int(c["venv_size"]))))
    row("  (execution - base) / deps", each(
        lambda c: f"{(c['size_execution'] - base) / c['venv_size']:.3f}"), "<= 1.05")
    row("naive single-stage image size", each(lambda c: format_size(int(c["size_naive"]))))
    for phase in PHASES:
        row(f"  {phase} / naive size", each(lambda c, p=phase: f"{c[f'size_{p}'] / c['size_naive']:.2f}"))
    row("naive cold build", each(lambda c: f"{c['naive_cold']:.1f} s"))
    row("naive rebuild after code change", each(lambda c: f"{c['naive_rebuild']:.1f} s"))
    row("  execution rebuild / naive rebuild", each(
        lambda c: f"{c['rebuild_execution'] / c['naive_rebuild']:.2f}"))
    width = max(len(r[0]) for r in rows) + 2
    header = "".join(f"{labels.get(n, n):>34}" for n in names)
    print(f"{'figure':<{width}}{header}  target")
    for title, values, target in rows:
        print(f"{title:<{width}}" + "".join(f"{v:>34}" for v in values) + f"  {target}")


if __name__ == "__main__":
    main()
