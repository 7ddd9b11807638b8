"""`testdock run` on the real engine: results and monitoring on the host, the OOM block naming the
test, Ctrl-C leaving nothing behind, and Prometheus metrics only while the run lasts."""

from __future__ import annotations

import signal
import threading
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import docker
import pytest

from tests.integration.conftest import free_port, interrupt_when, run_cli
from tests.integration.test_build import _prefix, project  # noqa: F401  (the fixture)

pytestmark = pytest.mark.integration

OOM_TEST = """
def test_allocates_past_the_limit():
    data = bytearray(600 * 2**20)
    data[::4096] = b"x" * len(range(0, len(data), 4096))
"""


@pytest.fixture
def built(project: Path) -> Path:  # noqa: F811
    result = run_cli("build", str(project), "--phase", "execution", "--tag", "latest")
    assert result.returncode == 0, result.stderr[-3000:]
    return project


def _our_containers(client: docker.DockerClient, root: Path) -> list[object]:
    """Run containers of this test's project (they carry its image's labels)."""
    return list(client.containers.list(all=True, filters={"label": [
        "io.testdock.run", f"io.testdock.project={_prefix(root)}"]}))


def test_a_passing_run_leaves_results_and_monitoring_on_the_host(built: Path) -> None:
    result = run_cli("run", "execution", str(built), "--", "-q", "tests/unit", "tests/memory")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
    junit = ElementTree.parse(built / "test-results" / "junit.xml").getroot()
    assert int(junit[0].get("tests", "0")) >= 11
    rows = (built / "monitoring" / "memory.csv").read_text().splitlines()
    assert rows[0].startswith("time,elapsed_s,usage_bytes")
    assert len(rows) > 10
    # the memory tests hold 150-300 MiB for a moment: the samples see it
    peak = max(int(row.split(",")[2]) for row in rows[1:])
    assert peak > 150 * 2**20
    assert any("tests/memory/" in row for row in rows[1:])
    png = built / "monitoring" / "memory-profile.png"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "testdock: memory peak" in result.stderr
    assert (built / "monitoring" / "metrics.prom").is_file()


def test_oom_names_the_test_and_keeps_the_finished_ones(built: Path,
                                                        docker_client: docker.DockerClient) -> None:
    (built / "tests" / "test_zz_oom.py").write_text(OOM_TEST)
    # Without xdist the kernel kills pytest itself: the container exits 137, and testdock writes
    # the JUnit file of the tests that finished from the plugin's progress events.
    result = run_cli("run", "execution", str(built), "--mount-source", "--memory", "300m", "--",
                     "-q", "-p", "no:randomly", "-n", "0", "tests/unit", "tests/test_zz_oom.py")
    assert result.returncode == 137, result.stdout[-2000:] + result.stderr[-2000:]
    assert "testdock: OOM: the execution container was killed at its memory limit" in result.stderr
    assert "running  tests/test_zz_oom.py::test_allocates_past_the_limit" in result.stderr
    assert "limit    300.0 MiB" in result.stderr
    suite = ElementTree.parse(built / "test-results" / "junit.xml").getroot()[0]
    names = [case.get("name") for case in suite]
    assert "test_allocates_past_the_limit" in names and len(names) >= 12
    assert suite.get("errors") == "1"
    assert not _our_containers(docker_client, built)


def test_oom_under_dist_memory_loses_no_other_test(built: Path,
                                                    docker_client: docker.DockerClient) -> None:
    # The default command runs `-n auto --dist memory`: the kernel kills the worker, testdock's
    # plugin re-runs its test alone, and every other test keeps its result.
    (built / "tests" / "test_zz_oom.py").write_text(OOM_TEST)
    result = run_cli("run", "execution", str(built), "--mount-source", "--memory", "300m", "--",
                     "-p", "no:randomly", "tests/unit", "tests/test_zz_oom.py")
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "1 failed, 11 passed, 1 rerun" in result.stdout
    assert "it needs more than 300.0 MiB" in result.stdout
    assert "testdock: OOM: the kernel killed a process in the execution container" in result.stderr
    suite = ElementTree.parse(built / "test-results" / "junit.xml").getroot()[0]
    assert suite.get("tests") == "12"
    assert int(suite.get("failures", "0")) + int(suite.get("errors", "0")) == 1
    assert not _our_containers(docker_client, built)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_removes_the_container_and_keeps_results(built: Path, docker_client: docker.DockerClient,
                                                        stop: signal.Signals) -> None:
    (built / "tests" / "test_zz_slow.py").write_text(
        "import time\n\ndef test_fast():\n    pass\n\ndef test_slow():\n    time.sleep(120)\n")
    progress = built / "test-results" / "testdock-progress.jsonl"
    returncode, stderr = interrupt_when(
        ["run", "execution", str(built), "--mount-source", "--", "-q", "-n", "0", "tests/test_zz_slow.py"],
        lambda: progress.is_file() and "test_slow" in progress.read_text(), "the slow test's start",
        stop)
    assert returncode == 130, stderr[-2000:]
    assert not _our_containers(docker_client, built)
    assert "test_fast" in progress.read_text()  # what was written stays
    assert (built / "monitoring" / "memory.csv").stat().st_size > 0


def test_metrics_endpoint_answers_during_the_run_only(built: Path) -> None:
    (built / "tests" / "test_zz_wait.py").write_text(
        "import time\n\ndef test_wait():\n    time.sleep(6)\n")
    port = free_port()
    seen: list[str] = []

    def scrape() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not seen:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
                    text = answer.read().decode()
                    if "testdock_tests_running" in text and 'phase="execution"} 1.0' in text:
                        seen.append(text)
            except OSError:
                time.sleep(0.2)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    result = run_cli("run", "execution", str(built), "--mount-source", "--metrics-port", str(port),
                     "--", "-q", "tests/test_zz_wait.py")
    scraper.join()
    assert result.returncode == 0, result.stderr[-2000:]
    assert seen and "testdock_memory_usage_bytes" in seen[0]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    assert "testdock_tests_done" in (built / "monitoring" / "metrics.prom").read_text()


PAIR_SUITE = """
import time

HEAVY = 480 * 2**20


def hold():
    data = bytearray(HEAVY)
    data[::4096] = b"x" * len(range(0, HEAVY, 4096))
    time.sleep(1.0)


# xdist's load scheduling sends the first chunk of two to each worker: indices 0-1 and 2-3,
# so both heavy tests start at once
def test_heavy_a():
    hold()

def test_light_1():
    time.sleep(0.1)

def test_heavy_b():
    hold()

def test_light_2():
    time.sleep(0.1)

def test_light_3():
    time.sleep(0.1)

def test_light_4():
    time.sleep(0.1)
"""


def test_naive_xdist_loses_tests_where_dist_memory_loses_none(built: Path) -> None:
    """Two tests that each hold 480 MiB, in a 1 GiB container: xdist's load scheduling starts them
    side by side and the kernel kills a worker; --dist memory, with the history of one run, never
    lets them meet."""
    from testdock.run.phase import RunOptions, run_phase

    (built / "tests" / "test_zz_pair.py").write_text(PAIR_SUITE)
    base = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:randomly",
            "--junitxml=test-results/junit.xml", "tests/test_zz_pair.py", "-n", "2"]

    def run(*extra: str) -> tuple[int, int, int]:
        result = run_phase(built, "execution", RunOptions(memory="1g", mount_source=True,
                                                          command=[*base, *extra]), echo=lambda _: None)
        suite = ElementTree.parse(built / "test-results" / "junit.xml").getroot()[0]
        bad = int(suite.get("failures", "0")) + int(suite.get("errors", "0"))
        return int(suite.get("tests", "0")) - bad, bad, result.oom_kills or 0

    naive_passed, naive_lost, naive_kills = run("--dist", "load")
    assert naive_lost >= 1 and naive_kills >= 1, (naive_passed, naive_lost, naive_kills)
    run("--dist", "memory")  # learns the history (and recovers what it did not know)
    passed, lost, kills = run("--dist", "memory")
    assert (passed, lost, kills) == (6, 0, 0)


WRITES_ITS_TREE = """
from pathlib import Path

def test_writes_next_to_itself():
    output = Path(__file__).with_name("written.txt")
    output.write_text("x")
    assert output.read_text() == "x"
    Path("written-in-the-working-directory.txt").write_text("x")  # /app itself

def test_writes_its_cache_under_home():
    cache = Path.home() / ".cache" / "some-tool"
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "index").write_text("x")

def test_runs_a_script_it_wrote_in_a_temporary_folder(tmp_path):
    # pexpect's suite, a virtualenv made in tmp_path: /tmp must not be noexec
    import subprocess
    script = tmp_path / "hello.sh"
    script.write_text("#!/bin/sh\\necho hello\\n")
    script.chmod(0o755)
    assert subprocess.run([str(script)], capture_output=True, text=True).stdout == "hello\\n"
"""

SESSION_DATABASE = """
import sqlite3

def pytest_sessionstart(session):
    sqlite3.connect("session.db").execute("create table runs (id integer)")
"""


def test_a_suite_writing_into_its_tree_passes_with_zero_settings_and_read_only_is_a_hardening(
        project: Path) -> None:  # noqa: F811
    (project / "tests" / "unit" / "test_writes.py").write_text(WRITES_ITS_TREE)
    built = run_cli("build", str(project), "--phase", "execution", "--tag", "latest")
    assert built.returncode == 0, built.stderr[-3000:]
    allowed = run_cli("run", "execution", str(project), "--no-monitor", "--", "tests/unit/test_writes.py")
    assert allowed.returncode == 0, allowed.stdout[-2000:] + allowed.stderr[-2000:]
    assert not (project / "tests" / "unit" / "written.txt").exists()  # it was written in the container
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.testdock.phases.execution]\nread_only = true\n")
    refused = run_cli("run", "execution", str(project), "--no-monitor", "--", "tests/unit/test_writes.py")
    assert refused.returncode == 1
    # the home folder is writable (HOME=/tmp): caches under ~ do not fail
    assert "1 failed, 2 passed" in refused.stdout, refused.stdout[-2000:]
    assert "1 test(s) failed writing into the image's read-only filesystem" in refused.stderr
    assert "[tool.testdock.phases.execution] read_only = false" in refused.stderr
    # a session hook creating its database in the working directory: pytest's INTERNALERROR, exit 3
    conftest = project / "tests" / "unit" / "conftest.py"
    conftest.write_text(SESSION_DATABASE)
    internal = run_cli("run", "execution", str(project), "--no-monitor", "--mount-source", "--",
                       "tests/unit/test_writes.py")
    assert internal.returncode == 3, internal.stdout[-2000:]
    assert "the run failed writing into the image's read-only filesystem" in internal.stderr


PACKAGE_DATA = """
from importlib.resources import files

def test_reads_a_file_of_its_package():
    assert (files("shop") / "templates" / "receipt.txt").read_text() == "thank you"
"""


def test_files_of_the_package_a_build_leaves_out_are_installed_all_the_same(project: Path) -> None:  # noqa: F811
    # setuptools installs such a file only when git (setuptools-scm) or a MANIFEST.in names it;
    # the build context has no .git, and a developer's run reads the source folder
    (project / "src" / "shop" / "templates").mkdir()
    (project / "src" / "shop" / "templates" / "receipt.txt").write_text("thank you")
    (project / "tests" / "unit" / "test_package_data.py").write_text(PACKAGE_DATA)
    built = run_cli("build", str(project), "--phase", "execution", "--tag", "latest")
    assert built.returncode == 0, built.stderr[-3000:]
    result = run_cli("run", "execution", str(project), "--no-monitor", "--",
                     "tests/unit/test_package_data.py")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout


def test_the_phases_environment_reaches_the_tests(built: Path) -> None:
    # as a project's CI sets it: typer's help tests want wide terminals
    (built / "tests" / "unit" / "test_environment.py").write_text(
        "import os\n\ndef test_wide_terminal():\n    assert os.environ['TERMINAL_WIDTH'] == '3000'\n")
    pyproject = built / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n[tool.testdock.phases.execution]\n"
                         "environment = { TERMINAL_WIDTH = \"3000\" }\n")
    result = run_cli("run", "execution", str(built), "--no-monitor", "--mount-source", "--",
                     "tests/unit/test_environment.py")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout
    # the plugin, installed in the image by its entry point, chose the workers (not xdist's CPU count)
    assert "testdock -n auto: " in result.stdout



def test_a_run_that_lacks_test_dependencies_names_all_of_them_at_once(built: Path) -> None:
    # test dependencies the project keeps outside its metadata: the run fails on the first file;
    # the hint names that module and the one another test file imports, which the image lacks too
    tests = built / "tests" / "unit"
    (tests / "test_needs_one.py").write_text("import testdock_absent_one\n\ndef test_x():\n    pass\n")
    (tests / "test_needs_two.py").write_text("import json\nimport testdock_absent_two\n")
    # and a plugin: pytest says only that the fixture is unknown
    (tests / "test_needs_mocker.py").write_text("def test_y(mocker):\n    pass\n")
    result = run_cli("run", "execution", str(built), "--no-monitor", "--mount-source", "--",
                     "tests/unit/test_needs_one.py", "tests/unit/test_needs_mocker.py")
    assert result.returncode != 0
    assert ("the tests import 2 module(s) the execution image does not have: testdock_absent_one "
            "(tests/unit/test_needs_one.py), testdock_absent_two (tests/unit/test_needs_two.py)"
            ) in result.stderr
    assert ("1 pytest plugin(s) the execution image does not have: fixture mocker (pytest-mock)"
            in result.stderr)
    assert ('extra_requirements = ["pytest-mock", "testdock_absent_one", "testdock_absent_two"]'
            in result.stderr)

BUSY_SUITE = """
import subprocess, sys, time


def test_burns_cpu_writes_files_and_starts_processes():
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"]) for _ in range(3)]
    # on the container's disk (its /tmp is a tmpfs: memory, not storage)
    with open("/var/tmp/busy-output.bin", "wb") as handle:
        for _ in range(24):
            handle.write(b"x" * 2**20)
    deadline = time.process_time() + 1.5
    while time.process_time() < deadline:
        pass
    for child in children:
        child.wait()
"""


def test_cpu_storage_and_processes_are_sampled_beside_memory(built: Path) -> None:
    """A suite that burns CPU, writes 24 MiB and starts processes: the CSV, the summary, the
    Prometheus file and the plot have the figures (issue 19)."""
    (built / "tests" / "test_zz_busy.py").write_text(BUSY_SUITE)
    result = run_cli("run", "execution", str(built), "--mount-source", "--", "-q", "tests/test_zz_busy.py")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = [row.split(",") for row in (built / "monitoring" / "memory.csv").read_text().splitlines()]
    header, samples = rows[0], rows[1:]
    column = {name: header.index(name) for name in ("cpu_percent", "written_bytes", "processes")}

    def highest(name: str) -> float:
        return max(float(row[column[name]]) for row in samples if row[column[name]])

    assert highest("cpu_percent") > 60  # one CPU kept busy for 1.5 s
    assert highest("written_bytes") >= 24 * 2**20
    assert highest("processes") >= 4  # pytest and its three children
    assert "testdock: CPU " in result.stderr and "written " in result.stderr
    metrics = {line.split("{")[0]: float(line.rsplit(" ", 1)[1])
               for line in (built / "monitoring" / "metrics.prom").read_text().splitlines()
               if line.startswith("testdock_") and "{" in line}
    assert metrics["testdock_cpu_seconds"] >= 1.5
    assert metrics["testdock_storage_written_bytes"] >= 24 * 2**20
    assert (built / "monitoring" / "memory-profile.png").read_bytes()[:4] == b"\x89PNG"


def test_a_container_removed_while_it_runs_is_one_clear_error_and_keeps_the_finished_tests(
        built: Path, docker_client: docker.DockerClient) -> None:
    """A cleanup job or a `docker rm -f` mid-run: testdock said "internal error ... 404 Not Found"."""
    (built / "tests" / "test_zz_slow.py").write_text(
        "import time\n\ndef test_fast():\n    pass\n\ndef test_slow():\n    time.sleep(120)\n")
    progress = built / "test-results" / "testdock-progress.jsonl"

    def remove_when_slow_starts() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if progress.is_file() and "test_slow" in progress.read_text():
                for container in _our_containers(docker_client, built):
                    container.remove(force=True)  # type: ignore[attr-defined]
                return
            time.sleep(0.1)

    remover = threading.Thread(target=remove_when_slow_starts)
    remover.start()
    result = run_cli("run", "execution", str(built), "--mount-source", "--", "-q", "-n", "0",
                     "tests/test_zz_slow.py")
    remover.join()
    # removed before testdock waited for its end: said so; between its end and its removal: the
    # run's end as the container's exit code tells it (137, killed)
    assert result.returncode != 0 and "internal error" not in result.stderr, result.stderr[-2000:]
    assert ("the execution container was removed while it ran" in result.stderr
            or result.returncode == 137), result.stderr[-2000:]
    junit = ElementTree.parse(built / "test-results" / "junit.xml").getroot()
    names = {case.get("name") for case in junit.iter("testcase")}
    assert "test_fast" in names
