"""Poetry constraints and dependency tables as PEP 440 / PEP 508."""

from __future__ import annotations

from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from testdock.errors import BadInput
from testdock.project.poetry import constraint_to_specifier, dependency_to_requirement


@pytest.mark.parametrize(
    ("constraint", "expected"),
    [
        ("^1.2.3", ">=1.2.3,<2"),
        ("^1.2", ">=1.2,<2"),
        ("^1", ">=1,<2"),
        ("^0.2.3", ">=0.2.3,<0.3"),
        ("^0.0.3", ">=0.0.3,<0.0.4"),
        ("^0.0", ">=0.0,<0.1"),
        ("^0", ">=0,<1"),
        ("~1.2.3", ">=1.2.3,<1.3"),
        ("~1.2", ">=1.2,<1.3"),
        ("~1", ">=1,<2"),
        ("~=1.4", "~=1.4"),
        ("*", ""),
        ("", ""),
        ("1.2.3", "==1.2.3"),
        ("==1.2.3", "==1.2.3"),
        ("1.2.*", "==1.2.*"),
        ("!=1.5", "!=1.5"),
        (">=1,<2", ">=1,<2"),
        (">= 1.2, < 2", ">=1.2,<2"),
        (">=1.2 <2", ">=1.2,<2"),
        ("^1.2 <1.5", ">=1.2,<2,<1.5"),
        ("^1.0 || ^2.0", ">=1.0,<2"),
        ("^1.0 or ^2.0", ">=1.0,<2"),
        ("  ^2.28  ", ">=2.28,<3"),
    ],
)
def test_constraint_to_specifier(constraint: str, expected: str) -> None:
    result = constraint_to_specifier(constraint, "[tool.poetry.dependencies]")

    assert SpecifierSet(result) == SpecifierSet(expected)
    assert " " not in result


def test_constraint_to_specifier_exact_strings() -> None:
    assert constraint_to_specifier("^1.2.3", "w") == ">=1.2.3,<2"
    assert constraint_to_specifier("^0.2.3", "w") == ">=0.2.3,<0.3"
    assert constraint_to_specifier("~1.2.3", "w") == ">=1.2.3,<1.3"
    assert constraint_to_specifier("*", "w") == ""
    assert constraint_to_specifier("1.2.3", "w") == "==1.2.3"


@pytest.mark.parametrize("constraint", ["^1.x", "~abc", "^", "^1..2"])
def test_unreadable_constraint_is_bad_input(constraint: str) -> None:
    with pytest.raises(BadInput, match=r"^\[tool\.poetry\.dependencies\] foo: cannot read Poetry"):
        constraint_to_specifier(constraint, "[tool.poetry.dependencies] foo")


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [
        ("requests", "^2.28", "requests>=2.28,<3"),
        ("requests", "*", "requests"),
        ("numpy", "1.26.4", "numpy==1.26.4"),
        ("attrs", ["^23.1", "^22.0"], "attrs>=23.1,<24"),
        ("attrs", [], "attrs"),
        ("uvicorn", {"version": "^0.30", "extras": ["standard"]}, "uvicorn[standard]>=0.30,<0.31"),
        ("uvicorn", {"extras": ["a", "b"]}, "uvicorn[a,b]"),
        ("pywin32", {"version": ">=306", "markers": 'sys_platform == "win32"'},
         'pywin32>=306; sys_platform == "win32"'),
        ("tomli", {"version": "^2", "python": "<3.11"}, 'tomli>=2,<3; python_version < "3.11"'),
        ("dataclasses", {"version": "*", "python": "~3.6"},
         'dataclasses; python_version >= "3.6" and python_version < "3.7"'),
        ("backport", {"version": "*", "python": "3.8"}, 'backport; python_version == "3.8"'),
        ("toolbelt", {"git": "https://github.com/x/toolbelt.git", "tag": "v1.2.0"},
         "toolbelt @ git+https://github.com/x/toolbelt.git@v1.2.0"),
        ("toolbelt", {"git": "https://github.com/x/toolbelt.git", "rev": "abc123", "branch": "main"},
         "toolbelt @ git+https://github.com/x/toolbelt.git@abc123"),
        ("toolbelt", {"git": "https://github.com/x/toolbelt.git"},
         "toolbelt @ git+https://github.com/x/toolbelt.git"),
        ("wheelie", {"url": "https://example.com/wheelie-1.0.tar.gz"},
         "wheelie @ https://example.com/wheelie-1.0.tar.gz"),
    ],
)
def test_dependency_to_requirement(name: str, spec: Any, expected: str) -> None:
    result = dependency_to_requirement(name, spec, "here")

    assert result is not None
    assert Requirement(result) == Requirement(expected)


def test_path_dependency_is_skipped() -> None:
    assert dependency_to_requirement("shared", {"path": "../shared", "develop": True}, "w") is None


@pytest.mark.parametrize("spec", [3, None, True])
def test_dependency_of_wrong_type_is_bad_input(spec: Any) -> None:
    with pytest.raises(BadInput, match=r"^\[tool\.poetry\.dependencies\]: dependency 'foo'"):
        dependency_to_requirement("foo", spec, "[tool.poetry.dependencies]")


@pytest.mark.parametrize(("spec", "expected"), [("2.0.0b1", "foo==2.0.0b1"),
                                                ("1.0.post1", "foo==1.0.post1")])
def test_exact_pre_release_pin(spec: str, expected: str) -> None:
    result = dependency_to_requirement("foo", spec, "w")

    assert result is not None
    assert Requirement(result) == Requirement(expected)


@pytest.mark.parametrize(("constraint", "expected"), [("^2.0.0b1", ">=2.0.0b1,<3"),
                                                      ("~1.2.0rc1", ">=1.2.0rc1,<1.3")])
def test_caret_and_tilde_on_pre_release(constraint: str, expected: str) -> None:
    assert SpecifierSet(constraint_to_specifier(constraint, "w")) == SpecifierSet(expected)
