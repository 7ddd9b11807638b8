"""Whether a project builds compiled extension modules of its own (C, C++, Cython): installing
it then takes a compiler, which slim base images do not have."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from testdock.project.pyproject import table

# build requirements that exist to compile extension modules
_COMPILING_BUILD_TOOLS = frozenset({"cython", "pybind11", "cffi", "scikit-build-core", "scikit-build",
                                    "meson-python", "nanobind"})
_SETUP_EXTENSIONS = re.compile(r"\bExtension\s*\(|\bext_modules\b|\bcythonize\s*\(")
_SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".pyx")


def _build_requirements(data: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for text in table(data, "build-system").get("requires", []):
        try:
            found.add(canonicalize_name(Requirement(str(text)).name))
        except InvalidRequirement:
            continue
    return found


def _has_extension_sources(folder: Path) -> bool:
    for _folder, subfolders, files in os.walk(folder):
        subfolders[:] = [name for name in subfolders
                         if not name.startswith(".") and name not in ("tests", "test", "__pycache__")]
        if any(name.endswith(_SOURCE_SUFFIXES) for name in files):
            return True
    return False


def builds_extensions(root: Path, data: dict[str, Any], package_folders: list[Path]) -> bool:
    """Whether installing the project compiles code: its build requires a tool made for that
    (Cython, pybind11...), its setup.py declares extension modules, or its packages hold C, C++
    or Cython sources."""
    if _build_requirements(data) & _COMPILING_BUILD_TOOLS:
        return True
    setup = root / "setup.py"
    try:
        if setup.is_file() and _SETUP_EXTENSIONS.search(setup.read_text(encoding="utf-8", errors="replace")):
            return True
    except OSError:
        pass
    return any(folder.is_dir() and _has_extension_sources(folder) for folder in package_folders)
