"""Which modules `testdock collect --compare` looks up in the execution image to suggest installing
for real: those the files whose node ids differ import at collection time, stubbed or missing."""

from __future__ import annotations

import textwrap
from pathlib import Path

from testdock.run.collect import Collection
from testdock.run.installhint import owner_by_name, suggested_modules


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def _collections(only_stubbed: list[str], only_real: list[str], stub_errors: tuple[str, ...] = (),
                 stubbed: tuple[str, ...] = ("numpy", "pandas", "scipy", "sklearn", "yaml")
                 ) -> tuple[Collection, Collection]:
    common = ["tests/test_same.py::test_same"]
    collection = Collection("collection", "c", 0, nodeids=[*common, *only_stubbed], errors=list(stub_errors),
                            stubbed=list(stubbed), left_missing=["distributed"])
    execution = Collection("execution", "e", 0, nodeids=[*common, *only_real])
    return collection, execution


def test_imports_at_collection_time_of_the_differing_files_and_their_conftests(tmp_path: Path) -> None:
    _write(tmp_path, "tests/conftest.py", """
        import yaml
        CONFIG = yaml.safe_load("a: 1")
        try:
            import distributed
        except ImportError:
            distributed = None
    """)
    _write(tmp_path, "tests/unit/test_frames.py", """
        import os
        import pandas as pd
        from numpy.testing import assert_equal  # imported, never used at collection time

        @pytest.mark.parametrize("frame", [pd.DataFrame()])
        def test_later(frame):
            import scipy  # runs with the test, not at collection
            assert_equal(frame, frame)
    """)
    _write(tmp_path, "tests/unit/test_models.py", """
        class TestModels:
            from sklearn import linear_model
            MODELS = [linear_model.Ridge()]
            if True:
                import numpy
                ARRAY = numpy.zeros(3)
    """)
    _write(tmp_path, "tests/test_same.py", "import scipy\n")
    collection, execution = _collections(["tests/unit/test_frames.py::test_a[stub]"],
                                         ["tests/unit/test_frames.py::test_a[1]"],
                                         stub_errors=("tests/unit/test_models.py",))
    suggestions = suggested_modules(tmp_path, collection, execution)
    # scipy is imported only inside a test function, numpy by test_frames.py only imported, and
    # test_same.py does not differ; distributed is missing here (its absence alone counts)
    assert suggestions == {"distributed": 2, "yaml": 2, "numpy": 1, "pandas": 1, "sklearn": 1}


def test_a_folder_that_fails_to_collect_stands_for_its_conftest(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/tests/conftest.py", """
        import yaml

        def pytest_generate_tests(metafunc):  # a hook: it runs during collection
            metafunc.parametrize("x", yaml.safe_load("[1, 2]"))
    """)
    _write(tmp_path, "pkg/tests/test_a.py", "import numpy\nVALUES = numpy.arange(3)\n")
    collection, execution = _collections([], ["pkg/tests/test_a.py::test_a"], stub_errors=("pkg/tests",))
    # the conftest counts for both: the folder that failed and the file that differs
    assert suggested_modules(tmp_path, collection, execution) == {"yaml": 2, "numpy": 1}


def test_an_error_raised_in_the_projects_own_code_points_at_what_that_code_imports(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/maps.py", "from pkg._interpolated import Interpolated\nSEISMIC = Interpolated()\n")
    _write(tmp_path, "pkg/_interpolated.py", """
        class Interpolated:
            def __post_init__(self):
                import numpy as np  # used when called, at the import of maps.py
                return np.linspace(0, 1)
    """)
    collection, execution = _collections([], [], stub_errors=("pkg/maps.py",), stubbed=("numpy", "yaml"))
    assert suggested_modules(tmp_path, collection, execution) == {}  # maps.py itself imports none
    collection.error_frames = {"pkg/maps.py": ["pkg/maps.py", "pkg/_interpolated.py"]}
    assert suggested_modules(tmp_path, collection, execution) == {"numpy": 1}


def test_nothing_to_suggest_when_the_ids_are_the_same(tmp_path: Path) -> None:
    _write(tmp_path, "tests/test_same.py", "import numpy\n")
    collection, execution = _collections([], [])
    assert suggested_modules(tmp_path, collection, execution) == {}


def test_errors_in_both_images_are_the_projects_own(tmp_path: Path) -> None:
    _write(tmp_path, "tests/test_broken.py", "import numpy\n")
    collection, execution = _collections([], [], stub_errors=("tests/test_broken.py",))
    execution.errors = ["tests/test_broken.py"]
    assert suggested_modules(tmp_path, collection, execution) == {}


def test_owners_guessed_by_name_where_the_image_cannot_tell() -> None:
    assert owner_by_name("sklearn") == "scikit-learn" and owner_by_name("yaml") == "pyyaml"
    assert owner_by_name("numpy") == "numpy"


def test_a_conftest_that_stops_collection_counts_every_module_it_imports(tmp_path: Path) -> None:
    from testdock.run.collect import parse_output

    _write(tmp_path, "tests/conftest.py", """
        import os
        import pytest

        with open(os.devnull):
            from sqlalchemy.testing.plugin.pytestplugin import *  # noqa
            wrap = pytest_sessionstart  # noqa
    """)
    # pytest stops before collecting (exit 4), so the stubs never said what they stubbed
    output = "\n".join([
        "ImportError while loading conftest '/app/tests/conftest.py'.",
        "tests/conftest.py:6: in <module>",
        "    wrap = pytest_sessionstart  # noqa",
        "E   NameError: name 'pytest_sessionstart' is not defined",
        'TESTDOCK-COLLECT {"code": 4, "seconds": 0.2, "rss": 30000000}'])
    collection = parse_output("collection", "img", output)
    # every test differs, and the test modules use numpy: only the conftest is the cause
    _write(tmp_path, "tests/test_a.py", "import numpy as np\nVALUES = np.arange(3)\n")
    execution = Collection("execution", "img", 0, nodeids=["tests/test_a.py::test_a"])

    assert collection.errors == ["tests/conftest.py"]
    assert collection.error_frames == {"tests/conftest.py": ["tests/conftest.py"]}
    # the standard library never; which of the rest the collection image has is asked of it
    assert suggested_modules(tmp_path, collection, execution) == {"pytest": 1, "sqlalchemy": 1}


REAL_RUN_FAILS = """tests/test_b.py::test_b

==================================== ERRORS ====================================
_______________________ ERROR collecting tests/test_a.py _______________________
ImportError while importing test module '/app/tests/test_a.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_a.py:1: in <module>
    import not_declared_mod.sub
E   ModuleNotFoundError: No module named 'not_declared_mod'
=========================== short test summary info ============================
ERROR tests/test_a.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 test collected, 1 error in 0.08s
"""


def test_the_real_runs_own_errors_are_read_with_their_undeclared_module() -> None:
    from testdock.run.collect import error_excerpt, missing_modules, parse_output

    execution = parse_output("execution", "img", REAL_RUN_FAILS)
    assert execution.errors == ["tests/test_a.py"]
    assert missing_modules(execution) == {"not_declared_mod": ["tests/test_a.py"]}
    excerpt = error_excerpt(execution)
    assert excerpt[0] == "tests/test_a.py:" and excerpt[-1].endswith("No module named 'not_declared_mod'")


def test_the_real_runs_collection_names_a_plugin_it_lacks() -> None:
    # DRF: `--strict-markers` and no pytest-django in the image
    from testdock.run.collect import missing_plugins, parse_output

    output = REAL_RUN_FAILS.replace("E   ModuleNotFoundError: No module named 'not_declared_mod'",
                                    "E   'django_db' not found in `markers` configuration option")
    assert missing_plugins(parse_output("execution", "img", output)) == {"pytest-django": "marker django_db"}
    assert missing_plugins(parse_output("execution", "img", REAL_RUN_FAILS)) == {}


def test_no_collection_image_change_is_proposed_for_a_file_the_real_run_fails_too(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("import numpy\nimport not_declared_mod\n")
    collection = Collection("collection", "c", 0, stubbed=["numpy", "not_declared_mod"],
                            nodeids=["tests/test_a.py::test_a", "tests/test_b.py::test_b"])
    execution = Collection("execution", "e", 2, nodeids=["tests/test_b.py::test_b"],
                           errors=["tests/test_a.py"])
    assert suggested_modules(tmp_path, collection, execution) == {}
