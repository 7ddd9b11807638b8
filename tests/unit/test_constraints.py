"""The versions a project pins, from its lock file or its `-c` constraints files."""

from __future__ import annotations

from pathlib import Path

import pytest

from testdock.errors import BadInput
from testdock.images.render import render_files
from testdock.project.inspection import inspect_project
from testdock.project.pins import constraint_files, lock_pins, project_constraints
from testdock.project.settings import Settings

UV_LOCK = """
version = 1
requires-python = ">=3.11"

[[package]]
name = "shop"
version = "0.1.0"
source = { editable = "." }

[[package]]
name = "anyio"
version = "4.4.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "Pytest"
version = "7.4.4"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version < '3.12'"]

[[package]]
name = "numpy"
version = "2.1.0"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "mylib"
version = "0.3.0"
source = { git = "https://example.com/mylib.git?rev=abc#abc" }
"""

POETRY_LOCK = """
[[package]]
name = "idna"
version = "3.7"
description = ""
optional = false
python-versions = ">=3.5"
files = []

[[package]]
name = "private"
version = "1.0"
description = ""
optional = false
python-versions = "*"
files = []

[package.source]
type = "directory"
url = "../private"
"""


def test_uv_lock_pins_registry_packages_locked_at_one_version(tmp_path: Path) -> None:
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    # the project itself, a package forked per Python version and a git package stay free
    assert lock_pins(tmp_path / "uv.lock", "shop") == ["anyio==4.4.0", "pytest==7.4.4"]


FORKED_UV_LOCK = """
version = 1

[[package]]
name = "pytest"
version = "8.4.2"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version < '3.10'"]

[[package]]
name = "pytest"
version = "9.0.2"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version >= '3.12'", "python_full_version == '3.11.*'"]

[[package]]
name = "numpy"
version = "2.1.0"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version >= '3.10'"]

[[package]]
name = "numpy"
version = "1.26.4"
source = { registry = "https://pypi.org/simple" }
resolution-markers = ["python_full_version < '3.10' and"]
"""


def test_a_package_the_lock_forks_per_python_is_pinned_under_each_fork_s_markers(tmp_path: Path) -> None:
    """flask's uv.lock: pytest 8.4.2 below Python 3.10, 9.0.2 from it. Its tests need 9.0.2 (pytest
    9.1 removed what they import), so the fork is kept, not left free; a fork whose markers do
    not parse leaves the package free."""
    from packaging.requirements import Requirement

    (tmp_path / "uv.lock").write_text(FORKED_UV_LOCK)
    pins = lock_pins(tmp_path / "uv.lock", "flask")
    assert pins == ["pytest==8.4.2; python_full_version < '3.10'",
                    "pytest==9.0.2; (python_full_version >= '3.12') or (python_full_version == '3.11.*')"]
    applying = [pin for pin in pins if Requirement(pin).marker.evaluate(  # type: ignore[union-attr]
        {"python_full_version": "3.11.2", "python_version": "3.11"})]
    assert applying == [pins[1]]
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "idna"\nversion = "3.7"\nmarkers = "python_version < \'3.12\'"\n\n'
        '[[package]]\nname = "idna"\nversion = "3.10"\nmarkers = "python_version >= \'3.12\'"\n')
    assert lock_pins(tmp_path / "poetry.lock", "app") == [
        "idna==3.7; python_version < '3.12'", "idna==3.10; python_version >= '3.12'"]


def test_the_pytest_a_lock_pins_constrains_the_images_where_their_tools_admit_it(tmp_path: Path) -> None:
    from testdock.images.tools import pin_within_tools

    assert pin_within_tools("pytest==9.0.2; python_full_version >= '3.10'")
    assert pin_within_tools("pytest-cov==6.0.0") and pin_within_tools("anyio==4.4.0")
    assert not pin_within_tools("pytest==7.4.4")  # below the tools' pytest>=8
    assert not pin_within_tools("pytest-xdist==3.0.2")
    assert not pin_within_tools("pluggy==1.5.0")  # what the tools depend on stays free
    assert not pin_within_tools("pytest>=8")  # a range is the tools' to choose within
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "flask"\nversion = "3"\n')
    (tmp_path / "uv.lock").write_text(FORKED_UV_LOCK)
    lines = render_files(inspect_project(tmp_path), Settings())["docker/constraints.txt"].splitlines()
    assert lines[1:] == lock_pins(tmp_path / "uv.lock", "flask")


def test_poetry_lock_pins_and_skips_path_sources(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(POETRY_LOCK)
    assert lock_pins(tmp_path / "poetry.lock", "shop") == ["idna==3.7"]


def test_constraints_files_of_requirements_files(tmp_path: Path) -> None:
    (tmp_path / "constraints.txt").write_text("urllib3==2.2.1\n# a comment\nidna<4\n")
    (tmp_path / "requirements.txt").write_text("-c constraints.txt\nrequests\n")
    files = constraint_files(tmp_path, [tmp_path / "requirements.txt"])
    assert files == [(tmp_path / "constraints.txt").resolve()]
    pins, source = project_constraints(tmp_path, "app", [tmp_path / "requirements.txt"])
    assert pins == ["urllib3==2.2.1", "idna<4"] and source == "constraints.txt"
    (tmp_path / "requirements.txt").write_text("-c missing.txt\n")
    with pytest.raises(BadInput, match=r"missing\.txt not found"):
        constraint_files(tmp_path, [tmp_path / "requirements.txt"])


def test_the_images_install_within_the_lock_but_their_tools_stay_free(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0.1"\n'
                                             'dependencies = ["anyio"]\n')
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    files = render_files(inspect_project(tmp_path), Settings())
    lines = files["docker/constraints.txt"].splitlines()
    assert lines[0].startswith("# Versions the images install within, from uv.lock")
    assert lines[1:] == ["anyio==4.4.0"]  # pytest is one of the images' own tools
    assert "--constraint /tmp/constraints.txt" in files["docker/pytest.execution.Dockerfile"]
    assert "--constraint /tmp/constraints.txt" in files["docker/pytest.collection.Dockerfile"]
    # a locked package is in the real run even when no dependency names it: probes must find it
    # (and so are the images' own tools: pytest-cov's coverage, xdist, psutil)
    declared = files["docker/pytest.collection.Dockerfile"].split('TESTDOCK_STUB_DEPENDENCIES="')[1]
    assert {"anyio", "pytest", "coverage", "psutil", "xdist"} <= set(declared.split('"')[0].split(","))


def test_stand_ins_report_the_versions_the_project_and_its_lock_pin(tmp_path: Path) -> None:
    """pydantic requires `pydantic-core==2.50.5` and checks it at import: the collection image
    tells its stand-ins the versions pinned exactly (dependencies and lock), by module and name."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "0.1"\n'
                                             'dependencies = ["anyio", "pydantic-core==2.50.5", "idna>=3"]\n')
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    files = render_files(inspect_project(tmp_path), Settings())
    dockerfile = files["docker/pytest.collection.Dockerfile"]
    versions = dict(pair.split("=") for pair in dockerfile.split('TESTDOCK_STUB_VERSIONS="')[1]
                    .split('"')[0].split(","))
    assert versions["pydantic_core"] == versions["pydantic-core"] == "2.50.5"
    assert versions["anyio"] == "4.4.0" and "idna" not in versions  # locked; only a range


def test_a_constraints_url_is_passed_on(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "-c https://example.org/constraints-3.11.txt\napache-airflow\n")
    pins, source = project_constraints(tmp_path, "app", [tmp_path / "requirements.txt"])
    assert pins == ["-c https://example.org/constraints-3.11.txt"]
    assert source == "https://example.org/constraints-3.11.txt"


def test_the_exact_pins_of_requirements_files_constrain_every_image(tmp_path: Path) -> None:
    """starlette pins typing_extensions in its requirements.txt: the execution image installs it,
    and the collection image's real installs (anyio) must stay within it too."""
    (tmp_path / "constraints.txt").write_text("urllib3==2.2.1\n")
    (tmp_path / "requirements.txt").write_text(
        "-c constraints.txt\n-e .[full]\ncoverage==7.6.1\ntyping_extensions==4.12.2\nurllib3==1.26.0\n"
        "requests>=2\nrich[jupyter]==13.0\ntomli==2.0.1; python_version < '3.11'\npytest==8.3.3\n")
    (tmp_path / "requirements-dev.txt").write_text("coverage==7.0\nmkdocs==1.6.1\n")
    files = [tmp_path / "requirements.txt", tmp_path / "requirements-dev.txt"]
    pins, source = project_constraints(tmp_path, "app", files)
    # the -c file first (its urllib3 wins), then each name's first exact pin, no extras or markers
    assert pins == ["urllib3==2.2.1", "coverage==7.6.1", "typing_extensions==4.12.2", "pytest==8.3.3",
                    "mkdocs==1.6.1"]
    assert source == "constraints.txt, requirements.txt (its == pins), requirements-dev.txt (its == pins)"


def test_the_collection_image_gets_the_pytest_a_requirements_txt_pins(tmp_path: Path) -> None:
    """starlette's requirements.txt (read as runtime requirements, by its name) pins pytest 8.3.3:
    the collection image collects with it, as the real run does, not with the newest."""
    from testdock.images.phases import requirement_set

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    (tmp_path / "requirements.txt").write_text("pytest==8.3.3\nanyio>=3\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    chosen = requirement_set("collection", inspect_project(tmp_path), Settings())
    assert "pytest==8.3.3" in chosen and "pytest>=8" not in chosen


def test_what_the_images_tools_depend_on_stays_free_too(tmp_path: Path) -> None:
    """tornado's requirements.txt is a pip-compile lock of its tox and docs tools: its
    pluggy==1.0.0 made pytest 8 uninstallable, and every image failed to build."""
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='web')\n")
    (tmp_path / "requirements.txt").write_text(
        "pluggy==1.0.0\niniconfig==1.1.1\nexecnet==1.9.0\ncoverage==6.0\npackaging==23.1\nsphinx==5.3.0\n")
    lines = render_files(inspect_project(tmp_path), Settings())["docker/constraints.txt"].splitlines()
    assert lines[1:] == ["packaging==23.1", "sphinx==5.3.0"]
    # read as the project's runtime requirements too: there its pins go, the names stay
    from testdock.images.phases import requirement_set

    for phase in ("execution", "backend"):
        chosen = requirement_set(phase, inspect_project(tmp_path), Settings())
        assert {"pluggy", "iniconfig", "execnet", "coverage", "packaging==23.1"} <= set(chosen), chosen
    # a project that names its own pytest keeps the set it tests with
    (tmp_path / "requirements.txt").write_text("pytest==7.4.4\npluggy==1.0.0\n")
    assert "pluggy==1.0.0" in requirement_set("execution", inspect_project(tmp_path), Settings())
