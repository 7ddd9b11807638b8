"""inspect_project on small fixture projects, one per shape real projects come in."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from testdock.errors import BadInput
from testdock.images.phases import requirement_set
from testdock.project.apps import AppRef
from testdock.project.inspection import (
    Project,
    image_safe_name,
    inspect_project,
    parse_app_reference,
    requirement_files,
)
from testdock.project.settings import Settings
from tests.conftest import write_tree

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "projects"


def fixture(name: str) -> Path:
    path = FIXTURES / name
    assert path.is_dir(), f"missing fixture project {path}"
    return path


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """A private copy of a fixture project, for tests that modify it."""
    return Path(shutil.copytree(fixture(name), tmp_path / name))


write = write_tree


def reqs(items: Iterable[str]) -> list[Requirement]:
    """Requirements as comparable objects: specifier order and spelling do not matter."""
    return [Requirement(item) for item in items]


def names_of(project: Project) -> set[str]:
    return {canonicalize_name(Requirement(r).name)
            for r in (*project.dependencies, *project.test_dependencies)}


# --- 1. PEP 621 ---------------------------------------------------------------------------


def test_pep621_dependencies_and_test_extra() -> None:
    project = inspect_project(fixture("pep621"))

    assert project.name == "Pep621_Demo"
    assert project.image_name == "pep621-demo"
    assert project.root == fixture("pep621").resolve()
    assert reqs(project.dependencies) == reqs(["requests>=2.28,<3", "click>=8"])
    # The test extra's self-reference `pep621-demo[cli]` is replaced by the cli extra; the dev
    # extra is not used when a test extra exists.
    assert reqs(project.test_dependencies) == reqs(["pytest>=8", "rich>=13"])
    assert "pep621-demo" not in names_of(project)
    assert "ruff" not in names_of(project)
    assert project.sources == ("pyproject.toml [project]",)


def test_pep621_python_paths_and_layout() -> None:
    project = inspect_project(fixture("pep621"))

    assert project.python_version == "3.12"
    assert project.requires_python == ">=3.10,<3.13"
    assert project.test_paths == ("tests/unit", "tests/integration")
    assert project.source_roots == ("src",)
    assert project.packages == ("pep621_demo",)
    assert project.installable is True
    assert project.app is None


def test_dev_extra_used_when_no_test_extra_and_self_reference_expanded(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "demo"\nversion = "1"\ndependencies = ["attrs"]\n'
        "[project.optional-dependencies]\n"
        'props = ["hypothesis>=6"]\n'
        'dev = ["Demo[props]", "pytest"]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["hypothesis>=6", "pytest"])
    assert reqs(project.dependencies) == reqs(["attrs"])


def test_dev_only_tools_dropped_when_dev_extra_stands_in(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "demo"\n'
        "[project.optional-dependencies]\n"
        'dev = ["pytest", "ruff", "Black", "mypy", "pre-commit", "sphinx-autodoc-typehints",'
        ' "types-requests", "flake8-bugbear", "coverage"]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest", "coverage"])


def test_tools_kept_in_an_explicit_test_extra(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "demo"\n'
        "[project.optional-dependencies]\n"
        'testing = ["pytest", "mypy"]\n'
        'dev = ["black"]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest", "mypy"])


def test_mutually_referencing_extras_terminate(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "demo"\nversion = "1"\n'
        "[project.optional-dependencies]\n"
        'test = ["demo[more]", "pytest"]\n'
        'more = ["demo[test]", "hypothesis"]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest", "hypothesis"])


def test_project_itself_is_dropped_from_requirement_files(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "My_App"\nversion = "1"\n',
        "requirements.txt": "my-app==1.0\nattrs\n",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["attrs"])


def test_dependencies_must_be_a_list_of_strings(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\ndependencies = "requests"\n'})

    with pytest.raises(BadInput, match=r"pyproject\.toml \[project\] dependencies"):
        inspect_project(tmp_path)


def test_invalid_optional_dependency_names_the_extra(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "x"\n[project.optional-dependencies]\ntest = ["pytest>=>8"]\n'
    )})

    with pytest.raises(BadInput, match=r"optional-dependencies\] test: invalid requirement"):
        inspect_project(tmp_path)


def test_first_mention_of_a_dependency_wins_across_sources(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "x"\ndependencies = ["Requests>=2.31"]\n',
        "requirements.txt": "requests==2.0\nattrs\n",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["Requests>=2.31", "attrs"])
    assert project.sources == ("pyproject.toml [project]", "requirements.txt")


# --- 2. PEP 735 dependency groups ---------------------------------------------------------


def test_pep735_test_group_with_include() -> None:
    project = inspect_project(fixture("pep735"))

    assert reqs(project.dependencies) == reqs(["httpx>=0.27"])
    assert reqs(project.test_dependencies) == reqs(["pytest>=8", "ruff>=0.6"])
    assert "ipython" not in names_of(project)  # only in dev, and a test group exists
    assert project.sources == ("pyproject.toml [project]", "pyproject.toml [dependency-groups]")
    assert project.source_roots == (".",)
    assert project.packages == ("pep735_demo",)
    assert project.installable is True


def test_pep735_group_including_itself_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"pyproject\.toml \[dependency-groups\] test: includes itself"):
        inspect_project(fixture("pep735_self_include"))


def test_pep735_indirect_include_cycle_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        "[dependency-groups]\n"
        'test = ["pytest", {include-group = "extra"}]\n'
        'extra = ["coverage", {include-group = "test"}]\n'
    )})

    with pytest.raises(BadInput, match="includes itself"):
        inspect_project(tmp_path)


def test_pep735_diamond_include_is_not_a_cycle(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        "[dependency-groups]\n"
        'base = ["attrs"]\n'
        'unit = [{include-group = "base"}, "pytest"]\n'
        'props = [{include-group = "base"}, "hypothesis"]\n'
        'tests = [{include-group = "unit"}, {include-group = "props"}]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["attrs", "pytest", "hypothesis"])


def test_pep735_include_of_missing_group_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[dependency-groups]\ntest = ["pytest", {include-group = "nope"}]\n'
    )})

    with pytest.raises(BadInput, match=r"pyproject\.toml \[dependency-groups\] nope"):
        inspect_project(tmp_path)


def test_pep735_bad_entry_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[dependency-groups]\ntest = ["pytest", 3]\n'})

    with pytest.raises(BadInput, match="bad entry 3"):
        inspect_project(tmp_path)


def test_pep735_dev_group_used_when_no_test_group(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[dependency-groups]\nDev = ["ipython", "pytest"]\ndocs = ["sphinx"]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["ipython", "pytest"])


def test_pep735_include_group_name_is_normalized(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        "[dependency-groups]\n"
        'test = ["pytest", {include-group = "Type_Check"}]\n'
        'type-check = ["mypy"]\n'
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest", "mypy"])


# --- 3. Poetry ----------------------------------------------------------------------------


def test_poetry_dependencies_converted() -> None:
    project = inspect_project(fixture("poetry"))

    assert project.name == "poetry-demo"
    assert reqs(project.dependencies) == reqs([
        "requests>=2.28,<3",
        "attrs>=23.1,<23.2",
        "numpy==1.26.4",
        "uvicorn[standard]>=0.30,<0.31",
        "toolbelt @ git+https://github.com/example/toolbelt.git@v1.2.0",
    ])
    # python is the interpreter, redis is optional, shared is a path dependency.
    assert not {"python", "redis", "shared"} & names_of(project)
    assert project.installable is True
    assert project.sources == ("pyproject.toml [tool.poetry]",)


def test_poetry_test_group_preferred_over_legacy_dev_dependencies() -> None:
    project = inspect_project(fixture("poetry"))

    assert reqs(project.test_dependencies) == reqs(["pytest>=8.0,<9", "pytest-cov>=4,<6"])
    assert not {"black", "pytest-mock"} & names_of(project)


def test_poetry_python_constraint_gives_python_version() -> None:
    project = inspect_project(fixture("poetry"))

    assert project.requires_python == ">=3.11,<4"
    assert project.python_version == "3.13"


def test_poetry_legacy_dev_dependencies_used_without_test_group(tmp_path: Path) -> None:
    root = copy_fixture("poetry", tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    text = text.replace('[tool.poetry.group.test.dependencies]\npytest = "^8.0"\n'
                        'pytest-cov = ">=4,<6"\n', "")
    assert "group.test" not in text
    pyproject.write_text(text, encoding="utf-8")

    project = inspect_project(root)

    # black is a dev-only tool, dropped when the dev dependencies stand in for test ones.
    assert reqs(project.test_dependencies) == reqs(["pytest-mock>=3.12,<4"])


# --- 4. requirements files only -----------------------------------------------------------


def test_requirements_only_project() -> None:
    project = inspect_project(fixture("requirements_only"))
    runtime = [
        "flask>=3.0",
        "gunicorn==22.0.0",
        'pywin32>=306; sys_platform == "win32"',
        "requests[socks]>=2.31",
    ]

    assert project.name == "requirements_only"
    assert reqs(project.dependencies) == reqs(runtime)
    # requirements/test.txt includes ../requirements.txt; requirements-dev.txt is not used
    # because a test requirements file exists.
    assert reqs(project.test_dependencies) == reqs([*runtime, "pytest>=8"])
    assert "ipython" not in names_of(project)
    assert project.sources == ("requirements.txt", "requirements/test.txt")
    assert project.installable is False
    assert project.source_roots == (".",)
    assert project.packages == ()


def test_requirements_only_flat_flask_app() -> None:
    project = inspect_project(fixture("requirements_only"))

    assert project.app == AppRef("app", "app", "wsgi", "Flask")


def test_requirements_dev_file_used_without_test_file(tmp_path: Path) -> None:
    root = copy_fixture("requirements_only", tmp_path)
    shutil.rmtree(root / "requirements")

    project = inspect_project(root)

    assert "ipython" in {canonicalize_name(Requirement(r).name) for r in project.test_dependencies}
    assert project.sources == ("requirements.txt", "requirements-dev.txt")


def test_requirements_folder_conventions(tmp_path: Path) -> None:
    write(tmp_path, {
        "requirements/base.txt": "attrs\n",
        "requirements/docs.txt": "sphinx\n",
        "requirements/lint.txt": "ruff\n",
        "requirements/local.txt": "ipdb\n",
        "requirements/tests.txt": "-r base.txt\npytest\n",
        "test-requirements.txt": "hypothesis\n",
        "tests/requirements.txt": "pytest-flakes\n",
        "tests/test_a.py": "",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["attrs"])
    assert reqs(project.test_dependencies) == reqs(["hypothesis", "attrs", "pytest", "pytest-flakes"])
    assert project.sources == ("requirements/base.txt", "test-requirements.txt",
                               "requirements/tests.txt", "tests/requirements.txt")


def test_locks_of_the_maintainers_own_tools_are_not_the_projects_requirements(tmp_path: Path) -> None:
    # wcwidth: pip-compile locks for its data-update script and its wheel builds beside the tests'
    # own; their pins (certifi==<a version the index lacked>) made every image unbuildable
    write(tmp_path, {
        "requirements-update.txt": "certifi==2026.10.23\nrequests==2.34.2\n",
        "requirements-wheels.txt": "cibuildwheel==4.3.4\n",
        "requirements_build.txt": "setuptools-rust\n",
        "requirements-tests39.txt": "pytest==8.4.2\n",
        "requirements-extras.txt": "attrs\n",  # an unknown word: still the runtime set
        "tests/test_a.py": "",
    })

    runtime, test, _ = requirement_files(tmp_path)

    assert [path.name for path in runtime] == ["requirements-extras.txt"]
    assert [path.name for path in test] == ["requirements-tests39.txt"]
    project = inspect_project(tmp_path)
    assert "certifi" not in names_of(project) and "cibuildwheel" not in names_of(project)


@pytest.mark.parametrize(("files", "plugins"), [
    ({"setup.cfg": "[coverage:run]\nplugins = covdefaults\n"}, ("covdefaults",)),
    ({".coveragerc": "[run]\nplugins =\n    Cython.Coverage\n    coverage_conditional_plugin\n"},
     ("Cython", "coverage_conditional_plugin")),
    ({"pyproject.toml": '[tool.coverage.run]\nplugins = ["covdefaults"]\n'}, ("covdefaults",)),
    # the project's own plugin is no distribution to install
    ({"tox.ini": "[coverage:run]\nplugins = tests.cover_plugin\n"}, ()),
    # filelock: its plugin is tasks/coverage_pragmas.py, on pytest's pythonpath: no distribution
    # of that name exists, and the build failed looking for one
    ({"pyproject.toml": '[tool.coverage.run]\nplugins = ["covdefaults", "coverage_pragmas"]\n'
                        '[tool.pytest.ini_options]\npythonpath = [".", "tasks"]\n',
      "tasks/coverage_pragmas.py": ""}, ("covdefaults",)),
])
def test_the_coverage_plugins_the_configuration_loads_are_installed_with_the_tools(
        tmp_path: Path, files: dict[str, str], plugins: tuple[str, ...]) -> None:
    # pyflakes: `[coverage:run] plugins = covdefaults` in setup.cfg and no requirement naming it;
    # coverage refused to start, and every run with it
    write(tmp_path, {"requirements.txt": "", **files, "tests/test_a.py": "", "tests/cover_plugin.py": ""})

    project = inspect_project(tmp_path)

    assert project.coverage_plugins == plugins
    execution = requirement_set("execution", project, Settings())
    assert set(plugins) <= {text.split()[0] for text in execution}


def test_variants_of_the_plain_test_set_are_left_to_their_ci_rows(tmp_path: Path) -> None:
    # flask: requirements/tests.txt, tests-min.txt (oldest pins), tests-dev.txt (main branches)
    write(tmp_path, {
        "requirements/tests.txt": "pytest==8.3.3\nwerkzeug==3.1.3\n",
        "requirements/tests-min.txt": "werkzeug==3.1.0\n",
        "requirements/tests-dev.txt": "https://github.com/pallets/werkzeug/archive/refs/heads/main.tar.gz\n",
        "requirements/tests-integration.txt": "redis\n",
        "requirements-test-min.txt": "attrs==20.1\n",  # no plain set beside it: the only one
        "tests/test_a.py": "",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["attrs==20.1", "redis", "pytest==8.3.3",
                                                    "werkzeug==3.1.3"])
    assert "requirements/tests-min.txt" not in project.sources


# --- 5. setup.cfg -------------------------------------------------------------------------


def test_setup_cfg_project() -> None:
    project = inspect_project(fixture("setup_cfg"))

    assert project.name == "cfg-demo"
    assert reqs(project.dependencies) == reqs(
        ["attrs>=22", 'importlib-metadata>=6; python_version < "3.10"'])
    assert reqs(project.test_dependencies) == reqs(["pytest>=7", "hypothesis"])
    assert "sphinx" not in names_of(project)
    assert project.requires_python == ">=3.9"
    assert project.python_version == "3.13"
    assert project.test_paths == ("testing",)
    assert project.packages == ("cfg_demo",)
    assert project.installable is True
    assert project.sources == ("setup.cfg",)


def test_setup_cfg_invalid_requirement_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "[options]\ninstall_requires =\n    attrs\n    foo bar baz\n"})

    with pytest.raises(BadInput, match=r"setup\.cfg install_requires: invalid requirement"):
        inspect_project(tmp_path)


def test_setup_cfg_options_are_interpolated_as_setuptools_does(tmp_path: Path) -> None:
    # SQLAlchemy: `asyncio = greenlet!=0.4.17`, then `postgresql_asyncpg = %(asyncio)s asyncpg`
    write(tmp_path, {"setup.cfg": "[options.extras_require]\nasyncio =\n    greenlet!=0.4.17\n"
                                  "asyncpg =\n    %(asyncio)s\n    asyncpg\n"
                                  "test =\n    pytest\n"})
    assert reqs(inspect_project(tmp_path).test_dependencies) == reqs(["pytest"])
    assert ("greenlet!=0.4.17", "extra 'asyncpg'") in inspect_project(tmp_path).optional_requirements
    write(tmp_path, {"setup.cfg": "[options.extras_require]\ntest =\n    %(missing)s\n"})
    with pytest.raises(BadInput, match=r"setup\.cfg: Bad value substitution"):
        inspect_project(tmp_path)


def test_unparsable_setup_cfg_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "install_requires = attrs\n"})  # no section header

    with pytest.raises(BadInput, match=r"setup\.cfg: not a valid INI file"):
        inspect_project(tmp_path)


def test_non_utf8_setup_cfg_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").write_bytes(b"[metadata]\nname = caf\xe9\n")

    with pytest.raises(BadInput, match=r"setup\.cfg: not UTF-8"):
        inspect_project(tmp_path)


def test_non_utf8_pyproject_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')

    with pytest.raises(BadInput, match=r"pyproject\.toml: not UTF-8"):
        inspect_project(tmp_path)


# --- 6. setup.py, read but never executed ---------------------------------------------------


def test_setup_py_literals_are_read_without_executing_it() -> None:
    project = inspect_project(fixture("setup_py"))  # would raise SystemExit if executed

    assert reqs(project.dependencies) == reqs(["six>=1.16", "attrs"])
    assert reqs(project.test_dependencies) == reqs(["pytest>=7", "mock"])
    assert "sphinx" not in names_of(project)
    assert project.sources == ("setup.py",)
    assert project.installable is True


def test_setup_py_non_literal_arguments_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": (
        "import setuptools\n"
        "REQS = open('reqs.txt').read().split()\n"
        "setuptools.setup(name='x', install_requires=REQS,\n"
        "                 extras_require={'test': ['pytest']})\n"
    )})

    project = inspect_project(tmp_path)

    assert project.dependencies == ()
    assert reqs(project.test_dependencies) == reqs(["pytest"])


def test_setup_py_requirements_read_from_the_projects_files(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.py": (
            "from setuptools import setup\n"
            "PYTHON_REQ = '>=3.11'\n"
            "with open('reqs/base-requirements.txt') as f:\n"
            "    REQUIREMENTS = f.read().splitlines()\n"
            "setup(name='x', install_requires=REQUIREMENTS, python_requires=PYTHON_REQ)\n"),
        "reqs/base-requirements.txt": "numpy>=1.14\n# a comment\npandas<3,>=2.1\n",
        "reqs/dev-requirements.txt": "-r base-requirements.txt\npytest>=8\nflaky\nblack\n",
        "reqs/docs-requirements.txt": "sphinx\n",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["numpy>=1.14", "pandas<3,>=2.1"])
    assert {"pytest", "flaky"} <= names_of(project) and not {"black", "sphinx"} & names_of(project)
    assert project.requires_python == ">=3.11"


def test_setup_py_requirements_read_inline_or_through_a_helper(tmp_path: Path) -> None:
    # a file no convention names: only setup.py says it holds the requirements
    for call in ("open('deps/install.txt').read().splitlines()", "read_requirements('deps/install.txt')"):
        write(tmp_path, {
            "setup.py": f"from setuptools import setup\nsetup(name='x', install_requires={call})\n",
            "deps/install.txt": "attrs>=23\n",
        })
        assert reqs(inspect_project(tmp_path).dependencies) == reqs(["attrs>=23"])


def test_setup_py_top_level_binding_wins_over_later_additions(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": (
        "import sys\nfrom setuptools import setup\n"
        "install_requires = ['numpy>=1.20', 'scipy']\n"
        "if sys.platform == 'win32':\n"
        "    install_requires = install_requires + ['pywin32']\n"
        "setup(name='demo', install_requires=install_requires)\n")})

    assert reqs(inspect_project(tmp_path).dependencies) == reqs(["numpy>=1.20", "scipy"])


def test_a_project_of_requirement_files_in_a_reqs_folder(tmp_path: Path) -> None:
    write(tmp_path, {"reqs/base-requirements.txt": "attrs\n", "tests/test_a.py": "def test_a():\n    pass\n"})

    assert reqs(inspect_project(tmp_path).dependencies) == reqs(["attrs"])


def test_setup_pys_tests_require_names_the_tests_dependencies_not_the_tools_versions(tmp_path: Path) -> None:
    # pyrsistent: its tests import hypothesis, which only tests_require names
    write(tmp_path, {"setup.py": ("from setuptools import setup\n"
                                  "setup(name='demo', install_requires=['six'],\n"
                                  "      tests_require=['pytest<7', 'hypothesis<7'])\n")})

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["six"])
    assert reqs(project.test_dependencies) == reqs(["pytest", "hypothesis<7"])


def test_a_test_path_named_as_the_project_is_its_package_with_doctests(tmp_path: Path) -> None:
    # wcwidth: `testpaths = tests wcwidth` (doctests); its package went unseen, and with it the
    # compiled module its tests import from the source folder
    pyproject = ('[project]\nname = "wcwidth"\nversion = "1"\n'
                 '[tool.pytest.ini_options]\ntestpaths = ["tests", "wcwidth", "bench"]\n')
    write(tmp_path, {"pyproject.toml": pyproject,
                     "wcwidth/__init__.py": "", "bench/__init__.py": "", "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert project.test_paths == ("tests", "wcwidth", "bench")
    assert project.packages == ("wcwidth",)


NOXFILE = """
import nox

TEST_DEPS = ["hypothesis", "pytest-mock"]


@nox.session(python=["3.11", "3.12"])
def tests(session):
    session.install("-r", "ci/test.txt")
    session.install("-e", ".[socks]")
    session.install("pytest>=7", *TEST_DEPS)
    session.install(f"django=={session.posargs[0]}", "--pre")
    session.run("pytest")


@nox.session
def lint(session):
    session.install("ruff", "black")


@nox.session(name="unit-3.12")
def other(session):
    session.install("freezegun", "-c", "constraints.txt")
"""


def test_noxfiles_test_sessions_name_the_tests_dependencies_read_not_run(tmp_path: Path) -> None:
    write(tmp_path, {"noxfile.py": NOXFILE, "ci/test.txt": "attrs\n",
                     "pyproject.toml": ('[project]\nname = "demo"\nversion = "1"\n'
                                        '[project.optional-dependencies]\nsocks = ["pysocks"]\n'),
                     "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert names_of(project) >= {"attrs", "pysocks", "pytest", "hypothesis", "pytest-mock", "freezegun"}
    assert not names_of(project) & {"ruff", "black", "django", "constraints-txt"}
    assert "noxfile.py test sessions" in project.sources


def test_the_extras_a_justfile_or_makefile_runs_pytest_with_are_the_tests(tmp_path: Path) -> None:
    """cattrs: `uv run --all-extras --group test pytest`; its tests of orjson and cbor2 failed
    where the extras were guessed from the tests' own imports."""
    pyproject = ('[project]\nname = "demo"\nversion = "1"\n[project.optional-dependencies]\n'
                 'fast = ["orjson"]\ncbor = ["cbor2"]\ndocs = ["sphinx-design"]\n')
    write(tmp_path, {"pyproject.toml": pyproject, "tests/test_a.py": "",
                     "Justfile": ("lint:\n    uv run --all-extras ruff check\n"
                                  "test *args:\n    uv run --all-extras --group test pytest {{args}}\n")})
    project = inspect_project(tmp_path)
    assert names_of(project) >= {"orjson", "cbor2", "sphinx-design"}
    assert "the test recipes of its Justfile or Makefile" in project.sources
    (tmp_path / "Justfile").unlink()
    write(tmp_path, {"Makefile": ("docs:\n\tuv run --extra docs sphinx-build\n"
                                  "test:\n\tuv run --extra fast --extra=nosuch python -m pytest\n")})
    project = inspect_project(tmp_path)
    assert "orjson" in names_of(project) and not names_of(project) & {"cbor2", "sphinx-design"}


def test_setup_py_with_syntax_error_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": "setup(install_requires=['attrs'\n", "requirements.txt": "six\n"})

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["six"])


def test_setup_py_install_requires_given_as_a_string(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": (
        "from setuptools import setup\n"
        "setup(name='x', install_requires='requests>=2\\nattrs')\n"
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.dependencies) == reqs(["requests>=2", "attrs"])


def test_setup_py_extra_given_as_a_string(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": (
        "from setuptools import setup\n"
        "setup(name='x', extras_require={'test': 'pytest'})\n"
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest"])


def test_setup_py_extras_naming_lists_bound_elsewhere(tmp_path: Path) -> None:
    """responses: `extras_require = {"tests": tests_require}`, the list bound once above."""
    write(tmp_path, {"setup.py": (
        "from setuptools import setup\n"
        "tests_require = ['pytest>=7', 'pytest-asyncio', 'tomli-w']\n"
        "setup_requires = []\n"
        "setup_requires.extend(tests_require)\n"
        "extras_require = {'tests': tests_require}\n"
        "setup(name='x', extras_require=extras_require, tests_require=tests_require)\n"
    )})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest>=7", "pytest-asyncio", "tomli-w"])



def test_setup_py_extras_with_a_computed_requirement_keep_their_literal_ones(tmp_path: Path) -> None:
    """sqlglot: one f-string requirement (`f"sqlglotc=={version}"`) made the whole extras_require
    unreadable, and its tests' duckdb, pandas and pytz were never installed."""
    write(tmp_path, {"setup.py": (
        "from setuptools import setup\n"
        "from setuptools_scm import get_version\n"
        "version = get_version()\n"
        "setup(extras_require={\n"
        "    'dev': ['duckdb>=0.6', 'pandas', 'pytz'],\n"
        "    'c': [f'sqlglotc=={version}; python_version >= \"3.10\"'],\n"
        "})\n"
    ), "tests/test_executor.py": "import duckdb\nimport pandas\nimport pytz\n"})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["duckdb>=0.6", "pandas", "pytz"])

# --- 7./8. where pytest's testpaths come from ------------------------------------------------


def test_pytest_ini_testpaths_take_precedence_over_pyproject() -> None:
    assert inspect_project(fixture("pytest_ini")).test_paths == ("it", "unit")


def test_pytest_ini_without_testpaths_still_shadows_pyproject(tmp_path: Path) -> None:
    root = copy_fixture("pytest_ini", tmp_path)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -q\n", encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_one.py").write_text("def test_x(): pass\n")

    # pytest reads only pytest.ini here; pyproject's testpaths = ["tests"] would not apply,
    # the `tests` folder is found by convention instead.
    assert inspect_project(root).test_paths == ("tests",)
    (root / "tests" / "test_one.py").unlink()
    (root / "tests").rmdir()
    assert inspect_project(root).test_paths == (".",)


def test_tox_ini_pytest_section() -> None:
    assert inspect_project(fixture("tox_ini")).test_paths == ("tests/fast", "tests/slow")


def test_native_tool_pytest_table_and_string_testpaths(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\n[tool.pytest]\ntestpaths = "checks"\n'})

    assert inspect_project(tmp_path).test_paths == ("checks",)


def test_pyproject_pytest_config_shadows_tox_ini(tmp_path: Path) -> None:
    root = copy_fixture("tox_ini", tmp_path)
    write(root, {"pyproject.toml": '[project]\nname = "x"\n[tool.pytest.ini_options]\naddopts = "-q"\n'})

    assert inspect_project(root).test_paths == (".",)


# --- 9. Python version ----------------------------------------------------------------------


def test_python_version_file_overrides_requires_python() -> None:
    project = inspect_project(fixture("python_version_file"))

    assert project.python_version == "3.11"
    assert project.requires_python == ">=3.9"


@pytest.mark.parametrize(
    ("requires", "expected"),
    [
        (">=3.8", "3.13"),
        (">=3.10,<3.13", "3.12"),
        ("<3.11", "3.10"),
        ("==3.11.*", "3.11"),
        (">=3.9,<3.10", "3.9"),
        ("~=3.10", "3.13"),
    ],
)
def test_requires_python_picks_newest_allowed_stable(tmp_path: Path, requires: str,
                                                     expected: str) -> None:
    write(tmp_path, {"pyproject.toml": f'[project]\nname = "x"\nrequires-python = "{requires}"\n'})

    project = inspect_project(tmp_path)

    assert project.python_version == expected
    assert project.requires_python == requires


def test_default_python_without_any_constraint(tmp_path: Path) -> None:
    write(tmp_path, {"requirements.txt": "attrs\n"})

    project = inspect_project(tmp_path)

    assert (project.python_version, project.requires_python) == ("3.12", None)


def test_unrecognised_python_version_file_falls_back_to_requires_python(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "x"\nrequires-python = "<3.11"\n',
        ".python-version": "system\n",
    })

    assert inspect_project(tmp_path).python_version == "3.10"


# --- 10. applications -----------------------------------------------------------------------


def test_fastapi_app_in_src_layout() -> None:
    project = inspect_project(fixture("fastapi_app"))

    assert project.app == AppRef("webshop.main", "app", "asgi", "FastAPI")
    assert project.packages == ("webshop",)
    assert project.source_roots == ("src",)


def test_app_override_replaces_detection() -> None:
    project = inspect_project(fixture("fastapi_app"), app_override="webshop.api.routing:api")

    assert project.app == AppRef("webshop.api.routing", "api", "asgi", "configured")


def test_bad_app_override_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"package\.module:attribute"):
        inspect_project(fixture("fastapi_app"), app_override="webshop/main.py")


# --- 11. where tests live -------------------------------------------------------------------


def test_no_tests_folder_and_no_testpaths_means_project_root() -> None:
    project = inspect_project(fixture("no_tests"))

    assert project.test_paths == (".",)
    assert reqs(project.dependencies) == reqs(["attrs"])


def test_test_folder_is_found() -> None:
    project = inspect_project(fixture("test_folder"))

    assert project.test_paths == ("test",)
    assert project.packages == ()


def test_tests_folder_preferred_over_test(tmp_path: Path) -> None:
    root = copy_fixture("test_folder", tmp_path)
    (root / "tests").mkdir()
    (root / "tests" / "test_more.py").write_text("def test_x(): pass\n")

    assert inspect_project(root).test_paths == ("tests",)


def test_a_tests_folder_without_test_modules_is_not_where_the_tests_are(tmp_path: Path) -> None:
    """trio: its tests are src/trio/_tests; its tests/ folder holds helper scripts. pytest, given
    no testpaths, collects the whole tree; the images collected nothing."""
    write(tmp_path, {"pyproject.toml": '[project]\nname = "trio"\n',
                     "src/trio/__init__.py": "", "src/trio/_tests/__init__.py": "",
                     "src/trio/_tests/test_core.py": "def test_x(): pass\n",
                     "tests/_check_aliases.py": "", "tests/cython/run.py": ""})

    assert inspect_project(tmp_path).test_paths == (".",)


# --- 12. broken input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken_requirement_shell", r"requirements\.txt:2: unsafe character"),
        ("broken_requirement_arbitrary", r"requirements\.txt:2: unsafe character"),
        ("broken_requirement_syntax", r"requirements\.txt:2: invalid requirement 'requests>=>2'"),
        ("not_a_project", "not a Python project"),
    ],
)
def test_broken_projects_are_bad_input_naming_the_file(name: str, message: str) -> None:
    with pytest.raises(BadInput, match=message) as raised:
        inspect_project(fixture(name))

    assert raised.value.exit_code == 2


def test_not_a_project_message_names_the_folder() -> None:
    with pytest.raises(BadInput) as raised:
        inspect_project(fixture("not_a_project"))

    assert str(fixture("not_a_project")) in str(raised.value)


# Broken pyproject.toml files are written at test time, not kept as fixture projects: ruff
# reads every pyproject.toml below the repository and stops at an invalid one.


def test_invalid_toml_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project\nname = "broken"\n'})

    with pytest.raises(BadInput, match=r"pyproject\.toml: not valid TOML") as raised:
        inspect_project(tmp_path)

    assert str(tmp_path / "pyproject.toml") in str(raised.value)
    assert "\n" not in str(raised.value)


def test_garbage_requires_python_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": (
        '[project]\nname = "bad-python"\nrequires-python = "three point eleven"\n')})

    with pytest.raises(BadInput, match="'three point eleven' is not a valid") as raised:
        inspect_project(tmp_path)

    assert str(tmp_path / "pyproject.toml") in str(raised.value)


def test_garbage_poetry_python_constraint_is_bad_input(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.poetry]\nname = "x"\n'
                                       '[tool.poetry.dependencies]\npython = "latest"\n'})

    with pytest.raises(BadInput, match=r"pyproject\.toml: requires-python 'latest'"):
        inspect_project(tmp_path)


def test_garbage_setup_cfg_python_requires_names_setup_cfg(tmp_path: Path) -> None:
    write(tmp_path, {"setup.cfg": "[options]\npython_requires = three\n"})

    with pytest.raises(BadInput, match=r"setup\.cfg"):
        inspect_project(tmp_path)


def test_missing_path_is_bad_input() -> None:
    missing = FIXTURES / "does_not_exist"

    with pytest.raises(BadInput, match="no such directory") as raised:
        inspect_project(missing)

    assert str(missing) in str(raised.value)


def test_file_instead_of_folder_is_bad_input() -> None:
    readme = fixture("not_a_project") / "README.md"

    with pytest.raises(BadInput, match="not a directory") as raised:
        inspect_project(readme)

    assert str(readme) in str(raised.value)


def test_empty_requirements_folder_counts_as_a_project(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()

    project = inspect_project(tmp_path)

    assert project.dependencies == ()
    assert project.test_dependencies == ()
    assert project.sources == ()


# --- small helpers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("My_Project", "my-project"), ("a.b..c", "a-b-c"), ("--x--", "x"), ("!!!", "project")],
)
def test_image_safe_name(name: str, expected: str) -> None:
    assert image_safe_name(name) == expected


@pytest.mark.parametrize(
    ("text", "module", "attribute"),
    [
        ("main:app", "main", "app"),
        ("pkg.sub.module:create_app", "pkg.sub.module", "create_app"),
        ("  _pkg.mod:_app  ", "_pkg.mod", "_app"),
    ],
)
def test_parse_app_reference_good(text: str, module: str, attribute: str) -> None:
    assert parse_app_reference(text) == AppRef(module, attribute, "asgi", "configured")


def test_parse_app_reference_keeps_interface() -> None:
    assert parse_app_reference("app:app", "wsgi").interface == "wsgi"


@pytest.mark.parametrize(
    "text",
    ["main", "main:", ":app", "pkg/main.py:app", "pkg.:app", "1pkg:app", "pkg:1app",
     "pkg:app:x", "pkg:app()", "pkg-name:app", "pkg:app\nimport os", ""],
)
def test_parse_app_reference_bad(text: str) -> None:
    with pytest.raises(BadInput, match="is not of the form"):
        parse_app_reference(text)


def test_setup_py_name_is_read(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup(name='Widget-Lib')\n")
    assert inspect_project(tmp_path).name == "Widget-Lib"
    assert inspect_project(tmp_path).image_name == "widget-lib"


def test_setup_py_names_bound_to_literals_and_an_sdist_folder(tmp_path: Path) -> None:
    root = tmp_path / "requests-2.32.3"
    root.mkdir()
    (root / "setup.py").write_text(
        "from setuptools import setup\n"
        "requires = ['idna>=2.5,<4', 'urllib3>=1.21.1,<3']\n"
        "about = {}\n"
        "setup(name=about['__title__'], install_requires=requires)\n")
    project = inspect_project(root)
    assert project.name == "requests"
    assert [str(r) for r in project.dependencies] == ["idna<4,>=2.5", "urllib3<3,>=1.21.1"]
    other = tmp_path / "tool-v2"
    other.mkdir()
    (other / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    assert inspect_project(other).name == "tool-v2"


def test_requirements_naming_the_project_with_extras_bring_the_extras(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='netlib', install_requires=['idna'],\n"
        "      extras_require={'socks': ['PySocks>=1.5.6'], 'other': ['never']})\n")
    (tmp_path / "requirements-dev.txt").write_text("-e .[socks]\npytest\n")
    project = inspect_project(tmp_path)
    assert "PySocks>=1.5.6" in project.test_dependencies and "pytest" in project.test_dependencies
    assert not any("testdock-this-project" in r or r == "never" for r in project.test_dependencies)


# --- tests that import optional dependencies ------------------------------------------------


def test_optional_dependencies_the_tests_import_join_the_test_set(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": (
            '[project]\nname = "demo"\ndependencies = ["numpy"]\n'
            "[project.optional-dependencies]\n"
            'docs = ["sphinx", "pandas==2.0"]\n'
            'optional = ["pandas>=2", "scikit-learn>=1.3", "redis", "PyYAML"]\n'
            'all = ["demo[optional]", "torch"]\n'
            "[dependency-groups]\n"
            'test = ["pytest"]\n'
            'bench = ["asv"]\n'
        ),
        "tests/test_frames.py": "import pandas as pd\nfrom sklearn.linear_model import Ridge\nimport numpy\n",
        "tests/test_cache.py": "try:\n    import redis\nexcept ImportError:\n    redis = None\n",
        "tests/conftest.py": "import yaml\nimport asv\n",
        "tests/test_gpu.py": "def test_gpu():\n    import torch\n",
    })

    project = inspect_project(tmp_path)

    # pandas as the non-docs extra declares it; redis (guarded) and torch (in a test) stay out
    assert reqs(project.test_dependencies) == reqs(
        ["pytest", "pandas>=2", "scikit-learn>=1.3", "PyYAML", "asv"])
    assert project.sources[-1] == ("tests' imports (pandas from extra 'optional', scikit-learn from "
                                   "extra 'optional', PyYAML from extra 'optional', asv from "
                                   "dependency group 'bench')")



def test_a_minimum_versions_groups_pins_and_type_stubs_stay_out_of_the_test_set(tmp_path: Path) -> None:
    """narwhals: its tests import numpy, which only its `extreme-minimum-versions` group names
    (numpy==1.21.4: no wheel for Python 3.11, the build failed), and pandas-stubs counted as a
    provider of `pandas`."""
    write(tmp_path, {
        "pyproject.toml": (
            '[project]\nname = "frames"\n'
            "[project.optional-dependencies]\npandas = [\"pandas>=1.3.4\"]\n"
            "[dependency-groups]\n"
            'tests = ["pytest"]\n'
            'typing = ["pandas-stubs>=2.3", "types-requests"]\n'
            'extreme-minimum-versions = ["numpy==1.21.4", "pyarrow==13.0.0", "polars>=0.20,<0.21"]\n'
        ),
        "tests/test_frames.py": "import numpy as np\nimport pandas as pd\nimport polars\nimport requests\n",
    })

    project = inspect_project(tmp_path)

    assert sorted(map(str, reqs(project.test_dependencies))) == sorted(
        map(str, reqs(["pytest", "pandas>=1.3.4", "numpy", "polars<0.21,>=0.20"])))

def test_tests_importing_only_chosen_dependencies_add_nothing(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.py": ("from setuptools import setup\nsetup(name='demo', install_requires=['numpy'],\n"
                     "      extras_require={'test': ['pytest'], 'plot': ['matplotlib']})\n"),
        "tests/test_a.py": "import numpy\nimport pytest\nimport demo\n",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest"])
    assert not any("tests' imports" in source for source in project.sources)


def test_poetry_optional_dependency_imported_by_tests_is_added(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": (
            '[tool.poetry]\nname = "demo"\n'
            '[tool.poetry.dependencies]\npython = "^3.10"\nhttpx = "^0.27"\n'
            'psycopg2-binary = {version = "^2.9", optional = true}\n'
            '[tool.poetry.group.test.dependencies]\npytest = "^8"\n'
        ),
        "tests/test_db.py": "import psycopg2\n",
    })

    project = inspect_project(tmp_path)

    assert names_of(project) == {"httpx", "pytest", "psycopg2-binary"}


def test_what_the_chosen_set_or_testdock_provides_is_never_added_from_an_extra(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": (
            '[project]\nname = "demo"\ndependencies = ["protobuf", "opencv-python-headless", "netCDF4"]\n'
            "[project.optional-dependencies]\n"
            'gcs = ["google-cloud-storage"]\n'
            'gui = ["opencv-python"]\n'
            'legacy = ["pytest<7", "typing"]\n'
            'test = ["coverage"]\n'
        ),
        "tests/test_a.py": ("from google.protobuf import message\nimport cv2\nimport pytest\n"
                            "import typing\nimport netCDF4\n"),
    })

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["coverage"])


def test_conditional_setup_py_keys_are_not_extras_and_declared_case_is_kept(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.py": ("from setuptools import setup\nsetup(name='demo', install_requires=['six'],\n"
                     "      extras_require={':python_version<\"3\"': ['futures'],\n"
                     "                      'io': ['netCDF4>=1.6', 'ruamel.yaml']})\n"),
        "tests/test_io.py": "import netCDF4\nfrom ruamel.yaml import YAML\nimport concurrent.futures\n",
        "tests/test_futures.py": "import futures\n",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["netCDF4>=1.6", "ruamel.yaml"])


def test_groups_the_tests_do_not_use_may_hold_what_testdock_refuses(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": (
            '[project]\nname = "demo"\n'
            "[dependency-groups]\n"
            'test = ["pytest"]\n'
            'local = ["mylib @ file:///home/me/mylib"]\n'
            'all = [{include-group = "nosuch"}]\n'
        ),
        "tests/test_a.py": "import mylib\n",
    })

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest"])


def test_a_tests_folder_requirements_file_adds_to_the_dev_set_and_may_be_test_data(tmp_path: Path) -> None:
    write(tmp_path, {
        "requirements.txt": "attrs\n",
        "requirements-dev.txt": "pytest\npytest-mock\nresponses\n",
        "tests/requirements.txt": "pytest-timeout\n",
        "tests/test_a.py": "",
    })
    broken = tmp_path / "broken"
    write(broken, {"requirements.txt": "attrs\n", "tests/requirements.txt": "this is not ==\n"})

    assert names_of(inspect_project(tmp_path)) == {
        "attrs", "pytest", "pytest-mock", "responses", "pytest-timeout"}
    assert names_of(inspect_project(broken)) == {"attrs"}


def test_an_extra_named_after_its_module_and_its_purpose_joins_the_test_set(tmp_path: Path) -> None:
    # pyparsing: `diagrams = ["railroad-diagrams", "jinja2"]`, and its tests `import railroad`
    write(tmp_path, {
        "pyproject.toml": ('[project]\nname = "demo"\n[project.optional-dependencies]\n'
                           'diagrams = ["railroad-diagrams", "jinja2"]\nplots = ["cloud-charts"]\n'),
        "tests/test_diagram.py": "import railroad\n\ndef test_x():\n    pass\n",
    })
    project = inspect_project(tmp_path)
    assert reqs(project.test_dependencies) == reqs(["railroad-diagrams"])


def test_a_group_named_after_the_project_itself_is_not_what_its_tests_import(tmp_path: Path) -> None:
    """pydantic's docs group holds `pydantic-docs` (from a git source): its first word is the
    project's own package, which every test imports; it joined the test set, and no index has it."""
    write(tmp_path, {
        "pyproject.toml": ('[project]\nname = "pydantic"\n[dependency-groups]\ndev = ["pytest"]\n'
                           'docs = ["pydantic-docs", "mkdocs"]\n'
                           '[tool.uv.sources]\npydantic-docs = { git = "https://example.invalid/docs" }\n'),
        "pydantic/__init__.py": "",
        "tests/test_model.py": "import pydantic\n\ndef test_x():\n    pass\n",
    })
    assert "pydantic-docs" not in names_of(inspect_project(tmp_path))


def test_an_extra_the_projects_own_module_imports_joins_when_the_tests_import_that_module(
        tmp_path: Path) -> None:
    # pyparsing: its tests import `pyparsing.diagram`, whose module imports jinja2 (extra `diagrams`)
    write(tmp_path, {
        "pyproject.toml": ('[project]\nname = "demo"\n[project.optional-dependencies]\n'
                           'diagrams = ["jinja2"]\nserver = ["uvicorn"]\nextra = ["redis"]\n'),
        "src/demo/__init__.py": "",
        "src/demo/diagram/__init__.py": "import jinja2\n",
        "src/demo/serve.py": "def main():\n    import uvicorn\n",  # only when called
        "src/demo/cache.py": "try:\n    import redis\nexcept ImportError:\n    redis = None\n",
        "tests/test_diagram.py": "from demo.diagram import render\nfrom demo import serve, cache\n",
    })
    project = inspect_project(tmp_path)
    assert reqs(project.test_dependencies) == reqs(["jinja2"])
    assert "jinja2 from extra 'diagrams'" in project.sources[-1]


@pytest.mark.parametrize(("files", "compiles"), [
    ({"setup.py": "from setuptools import Extension, setup\nsetup(ext_modules=[Extension('m', ['m.c'])])\n"},
     True),
    ({"pyproject.toml": '[build-system]\nrequires = ["setuptools", "Cython>=3"]\n'}, True),
    ({"pyproject.toml": '[build-system]\nrequires = ["meson-python"]\nbuild-backend = "mesonpy"\n'}, True),
    ({"pyproject.toml": '[project]\nname = "fast"\n', "src/fast/__init__.py": "",
      "src/fast/_speedups.pyx": ""}, True),
    ({"pyproject.toml": '[project]\nname = "fast"\n', "src/fast/core.py": "",
      "src/fast/tests/fixture.c": ""}, False),  # a test's data, not the project's code
    ({"pyproject.toml": '[build-system]\nrequires = ["hatchling"]\n', "src/fast/core.py": ""}, False),
])
def test_a_project_building_extension_modules_is_recognised(tmp_path: Path, files: dict[str, str],
                                                            compiles: bool) -> None:
    write(tmp_path, {**files, "tests/test_a.py": ""})
    assert inspect_project(tmp_path).builds_extensions is compiles


def test_hatch_environments_give_the_test_set(tmp_path: Path) -> None:
    # hatch's own `hatch-test` env is the test group; envs inherit from `default` (unless their
    # template says otherwise); features are the project's extras; context formatting is skipped
    write(tmp_path, {"pyproject.toml": """\
[project]
name = "hatched"
dependencies = ["attrs"]
[project.optional-dependencies]
yaml = ["pyyaml"]
[tool.hatch.envs.default]
dependencies = ["coverage[toml]", "{root:uri}/vendor/thing"]
[tool.hatch.envs.hatch-test]
extra-dependencies = ["pytest-asyncio"]
features = ["yaml"]
[tool.hatch.envs.lint]
template = "lint"
dependencies = ["ruff"]
""", "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["coverage[toml]", "pytest-asyncio", "pyyaml"])
    assert "pyproject.toml [tool.hatch.envs]" in project.sources
    assert ("ruff", "Hatch environment 'lint'") in project.optional_requirements


def test_local_package_folders_are_kept_apart_from_the_requirements(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[project]\nname = "pickler"\n',
                     "dev-requirements.txt": "pytest\n./tests/testpkg\n-e ./tests/testpkg\n",
                     "tests/testpkg/setup.py": "", "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert project.local_packages == ("tests/testpkg",)
    assert reqs(project.test_dependencies) == reqs(["pytest"])


def test_pdm_dev_groups_give_the_test_set(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": """\
[project]
name = "pdmed"
[tool.pdm.dev-dependencies]
test = ["pytest>=8", "-e file:///${PROJECT_ROOT}/plugins/x#egg=x", "pytest-mock"]
lint = ["ruff"]
""", "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest>=8", "pytest-mock"])
    assert "ruff" not in names_of(project)


def test_tox_deps_naming_another_sections_deps_are_followed(tmp_path: Path) -> None:
    """scrapy: `[testenv] deps = {[test-requirements]deps}`; pexpect, pyftpdlib, pytest-twisted and
    sybil were never installed, and 264 tests errored."""
    write(tmp_path, {
        "pyproject.toml": '[project]\nname = "scraper"\n',
        "tox.ini": """\
[test-requirements]
deps =
    pexpect >= 4.8.0
    sybil >= 1.3.0  # a comment
[testenv]
deps =
    {[test-requirements]deps}
    pytest >= 8.4.1
""", "tests/test_shell.py": "import pexpect\nimport sybil\n"})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pexpect>=4.8.0", "sybil>=1.3.0", "pytest>=8.4.1"])


def test_what_tox_installs_in_every_environment_is_part_of_the_test_set(tmp_path: Path) -> None:
    write(tmp_path, {
        "setup.py": ("from setuptools import setup\n"
                     "setup(name='toxed', extras_require={'yaml': ['pyyaml']})\n"),
        "requirements-test.txt": "hypothesis\n",
        "tox.ini": """\
[tox]
envlist = py311, lint
[testenv]
deps =
    pytest>=7
    py38: mock
    -rrequirements-test.txt
    -r requirements/gone.txt
    {[base]deps}
    flake8
extras = yaml
[testenv:lint]
deps = ruff
""", "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest>=7", "hypothesis", "pyyaml"])
    assert "tox.ini [testenv]" in project.sources


@pytest.mark.parametrize("files", [
    {"pyproject.toml": '[project]\nname = "bars"\n\n[tool.tox]\nlegacy_tox_ini = """\n'
                       '[core]\ndeps =\n    pytest-asyncio\n    git+https://github.com/someone/nbval\n'
                       '[testenv]\ndeps =\n    {[core]deps}\n    numpy\n    tf: tensorflow\n"""\n'},
    {"pyproject.toml": '[project]\nname = "bars"\n', "setup.cfg": "[tox:tox]\nenvlist = py3\n\n"
     "[testenv]\ndeps =\n    pytest-asyncio\n    numpy\n"},
    {"pyproject.toml": '[project]\nname = "bars"\n\n[tool.tox.env_run_base]\n'
                       'deps = ["pytest-asyncio", "numpy", {replace = "ref", of = ["x"]}]\n'},
    {"pyproject.toml": '[project]\nname = "bars"\n',
     "tox.toml": '[env_run_base]\ndeps = ["pytest-asyncio", "numpy"]\n'},
], ids=["legacy_tox_ini", "setup.cfg", "native toml", "tox.toml"])
def test_tox_configurations_outside_tox_ini_are_read(tmp_path: Path, files: dict[str, str]) -> None:
    """tqdm keeps its tox configuration in pyproject.toml's `legacy_tox_ini`; its addopts ask for
    `--asyncio-mode=strict`, and pytest stopped at once without pytest-asyncio."""
    write(tmp_path, {**files, "tests/test_a.py": ""})

    project = inspect_project(tmp_path)

    assert reqs(project.test_dependencies) == reqs(["pytest-asyncio", "numpy"])
    assert any("tox" in source or "setup.cfg" in source for source in project.sources)


def test_setup_py_requirements_read_from_a_file_beside_literal_ones_still_are(tmp_path: Path) -> None:
    write(tmp_path, {"setup.py": (
        "from setuptools import setup\n"
        "def reqs(name):\n    return open(name).read().splitlines()\n"
        "setup(name='x', install_requires=['numpy', *reqs('requirements.txt')])\n"
    ), "requirements.txt": "attrs>=22\n"})

    project = inspect_project(tmp_path)

    assert "attrs>=22" in {str(requirement) for requirement in project.dependencies}
