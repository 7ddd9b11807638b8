"""testdock as a user installs it: the sdist and wheel built and checked, the wheel installed into a
fresh virtual environment with nothing else (no pytest: the generated pipelines install it so),
and every command run from there against a copy of the example on the real engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from testdock import __version__
from tests.conftest import EXAMPLE, REPO

pytestmark = pytest.mark.integration

PROJECT = "pkgshop"


def _run(args: list[str], cwd: Path | None = None, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), str(REPO)])
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    return dist


@pytest.fixture(scope="module")
def bare_venv(distributions: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel and its declared dependencies, nothing else."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    created = _run([sys.executable, "-m", "venv", str(venv)])
    assert created.returncode == 0, created.stderr
    (wheel,) = distributions.glob("*.whl")
    installed = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                      "--disable-pip-version-check", str(wheel)])
    assert installed.returncode == 0, installed.stderr[-3000:]
    return venv


@pytest.fixture(scope="module")
def example_copy(tmp_path_factory: pytest.TempPathFactory, docker_client: docker.DockerClient,
                 postgres_image: str) -> Iterator[Path]:
    copy = tmp_path_factory.mktemp("pkg") / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info",
                                                                 ".pytest_cache", ".benchmarks"))
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.testdock]\nproject = "{PROJECT}"\n')
    yield copy
    for image in docker_client.images.list(filters={"label": f"io.testdock.project={PROJECT}"}):
        for tag in image.tags:
            docker_client.images.remove(tag, noprune=False)


def test_the_sdist_and_wheel_pass_twine_and_hold_what_testdock_needs(distributions: Path) -> None:
    checked = _run([sys.executable, "-m", "twine", "check", "--strict",
                    *map(str, sorted(distributions.iterdir()))])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (wheel,) = distributions.glob("*.whl")
    assert wheel.name.startswith(f"testdock-{__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"testdock-{__version__}.dist-info/entry_points.txt").decode()
    templates = {path.name for path in (REPO / "src" / "testdock" / "images" / "templates").iterdir()}
    assert templates and {f"testdock/images/templates/{name}" for name in templates} <= names
    assert {"testdock/py.typed", "testdock_pytest/plugin.py", "testdock_pytest/contract.py",
            "testdock_pytest/collection/stubs.py", "testdock/cli.py"} <= names
    assert "testdock = testdock.cli:main" in entry_points
    assert "testdock = testdock_pytest.plugin" in entry_points
    assert not any(name.startswith(("tests/", "examples/")) for name in names)


def test_every_command_works_from_a_bare_install(bare_venv: Path, example_copy: Path,
                                                 base_image: str) -> None:
    python = str(bare_venv / "bin" / "python")
    assert _run([python, "-c", "import pytest"]).returncode != 0  # the bare venv has no pytest
    testdock = str(bare_venv / "bin" / "testdock")
    project = str(example_copy)
    history = example_copy / ".testdock" / "memory-history.json"
    commands: list[list[str]] = [
        ["--version"],
        ["init", project, "--base-image", base_image],
        ["inspect", project, "--json"],
        ["build", project, "--tag", "pkg", "--parallel", "2"],
        ["collect", project, "--compare", "--tag", "pkg"],
        ["run", "collection", project, "--tag", "pkg"],
        ["run", "execution", project, "--tag", "pkg"],
        ["run", "stress", project, "--tag", "pkg"],
        ["run", "backend", project, "--tag", "pkg"],
        ["report", project],
        ["shard", project, "--shards", "2", "--plan", "--tag", "pkg"],
        ["history", "merge", str(example_copy / "merged.json"), str(history)],
        ["ci", "github", project, "--output", "-"],
        ["ci", "gitlab", project, "--output", "-"],
        ["k8s", "job", project, "--output", "-", "--tag", "pkg"],
    ]
    failures: list[str] = []
    outputs: dict[str, str] = {}
    for command in commands:
        result = _run([testdock, *command], cwd=example_copy)
        name = " ".join(command[:2])
        outputs[name] = result.stdout
        print(f"exit {result.returncode:>3}  testdock {' '.join(command)}")  # the record, with -s
        if result.returncode != 0:
            failures.append(f"testdock {' '.join(command)} exited {result.returncode}:\n"
                            f"{(result.stdout + result.stderr)[-1500:]}")
    assert not failures, "\n\n".join(failures)
    assert __version__ in outputs["--version"]
    assert json.loads(outputs[f"inspect {project}"])["name"] == "shop"
    assert f"pip install testdock=={__version__}" in outputs["ci github"]
    assert f"pip install testdock=={__version__}" in outputs["ci gitlab"]
    assert json.loads((example_copy / "merged.json").read_text())
    assert "kind: Job" in outputs["k8s job"] and not (example_copy / "-").exists()  # '-' is stdout
