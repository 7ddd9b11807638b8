"""[tool.testdock.collection]: what the collection image installs for real."""

from __future__ import annotations

import shutil
from pathlib import Path

from testdock.images.phases import light_candidates, requirement_set
from testdock.project.inspection import inspect_project
from testdock.project.requirements import names
from testdock.project.settings import load_settings
from tests.conftest import EXAMPLE


def test_collection_install_takes_the_projects_own_version_range(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.testdock.collection]\ninstall = ["SQLAlchemy", "numpy<3"]\n')
    settings = load_settings(project)
    inspected = inspect_project(project)
    collection = requirement_set("collection", inspected, settings)
    assert "sqlalchemy>=2.0" in [r.lower() for r in collection] and "numpy<3" in collection
    assert not any(r.lower().startswith("sqlalchemy") for r in light_candidates(inspected, settings))


def test_collection_install_takes_extras_from_the_user_only(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)  # it depends on psycopg[binary]>=3.1
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text()
    for wanted, expected in (('"psycopg"', "psycopg>=3.1"), ('"psycopg[binary]"', "psycopg[binary]>=3.1"),
                             ('"psycopg[c]"', "psycopg[c]>=3.1"), ('"psycopg==3.2.1"', "psycopg==3.2.1"),
                             ("\"psycopg; python_version >= '3.9'\"", 'psycopg; python_version >= "3.9"')):
        pyproject.write_text(original + f"\n[tool.testdock.collection]\ninstall = [{wanted}]\n")
        collection = requirement_set("collection", inspect_project(project), load_settings(project))
        assert [r for r in collection if r.startswith("psycopg")] == [expected]


def test_collection_command_turns_coverage_off_where_pytest_cov_is_installed(tmp_path: Path) -> None:
    from testdock.images.phases import default_command

    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)  # no pytest-cov among its test dependencies
    command = default_command("collection", inspect_project(project), load_settings(project))
    assert command[-3:] == ["--collect-only", "-q", "--assert=plain"]
    pyproject = project / "pyproject.toml"
    text = pyproject.read_text().replace('"pytest-benchmark"]', '"pytest-benchmark", "pytest-cov"]')
    pyproject.write_text(text)
    command = default_command("collection", inspect_project(project), load_settings(project))
    assert command[-2:] == ["--assert=plain", "--no-cov"]  # an `addopts = --cov` cannot write in /app


def test_pytest_django_brings_the_projects_django_into_the_collection_image(tmp_path: Path) -> None:
    from tests.conftest import write_tree

    write_tree(tmp_path, {"pyproject.toml": (
        '[project]\nname = "site"\ndependencies = ["Django>=4.2,<6", "requests"]\n'
        '[project.optional-dependencies]\ntest = ["pytest-django>=4.5"]\n')})
    without = tmp_path / "plain"
    write_tree(without, {"pyproject.toml": (
        '[project]\nname = "site"\ndependencies = ["Django>=4.2,<6"]\n'
        '[project.optional-dependencies]\ntest = ["pytest"]\n')})

    collection = requirement_set("collection", inspect_project(tmp_path), load_settings(tmp_path))
    plain = requirement_set("collection", inspect_project(without), load_settings(without))

    assert "django<6,>=4.2" in [r.lower() for r in collection]  # the project's own range
    assert names(collection) == {"pytest-django", "django", "pytest"}  # not requests: stubbed
    assert "django" not in names(plain)
