"""`testdock ci github|gitlab` and `testdock k8s job`: the generated files pass their platforms'
published schemas (check-jsonschema, kubernetes-validate --strict) and say what they must."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from testdock.cli import main
from testdock.errors import BadInput
from testdock.scale import ci
from tests.conftest import EXAMPLE

TOOLS = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(TOOLS)) or shutil.which(name)
    assert found, f"{name} is a development dependency; install testdock[dev]"
    return found


def check_schema(path: Path, schema: str) -> None:
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema", schema, str(path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """A git repository holding the example project in a sub-folder."""
    shutil.copytree(EXAMPLE, tmp_path / "services" / "shop")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    return tmp_path


@pytest.mark.parametrize("shards", [1, 4])
def test_github_workflow_passes_the_schema_and_has_the_four_stages(tmp_path: Path, shards: int) -> None:
    text = ci.render("github", ci.CiOptions(shards=shards, project="services/shop"))
    path = tmp_path / "testdock.yml"
    path.write_text(text)
    check_schema(path, "vendor.github-workflows")
    workflow: dict[str, Any] = yaml.safe_load(text)
    jobs = workflow["jobs"]
    assert list(jobs) == ["build", "collection", "execution", "history", "backend", "stress"]
    assert jobs["collection"]["needs"] == ["build"] and jobs["execution"]["needs"] == ["collection"]
    assert jobs["execution"]["strategy"]["matrix"]["shard"] == list(range(shards))
    steps = {step.get("name"): step for step in jobs["execution"]["steps"]}
    assert f"--shard ${{{{ matrix.shard }}}}/{shards}" in steps["Execution"]["run"]
    assert steps["Memory history of earlier runs"]["uses"].startswith("actions/cache/restore@")
    assert ".testdock/memory-history.json" in steps["Upload results"]["with"]["path"]
    assert "schedule" in jobs["stress"]["if"] and "workflow_dispatch" in jobs["stress"]["if"]
    stress_steps = [step.get("uses", "") for step in jobs["stress"]["steps"]]
    assert stress_steps.index("actions/cache/restore@v4") < stress_steps.index("actions/cache/save@v4")
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert "--push --cache-from latest" in jobs["build"]["steps"][-2]["run"]
    assert workflow["defaults"]["run"]["working-directory"] == "services/shop"
    merge = next(s for s in jobs["history"]["steps"] if s.get("name") == "Merge the shards' histories")
    assert merge["run"].startswith("testdock history merge --ignore-missing services/shop/.testdock/")
    # the real collection's node ids go from the execution shards to the next collection stage
    carried = "services/shop/.testdock/memory-history.json\nservices/shop/.testdock/collected-ids.json"
    assert ".testdock/collected-ids.json" in steps["Upload results"]["with"]["path"]
    assert steps["Memory history of earlier runs"]["with"]["path"] == carried
    saved = next(s for s in jobs["history"]["steps"] if s.get("uses", "").startswith("actions/cache/save"))
    assert saved["with"]["path"] == carried
    kept = next(s for s in jobs["history"]["steps"] if s.get("name") == "Keep the real collection's node ids")
    assert "shards/*/.testdock/collected-ids.json" in kept["run"]
    restored = {s.get("name"): s for s in jobs["collection"]["steps"]}["Node ids of the last real collection"]
    assert restored["with"]["path"] == carried and restored["with"]["key"] == saved["with"]["key"]
    names = [s.get("name") for s in jobs["collection"]["steps"]]
    assert names.index("Node ids of the last real collection") < names.index("collection")


def test_gitlab_pipeline_passes_the_schema_and_shards_with_parallel(tmp_path: Path) -> None:
    text = ci.render("gitlab", ci.CiOptions(shards=3))
    path = tmp_path / ".gitlab-ci.yml"
    path.write_text(text)
    check_schema(path, "vendor.gitlab-ci")
    pipeline: dict[str, Any] = yaml.safe_load(text)
    assert pipeline["stages"] == ["build", "collection", "execution", "backend", "stress"]
    assert pipeline["execution"]["parallel"] == 3
    assert '--shard "$((CI_NODE_INDEX - 1))/$CI_NODE_TOTAL"' in pipeline["execution"]["script"][0]
    assert pipeline["execution"]["cache"]["policy"] == "pull"
    assert pipeline["memory history"]["cache"]["policy"] == "push"
    assert pipeline["stress"]["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "schedule"'
    assert pipeline["collection"]["artifacts"]["reports"]["junit"] == "test-results/junit.xml"
    assert pipeline["backend"]["artifacts"]["reports"]["junit"] == "test-results/backend-junit.xml"
    assert pipeline["stress"]["cache"]["paths"] == [".testdock/benchmarks-baseline.json"]
    # the collection stage reads the real collection's node ids from the history cache
    assert pipeline["collection"]["cache"] == {"key": "testdock-history", "paths": [".testdock/"],
                                               "policy": "pull"}
    assert "cp .testdock/collected-ids.json shard-histories/ids.json || true" in \
        pipeline["execution"]["after_script"]
    assert pipeline["memory history"]["script"] == [
        "testdock history merge --ignore-missing .testdock/memory-history.json shard-histories/*[0-9].json",
        "cp shard-histories/ids.json .testdock/collected-ids.json || true"]


def test_ci_writes_at_the_repository_root_and_keeps_an_edited_file(repository: Path) -> None:
    runner = CliRunner()
    project = repository / "services" / "shop"
    result = runner.invoke(main, ["ci", "github", str(project), "--shards", "2"])
    assert result.exit_code == 0, result.output
    workflow = repository / ".github" / "workflows" / "testdock.yml"
    assert "working-directory: services/shop" in workflow.read_text()
    # unedited: rewritten freely
    assert runner.invoke(main, ["ci", "github", str(project), "--shards", "3"]).exit_code == 0
    assert "shard: [0, 1, 2]" in workflow.read_text() or "- 2\n" in workflow.read_text()
    workflow.write_text(workflow.read_text() + "# mine\n")
    refused = runner.invoke(main, ["ci", "github", str(project)])
    assert refused.exit_code == 2
    assert "was edited" in refused.output and "--force" in refused.output
    assert workflow.read_text().endswith("# mine\n")
    assert runner.invoke(main, ["ci", "github", str(project), "--force"]).exit_code == 0


def test_ci_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    target = tmp_path / ".gitlab-ci.yml"
    target.write_text("stages: [test]\n")
    with pytest.raises(BadInput, match="not written by testdock"):
        ci.write(target, ci.render("gitlab", ci.CiOptions()), force=False)
    assert target.read_text() == "stages: [test]\n"


def test_k8s_job_passes_kubernetes_validate_strict(tmp_path: Path) -> None:
    runner = CliRunner()
    manifest = tmp_path / "job.yaml"
    result = runner.invoke(main, ["k8s", "job", str(EXAMPLE), "--shards", "5", "--registry", "ghcr.io/acme",
                                  "--tag", "abc123", "--results-claim", "test-results", "--output",
                                  str(manifest)])
    assert result.exit_code == 0, result.output
    validated = subprocess.run([tool("kubernetes-validate"), "--strict", str(manifest)],
                               capture_output=True, text=True, check=False)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    job: dict[str, Any] = yaml.safe_load(manifest.read_text())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 5 and spec["parallelism"] == 5
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailIndex" and rule["onExitCodes"]["values"] == [1, 2, 3, 4, 5]
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/shop-execution:abc123"
    assert container["resources"]["requests"]["memory"] == container["resources"]["limits"]["memory"]
    environment = {variable["name"]: variable for variable in container["env"]}
    assert environment["TESTDOCK_SHARDS"]["value"] == "5"
    assert "job-completion-index" in environment["TESTDOCK_SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    results = next(m for m in container["volumeMounts"] if m["name"] == "results")
    assert results["subPathExpr"] == "shard-$(TESTDOCK_SHARD_INDEX)"
    volumes = {volume["name"]: volume for volume in spec["template"]["spec"]["volumes"]}
    assert volumes["results"]["persistentVolumeClaim"]["claimName"] == "test-results"
    assert "kubectl create configmap" in manifest.read_text()


def test_k8s_job_memory_is_the_execution_phase_budget(tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.testdock.phases.execution]\nmemory = "1536m"\ncpus = 3\n')
    result = CliRunner().invoke(main, ["k8s", "job", str(project)])
    assert result.exit_code == 0, result.output
    job: dict[str, Any] = yaml.safe_load(result.output)
    resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"memory": "1536Mi", "cpu": "3.0"}
    assert resources["requests"] == resources["limits"]


@pytest.mark.parametrize(("args", "message"), [
    (["k8s", "job", "{tmp}"], "not a Python project"),
    (["k8s", "job", str(EXAMPLE), "--name", "Not_A_Name"], "not a Kubernetes name"),
    (["ci", "travis", str(EXAMPLE)], "Invalid value"),
    (["ci", "github", "{tmp}"], "not a Python project"),
    (["history", "merge", "{tmp}/out.json", "{tmp}/missing.json"], "no such file"),
])
def test_bad_input_is_refused_with_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, [arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out.json").exists()


def test_history_merge_on_the_command_line(tmp_path: Path) -> None:
    for index, test in enumerate(["a", "b"]):
        (tmp_path / f"h{index}.json").write_text(
            f'{{"version": 1, "run": 2, "tests": {{"{test}": {{"last_run": 2, "runs": [{{"ts": 1}}]}}}}}}')
    inputs = [str(tmp_path / f"h{index}.json") for index in range(3)]  # h2.json is missing
    result = CliRunner().invoke(main, ["history", "merge", str(tmp_path / "out.json"), *inputs,
                                       "--ignore-missing"])
    assert result.exit_code == 0, result.output
    assert set(yaml.safe_load((tmp_path / "out.json").read_text())["tests"]) == {"a", "b"}
