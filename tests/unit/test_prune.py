"""Pruning an image's installed dependencies: their test suites and sources go, listed with their
sizes; what the project uses, what an entry point names and what a package needs to import stay.
A real venv here, its interpreter importing the pruned packages."""

from __future__ import annotations

import venv
from pathlib import Path

from testdock.project.dependencytests import compiles_code, packages_to_keep
from testdock_pytest.imagebuild.prune import _report, main, prune, site_packages
from tests.conftest import write_tree


def test_test_suites_and_sources_go_what_is_used_stays(tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    site = site_packages(environment)
    write_tree(site, {
        "heavy/__init__.py": "", "heavy/core.py": "", "heavy/tests/__init__.py": "",
        "heavy/tests/test_core.py": "x" * 50_000, "heavy/sub/test/test_sub.py": "x" * 10_000,
        "heavy/include/heavy.h": "x" * 3_000, "heavy/_speed.pyx": "x" * 2_000,
        "heavy/libheavy.a": "x" * 1_000,
        # imports a module of its own tests when imported: broken without them, so restored
        "needy/__init__.py": "from needy.tests import helpers\n", "needy/tests/__init__.py": "",
        "needy/tests/helpers.py": "",
        # its testing helpers import its own tests: restored too
        "helpful/__init__.py": "", "helpful/testing.py": "from helpful.tests.data import SAMPLE\n",
        "helpful/tests/data.py": "SAMPLE = 1\n",
        # a pytest plugin living in its tests package: named by an entry point
        "plugged/__init__.py": "", "plugged/tests/plugin.py": "",
        "plugged-1.0.dist-info/entry_points.txt": "[pytest11]\nplugged = plugged.tests.plugin\n",
        # the project imports its test helpers
        "helped/__init__.py": "", "helped/tests/base.py": "",
        # compiles kernels at run time with its headers
        "torch/__init__.py": "", "torch/include/aten.h": "x" * 500,
        # broken with or without its tests: not pruning's to judge, its tests go
        "broken/__init__.py": "raise ImportError('broken already')\n", "broken/tests/t.py": "",
    })
    chosen, restored = prune(environment, keep={"helped"}, keep_sources=False, compile_after=True)
    assert not (site / "heavy" / "tests").exists() and not (site / "heavy" / "sub" / "test").exists()
    assert not (site / "heavy" / "include" / "heavy.h").exists()
    assert not (site / "heavy" / "_speed.pyx").exists()
    assert not (site / "heavy" / "libheavy.a").exists() and (site / "heavy" / "core.py").is_file()
    assert restored == ["helpful", "needy"] and (site / "needy" / "tests" / "helpers.py").is_file()
    assert (site / "helpful" / "tests" / "data.py").is_file()
    assert (site / "plugged" / "tests" / "plugin.py").is_file()
    assert (site / "helped" / "tests" / "base.py").is_file()
    assert (site / "torch" / "include" / "aten.h").is_file()
    assert not (site / "broken" / "tests").exists()
    assert chosen.size("heavy") >= 66_000 and chosen.packages() == ["broken", "heavy"]
    # bytecode for what stays (restored files included), none spent on what went
    assert list((site / "heavy" / "__pycache__").glob("core.cpython-*.pyc"))
    assert list((site / "needy" / "tests" / "__pycache__").glob("helpers.cpython-*.pyc"))
    lines = _report(chosen, restored)
    assert lines[0] == "testdock prune: heavy: 64.5 KiB (tests 58.6 KiB, sources 5.9 KiB)"
    assert any("testdock prune: helpful: kept whole" in line for line in lines)
    assert lines[-1].startswith("testdock prune: removed 64.5 KiB in all: the dependencies' test suites 58.6")


def test_sources_stay_when_the_tests_compile_code(tmp_path: Path, capsys: object) -> None:
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    site = site_packages(environment)
    write_tree(site, {"heavy/__init__.py": "", "heavy/include/heavy.h": "", "heavy/tests/t.py": ""})
    assert main([str(environment), "--keep-sources"]) == 0
    assert (site / "heavy" / "include" / "heavy.h").is_file() and not (site / "heavy" / "tests").exists()


def test_the_dependencies_whose_tests_the_project_imports_are_found(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_ext.py").write_text(
        "from pandas.tests.extension import base\nimport xarray.tests as xt\n"
        "from mypkg.tests import helper\nimport numpy.testing\n")
    (tmp_path / "tests" / "conftest.py").write_text('pytest_plugins = ["dask.tests.plugin"]\n')
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "test_x.py").write_text("from scipy.tests import x\n")  # not the project's
    assert packages_to_keep(tmp_path, ["tests"], ["mypkg"]) == ["dask", "pandas", "xarray"]
    assert compiles_code(["Cython>=3", "numpy"]) and not compiles_code(["numpy", "pandas"])


def test_tests_that_start_programs_are_found_for_the_distroless_warning(tmp_path: Path) -> None:
    from testdock.project.programs import files_running_programs

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_cli.py").write_text("import subprocess\n\ndef test_cli():\n"
                                                    "    subprocess.run(['git', 'status'])\n")
    (tmp_path / "tests" / "test_pure.py").write_text("def test_pure():\n    assert 1\n")
    (tmp_path / "tests" / "test_which.py").write_text("import shutil\nGIT = shutil.which ('git')\n")
    assert files_running_programs(tmp_path, ["tests"]) == ["tests/test_cli.py", "tests/test_which.py"]
