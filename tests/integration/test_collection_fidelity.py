"""The collection image against the execution image on a real project with heavy dependencies
(SQLAlchemy-Utils 0.43.0 from PyPI: SQLAlchemy, psycopg2 built from source, time-zone data in
parametrize lists): the same node ids, without the project's compiled dependencies."""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import _download_sdist, _initialised, run_cli

pytestmark = pytest.mark.integration

SETTINGS = """
[tool.testdock]
project = "fidelity-sqlalchemy-utils"
system_packages = ["libpq5", "libodbc2"]
build_packages = ["gcc", "libpq-dev", "unixodbc-dev", "python3-dev"]
"""


@pytest.fixture(scope="module")
def sqlalchemy_utils(tmp_path_factory: pytest.TempPathFactory, base_image: str) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("sqlalchemy-utils")
    with tarfile.open(_download_sdist("sqlalchemy-utils", "0.43.0")) as archive:
        archive.extractall(folder, filter="data")
    root = next(path for path in folder.iterdir() if path.is_dir())
    pyproject = root / "pyproject.toml"
    pyproject.write_text((pyproject.read_text() if pyproject.is_file() else "") + SETTINGS)
    _initialised(root, base_image)
    result = run_cli("build", str(root), "--phase", "collection", "--phase", "execution", "--tag", "fidelity")
    assert result.returncode == 0, result.stderr[-4000:]
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_collection_image_finds_the_same_node_ids(sqlalchemy_utils: Path,
                                                  docker_client: docker.DockerClient) -> None:
    result = run_cli("collect", str(sqlalchemy_utils), "--compare", "--tag", "fidelity")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "identical node ids" in result.stdout
    counts = [int(line.split()[1]) for line in result.stdout.splitlines()
              if line.startswith(("collection", "execution"))]
    assert counts[0] == counts[1] > 2500  # 1,200 of them parametrized from time-zone data
    assert "stubbed: psycopg2, sqlalchemy" in result.stdout  # compiled: not installed
    assert "predicted difference" not in result.stdout
    # the time-zone data came from real, light packages; SQLAlchemy (compiled) did not
    script = "import importlib.util as u; print(bool(u.find_spec('pytz')), bool(u.find_spec('sqlalchemy')))"
    probe = docker_client.containers.run("fidelity-sqlalchemy-utils-collection:fidelity",
                                         ["python", "-c", script], remove=True, network_mode="host")
    assert probe.decode().split() == ["True", "False"]
