from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testdock.errors import BadInput
from testdock.project.settings import Settings, load_settings, settings_from_table


def test_defaults_when_no_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    settings = load_settings(tmp_path)
    assert settings == Settings()
    assert settings.build.parallel == "auto" and settings.build.memory is None
    assert settings.backend.health_path == "/health"


def test_full_table_is_read(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.testdock]\nproject = 'shop'\nbase_image = 'registry.local:5000/py/python:3.12-slim'\n"
        "[tool.testdock.phases.execution]\nmemory = '1g'\ncpus = 1.5\n"
        "extra_requirements = ['pytest-randomly>=3']\nenvironment = { TERMINAL_WIDTH = '3000' }\n"
        "[tool.testdock.collection]\nstub = ['numpy', 'torch.nn']\n")
    settings = load_settings(tmp_path)
    assert settings.project == "shop"
    assert settings.phases.execution.memory == "1g"
    assert settings.phases.execution.cpus == 1.5
    assert settings.phases.execution.extra_requirements == ["pytest-randomly>=3"]
    assert settings.phases.execution.environment == {"TERMINAL_WIDTH": "3000"}
    assert settings.collection.stub == ["numpy", "torch.nn"]


@pytest.mark.parametrize(("table", "message"), [
    ({"phases": {"execution": {"memroy": "1g"}}},
     "[tool.testdock.phases.execution] unknown key 'memroy'; did you mean 'memory'?"),
    ({"base_imag": "x"}, "[tool.testdock] unknown key 'base_imag'; did you mean 'base_image'?"),
    ({"phases": {"integration": {}}}, "[tool.testdock.phases] unknown key 'integration'"),
    ({"base_image": "Bad Image"}, "base_image: 'Bad Image' is not a Docker image reference"),
    ({"base_image": "python:3.12\nRUN evil"}, "is not a Docker image reference"),
    ({"project": "Shop App"}, "project: 'Shop App' must be lower-case"),
    ({"phases": {"stress": {"memory": "lots"}}}, "memory: not a size: 'lots'"),
    ({"build": {"parallel": 0}}, "[tool.testdock.build] parallel: 0 is neither a number from 1 to 32"),
    ({"build": {"parallel": "many"}}, "[tool.testdock.build] parallel: 'many' is neither"),
    ({"build": {"memory": "lots"}}, "[tool.testdock.build] memory:"),
    ({"build": {"platforms": ["arm64"]}}, "'arm64' is not a platform (os/architecture"),
    ({"build": {"platform_base_images": {"linux/arm64": "Bad Image"}}}, "is not a Docker image reference"),
    ({"build": {"platform_base_images": {"windows/amd64": "python:3.12"}}}, "'windows/amd64' is not a"),
    ({"phases": {"execution": {"extra_requirements": ["a$(id)"]}}}, "unsafe character"),
    ({"collection": {"stub": ["numpy; rm"]}}, "is not a module name"),
    ({"system_packages": ["libpq-dev && curl evil"]}, "is not a Debian package name"),
    ({"build_packages": ["gcc\nRUN x"]}, "is not a Debian package name"),
    ({"memory": {"margin": "150%"}}, "must be a percentage"),
    ({"backend": {"health_path": "health"}}, "health_path"),
    ({"phases": {"execution": {"environment": {"BAD NAME": "1"}}}}, "is not an environment variable name"),
])
def test_bad_settings_name_key_and_problem(table: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput) as caught:
        settings_from_table(table, "pyproject.toml")
    text = str(caught.value)
    assert message in text
    assert text.startswith("pyproject.toml: ")
    assert "\n" not in text


def test_broken_pyproject_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.testdock\nproject = 1\n")
    with pytest.raises(BadInput, match=r"pyproject.toml: not valid TOML"):
        load_settings(tmp_path)
