"""The collection image against the execution image on real projects with heavy dependencies,
from PyPI: the same node ids, without the projects' compiled dependencies.
- SQLAlchemy-Utils 0.43.0: SQLAlchemy, psycopg2 built from source, time-zone data in parametrize
  lists;
- pingouin 0.7.0: numpy, pandas, scipy, scikit-learn, statsmodels, matplotlib and seaborn, with
  test modules that compute with them at import time (`x, y = np.random.multivariate_normal(...).T`,
  `(data["sex"] == "male").astype(int)`, `a.astype(float)[1, 2] = np.nan`).
And what `collect --compare` says when the stubs cannot reproduce a parametrize list."""

from __future__ import annotations

import shutil
import tarfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.conftest import EXAMPLE
from tests.integration.conftest import _download_sdist, _initialised, run_cli, unique_name

pytestmark = pytest.mark.integration

SETTINGS = """
[tool.testdock]
project = "fidelity-sqlalchemy-utils"
system_packages = ["libpq5", "libodbc2"]
build_packages = ["gcc", "libpq-dev", "unixodbc-dev", "python3-dev"]
"""


def _counts(output: str) -> list[int]:
    lines = output.splitlines()
    return [int(line.split()[1]) for line in lines if line.startswith(("collection", "execution"))]


def _identical(root: Path) -> tuple[str, list[int]]:
    """`collect --compare` on a project built under the tag "fidelity", which must find identical
    node ids: (its output, the two images' counts)."""
    result = run_cli("collect", str(root), "--compare", "--tag", "fidelity")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "identical node ids" in result.stdout
    return result.stdout, _counts(result.stdout)


def _built(root: Path, settings: str, base_image: str, tag: str) -> Path:
    """`root` with `settings` appended to its pyproject.toml, initialised, and its collection and
    execution images built under `tag`."""
    pyproject = root / "pyproject.toml"
    pyproject.write_text((pyproject.read_text() if pyproject.is_file() else "") + settings)
    _initialised(root, base_image)
    result = run_cli("build", str(root), "--phase", "collection", "--phase", "execution", "--tag", tag)
    assert result.returncode == 0, result.stderr[-4000:]
    return root


def _from_pypi(name: str, version: str, folder: Path) -> Path:
    with tarfile.open(_download_sdist(name, version)) as archive:
        archive.extractall(folder, filter="data")
    return next(path for path in folder.iterdir() if path.is_dir())


@pytest.fixture(scope="module")
def sqlalchemy_utils(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Path]:
    root = _from_pypi("sqlalchemy-utils", "0.43.0", tmp_path_factory.mktemp("sqlalchemy-utils"))
    yield _built(root, SETTINGS, base_image, "fidelity")
    shutil.rmtree(root, ignore_errors=True)


def test_collection_image_finds_the_same_node_ids(sqlalchemy_utils: Path,
                                                  docker_client: docker.DockerClient) -> None:
    output, counts = _identical(sqlalchemy_utils)
    assert counts[0] == counts[1] > 2500  # 1,200 of them parametrized from time-zone data
    assert "stubbed: psycopg2, sqlalchemy" in output  # compiled: not installed
    assert "predicted difference" not in output
    # the time-zone data came from real, light packages; SQLAlchemy (compiled) did not
    script = "import importlib.util as u; print(bool(u.find_spec('pytz')), bool(u.find_spec('sqlalchemy')))"
    probe = docker_client.containers.run("fidelity-sqlalchemy-utils-collection:fidelity",
                                         ["python", "-c", script], remove=True, network_mode="host")
    assert probe.decode().split() == ["True", "False"]


@pytest.fixture(scope="module")
def pingouin(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Path]:
    root = _from_pypi("pingouin", "0.7.0", tmp_path_factory.mktemp("pingouin"))
    yield _built(root, '\n[tool.testdock]\nproject = "fidelity-pingouin"\n', base_image, "fidelity")
    shutil.rmtree(root, ignore_errors=True)


def test_scientific_test_modules_collect_as_in_the_real_run(pingouin: Path) -> None:
    output, counts = _identical(pingouin)
    assert counts[0] == counts[1] > 100
    stubbed = next(line for line in output.splitlines() if "stubbed:" in line)
    names = set(stubbed.split(":")[1].replace(",", " ").split())
    assert {"numpy", "pandas", "scipy", "sklearn", "statsmodels"} <= names
    assert "collection error" not in output


@pytest.fixture(scope="module")
def parametrized_from_a_dependency(tmp_path_factory: pytest.TempPathFactory,
                                   base_image: str) -> Iterator[Path]:
    copy = tmp_path_factory.mktemp("hint") / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache",
                                                                 ".benchmarks"))
    (copy / "tests" / "test_sql_types.py").write_text(textwrap.dedent("""
        import pytest
        import sqlalchemy

        try:
            import geopandas  # missing in the real run too: no cause of a difference
        except ImportError:
            geopandas = None

        # computed from the library when the module is imported: a stand-in has no such names
        KINDS = sorted(name for name in dir(sqlalchemy.types) if name.isupper())[:3]


        @pytest.mark.parametrize("kind", KINDS)
        def test_kind(kind):
            assert kind
    """))
    # an id made of a random value: it changes from one collection to the next, in either image
    (copy / "tests" / "test_tokens.py").write_text(textwrap.dedent("""
        import uuid

        import pytest


        @pytest.mark.parametrize("token", [uuid.uuid4().hex])
        def test_token(token):
            assert token
    """))
    # coverage on by default, with an XML report into the working directory, as many projects have
    # it: collection turns it off and the real run redirects it to the results the host sees
    pyproject = copy / "pyproject.toml"
    # and warning filters naming a stubbed dependency's category and coverage's, which pytest
    # resolves before any plugin is loaded: a failure to import one is an error here
    pyproject.write_text(pyproject.read_text()
                         .replace('"pytest-benchmark"]', '"pytest-benchmark", "pytest-cov", "pytest-xdist"]')
                         # and workers asked for in addopts (yarl's): collecting turns them off
                         .replace('addopts = "--strict-markers"',
                                  'addopts = "--strict-markers --numprocesses=auto '
                                  '--cov=shop --cov-report=xml"')
                         .replace('filterwarnings = [', 'filterwarnings = ['
                                  '\n    "error::pytest.PytestConfigWarning",'
                                  '\n    "ignore::sqlalchemy.exc.SAWarning",'
                                  '\n    "ignore::coverage.exceptions.CoverageWarning",'))
    yield _built(copy, "", base_image, "hint")
    shutil.rmtree(copy, ignore_errors=True)


def test_differences_come_with_what_to_install(parametrized_from_a_dependency: Path) -> None:
    result = run_cli("collect", str(parametrized_from_a_dependency), "--compare", "--tag", "hint")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    assert "only in the execution image:  tests/test_sql_types.py::test_kind[" in result.stdout
    assert "test_tokens" not in "".join(line for line in result.stdout.splitlines() if "only in" in line)
    assert "1 test(s) take ids that change from one collection to the next" in result.stdout
    assert "tests/test_tokens.py::test_token" in result.stdout
    assert [line.split("exit ")[1].split()[0] for line in result.stdout.splitlines()
            if line.startswith(("collection ", "execution "))] == ["0", "0"]
    hints = [line for line in result.stdout.splitlines() if line.startswith("hint: ")]
    assert len(hints) == 2, result.stdout[-3000:]
    # the distribution's name as the execution image has it installed
    assert "SQLAlchemy (1 file)" in hints[0] and "fastapi" not in hints[0] and "geopandas" not in hints[0]
    assert hints[1].endswith('[tool.testdock.collection] install = ["SQLAlchemy"]')


def test_the_projects_coverage_report_goes_to_the_results(parametrized_from_a_dependency: Path) -> None:
    project = parametrized_from_a_dependency
    # test_tokens.py's ids differ from worker to worker: plain pytest-xdist would stop the run
    result = run_cli("run", "execution", str(project), "--tag", "hint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Different tests were collected" not in result.stdout
    assert (project / "test-results" / "coverage.xml").is_file()  # not /app/coverage.xml, in the container


SAMPLE_PACKAGE = """
import tomli_w


def sample_document(data):
    text = tomli_w.dumps(data)
    if not isinstance(text, str):
        raise TypeError(f"expected TOML text, received {text!r}")
    return text
"""

SAMPLE_TESTS = """
from samplepkg import sample_document

SAMPLE = sample_document({"name": "x"})  # built when the module is imported


def test_sample():
    assert 'name = "x"' in SAMPLE
"""


def test_an_error_only_the_stand_ins_cause_does_not_fail_the_collection_a_syntax_error_does(
        tmp_path: Path, base_image: str) -> None:
    root = tmp_path / "samplepkg"
    (root / "src" / "samplepkg").mkdir(parents=True)
    (root / "src" / "samplepkg" / "__init__.py").write_text(SAMPLE_PACKAGE)
    (root / "tests").mkdir()
    (root / "tests" / "test_sample.py").write_text(SAMPLE_TESTS)
    (root / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    # parametrized from the phase's environment, which `collect` must give as `run` does
    (root / "tests" / "test_env.py").write_text(
        "import os\n\nimport pytest\n\n\n"
        "@pytest.mark.parametrize('region', os.environ['REGIONS'].split(','))\n"
        "def test_region(region):\n    assert region\n")
    # arrow's sdist ships the JUnit file of its last run, which the images' user cannot overwrite
    (root / "junit.xml").write_text("<testsuites/>\n")
    name = unique_name("samplepkg", tmp_path)
    (root / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "samplepkg"\nversion = "1.0"\ndependencies = ["tomli-w"]\n'
        '[project.optional-dependencies]\ntest = ["pytest"]\n'
        # arrow's: a JUnit file in /app
        '[tool.pytest.ini_options]\naddopts = "--junitxml=junit.xml"\n'
        f'[tool.testdock]\nproject = "{name}"\n'
        # a small pure wheel would be installed for real: stubbed here, as a heavy one would be
        '[tool.testdock.collection]\nstub = ["tomli_w"]\n'
        '[tool.testdock.phases.collection]\nenvironment = { REGIONS = "eu,us" }\n'
        '[tool.testdock.phases.execution]\nenvironment = { REGIONS = "eu,us" }\n')
    _built(root, "", base_image, "verdict")
    result = run_cli("collect", str(root), "--compare", "--tag", "verdict")
    output = result.stdout + result.stderr
    assert "1 file(s) not verifiable with stand-ins" in output, output[-3000:]
    assert "tests/test_sample.py: not verifiable with stand-ins for tomli_w: TypeError" in output
    assert "collection error" not in output and "identical node ids" in output
    collection_line = next(line for line in output.splitlines() if line.startswith("collection "))
    assert "exit 0" in collection_line and "     3 tests" in collection_line
    assert ("node ids found: 3 of the real run's 4 (75.0%); 1 in files not verifiable with stand-ins, "
            "left to the real run") in output
    # the real collection left its ids: the unchanged file is listed with them the next time
    again = run_cli("collect", str(root), "--compare", "--tag", "verdict")
    assert "node ids found: 4 of the real run's 4 (100.0%)" in again.stdout, again.stdout[-3000:]
    assert "1 unchanged file(s) listed with the ids of the last real collection" in again.stdout
    assert again.returncode == 0 and "identical node ids" in again.stdout
    run = run_cli("run", "collection", str(root), "--tag", "verdict", "--no-monitor")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    # a real error still fails the stage
    (root / "tests" / "test_broken.py").write_text("def test_(:\n    pass\n")
    # (the execution image's build precompiles the tests: a syntax error fails it there already)
    rebuilt = run_cli("build", str(root), "--phase", "collection", "--tag", "verdict")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    broken = run_cli("run", "collection", str(root), "--tag", "verdict", "--no-monitor")
    assert broken.returncode != 0 and "SyntaxError" in broken.stdout, broken.stdout[-3000:]
    # a module no declared dependency provides: the real run fails on it, and the advice says so
    (root / "tests" / "test_broken.py").write_text(
        "import not_declared_anywhere\n\n\ndef test_b():\n    pass\n")
    _built(root, "", base_image, "verdict")
    compared = run_cli("collect", str(root), "--compare", "--tag", "verdict")
    output = compared.stdout + compared.stderr
    assert compared.returncode == 1
    assert "the execution image (the real run) itself fails to collect 1 file(s)" in output, output[-3000:]
    assert ("undeclared: tests/test_broken.py imports 'not_declared_anywhere', which no declared "
            "dependency provides") in output
    assert "No module named 'not_declared_anywhere'" in output  # the real run's own error
    assert "hint:" not in output  # no collection-image install fixes it
    # ... and the collection stage fails on it by itself, as the real run will (not stubbed)
    stage = run_cli("run", "collection", str(root), "--tag", "verdict", "--no-monitor")
    assert stage.returncode != 0, stage.stdout[-3000:]
    assert ("No module named 'not_declared_anywhere': no declared dependency provides it"
            in stage.stdout), stage.stdout[-3000:]
