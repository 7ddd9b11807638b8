"""Remove from an image's installed dependencies what a test run never loads, at build time, and
list what went with its size.

What goes: the dependencies' own test suites (`pandas/tests`, `scipy/*/tests`: folders named
`tests` or `test` inside a package), and, unless the tests may compile code against the
dependencies, C and C++ sources and headers, Cython sources and static libraries. What stays: the
test suites of the packages named with --keep (the project's tests import their helpers:
`pandas.tests.extension.base`), those an entry point names (a pytest plugin living in a `tests`
package), and everything of a package that no longer imports once pruned (each pruned package is
imported afterwards; one that fails gets its files back).

    python -m testdock_pytest.imagebuild.prune VENV [--keep PKG,...] [--keep-sources] [--compile]

Standard library only (and testdock's plugin): it runs in the image's build, with the venv's own
interpreter.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from testdock_pytest.sizes import format_size

TEST_FOLDERS = frozenset({"tests", "test"})
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp", ".hxx", ".pyx", ".pxd", ".pxi", ".a")
IMPORT_TIMEOUT = 300
# packages that compile code at run time with their own headers (torch.compile's C++ backend,
# Triton, OpenCL and CUDA kernels, numba, LLVM): their sources and headers always stay
RUNTIME_COMPILERS = frozenset({"torch", "triton", "pyopencl", "pycuda", "cupy", "cupyx", "tvm", "jax",
                               "jaxlib", "tensorflow", "numba", "llvmlite", "cffi", "Cython", "pythran",
                               "pybind11", "torchvision", "torchaudio", "xformers", "mlx"})


@dataclass
class Pruned:
    package: str  # the top-level package it belonged to
    kind: str  # "tests" or "sources"
    path: Path  # relative to site-packages
    size: int


@dataclass
class Plan:
    items: list[Pruned] = field(default_factory=list)

    def size(self, package: str | None = None) -> int:
        return sum(item.size for item in self.items if package is None or item.package == package)

    def packages(self) -> list[str]:
        return sorted({item.package for item in self.items})


def site_packages(venv: Path) -> Path:
    purelib = sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)})
    return Path(purelib)


def _size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(item.lstat().st_size for item in path.rglob("*") if item.is_file() and not item.is_symlink())


def entry_point_modules(site: Path) -> set[str]:
    """The modules the installed distributions' entry points name (`pkg.tests.plugin`)."""
    modules = set()
    for entry_points in site.glob("*.dist-info/entry_points.txt"):
        for line in entry_points.read_text(encoding="utf-8", errors="replace").splitlines():
            if "=" in line and not line.lstrip().startswith(("#", "[")):
                modules.add(line.split("=", 1)[1].strip().split(":", 1)[0].strip())
    return modules


def plan(site: Path, keep: set[str], keep_sources: bool) -> Plan:
    """What to remove from `site` (site-packages), nothing removed yet."""
    named = entry_point_modules(site)
    result = Plan()
    for top in sorted(site.iterdir()):
        if not top.is_dir() or top.name.endswith((".dist-info", ".egg-info", ".data")) \
                or top.name == "__pycache__" or top.name in keep:
            continue
        for folder, subfolders, files in os.walk(top):
            here = Path(folder)
            for name in list(subfolders):
                if name in TEST_FOLDERS:
                    path = here / name
                    module = ".".join(path.relative_to(site).parts)
                    if not any(entry == module or entry.startswith(module + ".") for entry in named):
                        result.items.append(Pruned(top.name, "tests", path.relative_to(site), _size(path)))
                    subfolders.remove(name)
            if not keep_sources and top.name not in RUNTIME_COMPILERS:
                for name in files:
                    if name.endswith(SOURCE_SUFFIXES):
                        path = here / name
                        result.items.append(Pruned(top.name, "sources", path.relative_to(site),
                                                   path.lstat().st_size))
    return result


def _failing_imports(python: str, packages: list[str]) -> list[str]:
    """The packages that fail to import in the venv (each tried on its own, in one process)."""
    if not packages:
        return []
    script = ("import importlib, json, sys\nfailed = []\nfor name in sys.argv[1:]:\n"
              "    try:\n        importlib.import_module(name)\n"
              "    except BaseException:\n        failed.append(name)\n"
              "print('TESTDOCK-PRUNE ' + json.dumps(failed))\n")
    try:
        result = subprocess.run([python, "-c", script, *packages], capture_output=True, text=True,
                                timeout=IMPORT_TIMEOUT, check=False, cwd=tempfile.gettempdir())
    except subprocess.TimeoutExpired:
        return []  # nothing to conclude: what was removed stays removed
    for line in result.stdout.splitlines():
        if line.startswith("TESTDOCK-PRUNE "):
            return list(json.loads(line.removeprefix("TESTDOCK-PRUNE ")))
    return []


def compile_bytecode(paths: list[Path]) -> None:
    """Bytecode for what stays, as pip and uv compile it at install time, after pruning (no
    time spent on what goes); failures are ignored, as theirs are (a dependency may ship files
    that are not Python 3 source)."""
    for path in paths:
        if path.is_dir():
            compileall.compile_dir(path, quiet=2, workers=0)
        elif path.suffix == ".py":
            compileall.compile_file(path, quiet=2)


def prune(venv: Path, keep: set[str], keep_sources: bool, python: str | None = None,
          compile_after: bool = False) -> tuple[Plan, list[str]]:
    """Remove what the plan names (and with `compile_after`, compile what stays); packages that
    no longer import get their files back. The plan of what stayed removed, and the packages
    restored."""
    site = site_packages(venv)
    python = python or str(venv / "bin" / "python")
    chosen = plan(site, keep, keep_sources)
    # each pruned package, and its testing helpers where it has them (`numpy.testing`): what test
    # suites import
    candidates = [module for package in chosen.packages() if package.isidentifier()
                  for module in (package, f"{package}.testing")
                  if module == package or (site / package / "testing.py").is_file()
                  or (site / package / "testing" / "__init__.py").is_file()]
    with tempfile.TemporaryDirectory(prefix="testdock-prune-") as trash_folder:
        trash = Path(trash_folder)

        def move(items: list[Pruned], source: Path, target: Path) -> None:
            for item in items:
                (target / item.path).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source / item.path), str(target / item.path))

        move(chosen.items, site, trash)
        if compile_after:
            compile_bytecode([site])
        failing = _failing_imports(python, candidates)
        suspects = {module.partition(".")[0] for module in failing}
        back = [item for item in chosen.items if item.package in suspects]
        move(back, trash, site)
        if compile_after:
            compile_bytecode([site / item.path for item in back])
        # a module that fails with its files back was broken already: not ours to judge
        still = set(_failing_imports(python, failing))
        after = sorted({module.partition(".")[0] for module in failing if module not in still})
        move([item for item in back if item.package not in after], site, trash)
    chosen.items = [item for item in chosen.items if item.package not in after]
    return chosen, after


def _report(chosen: Plan, restored: list[str]) -> list[str]:
    lines = []
    for package in sorted(chosen.packages(), key=lambda package: -chosen.size(package)):
        items = [item for item in chosen.items if item.package == package]
        kinds = ", ".join(f"{kind} {format_size(sum(i.size for i in items if i.kind == kind))}"
                          for kind in ("tests", "sources") if any(i.kind == kind for i in items))
        lines.append(f"testdock prune: {package}: {format_size(chosen.size(package))} ({kinds})")
    for package in restored:
        lines.append(f"testdock prune: {package}: kept whole (it does not import without them)")
    total = {kind: sum(item.size for item in chosen.items if item.kind == kind)
             for kind in ("tests", "sources")}
    lines.append(f"testdock prune: removed {format_size(chosen.size())} in all: the dependencies' test "
                 f"suites {format_size(total['tests'])}, C/Cython sources, headers and static "
                 f"libraries {format_size(total['sources'])}")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("venv", type=Path)
    parser.add_argument("--keep", default="", help="comma-separated top-level packages kept whole")
    parser.add_argument("--keep-sources", action="store_true",
                        help="keep C/Cython sources, headers and static libraries (tests compile code)")
    parser.add_argument("--compile", action="store_true",
                        help="compile the bytecode of what stays (installed without it)")
    options = parser.parse_args(argv)
    keep = {name.strip() for name in options.keep.split(",") if name.strip()}
    chosen, restored = prune(options.venv, keep, options.keep_sources, compile_after=options.compile)
    for line in _report(chosen, restored):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
