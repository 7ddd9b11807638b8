"""pytest's own settings, read from the one file pytest itself takes them from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testdock.project.pyproject import read_ini, read_toml, table

# pytest's order: the first of these that holds pytest settings is the only one it reads
_TOML_FILES = ("pytest.toml", ".pytest.toml")  # pytest 9
_ALWAYS_INI = ("pytest.ini", ".pytest.ini")  # used even without a [pytest] section
_SECTION_INI = (("tox.ini", "pytest"), ("setup.cfg", "tool:pytest"))


def pytest_settings(root: Path, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(where, the settings) of the file pytest reads its settings from; ("", {}) where none.
    `data` is the project's parsed pyproject.toml. Values are strings from INI files, strings or
    lists from TOML (`[tool.pytest.ini_options]`, or pytest 9's `[tool.pytest]` and pytest.toml)."""
    for name in _TOML_FILES:
        if (root / name).is_file():
            return name, table(read_toml(root / name), "pytest")
    for name in _ALWAYS_INI:
        if (root / name).is_file():
            parser = read_ini(root / name)
            return f"{name} [pytest]", dict(parser["pytest"]) if parser.has_section("pytest") else {}
    tool = table(data, "tool")
    if "pytest" in tool:
        if "ini_options" in table(tool, "pytest"):
            return "[tool.pytest.ini_options]", table(tool, "pytest", "ini_options")
        return "[tool.pytest]", table(tool, "pytest")
    for name, section in _SECTION_INI:
        if (root / name).is_file():
            parser = read_ini(root / name)
            if parser.has_section(section):
                return f"{name} [{section}]", dict(parser[section])
    return "", {}


def addopts_text(settings: dict[str, Any]) -> str:
    """The settings' `addopts` as one string (a TOML list joined)."""
    addopts = settings.get("addopts", "")
    return " ".join(str(option) for option in addopts) if isinstance(addopts, list) else str(addopts)


def writes_junit(settings: dict[str, Any]) -> bool:
    """Whether the settings' addopts write a JUnit file (arrow's `--junitxml=junit.xml`)."""
    text = addopts_text(settings)
    return "--junitxml" in text or "--junit-xml" in text


def sets_timeout(settings: dict[str, Any]) -> bool:
    """Whether the settings give pytest-timeout a timeout (`timeout = 20`, `addopts = --timeout=20`)."""
    return "timeout" in settings or "--timeout" in addopts_text(settings)


def warnings_fail(settings: dict[str, Any]) -> bool:
    """Whether the settings' `filterwarnings` turn warnings into errors (`error`, `error::...`)."""
    value = settings.get("filterwarnings", [])
    entries = value.splitlines() if isinstance(value, str) else [str(entry) for entry in value]
    return any(entry.strip().startswith("error") for entry in entries)
