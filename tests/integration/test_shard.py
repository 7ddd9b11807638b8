"""Sharding on the real engine: `testdock shard` plans in the execution image, `run --shard I/N`
runs exactly the tests the plan gives shard I, and a CI job pulls the pushed image it needs."""

from __future__ import annotations

import contextlib
import json
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.integration.conftest import run_cli
from tests.integration.test_build import _prefix, project, registry  # noqa: F401  (fixtures)
from tests.integration.test_run import built  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration


def _junit_ids(root: Path) -> set[str]:
    suite = ElementTree.parse(root / "test-results" / "junit.xml").getroot()
    ids = set()
    for case in suite.iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        ids.add(f"{module}.py::{case.get('name')}")
    return ids


def test_shard_plans_in_the_image_and_run_runs_exactly_that_shard(built: Path) -> None:  # noqa: F811
    plan = run_cli("shard", str(built), "--shards", "2")
    assert plan.returncode == 0, plan.stderr[-2000:]
    rows = [line.split() for line in plan.stdout.splitlines() if line.strip()[:1].isdigit()
            and line.split()[0] in ("0", "1") and line.strip().endswith("B")]
    assert [row[0] for row in rows] == ["0", "1"], plan.stdout
    listings = [run_cli("shard", str(built), "--shards", "2", "--index", str(i)) for i in range(2)]
    shards = [[line for line in listing.stdout.splitlines() if "::" in line] for listing in listings]
    assert all(shards) and not set(shards[0]) & set(shards[1])
    assert [len(shard) for shard in shards] == [int(row[1]) for row in rows]
    result = run_cli("run", "execution", str(built), "--shard", "1/2", "--no-monitor")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    ran = _junit_ids(built)
    # junit names classes by module path: compare on the function part of each id
    assert {nodeid.split("::")[-1] for nodeid in ran} == {nodeid.split("::")[-1] for nodeid in shards[1]}


def test_a_ci_job_pulls_the_image_the_build_job_pushed(project: Path, registry: str,  # noqa: F811
                                                       docker_client: docker.DockerClient) -> None:
    target = f"{registry}/ci"
    for stale in (f"{_prefix(project)}-collection:ci1", f"{_prefix(project)}-collection:ci2"):
        with contextlib.suppress(docker.errors.ImageNotFound):  # left by an earlier run on this engine
            docker_client.images.remove(stale, force=True)
    result = run_cli("build", str(project), "--phase", "collection", "--tag", "ci1", "--registry", target,
                     "--push")
    assert result.returncode == 0, result.stderr[-3000:]
    repository = f"{_prefix(project)}-collection"
    # the pushed image carries its BuildKit cache inline, for the next pipeline's --cache-from
    request = urllib.request.Request(f"http://{registry}/v2/ci/{repository}/manifests/ci1", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        manifest = json.load(response)
    with urllib.request.urlopen(f"http://{registry}/v2/ci/{repository}/blobs/{manifest['config']['digest']}",
                                timeout=10) as response:
        assert "moby.buildkit.cache.v0" in json.load(response)
    # a later job on another machine: only the registry has the image
    docker_client.images.remove(f"{target}/{repository}:ci1")
    docker_client.images.remove(f"{target}/{repository}:latest")
    ran = run_cli("run", "collection", str(project), "--tag", "ci1", "--registry", target, "--no-monitor")
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert f"pulling {target}/{repository}:ci1" in ran.stdout + ran.stderr
    assert docker_client.images.get(f"{repository}:ci1").labels["io.testdock.phase"] == "collection"
    # and the next build seeds its cache from it
    again = run_cli("build", str(project), "--phase", "collection", "--tag", "ci2", "--registry", target,
                    "--cache-from", "ci1")
    assert again.returncode == 0, again.stderr[-3000:]
    log = (project / "logs" / "build_test_images.log").read_text()
    assert f"--cache-from {target}/{repository}:ci1" in log
