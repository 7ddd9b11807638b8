"""The settings are the source of truth: `build` and `run` render testdock's unedited files again,
and name what an edited one no longer gets."""

from __future__ import annotations

import shutil
from pathlib import Path

from testdock.images.initialize import InitOptions, apply, plan
from testdock.images.sync import sync_generated_files
from testdock.workspace import Workspace
from tests.conftest import EXAMPLE


def _initialized(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    _, planned, _ = plan(root, InitOptions())
    apply(root, planned)
    return root


def _add_settings(root: Path, text: str) -> None:
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n" + text)


def test_nothing_changes_when_the_settings_did_not(tmp_path: Path) -> None:
    root = _initialized(tmp_path)
    result = sync_generated_files(Workspace.load(root))
    assert result.written == [] and result.kept == [] and result.messages() == []


def test_a_changed_setting_reaches_the_unedited_files_and_an_edited_one_says_so(tmp_path: Path) -> None:
    root = _initialized(tmp_path)
    collection = root / "docker" / "pytest.collection.Dockerfile"
    collection.write_text(collection.read_text() + "RUN echo my own step\n")  # the user's edit
    # (the stress image's: the execution image's reach the collection image's Dockerfile too, whose
    # stand-ins are for what the real run installs)
    _add_settings(root, '[tool.testdock.phases.stress]\nextra_requirements = ["tomli-w"]\n')
    result = sync_generated_files(Workspace.load(root))
    assert "docker/stress_requirements.txt" in result.written
    assert "tomli-w" in (root / "docker" / "stress_requirements.txt").read_text()
    assert result.kept == []  # the edit is the user's own line: nothing of the settings is lost
    assert sync_generated_files(Workspace.load(root)).written == []  # applied once

    _add_settings(root, '[tool.testdock.collection]\nstub = ["somemodule"]\n')
    result = sync_generated_files(Workspace.load(root))
    assert "RUN echo my own step" in collection.read_text()  # left alone
    kept = dict(result.kept)
    assert "docker/pytest.collection.Dockerfile" in kept, result
    message = "\n".join(result.messages())
    assert "pytest.collection.Dockerfile is edited, so the settings no longer reach it" in message
    assert "testdock init --diff" in message


def test_nothing_is_created_in_a_project_init_never_saw(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.rmtree(root / "docker", ignore_errors=True)
    assert sync_generated_files(Workspace.load(root)).written == []
    assert not (root / "docker").exists()


def test_a_file_that_is_not_utf8_text_is_never_overwritten(tmp_path: Path) -> None:
    import pytest

    from testdock.errors import BadInput

    root = _initialized(tmp_path)
    dockerfile = root / "docker" / "pytest.execution.Dockerfile"
    dockerfile.write_bytes(b"FROM x\n# caf\xe9\n")
    with pytest.raises(BadInput, match="not UTF-8"):
        sync_generated_files(Workspace.load(root))
    assert dockerfile.read_bytes() == b"FROM x\n# caf\xe9\n"
