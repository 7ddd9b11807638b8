"""Put the project's compiled extension modules beside its sources in /app, as a developer's
`pip install -e .` or `build_ext --inplace` does: a flat-layout project's tests, run from /app,
import its packages from there (`python -m pytest` and pytest's rootdir put /app first on the
path, `--doctest-modules` imports the sources), and without this they find no compiled module
(yarl's `yarl._quoting_c`) or silently take the pure-Python fallback (msgpack's).

    python -m testdock_pytest.imagebuild.inplace APP FOLDER...   (FOLDER: src/pkg, relative to APP)

Standard library only: it runs in the images, with the venv's interpreter.
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import sys
import sysconfig
from pathlib import Path


def place(app: Path, folders: list[str], site: Path) -> list[str]:
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
            here = Path(directory)
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
    if len(arguments) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    placed = place(Path(arguments[0]), arguments[1:], Path(sysconfig.get_paths()["purelib"]))
    if placed:
        print(f"testdock: {len(placed)} compiled module(s) of the project put beside its sources, "
              f"where its tests import them: {', '.join(placed[:5])}{', ...' if len(placed) > 5 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
