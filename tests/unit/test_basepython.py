"""What testdock says the images run, and the warning when requires-python excludes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from testdock.images.basepython import allows, image_python
from testdock.images.initialize import InitOptions, plan
from tests.conftest import EXAMPLE


@pytest.mark.parametrize(("image", "version"), [
    ("python:3.11-slim", "3.11"),
    ("testdock-local/python:3.11-bookworm", "3.11"),
    ("registry:5000/team/python:3.12.4-bookworm", "3.12.4"),
    ("ghcr.io/astral-sh/uv:python3.13-bookworm-slim", "3.13"),
    ("debian:bookworm", None),
    ("localhost:5000/python", None),
])
def test_the_version_an_images_tag_names(image: str, version: str | None) -> None:
    assert image_python(image) == version


def test_a_minor_version_is_allowed_when_any_of_its_releases_is() -> None:
    assert allows(">=3.11.4", "3.11") and not allows(">=3.11.4", "3.11.2")
    assert not allows(">=3.12", "3.11") and allows(None, "3.8") and allows("~=3.10", "3.13")


def test_init_names_the_images_python_and_warns_when_requires_python_excludes_it(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('requires-python = ">=3.11"', 'requires-python = ">=3.12"'))
    assert 'requires-python = ">=3.12"' in pyproject.read_text()
    _, _, warnings = plan(root, InitOptions(base_image="testdock-local/python:3.11-bookworm"))
    assert any("runs Python 3.11, which the project's requires-python '>=3.12' excludes" in warning
               for warning in warnings), warnings
    _, _, fine = plan(root, InitOptions(base_image="python:3.12-slim"))
    assert not any("requires-python" in warning for warning in fine)
