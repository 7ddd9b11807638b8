"""A project's tree and settings are untrusted input: on the real engine, every case of issue 14
and more, each asserting the exit code, the one-line message, and that nothing was written
outside the project, leaked into an image, lost from the results or left on the engine."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest
import tomlkit

from tests.conftest import EXAMPLE
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration

SLOW_TESTS = "import time\n\ndef test_fast():\n    pass\n\ndef test_slow():\n    time.sleep(120)\n"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, base_image: str,
            docker_client: docker.DockerClient) -> Iterator[Path]:
    """A copy of the example with its own image names, its execution image built once."""
    copy = tmp_path_factory.mktemp("hostile") / "shop"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[tool.testdock]\nproject = "{name}"\n')
    assert run_cli("init", str(copy), "--base-image", base_image).returncode == 0
    result = run_cli("build", str(copy), "--phase", "execution", "--tag", "h1")
    assert result.returncode == 0, result.stderr[-3000:]
    yield copy
    for image in docker_client.images.list(filters={"label": f"io.testdock.project={name}"}):
        for tag in image.tags:
            docker_client.images.remove(tag)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A host folder with a root-owned file: what a hostile project would reach."""
    folder = tmp_path / "host"
    folder.mkdir(mode=0o755)
    (folder / "precious").write_text("root's\n")
    (folder / "precious").chmod(0o600)
    return folder


def _state(folder: Path) -> list[tuple[str, int, int, int, bytes]]:
    items = [folder, *sorted(folder.rglob("*"))]
    return [(str(p.relative_to(folder)), p.stat().st_uid, p.stat().st_mode,
             p.stat().st_size, p.read_bytes() if p.is_file() else b"") for p in items]


def _prefix(project: Path) -> str:
    return str(tomlkit.parse((project / "pyproject.toml").read_text())["tool"]["testdock"]["project"])


def _containers(client: docker.DockerClient, project: Path) -> list[object]:
    """This project's run containers (they carry its image's labels): others on the engine are not
    this test's to count."""
    labels = ["io.testdock.run", f"io.testdock.project={_prefix(project)}"]
    return list(client.containers.list(all=True, filters={"label": labels}))


def _set(project: Path, table: str, key: str, value: object) -> str:
    """Set [tool.testdock.TABLE] KEY; returns the old text to restore."""
    text = (project / "pyproject.toml").read_text()
    document = tomlkit.parse(text)
    section = document["tool"]["testdock"]
    for part in table.split(".") if table else []:
        section = section.setdefault(part, tomlkit.table())
    section[key] = value
    (project / "pyproject.toml").write_text(tomlkit.dumps(document))
    return text


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr[-2000:]
    assert lines[0].startswith("testdock: error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize("folder", ["test-results", "monitoring", ".testdock"])
def test_a_results_folder_linked_out_of_the_project_is_refused(
        hostile: Path, outside: Path, folder: str, docker_client: docker.DockerClient) -> None:
    before = _state(outside)
    kept = hostile / f"{folder}.kept"
    if (hostile / folder).exists():
        (hostile / folder).rename(kept)
    (hostile / folder).symlink_to(outside)
    try:
        result = run_cli("run", "execution", str(hostile), "--tag", "h1")
    finally:
        (hostile / folder).unlink()
        if kept.exists():
            kept.rename(hostile / folder)
    assert result.returncode == 2
    assert "is a symbolic link" in _one_line_error(result.stderr)
    assert _state(outside) == before  # not chowned, nothing written or deleted
    assert _containers(docker_client, hostile) == []


def test_links_a_test_plants_in_the_mounted_folders_are_not_written_through(
        hostile: Path, outside: Path) -> None:
    before = _state(outside)
    precious = outside / "precious"
    (hostile / "tests" / "test_zz_plant.py").write_text(
        "import os\n\n"
        "def test_plants_links():\n"
        "    for target, name in (\n"
        f"            ({str(precious)!r}, 'monitoring/memory-profile.png'),\n"
        f"            ({str(precious)!r}, 'monitoring/metrics.prom'),\n"
        f"            ({str(outside)!r}, 'monitoring/away')):\n"
        "        try:\n"
        "            os.symlink(target, '/app/' + name)\n"
        "        except OSError:\n"
        "            pass  # the host's own folder: read-only here\n")
    try:
        result = run_cli("run", "execution", str(hostile), "--tag", "h1", "--mount-source", "--",
                         "-n", "0", "tests/test_zz_plant.py")
    finally:
        (hostile / "tests" / "test_zz_plant.py").unlink()
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert _state(outside) == before
    plot = hostile / "monitoring" / "memory-profile.png"
    assert not plot.is_symlink() and plot.read_bytes()[:4] == b"\x89PNG"
    assert not (hostile / "monitoring" / "away").exists()


def test_cleanup_takes_only_testdocks_tags_and_never_a_derived_image(
        hostile: Path, docker_client: docker.DockerClient, base_image: str, tmp_path: Path) -> None:
    prefix = _prefix(hostile)
    first = docker_client.images.get(f"{prefix}-execution:h1")
    first.tag("team/release", "prod")  # the user's own tag on an image testdock built
    derived_dir = tmp_path / "derived"
    derived_dir.mkdir()
    (derived_dir / "Dockerfile").write_text(f"FROM {prefix}-execution:h1\nRUN echo derived > /tmp/d\n")
    derived, _ = docker_client.images.build(path=str(derived_dir), tag="team/derived:1",
                                            network_mode="host", rm=True)
    (derived_dir / "Dockerfile").write_text(f"FROM {prefix}-execution:h1\nRUN echo untagged > /tmp/u\n")
    untagged, _ = docker_client.images.build(path=str(derived_dir), network_mode="host", rm=True)
    try:
        built: list[str] = []
        for tag in ("h2", "h3"):
            (hostile / "src" / "shop" / "marker.py").write_text(f"TAG = {tag!r}\n")
            time.sleep(1.1)  # distinct creation times
            result = run_cli("build", str(hostile), "--phase", "execution", "--phase", "stress",
                             "--tag", tag, *(["--cleanup", "--keep", "1", "--json"] if tag == "h3" else []))
            assert result.returncode == 0, result.stderr[-3000:]
            built.append(str(docker_client.images.get(f"{prefix}-execution:{tag}").id))
        # the user's tag, the derived images and the image just built are all there
        assert docker_client.images.get("team/release:prod").id == first.id
        assert f"{prefix}-execution:h1" not in docker_client.images.get(str(first.id)).tags
        assert docker_client.images.get(str(derived.id)) and docker_client.images.get(str(untagged.id))
        assert docker_client.images.get(f"{prefix}-execution:h3").id == built[1]
        with pytest.raises(docker.errors.ImageNotFound):
            docker_client.images.get(built[0])  # h2: only testdock's tags, older than the one kept
        # the stress builds' intermediate stage left nothing cleanup cannot find
        leftovers = [image for image in docker_client.images.list(filters={"dangling": True})
                     if image.id != untagged.id and (image.labels or {}).get("io.testdock.project") == prefix]
        assert leftovers == []
    finally:
        (hostile / "src" / "shop" / "marker.py").unlink()
        for reference in ("team/derived:1", str(untagged.id), "team/release:prod"):
            docker_client.images.remove(reference)
        docker_client.images.get(f"{prefix}-execution:h3").tag(f"{prefix}-execution", "h1")


CREDENTIAL_FILES = {
    ".git-credentials": "https://user:token@example.invalid\n",
    ".aws/credentials": "[default]\naws_secret_access_key = x\n",
    ".ssh/id_ecdsa": "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n",
    "id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
    ".npmrc": "//registry/:_authToken=x\n",
    ".envrc": "export TOKEN=x\n",
    "secrets.json": "{}\n",
    "client.p12": "binary\n",
    "sub/.git/config": "[remote]\n",
    "deep/er/.netrc": "machine x login y password z\n",
}


def test_credentials_stay_out_of_the_images_or_stop_the_build(
        hostile: Path, docker_client: docker.DockerClient) -> None:
    for relative, text in CREDENTIAL_FILES.items():
        (hostile / relative).parent.mkdir(parents=True, exist_ok=True)
        (hostile / relative).write_text(text)
    ignore = hostile / ".dockerignore"
    original = ignore.read_text()
    prefix = _prefix(hostile)
    try:
        result = run_cli("build", str(hostile), "--phase", "execution", "--tag", "creds")
        assert result.returncode == 0, result.stderr[-3000:]
        listing = docker_client.containers.run(
            f"{prefix}-execution:creds", ["sh", "-c", "find /app -print 2>/dev/null; true"],
            remove=True, network_mode="host").decode()
        assert [relative for relative in CREDENTIAL_FILES if f"/app/{relative}" in listing] == []
        # one let back in by the user's own .dockerignore line stops the build, naming it
        ignore.write_text(original + "!secrets.json\n!deploy.txt\n")
        (hostile / "deploy.txt").write_text("key: AKIAABCDEFGHIJKLMNOP\n")
        images_before = {image.id for image in docker_client.images.list(all=True)}
        log_before = (hostile / "logs" / "build_test_images.log").stat().st_size
        result = run_cli("build", str(hostile), "--phase", "execution", "--tag", "creds2")
        assert result.returncode == 2
        line = _one_line_error(result.stderr)
        assert "deploy.txt (holds an AWS access key id)" in line and "secrets.json" in line
        assert "allow_credentials" in line
        assert {image.id for image in docker_client.images.list(all=True)} == images_before
        assert (hostile / "logs" / "build_test_images.log").stat().st_size == log_before
        # and let through on purpose
        old = _set(hostile, "build", "allow_credentials", ["secrets.json", "deploy.txt"])
        result = run_cli("build", str(hostile), "--phase", "execution", "--tag", "creds2")
        (hostile / "pyproject.toml").write_text(old)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        ignore.write_text(original)
        (hostile / "deploy.txt").unlink(missing_ok=True)
        for relative in CREDENTIAL_FILES:
            (hostile / relative).unlink()
        for folder in (".aws", ".ssh", "sub", "deep"):
            shutil.rmtree(hostile / folder)
        for tag in ("creds", "creds2"):
            docker_client.images.remove(f"{prefix}-execution:{tag}")


def test_two_runs_at_once_wait_for_each_other_and_lose_nothing(hostile: Path) -> None:
    (hostile / "tests" / "test_zz_three.py").write_text(
        "import time\nimport pytest\n\n@pytest.mark.parametrize('n', range(3))\n"
        "def test_takes_a_second(n):\n    time.sleep(1)\n")
    args = [sys.executable, "-m", "testdock", "run", "execution", str(hostile), "--tag", "h1",
            "--mount-source", "--", "-n", "0", "tests/test_zz_three.py"]
    try:
        first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        second = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, first_err = first.communicate(timeout=300)
        _, second_err = second.communicate(timeout=300)
    finally:
        (hostile / "tests" / "test_zz_three.py").unlink()
    assert first.returncode == 0 and second.returncode == 0, first_err[-2000:] + second_err[-2000:]
    assert "another testdock run of" in second_err and "waits for it to end" in second_err
    suite = ElementTree.parse(hostile / "test-results" / "junit.xml").getroot()
    assert len(list(suite.iter("testcase"))) == 3
    times = [float(line.split(",")[1]) for line in
             (hostile / "monitoring" / "memory.csv").read_text().splitlines()[1:]]
    assert times == sorted(times) and len(times) > 10  # one run's timeline, not two interleaved
    assert (hostile / "monitoring" / "memory-profile.png").is_file()


@pytest.mark.parametrize(("table", "key", "value", "named"), [
    ("phases.execution", "cpus", 1e9, "[tool.testdock.phases.execution] cpus = 1e+09 is more CPUs"),
    ("phases.execution", "memory", "0", "[tool.testdock.phases.execution] memory"),
    ("", "project", "shop\n", "[tool.testdock] project"),
    ("", "base_image", "python:3.12-slim\nRUN rm -rf /", "[tool.testdock] base_image"),
    ("build", "registry", "127.0.0.1:5000\n", "[tool.testdock.build] registry"),
])
def test_bad_settings_are_one_line_naming_the_setting_before_anything_runs(
        hostile: Path, docker_client: docker.DockerClient, table: str, key: str, value: object,
        named: str) -> None:
    old = _set(hostile, table, key, value)
    before = sorted((hostile / "test-results").iterdir()) if (hostile / "test-results").exists() else []
    try:
        result = run_cli("run", "execution", str(hostile), "--tag", "h1")
    finally:
        (hostile / "pyproject.toml").write_text(old)
    assert result.returncode == 2
    assert named in _one_line_error(result.stderr)
    after = sorted((hostile / "test-results").iterdir()) if (hostile / "test-results").exists() else []
    assert after == before
    assert _containers(docker_client, hostile) == []


def test_bad_flags_and_folders_are_one_line_and_build_nothing(
        hostile: Path, docker_client: docker.DockerClient) -> None:
    images_before = {image.id for image in docker_client.images.list(all=True)}
    result = run_cli("build", str(hostile), "--tag", "bad tag")
    assert result.returncode == 2 and "--tag 'bad tag' is not a Docker tag" in _one_line_error(result.stderr)
    assert {image.id for image in docker_client.images.list(all=True)} == images_before
    shutil.rmtree(hostile / "test-results", ignore_errors=True)
    (hostile / "test-results").write_text("a file where the results go\n")
    try:
        result = run_cli("run", "execution", str(hostile), "--tag", "h1")
    finally:
        (hostile / "test-results").unlink()
    assert result.returncode == 2 and "is a file" in _one_line_error(result.stderr)
    assert _containers(docker_client, hostile) == []


def test_ctrl_c_twice_exits_130_keeps_the_finished_tests_and_leaves_nothing(
        hostile: Path, docker_client: docker.DockerClient) -> None:
    (hostile / "tests" / "test_zz_slow.py").write_text(SLOW_TESTS)
    progress = hostile / "test-results" / "testdock-progress.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "testdock", "run", "execution", str(hostile), "--tag", "h1", "--mount-source",
         "--", "-n", "0", "tests/test_zz_slow.py"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (progress.is_file() and "test_slow" in progress.read_text()):
            assert time.monotonic() < deadline, "the slow test never started"
            time.sleep(0.2)
        assert len(_containers(docker_client, hostile)) == 1  # the count below is not vacuous
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)  # impatient: the clean-up must go on all the same
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
        (hostile / "tests" / "test_zz_slow.py").unlink()
    assert process.returncode == 130, stderr[-2000:]
    assert _containers(docker_client, hostile) == []
    cases = {case.get("name"): case for case in
             ElementTree.parse(hostile / "test-results" / "junit.xml").getroot().iter("testcase")}
    assert set(cases) == {"test_fast", "test_slow"}
    assert list(cases["test_fast"]) == []  # passed
    assert cases["test_slow"][0].get("message") == "interrupted (Ctrl-C) before it finished"
    assert (hostile / "test-results" / "testdock-progress.jsonl").is_file()  # nothing removed
