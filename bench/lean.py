"""Lean images benchmark (issue 17), the size half of bench/build.py: on the example, a heavy
scientific project and a web project from PyPI, side by side in one run, on the same base image:

- the naive single-stage image (COPY the project, pip install it with its test dependencies);
- testdock's execution image as it was (pip, nothing pruned);
- the same with uv installing (nothing pruned): the cold build's time against pip's;
- testdock's execution image as it is now (uv, pruned): its size, what pruning removed;
- the same, distroless (`[tool.testdock.build] distroless = true`).

Per image: size and (size - base); cold build time (BuildKit's cache emptied first, downloads
included); the rebuild after a code change; and the test outcomes (passed, failed, skipped),
which must be the same in every image. The versions installed by uv and by pip are compared too.

    python bench/lean.py [PROJECT ...]   # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE (scripts/engine.sh)
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from build import docker_cli, naive_build, naive_dockerfile, touch_source  # bench/build.py
from collect import Quiet, chosen, project_root  # bench/collect.py
from overhead import remove_images  # bench/overhead.py

from testdock import engine
from testdock.engine.builds import BuildOptions, build_images
from testdock.images.initialize import InitOptions, apply, place_plugin, plan
from testdock.run.phase import RunOptions, run_phase
from testdock.workspace import Workspace
from testdock_pytest.sizes import format_size

# name -> (PyPI version or None for the example, pytest arguments choosing the tests run in every
# image: the whole suite, unless it takes minutes per run)
PROJECTS: dict[str, tuple[str | None, list[str]]] = {
    "example": (None, []),
    # numpy, scipy, pandas, matplotlib, statsmodels: the heavy project
    "seaborn": ("0.13.2", ["tests/test_statistics.py", "tests/test_algorithms.py", "tests/test_utils.py",
                           "tests/test_palettes.py", "tests/test_rcmod.py", "tests/_stats"]),
    "flask": ("3.0.3", []),
    # and the rest of the stack: scipy, statsmodels, scikit-learn (seaborn's own test
    # dependencies do not bring them)
    "pingouin": ("0.7.0", ["tests/test_effsize.py", "tests/test_power.py", "tests/test_distribution.py",
                           "tests/test_utils.py", "tests/test_config.py", "tests/test_correlation.py"]),
}
VARIANTS = {"today": ('installer = "pip"', "prune = false"), "uv": ('installer = "uv"', "prune = false"),
            "lean": ('installer = "uv"', "prune = true"),
            "distroless": ('installer = "uv"', "prune = true\ndistroless = true")}
SUMMARY = re.compile(r"=+ (.*?) in [\d.]+s")
COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)")


@dataclass
class Image:
    size: int = 0
    cold: float = 0.0
    rebuild: float | None = None
    outcome: str = ""
    pruned: str = ""
    stripped: str = ""


@dataclass
class Project:
    name: str
    base: int = 0
    images: dict[str, Image] = field(default_factory=dict)
    same_versions: bool | None = None
    error: str = ""


def _settings(root: Path, original: str, variant: str) -> None:
    installer, prune = VARIANTS[variant]
    (root / "pyproject.toml").write_text(original + f'\n[tool.testdock.build]\n{installer}\n{prune}\n')


def _empty_build_cache() -> None:
    docker_cli("builder", "prune", "--all", "--force")


def _build(root: Path, tag: str) -> tuple[float, int]:
    started = time.monotonic()
    results = build_images(root, BuildOptions(phases=("execution",), tag=tag), Quiet())
    if not all(result.ok for result in results):
        raise RuntimeError(f"the execution image failed to build: {results[0].error_tail[-2:]}")
    return time.monotonic() - started, results[0].size or 0


def _counts(text: str) -> str:
    """`12 passed, 1 skipped` from pytest's last summary line, in a fixed order."""
    summary = next((match.group(1) for line in reversed(text.splitlines())
                    if (match := SUMMARY.search(line))), "no summary")
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(number)
              for number, kind in COUNTS.findall(summary)}
    return ", ".join(f"{counts[kind]} {kind}" for kind in ("passed", "failed", "skipped", "error", "xfailed",
                                                            "xpassed") if counts.get(kind)) or summary


def _outcome(root: Path, tag: str, arguments: list[str]) -> str:
    lines: list[str] = []
    run_phase(root, "execution", RunOptions(tag=tag, monitor=False, pytest_args=arguments, memory="4g"),
              echo=lines.append)
    return _counts("\n".join(lines))


def _naive_outcome(image: str, arguments: list[str]) -> str:
    container = engine.client().containers.run(
        image, ["python", "-m", "pytest", "-p", "no:cacheprovider", *arguments], detach=True,
        network_mode="host", mem_limit="4g")
    try:
        container.wait()
        return _counts(container.logs(stdout=True, stderr=True).decode(errors="replace"))
    finally:
        container.remove(force=True)


def _versions(image: str) -> dict[str, str]:
    script = ("import importlib.metadata as m, json; print(json.dumps("
              "{d.metadata['Name'].lower(): d.version for d in m.distributions()}))")
    output = engine.client().containers.run(image, ["python", "-c", script], remove=True, network_mode="host")
    versions: dict[str, str] = json.loads(output.decode().strip().splitlines()[-1])
    return {name: version for name, version in versions.items() if name not in ("testdock-pytest",)}


def measure(name: str, root: Path, base_image: str) -> Project:
    project = Project(name)
    arguments = PROJECTS[name][1]
    _, planned, _ = plan(root, InitOptions(base_image=base_image))
    apply(root, planned)
    place_plugin(root)
    original = (root / "pyproject.toml").read_text()  # with what init wrote there (the base image)
    client = engine.client()
    project.base = int(client.images.get(base_image).attrs["Size"])
    prefix = Workspace.load(root).prefix
    try:
        for variant in VARIANTS:
            print(f"  {variant}: cold build", file=sys.stderr)
            _settings(root, original, variant)
            _empty_build_cache()
            seconds, size = _build(root, variant)
            project.images[variant] = Image(size=size, cold=seconds)
        log = (root / "logs" / "build_test_images.log").read_text(errors="replace")
        removed = [line.split("testdock prune: ", 1)[1] for line in log.splitlines()
                   if "testdock prune: removed" in line]
        project.images["lean"].pruned = removed[-1] if removed else ""
        # each build's last strip line: what went in all, or why nothing did
        summaries = [line.split("testdock strip: ", 1)[1].strip() for line in log.splitlines()
                     if "testdock strip: " in line and "(symbols and debug information)" not in line
                     and "kept as it was" not in line]
        project.images["lean"].stripped = " | ".join(dict.fromkeys(summaries))
        print("  rebuild after a code change", file=sys.stderr)
        touch_source(root)
        project.images["lean"].rebuild = _build(root, "lean")[0]
        pip_versions, uv_versions = (_versions(f"{prefix}-execution:{tag}") for tag in ("today", "uv"))
        project.same_versions = pip_versions == uv_versions
        if not project.same_versions:
            differ = sorted(set(pip_versions.items()) ^ set(uv_versions.items()))
            print(f"  versions differ (pip vs uv): {differ[:6]}", file=sys.stderr)
        print("  naive single-stage image", file=sys.stderr)
        _empty_build_cache()
        naive = naive_dockerfile(root, base_image)
        naive_tag = f"{prefix}-naive:bench"
        naive_image = Image(cold=naive_build(root, naive, naive_tag))
        naive_image.size = int(client.images.get(naive_tag).attrs["Size"])
        touch_source(root)
        naive_image.rebuild = naive_build(root, naive, naive_tag)
        project.images = {"naive": naive_image, **project.images}
        print("  test outcomes", file=sys.stderr)
        naive_image.outcome = _naive_outcome(naive_tag, arguments)
        for variant in ("today", "lean", "distroless"):
            project.images[variant].outcome = _outcome(root, variant, arguments)
        engine.remove_image(client, naive_tag)
    except RuntimeError as error:
        project.error = str(error)
    finally:
        remove_images(prefix)
    return project


def main() -> None:
    base_image, names = chosen(PROJECTS, "project")
    projects = []
    with tempfile.TemporaryDirectory() as temporary:
        for name in names:
            print(f"== {name}", file=sys.stderr)
            root = project_root(name, PROJECTS[name][0], Path(temporary), f"bench-lean-{name}")
            projects.append(measure(name, root, base_image))
    labels = {"naive": "naive single-stage", "today": "testdock, pip, unpruned",
              "uv": "testdock, uv, unpruned", "lean": "testdock, uv, pruned (now)",
              "distroless": "testdock, distroless"}
    print(f"{'project':<10}{'image':<28}{'size':>11}{'- base':>11}{'/ naive':>8}{'cold build':>11}"
          f"{'rebuild':>9}  outcome")
    for project in projects:
        if project.error:
            print(f"{project.name:<10}{project.error}")
            continue
        naive = project.images["naive"]
        for variant, image in project.images.items():
            rebuild = f"{image.rebuild:.1f}s" if image.rebuild is not None else "-"
            print(f"{project.name:<10}{labels[variant]:<28}{format_size(image.size):>11}"
                  f"{format_size(image.size - project.base):>11}{image.size / naive.size:>8.2f}"
                  f"{image.cold:>10.1f}s{rebuild:>9}  {image.outcome or '-'}")
        today, uv, lean = project.images["today"], project.images["uv"], project.images["lean"]
        distroless = project.images["distroless"]
        # both installers' builds compile bytecode after installing: the installer alone, then the
        # default (uv, pruned: no bytecode compiled for what goes) against pip unpruned
        print(f"{'':<10}uv / pip cold build {uv.cold / today.cold:.2f} (same steps), "
              f"uv pruned / pip unpruned {lean.cold / today.cold:.2f}; (lean - base) / (naive - base) "
              f"{(lean.size - project.base) / (naive.size - project.base):.2f}; naive - lean "
              f"{format_size(naive.size - lean.size)}; lean - distroless "
              f"{format_size(lean.size - distroless.size)}; same versions with uv and pip: "
              f"{'yes' if project.same_versions else 'NO'}")
        if lean.pruned:
            print(f"{'':<10}pruned: {lean.pruned}")
        if lean.stripped:
            print(f"{'':<10}stripped: {lean.stripped}")
    print("targets (heavy project): lean <= 0.6 x naive, (lean - base) <= 0.6 x (naive - base); "
          "uv cold build <= 0.5 x pip's; distroless >= 60 MB smaller than lean; identical test outcomes")


if __name__ == "__main__":
    main()
