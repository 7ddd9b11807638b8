"""[tool.testdock.collection]: what the collection image installs for real."""

from __future__ import annotations

import shutil
from pathlib import Path

from testdock.config import load_settings
from testdock.phases import light_candidates, requirement_set
from testdock.project import inspect_project
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
