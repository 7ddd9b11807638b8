"""What of the dependencies' own files a project's code uses beyond their APIs: the test helpers
of a dependency's test suite (`from pandas.tests.extension import base`, `xarray.tests`), and
whether its tests compile code against the dependencies (Cython, cffi: headers and sources are
then needed). The images keep those when they prune the rest."""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from testdock.project.requirements import names

TEST_FOLDERS = frozenset({"tests", "test"})
_SKIPPED = {"node_modules", "build", "dist", "docker", "site-packages", "__pycache__"}
_MAX_FILES = 5000
# a dotted path to a package's tests in a string (`pytest_plugins = ["pandas.tests.plugin"]`)
_DOTTED = re.compile(r"['\"]([A-Za-z_]\w*)(?:\.\w+)*\.(?:tests?)(?:\.\w+)*['\"]")
_MENTIONS_TESTS = re.compile(r"\w\.tests?\b")
# distributions whose presence says the tests compile code against the installed packages
COMPILERS = frozenset({"cython", "cffi", "pybind11", "pythran", "setuptools-rust", "meson-python",
                       "scikit-build", "scikit-build-core", "numpy-distutils"})


def _python_files(root: Path) -> Iterator[Path]:
    seen = 0
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders
                               if not (d.startswith(".") or d in _SKIPPED or "venv" in d))
        for name in sorted(files):
            if name.endswith(".py"):
                seen += 1
                if seen > _MAX_FILES:
                    return
                yield Path(folder) / name


def _test_packages_imported(source: str) -> set[str]:
    found = {match.group(1) for match in _DOTTED.finditer(source)}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return found
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        for module in modules:
            parts = module.split(".")
            if any(part in TEST_FOLDERS for part in parts[1:]):
                found.add(parts[0])
    return found


def packages_to_keep(root: Path, own_packages: Iterable[str]) -> list[str]:
    """The top-level packages (not the project's own) whose test suites the project's code imports."""
    own = set(own_packages)
    found: set[str] = set()
    for path in _python_files(root):
        try:
            source = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _MENTIONS_TESTS.search(source):  # parsed only where a dotted path to tests shows
            found |= _test_packages_imported(source)
    return sorted(found - own - TEST_FOLDERS)


def compiles_code(requirements: Iterable[str]) -> bool:
    """Whether the project's dependencies include what compiles code against installed packages."""
    return bool(names(requirements) & COMPILERS)
