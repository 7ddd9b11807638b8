"""`testdock init`: what it writes, and what it refuses to touch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import tomlkit

from testdock.engine.dockerignore import Matcher
from testdock.errors import BadInput
from testdock.images.initialize import Action, InitOptions, apply, diff, plan
from testdock.images.pluginwheel import legacy_files
from testdock.images.stamps import Ownership, ownership, stamp
from tests.conftest import EXAMPLE

GENERATED = [
    "docker/pytest.collection.Dockerfile", "docker/pytest.execution.Dockerfile",
    "docker/pytest.stress.Dockerfile", "docker/backend.test.Dockerfile",
    "docker/collection_requirements.txt", "docker/execution_requirements.txt",
    "docker/stress_requirements.txt", "docker/test_requirements.txt", "docker/healthcheck.py",
    "docker/collection_light_requirements.txt", "docker/constraints.txt",
    "docker/docker-bake.hcl",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The example without its [tool.testdock] tables: a project init has never seen."""
    copy = tmp_path / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text[:text.index("# `testdock run backend`")].rstrip("\n") + "\n")
    return copy


def test_init_keeps_existing_testdock_tables(tmp_path: Path) -> None:
    copy = tmp_path / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    before = (copy / "pyproject.toml").read_text()
    written = _init(copy)
    assert "docker/backend.test.Dockerfile" in written
    assert (copy / "pyproject.toml").read_text() == before


def _init(root: Path, force: bool = False, **options: str) -> list[str]:
    _, planned, _ = plan(root, InitOptions(force=force, **options))
    return [item.path for item in apply(root, planned)]


def test_stamp_round_trip() -> None:
    text = stamp("FROM x\n", "0.1.0")
    assert ownership(text) is Ownership.OURS
    assert ownership(text + "RUN edit\n") is Ownership.EDITED
    assert ownership("FROM x\n") is Ownership.FOREIGN
    assert ownership(None) is Ownership.MISSING


def test_init_writes_everything_once(project: Path) -> None:
    written = _init(project)
    assert set(GENERATED) | {".dockerignore", "pyproject.toml"} == set(written)
    for relative in GENERATED:
        assert ownership((project / relative).read_text()) is Ownership.OURS
    assert _init(project) == []  # a second run changes nothing


def test_pyproject_gets_a_table_and_keeps_everything_else(project: Path) -> None:
    before = (project / "pyproject.toml").read_text()
    _init(project, base_image="local/python:3.11")
    after = (project / "pyproject.toml").read_text()
    assert after.startswith(before.rstrip("\n"))  # nothing of the user's text moved or changed
    table = tomlkit.parse(after)["tool"]["testdock"]
    assert table["project"] == "shop"
    assert table["base_image"] == "local/python:3.11"
    assert table["backend"]["app"] == "shop.main:app"
    assert "ARG BASE_IMAGE=local/python:3.11" in (project / "docker/pytest.execution.Dockerfile").read_text()


def test_an_edited_file_is_kept_unless_forced(project: Path) -> None:
    _init(project)
    dockerfile = project / "docker/pytest.execution.Dockerfile"
    edited = dockerfile.read_text() + "RUN echo mine\n"
    dockerfile.write_text(edited)
    _, planned, warnings = plan(project, InitOptions(base_image="third/python:3.12"))
    assert {item.path: item.action for item in planned}[
        "docker/pytest.execution.Dockerfile"] is Action.KEEP
    assert any("kept docker/pytest.execution.Dockerfile" in w for w in warnings)
    written = [item.path for item in apply(project, planned)]
    assert "docker/pytest.execution.Dockerfile" not in written
    assert dockerfile.read_text() == edited
    # the other files follow the new setting
    assert "third/python" in (project / "docker/pytest.collection.Dockerfile").read_text()
    _init(project, force=True, base_image="third/python:3.12")
    assert "RUN echo mine" not in dockerfile.read_text()


def test_a_foreign_file_is_never_overwritten(project: Path) -> None:
    (project / "docker").mkdir()
    mine = project / "docker" / "backend.test.Dockerfile"
    mine.write_text("FROM my/own\n")
    written = _init(project)
    assert mine.read_text() == "FROM my/own\n"
    assert "docker/backend.test.Dockerfile" not in written
    assert (project / "docker" / "pytest.execution.Dockerfile").exists()


def test_a_file_in_the_way_of_a_folder_is_bad_input(project: Path) -> None:
    (project / "docker").write_text("not a folder")
    with pytest.raises(BadInput, match="is a file, but testdock writes"):
        _init(project)
    assert not (project / ".dockerignore").exists()


@pytest.mark.parametrize("text", ["tool = 3\n", "[tool]\ntestdock = 3\n"])
def test_a_tool_table_of_the_wrong_type_is_bad_input(project: Path, text: str) -> None:
    (project / "pyproject.toml").write_text(text + (project / "pyproject.toml").read_text()
                                            .split("[build-system]", 1)[0])
    with pytest.raises(BadInput, match=r"must be a table"):
        _init(project)


def test_diff_shows_changes_and_writes_nothing(project: Path) -> None:
    before = sorted(p.name for p in project.rglob("*"))
    _, planned, _ = plan(project, InitOptions())
    text = diff(planned)
    assert "+++ b/docker/pytest.execution.Dockerfile" in text
    assert "+[tool.testdock]" in text
    assert sorted(p.name for p in project.rglob("*")) == before


def test_dockerignore_is_merged_with_the_users(project: Path) -> None:
    (project / ".dockerignore").write_text("# mine\ndata/\n.git\n!.env.example\n")
    _init(project)
    text = (project / ".dockerignore").read_text()
    # testdock's block comes first, so the user's lines (and re-includes) keep the last word
    assert text.endswith("# mine\ndata/\n.git\n!.env.example\n")
    block = text.split("# <<< testdock", 1)[0]
    assert ".git" not in block.splitlines()  # already excluded by the user
    for pattern in ("**/.env", ".venv", "**/__pycache__", "**/*.pem"):
        assert pattern in block
    assert "!docker" not in text
    _init(project)
    assert (project / ".dockerignore").read_text() == text


def test_an_allow_list_dockerignore_gets_what_the_images_need(project: Path) -> None:
    (project / ".dockerignore").write_text("*\n!src\n!tests\n")
    _init(project)
    text = (project / ".dockerignore").read_text()
    assert text.index("*\n!src") < text.index("!docker")
    assert "!pyproject.toml" in text.split("!src", 1)[1]


def test_what_the_projects_own_dockerignore_leaves_out_of_the_tests_is_reincluded_keys_still_out(
        project: Path) -> None:
    """pygments ships a .dockerignore for its docs image: `tests` and `.*` (its .coveragerc) out."""
    (project / ".coveragerc").write_text("[run]\nbranch = true\n")
    (project / "tests" / ".env").write_text("SECRET=1\n")
    (project / "tests" / "server.pem").write_text("fixture\n")
    (project / ".dockerignore").write_text("doc\ntests\n.*\n")
    _, planned, warnings = plan(project, InitOptions())
    assert any("leave out tests, .coveragerc" in warning for warning in warnings)
    apply(project, planned)
    text = (project / ".dockerignore").read_text()
    assert text.index("doc\ntests\n.*") < text.index("\n!tests\n") < text.index("\n!.coveragerc\n")
    matcher = Matcher([line for line in text.splitlines() if line and not line.startswith("#")])
    assert not matcher.matches("tests/test_api.py") and not matcher.matches(".coveragerc")
    assert matcher.matches("tests/.env") and not matcher.matches("tests/server.pem")  # a TLS fixture
    assert matcher.matches("doc/index.rst")
    _init(project)
    assert (project / ".dockerignore").read_text() == text
    (project / ".dockerignore").write_text(text.replace("doc\ntests\n.*\n", "doc\n"))
    _init(project)
    assert "re-includes" not in (project / ".dockerignore").read_text()  # nothing left out any more


def test_flat_setuptools_layout_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "test_core.py").write_text("")
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mypkg"\nversion = "1"\n')
    _, _, warnings = plan(tmp_path, InitOptions())
    assert any('include = ["mypkg*"]' in w for w in warnings)
    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text() + '[tool.setuptools]\npackages = ["mypkg"]\n')
    _, _, warnings = plan(tmp_path, InitOptions())
    assert warnings == []


def test_a_project_without_test_files_is_warned_about(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "sdist"\nversion = "1"\n')
    (tmp_path / "sdist").mkdir()
    (tmp_path / "sdist" / "latest.py").write_text("")  # a module, not a test

    _, _, warnings = plan(tmp_path, InitOptions())

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "sdist"\nversion = "1"\n'
                                             '[tool.pytest.ini_options]\ntestpaths = ["src/*/tests"]\n')
    tests = tmp_path / "src" / "pkg" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_a.py").write_text("")
    assert not any("no test files" in w for w in plan(tmp_path, InitOptions())[2])  # a glob, expanded
    (tests / "test_a.py").rename(tests / "check_a.py")
    assert any("no test files" in w for w in plan(tmp_path, InitOptions())[2])
    (tmp_path / "pytest.ini").write_text("[pytest]\npython_files = check_*.py\n")
    assert not any("no test files" in w for w in plan(tmp_path, InitOptions())[2])  # its own names

    assert warnings[-1:] == ["no test files in .: the images will collect no tests; set "
                             "[tool.pytest.ini_options] testpaths if they live elsewhere (an "
                             "sdist often ships without its tests)"]


@pytest.mark.parametrize(("setup", "message"), [
    (lambda p: (p / "pyproject.toml").write_text("[project\n"), "not valid TOML"),
    (lambda p: (p / "pyproject.toml").write_text(
        (p / "pyproject.toml").read_text() + "\n[tool.testdock]\nbogus = 1\n"), "unknown key 'bogus'"),
    (lambda p: (p / "pyproject.toml").write_text(
        (p / "pyproject.toml").read_text().replace('"httpx"', '"httpx; $(id)"')), "unsafe character"),
])
def test_bad_input_writes_nothing(project: Path, setup: object, message: str) -> None:
    setup(project)  # type: ignore[operator]
    with pytest.raises(BadInput, match=message):
        _init(project)
    assert not (project / "docker").exists()
    assert not (project / ".dockerignore").exists()


def test_plan_reports_actions(project: Path) -> None:
    _, planned, _ = plan(project, InitOptions())
    assert {item.action for item in planned} == {Action.CREATE, Action.UPDATE}


def test_certificates_under_the_test_paths_reach_the_images(project: Path) -> None:
    _init(project)
    lines = (project / ".dockerignore").read_text().splitlines()
    assert "**/*.pem" in lines and "!tests/**/*.pem" in lines and "!tests/**/*.key" in lines
    assert lines.index("**/*.pem") < lines.index("!tests/**/*.pem")  # the re-include comes after


def test_build_refreshes_the_plugin_copy_an_older_testdock_wrote_all_or_nothing(tmp_path: Path) -> None:
    from testdock import __version__
    from testdock.images.pluginwheel import refresh_legacy_folder as refresh_plugin
    from testdock.images.stamps import stamp

    files = legacy_files()
    stale, missing, current = sorted(files)[:3]
    for relative in (stale, current):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / stale).write_text(stamp("# the plugin of an older testdock\n", "0.0.1"))
    (tmp_path / current).write_text(stamp(files[current], __version__))
    obsolete = tmp_path / "docker/testdock_pytest/records.py"  # the old flat layout's
    obsolete.write_text(stamp("# the memory history\n", "0.1.0"))

    assert refresh_plugin(tmp_path) == ([f for f in sorted(files) if f != current]
                                        + ["docker/testdock_pytest/records.py"], [])
    assert not obsolete.exists()
    assert (tmp_path / stale).read_text() == stamp(files[stale], __version__)
    assert (tmp_path / missing).read_text() == stamp(files[missing], __version__)
    assert refresh_plugin(tmp_path) == ([], [])

    # one edited module: its siblings import it, so none is replaced
    (tmp_path / stale).write_text(stamp("# older\n", "0.0.1") + "# the user's own line\n")
    (tmp_path / missing).write_text(stamp("# older\n", "0.0.1"))
    assert refresh_plugin(tmp_path) == ([], [stale])
    assert (tmp_path / missing).read_text() == stamp("# older\n", "0.0.1")


def test_sphinx_output_an_sdist_ships_stays_out_of_the_images(project: Path) -> None:
    """imbalanced-learn's sdist holds doc/_build (37 MB), whose downloadable example scripts
    pytest collected and failed on, and sphinx-gallery's doc/auto_examples (15 MB of figures);
    a checkout has neither."""
    for folder in ("doc", "docs"):
        (project / folder / "_build" / "html").mkdir(parents=True)
        (project / folder / "_build" / "html" / "plot_example.py").write_text("import missing\n")
        (project / folder / "auto_examples" / "images").mkdir(parents=True)
        (project / folder / "auto_examples" / "images" / "sphx_glr_plot_001.png").write_bytes(b"\x89PNG")
        (project / folder / "conf.py").write_text("project = 'x'\n")
    apply(project, plan(project, InitOptions())[1])
    text = (project / ".dockerignore").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    sent = set(Matcher(lines).walk(project))
    assert {"doc/conf.py", "docs/conf.py"} <= sent
    assert not any("_build" in path or "auto_examples" in path for path in sent)
