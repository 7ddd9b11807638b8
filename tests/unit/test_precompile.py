"""Build-time bytecode: the tests and the packages they import, never a folder of test data."""

from __future__ import annotations

from pathlib import Path

from testdock_pytest.imagebuild.precompile import code_files, main
from tests.conftest import write_tree


def test_test_folders_and_packages_are_compiled_and_data_folders_left_as_they_are(tmp_path: Path) -> None:
    """sphinx lists the files of its test projects (tests/roots/test-root): five tests failed on
    the __pycache__ folders compileall wrote there."""
    write_tree(tmp_path, {
        "tests/__init__.py": "", "tests/conftest.py": "", "tests/test_a.py": "",
        "tests/helpers/__init__.py": "", "tests/helpers/make.py": "",  # a package: imported
        "tests/integration/test_b.py": "", "tests/integration/util.py": "",  # a test folder
        "tests/roots/test-root/conf.py": "", "tests/roots/test-root/autodoc_target.py": "",
        "tests/roots/test-ext/target/__init__.py": "",  # a package, but inside data
        "tests/data/cases/simple.py": "",
        "tests/__pycache__/stale.py": "", "tests/.hidden/test_x.py": "",
    })
    found = {str(path.relative_to(tmp_path)) for path in code_files(tmp_path / "tests")}
    assert found == {"tests/__init__.py", "tests/conftest.py", "tests/test_a.py", "tests/helpers/__init__.py",
                     "tests/helpers/make.py", "tests/integration/test_b.py", "tests/integration/util.py"}


def test_the_given_folders_are_compiled_and_nothing_is_written_in_data(tmp_path: Path) -> None:
    write_tree(tmp_path, {"src/pkg/__init__.py": "", "src/pkg/mod.py": "X = 1\n", "tests/test_a.py": "",
                          "tests/roots/conf.py": "", "tests/test_broken.py": "def (:\n"})
    assert main([str(tmp_path / "src"), str(tmp_path / "tests")]) == 0  # a broken file: no failure
    assert list((tmp_path / "src" / "pkg" / "__pycache__").glob("mod.*.pyc"))
    assert list((tmp_path / "tests" / "__pycache__").glob("test_a.*.pyc"))
    assert not (tmp_path / "tests" / "roots" / "__pycache__").exists()
