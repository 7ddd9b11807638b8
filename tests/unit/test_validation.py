"""Every value that reaches a Dockerfile, a label, a tag or the engine is checked whole, and the
error names the setting or flag the user gave."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from testdock.cli import main
from testdock.errors import BadInput
from testdock.project.settings import settings_from_table
from testdock.validation import check_cpus, check_registry, check_tag


@pytest.mark.parametrize(("table", "named"), [
    ({"project": "shop\n"}, "[tool.testdock] project"),
    ({"base_image": "python:3.12-slim\n"}, "[tool.testdock] base_image"),
    ({"phases": {"execution": {"environment": {"NAME\n": "x"}}}},
     "[tool.testdock.phases.execution] environment"),
    ({"backend": {"services": {"db": {"image": "postgres:15\n"}}}},
     "[tool.testdock.backend.services.db] image"),
    ({"build": {"registry": "127.0.0.1:5000/team\n"}}, "[tool.testdock.build] registry"),
    ({"phases": {"execution": {"memory": "0"}}}, "[tool.testdock.phases.execution] memory"),
    ({"phases": {"execution": {"memory": "1k"}}}, "[tool.testdock.phases.execution] memory"),
])
def test_a_trailing_newline_or_an_impossible_value_is_refused_naming_the_setting(
        table: dict[str, object], named: str) -> None:
    with pytest.raises(BadInput) as refused:
        settings_from_table(table)
    assert named in str(refused.value), str(refused.value)


@pytest.mark.parametrize("tag", ["bad tag", "v1\n", "-v1", ".v1", "a" * 129, "v1:2", ""])
def test_bad_tags_are_refused(tag: str) -> None:
    with pytest.raises(BadInput, match=r"--tag .* is not a Docker tag"):
        check_tag(tag)


def test_good_values_pass() -> None:
    assert check_tag("v1.2.0_rc-1") == "v1.2.0_rc-1"
    assert check_registry("127.0.0.1:5000/team") == "127.0.0.1:5000/team"
    assert check_cpus(1.5, 2, "cpus") == 1.5
    with pytest.raises(BadInput, match=r"cpus = 1e\+09 is more CPUs than the Docker engine has \(2\)"):
        check_cpus(1e9, 2, "cpus")
    with pytest.raises(BadInput, match="HOST"):
        check_registry("127.0.0.1:5000/team\n")


@pytest.mark.parametrize("args", [
    ["build", "{project}", "--tag", "bad tag"],
    ["build", "{project}", "--registry", "reg\n"],
    ["run", "execution", "{project}", "--tag", "bad tag"],
    ["collect", "{project}", "--tag", "bad tag"],
    ["k8s", "job", "{project}", "--tag", "bad tag"],
])
def test_the_cli_refuses_a_bad_tag_before_anything_is_built_or_written(tmp_path: Path,
                                                                      args: list[str]) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1"\n')
    (project / "docker").mkdir()
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    result = CliRunner().invoke(main, [arg.replace("{project}", str(project)) for arg in args])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.startswith("testdock: error: --")
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before
