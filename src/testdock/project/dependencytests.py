"""What of the dependencies' own files a project's code uses beyond their APIs: the test helpers
of a dependency's test suite (`from pandas.tests.extension import base`, `xarray.tests`), and
whether its tests compile code against the dependencies (Cython, cffi: headers and sources are
then needed). The images keep those when they prune the rest."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from testdock.project.requirements import names
from testdock.project.testimports import files_of_tests

TEST_FOLDERS = frozenset({"tests", "test"})
# a dotted path to a package's tests in a string (`pytest_plugins = ["pandas.tests.plugin"]`), an
# `import pandas.tests.x`, a `from pandas.tests.x import y` or a `from pandas import tests`: the
# lines themselves, so that no file is parsed (this runs at every build and run)
_DOTTED = re.compile(r"['\"]([A-Za-z_]\w*)(?:\.\w+)*\.tests?(?:\.\w+)*['\"]")
_IMPORTED = re.compile(r"^[ \t]*(?:import|from)[ \t]+([A-Za-z_]\w*)((?:\.\w+)*)(?:[ \t]+import[ \t]+(.*))?",
                       re.MULTILINE)
# distributions whose presence says the tests compile code against the installed packages
COMPILERS = frozenset({"cython", "cffi", "pybind11", "pythran", "setuptools-rust", "meson-python",
                       "scikit-build", "scikit-build-core", "numpy-distutils"})


def _test_packages_imported(source: str) -> set[str]:
    found = {match.group(1) for match in _DOTTED.finditer(source)}
    for top, rest, imported in _IMPORTED.findall(source):
        names_imported = {name.split(" as ")[0].strip(" ()") for name in imported.split(",")}
        if TEST_FOLDERS & {*rest.split(".")[1:], *names_imported}:
            found.add(top)
    return found


def packages_to_keep(root: Path, test_paths: Iterable[str], own_packages: Iterable[str]) -> list[str]:
    """The top-level packages (not the project's own) whose test suites the project's tests import."""
    found: set[str] = set()
    for path in files_of_tests(root, test_paths):
        try:
            found |= _test_packages_imported(path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            continue
    return sorted(found - set(own_packages) - TEST_FOLDERS)


def compiles_code(requirements: Iterable[str]) -> bool:
    """Whether the project's dependencies include what compiles code against installed packages."""
    return bool(names(requirements) & COMPILERS)
