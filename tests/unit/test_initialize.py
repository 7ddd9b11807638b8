"""`testdock init`: what it writes, and what it refuses to touch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomlkit

from testdock.errors import BadInput
from testdock.initialize import Action, InitOptions, apply, diff, plan
from testdock.managed import Ownership, merge_block, ownership, stamp
from tests.conftest import EXAMPLE

GENERATED = [
    "docker/pytest.collection.Dockerfile", "docker/pytest.execution.Dockerfile",
    "docker/pytest.stress.Dockerfile", "docker/backend.test.Dockerfile",
    "docker/collection_requirements.txt", "docker/execution_requirements.txt",
    "docker/stress_requirements.txt", "docker/test_requirements.txt", "docker/healthcheck.py",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    copy = tmp_path / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return copy


def _init(root: Path, force: bool = False, **options: str) -> list[str]:
    _, planned = plan(root, InitOptions(force=force, **options))
    return [item.path for item in apply(root, planned, force)]


def test_stamp_round_trip() -> None:
    text = stamp("FROM x\n", "0.1.0")
    assert ownership(text) is Ownership.OURS
    assert ownership(text + "RUN edit\n") is Ownership.EDITED
    assert ownership("FROM x\n") is Ownership.FOREIGN
    assert ownership(None) is Ownership.MISSING


def test_init_writes_everything_once(project: Path) -> None:
    written = _init(project)
    assert set(GENERATED) | {".dockerignore", "pyproject.toml"} == set(written)
    for relative in GENERATED:
        assert ownership((project / relative).read_text()) is Ownership.OURS
    assert _init(project) == []  # a second run changes nothing


def test_pyproject_gets_a_table_and_keeps_everything_else(project: Path) -> None:
    before = (project / "pyproject.toml").read_text()
    _init(project, base_image="local/python:3.11")
    after = (project / "pyproject.toml").read_text()
    assert after.startswith(before.rstrip("\n"))  # nothing of the user's text moved or changed
    table = tomlkit.parse(after)["tool"]["testdock"]
    assert table["project"] == "shop"
    assert table["base_image"] == "local/python:3.11"
    assert table["backend"]["app"] == "shop.main:app"
    assert "ARG BASE_IMAGE=local/python:3.11" in (project / "docker/pytest.execution.Dockerfile").read_text()


def test_an_edited_file_is_kept_unless_forced(project: Path) -> None:
    _init(project)
    dockerfile = project / "docker/pytest.execution.Dockerfile"
    edited = dockerfile.read_text() + "RUN echo mine\n"
    dockerfile.write_text(edited)
    with pytest.raises(BadInput, match=r"docker/pytest.execution.Dockerfile: not written by testdock"):
        _init(project, base_image="third/python:3.12")
    assert dockerfile.read_text() == edited
    # nothing else was written either: the refusal comes before any write
    assert "third/python" not in (project / "docker/pytest.collection.Dockerfile").read_text()
    assert "third/python" not in (project / "pyproject.toml").read_text()
    _init(project, force=True, base_image="third/python:3.12")
    assert "RUN echo mine" not in dockerfile.read_text()


def test_a_foreign_file_is_never_overwritten(project: Path) -> None:
    (project / "docker").mkdir()
    mine = project / "docker" / "backend.test.Dockerfile"
    mine.write_text("FROM my/own\n")
    with pytest.raises(BadInput, match=r"backend\.test\.Dockerfile"):
        _init(project)
    assert mine.read_text() == "FROM my/own\n"
    assert not (project / "docker" / "pytest.execution.Dockerfile").exists()


def test_diff_shows_changes_and_writes_nothing(project: Path) -> None:
    before = sorted(p.name for p in project.rglob("*"))
    _, planned = plan(project, InitOptions())
    text = diff(planned)
    assert "+++ b/docker/pytest.execution.Dockerfile" in text
    assert "+[tool.testdock]" in text
    assert sorted(p.name for p in project.rglob("*")) == before


def test_dockerignore_is_merged_with_the_users(project: Path) -> None:
    (project / ".dockerignore").write_text("# mine\ndata/\n.git\n")
    _init(project)
    text = (project / ".dockerignore").read_text()
    assert text.startswith("# mine\ndata/\n.git\n")
    block = text.split("# >>> testdock", 1)[1]
    assert ".git\n" not in block  # already excluded by the user
    for pattern in ("**/.env", ".venv", "**/__pycache__", "**/*.pem"):
        assert pattern in block
    assert merge_block(text, ["x"]).count("# >>> testdock") == 1


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: (p / "pyproject.toml").write_text("[project\n"), "not valid TOML"),
    (lambda p: (p / "pyproject.toml").write_text(
        (p / "pyproject.toml").read_text() + "\n[tool.testdock]\nbogus = 1\n"), "unknown key 'bogus'"),
    (lambda p: (p / "pyproject.toml").write_text(
        (p / "pyproject.toml").read_text().replace('"httpx"', '"httpx; $(id)"')), "unsafe character"),
])
def test_bad_input_writes_nothing(project: Path, setup: object, message: str) -> None:
    setup(project)  # type: ignore[operator]
    with pytest.raises(BadInput, match=message):
        _init(project)
    assert not (project / "docker").exists()
    assert not (project / ".dockerignore").exists()


def test_plan_reports_actions(project: Path) -> None:
    _, planned = plan(project, InitOptions())
    assert {item.action for item in planned} == {Action.CREATE, Action.UPDATE}
