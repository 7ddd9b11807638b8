"""Reading pyproject.toml and the INI files pytest and setuptools use, with clear errors."""

from __future__ import annotations

import configparser
import tomllib
from pathlib import Path
from typing import Any

from testdock.errors import BadInput


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; an unparsable file is bad input naming the file and position."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path}: not valid TOML: {error}; fix the file and run again") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None


def read_ini(path: Path, interpolate: bool = False) -> configparser.ConfigParser:
    """An INI file (setup.cfg, tox.ini, pytest.ini), read without interpolation, as pytest reads
    it; with it (`%(asyncio)s` names another value of the section), as setuptools reads its
    options."""
    parser = configparser.ConfigParser(
        interpolation=configparser.BasicInterpolation() if interpolate else None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except configparser.Error as error:
        first_line = str(error).splitlines()[0]
        raise BadInput(f"{path}: not a valid INI file: {first_line}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    return parser


def table(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The nested table at `keys`, or {} where any level is missing or not a table."""
    current: Any = data
    for key in keys:
        if not isinstance(current, dict):
            return {}
        current = current.get(key, {})
    return current if isinstance(current, dict) else {}


def ini_list(value: str) -> list[str]:
    """A multi-line or comma/space separated INI value as a list."""
    return [item for line in value.splitlines() for item in line.replace(",", " ").split() if item]


def ini_lines(value: str) -> list[str]:
    """A multi-line INI value (one entry per line, comments dropped) as a list."""
    lines = [line.split("#", 1)[0].strip() for line in value.splitlines()]
    return [line for line in lines if line]
