"""Which Python the images run (the base image's, as its tag names it), and whether the project's
requires-python allows it: what testdock prints is what the image runs."""

from __future__ import annotations

import re

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from testdock.images.render import base_image
from testdock.project.inspection import Project
from testdock.project.settings import Settings

_VERSION = re.compile(r"^(?:python-?|py)?(\d+)\.(\d+)(?:\.(\d+))?")


def image_python(image: str) -> str | None:
    """The Python version an image's tag names (`python:3.11-slim`, `.../python:3.12.4-bookworm`
    -> "3.11", "3.12.4"); None when the tag names none."""
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    match = _VERSION.match(tag.split("@", 1)[0])
    if not match:
        return None
    return ".".join(part for part in match.groups() if part is not None)


def allows(requires_python: str | None, version: str) -> bool:
    """Whether requires-python allows the version; a minor version ("3.11") is allowed when any
    of its releases is."""
    if not requires_python:
        return True
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # the project's inspection says what is wrong with it
    if version.count(".") >= 2:
        return specifier.contains(version, prereleases=True)
    return any(specifier.contains(f"{version}.{patch}", prereleases=True) for patch in range(100))


def describe(project: Project, settings: Settings) -> tuple[str, str | None]:
    """("Python 3.11 (testdock-local/python:3.11-bookworm)", a warning or None)."""
    image = base_image(project, settings)
    version = image_python(image)
    if version is None:
        return f"Python as in {image} (its tag names no version)", None
    shown = f"Python {version} ({image})"
    if allows(project.requires_python, version):
        return shown, None
    return shown, (f"the base image {image} runs Python {version}, which the project's requires-python "
                   f"{project.requires_python!r} excludes; set [tool.testdock] base_image to an image "
                   f"with a Python it allows (like python:{project.python_version}-slim)")
