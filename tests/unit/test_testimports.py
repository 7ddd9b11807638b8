"""Which modules test files import whenever they are imported, and so cannot be collected without."""

from __future__ import annotations

from pathlib import Path

from testdock.project.testimports import files_of_tests, imported_by_tests, unconditional_imports
from tests.conftest import write_tree


def test_module_level_imports_count_in_every_form() -> None:
    source = (
        "import os, numpy.linalg as la\n"
        "from pandas import DataFrame\n"
        "from . import helpers\n"  # the project's own: relative
        "with open(__file__):\n    import yaml\n"
        "class TestX:\n    import toml\n"
    )

    assert unconditional_imports(source) == {"os", "numpy", "pandas", "yaml", "toml"}


def test_guarded_typing_only_and_function_imports_do_not_count() -> None:
    source = (
        "try:\n    import scipy\nexcept ImportError:\n    scipy = None\nelse:\n    import sklearn\n"
        "try:\n    import h5py\nexcept (ValueError, ModuleNotFoundError):\n    pass\n"
        "try:\n    import jax\nexcept:\n    pass\nfinally:\n    import gc\n"
        "try:\n    import torch\nexcept KeyError:\n    pass\n"  # not a guard against absence
        "if TYPE_CHECKING:\n    import polars\n"
        "if typing.TYPE_CHECKING:\n    import pyarrow\n"
        "if importlib.util.find_spec('tensorflow'):\n    import tensorflow\n"
        "if __name__ == '__main__':\n    import matplotlib.pyplot\n"
        "with contextlib.suppress(ImportError):\n    import jinja2\n"
        "with pytest.raises(ModuleNotFoundError):\n    import nosuch\n"
        "with warnings.catch_warnings():\n    import deprecated_thing\n"
        "def test_it():\n    import dask\n"
        "pd = pytest.importorskip('pandas')\nimport pandas.testing\n"
        "pytest.importorskip(modname='xarray.core')\nfrom xarray import DataArray\n"
    )

    assert unconditional_imports(source) == {"sklearn", "gc", "torch", "deprecated_thing"}


def test_a_file_that_does_not_parse_imports_nothing() -> None:
    assert unconditional_imports("import numpy\ndef (:\n") == set()
    assert unconditional_imports("import numpy\nx = " + " + ".join(["1"] * 50_000) + "\n") == set()


def test_files_of_tests_are_pytests_defaults_conftests_and_tests_folders(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "pkg/core.py": "", "pkg/permutation_test.py": "", "pkg/latest.py": "",
        "tests/test_a.py": "", "tests/helpers.py": "", "tests/sub/conftest.py": "",
        "app/tests.py": "", ".venv/lib/test_x.py": "", "build/lib/test_y.py": "",
        "venv2/test_z.py": "",
    })

    everywhere = {p.relative_to(tmp_path).as_posix() for p in files_of_tests(tmp_path, ["."])}
    in_tests = {p.relative_to(tmp_path).as_posix() for p in files_of_tests(tmp_path, ["tests"])}

    assert everywhere == {"pkg/permutation_test.py", "tests/test_a.py", "tests/helpers.py",
                          "tests/sub/conftest.py", "app/tests.py"}
    assert in_tests == {"tests/test_a.py", "tests/helpers.py", "tests/sub/conftest.py"}
    assert [p.name for p in files_of_tests(tmp_path, ["tests/test_a.py", "missing"])] == ["test_a.py"]


def test_imported_by_tests_names_the_first_file_per_wanted_module(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "tests/test_a.py": "import pandas as pd\nimport numpy\n",
        "tests/test_b.py": "from pandas.testing import assert_frame_equal\nimport matplotlib\n",
        "tests/test_c.py": "def test():\n    import boto3\n",
        "tests/test_d.py": "# import redis\ntext = 'from redis import Redis'\n",
    })

    found = imported_by_tests(tmp_path, ["tests"], {"pandas", "boto3", "redis", "matplotlib"})

    assert found == {"pandas": "tests/test_a.py", "matplotlib": "tests/test_b.py"}
    assert imported_by_tests(tmp_path, ["tests"], set()) == {}


def test_every_import_form_is_found_and_folder_wide_skips_are_honoured(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "tests/test_a.py": "import os, yaml\n",
        "tests/spark/__init__.py": "import pytest\npytest.importorskip('pyspark')\n",
        "tests/spark/test_jobs.py": "from pyspark.sql import SparkSession\n",
        "tests/conftest.py": "",
    })

    assert imported_by_tests(tmp_path, ["tests"], {"yaml", "pyspark"}) == {"yaml": "tests/test_a.py"}
    # a test path given absolute (pytest accepts one) names files relative to the root all the same
    assert imported_by_tests(tmp_path, [str(tmp_path / "tests")], {"yaml"}) == {"yaml": "tests/test_a.py"}
