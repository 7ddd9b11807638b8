"""Fill the installed copy of a project's packages in with the data files of their source folders
that the build left out: files that setuptools-scm finds through git (or a MANIFEST.in would
name), which an image's build context does not have. A developer's checkout has them, and tests
read them. Python modules are not copied: a build that leaves one out means to.

With --compiled-to APP, the other way too: the installed packages' compiled extension modules go
beside their sources under APP, as a developer's `pip install -e .` or `build_ext --inplace` puts
them: a flat-layout project's tests, run from /app, import its packages from there (`python -m
pytest` and pytest's rootdir put /app first on the path, `--doctest-modules` imports the
sources), and without them find no compiled module (yarl's `yarl._quoting_c`) or silently take
the pure-Python fallback (msgpack's).

    python packagedata.py PROJECT_DIR DISTRIBUTION FOLDER... [--compiled-to APP]   (FOLDER: src/pkg)

Standard library only: it runs in the images, with the project's Python."""

from __future__ import annotations

import importlib.machinery
import importlib.metadata
import os
import pathlib
import shutil
import sys
import sysconfig

_SKIPPED_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd")


def fill(project: str, distribution: str, folders: list[str], site: str) -> list[str]:
    """Copy what is missing; returns the files copied, relative to `site`."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        return []
    installed = {path.parts[0] for path in files if len(path.parts) > 1}  # the project's own packages
    copied: list[str] = []
    for folder in folders:
        source = pathlib.Path(project, folder)
        if source.name not in installed:
            continue
        for directory, subdirectories, names in os.walk(source, followlinks=True):
            subdirectories[:] = [d for d in subdirectories if d != "__pycache__" and not d.startswith(".")]
            here = pathlib.Path(directory)
            for name in names:
                target = pathlib.Path(site, source.name, here.relative_to(source), name)
                if name.endswith(_SKIPPED_SUFFIXES) or target.is_symlink() or target.exists():
                    continue
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(here / name, target)  # links followed
                    target.chmod(0o644)
                except OSError:
                    continue  # a dangling link, an unreadable file: the build did not have it either
                copied.append(target.relative_to(site).as_posix())
    return copied


def place_compiled(app: pathlib.Path, folders: list[str], site: pathlib.Path) -> list[str]:
    """Copy each installed package's extension modules into its source folder under `app`, where
    the folder they belong in exists and has none of its own; the files placed, relative to app."""
    placed: list[str] = []
    for folder in folders:
        source = app / folder
        installed = site / source.name
        if not source.is_dir() or not installed.is_dir():
            continue
        for directory, subdirectories, names in os.walk(installed):
            subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
            here = pathlib.Path(directory)
            for name in names:
                if not name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                    continue
                target = source / here.relative_to(installed) / name
                if not target.parent.is_dir() or target.exists():
                    continue
                shutil.copy2(here / name, target)
                placed.append(target.relative_to(app).as_posix())
    return placed


def main(arguments: list[str]) -> int:
    app = None
    if "--compiled-to" in arguments[:-1]:
        at = arguments.index("--compiled-to")
        app, arguments = pathlib.Path(arguments[at + 1]), arguments[:at] + arguments[at + 2:]
    if len(arguments) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    site = sysconfig.get_paths()["purelib"]
    copied = fill(arguments[0], arguments[1], arguments[2:], site)
    if copied:
        print(f"testdock: {len(copied)} file(s) of the project's packages the build left out, "
              f"copied from its source: {_some(copied)}")
    placed = place_compiled(app, arguments[2:], pathlib.Path(site)) if app else []
    if placed:
        print(f"testdock: {len(placed)} compiled module(s) of the project put beside its sources, "
              f"where its tests import them: {_some(placed)}")
    return 0


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (", ..." if len(paths) > 5 else "")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
