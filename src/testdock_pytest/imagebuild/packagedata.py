"""Fill the installed copy of a project's packages in with the data files of their source folders
that the build left out: files that setuptools-scm finds through git (or a MANIFEST.in would
name), which an image's build context does not have. A developer's checkout has them, and tests
read them. Python modules are not copied: a build that leaves one out means to.

    python packagedata.py PROJECT_DIR DISTRIBUTION FOLDER...   (FOLDER: src/pkg, relative)

Standard library only: it runs in the images, with the project's Python."""

from __future__ import annotations

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


def main(arguments: list[str]) -> int:
    if len(arguments) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    copied = fill(arguments[0], arguments[1], arguments[2:], sysconfig.get_paths()["purelib"])
    if copied:
        print(f"testdock: {len(copied)} file(s) of the project's packages the build left out, "
              f"copied from its source: {', '.join(copied[:5])}{', ...' if len(copied) > 5 else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
