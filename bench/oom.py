"""OOM benchmark (issue 5): a synthetic suite of light tests and a few heavy ones (each holds
480 MiB for a moment; two at once exceed the budget), run five ways:

- in a container with a 1 GiB limit (`testdock run execution` with the command replaced):
  plain `pytest -n 2` (testdock's plugin off), `-n 2 --dist load` (plugin measuring), serial,
  and `--dist memory` (first with no history, then with the history the runs before left);
- on the host with `--memory-budget 1g` and no container (nothing is killed there: a peak over
  the budget is what would have been an OOM kill).

    python bench/oom.py      # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE (scripts/engine.sh)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from overhead import remove_images  # bench/overhead.py, beside this file

from testdock.monitor.sampler import MemorySampler
from testdock.monitor.sources import ProcessTreeSource
from testdock.run.phase import RunOptions, run_phase

MiB = 2**20
LIGHT, HEAVY, HEAVY_MIB = 40, 4, 480
SUITE = f'''
import time
import pytest

HEAVY = {HEAVY_MIB} * 2**20


def hold():
    data = bytearray(HEAVY)
    data[::4096] = b"x" * len(range(0, HEAVY, 4096))
    time.sleep(0.6)


# heavy tests where xdist's load scheduling starts them side by side (chunks begin at 0 and 5)
def test_heavy_0():
    hold()

{"".join(f"def test_light_{i}():{chr(10)}    time.sleep(0.15){chr(10)}{chr(10)}" for i in range(4))}
def test_heavy_1():
    hold()

{"".join(f"def test_light_{i}():{chr(10)}    time.sleep(0.15){chr(10)}{chr(10)}" for i in range(4, 20))}
def test_heavy_2():
    hold()

{"".join(f"def test_light_{i}():{chr(10)}    time.sleep(0.15){chr(10)}{chr(10)}" for i in range(20, 40))}
def test_heavy_3():
    hold()
'''
TOTAL = LIGHT + HEAVY
PYTEST = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:randomly",
          "--junitxml=test-results/junit.xml"]


def project(folder: Path, base_image: str) -> Path:
    root = folder / "oomsuite"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_suite.py").write_text(SUITE)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "oomsuite"\nversion = "0"\n[project.optional-dependencies]\n'
        'test = ["pytest"]\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    for argv in (["init", str(root), "--base-image", base_image],
                 ["build", str(root), "--phase", "execution", "--tag", "latest"]):
        subprocess.run([sys.executable, "-m", "testdock", *argv], check=True, capture_output=True)
    return root


def outcomes(junit: Path) -> tuple[int, int]:
    """(passed, failed or errored) in the JUnit file; 0, 0 when there is none."""
    if not junit.is_file():
        return 0, 0
    suite = ElementTree.parse(junit).getroot()[0]
    tests = int(suite.get("tests", "0"))
    bad = int(suite.get("failures", "0")) + int(suite.get("errors", "0"))
    skipped = int(suite.get("skipped", "0"))
    return tests - bad - skipped, bad


def in_container(root: Path, name: str, command: list[str]) -> dict[str, object]:
    started = time.monotonic()
    result = run_phase(root, "execution", RunOptions(memory="1g", command=command),
                       echo=lambda line: None)
    wall = time.monotonic() - started
    passed, failed = outcomes(root / "test-results" / "junit.xml")
    peak = result.stats.peak if result.stats else 0
    return {"name": name, "where": "container, 1 GiB", "passed": passed, "failed": failed,
            "lost": TOTAL - passed - failed, "oom": result.oom_kills or 0, "wall": wall,
            "peak": peak, "exit": result.exit_code}


def on_host(root: Path, name: str, args: list[str]) -> dict[str, object]:
    environment = {**os.environ, "TESTDOCK_RESULTS_DIR": str(root / "test-results")}
    junit = root / "test-results" / "junit.xml"
    junit.unlink(missing_ok=True)
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                                f"--junitxml={junit}", *args], cwd=root, env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = MemorySampler(ProcessTreeSource(process.pid, 2**30), root / "host-memory.csv", None).start()
    code = process.wait()
    stats = sampler.stop()
    wall = time.monotonic() - started
    passed, failed = outcomes(junit)
    over = "yes" if stats.peak > 2**30 else "no"
    return {"name": name, "where": "host, --memory-budget 1g", "passed": passed, "failed": failed,
            "lost": TOTAL - passed - failed, "oom": f"(over 1 GiB: {over})", "wall": wall,
            "peak": stats.peak, "exit": code}


def main() -> None:
    base_image = os.environ.get("TESTDOCK_BASE_IMAGE")
    if not base_image:
        raise SystemExit("set TESTDOCK_BASE_IMAGE (eval \"$(scripts/engine.sh)\")")
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        root = project(Path(folder), base_image)
        history = root / ".testdock" / "memory-history.json"
        plain = [*PYTEST, "-p", "no:testdock", "-n", "2"]
        configurations = [
            ("pytest -n 2 (no testdock)", plain),
            ("pytest -n 2 --dist load (testdock measuring)", [*PYTEST, "-n", "2", "--dist", "load"]),
            ("pytest (serial)", [*PYTEST, "-n", "0"]),
        ]
        for name, command in configurations:
            print(f"  {name}", file=sys.stderr)
            rows.append(in_container(root, name, command))
        history.unlink(missing_ok=True)
        memory = [*PYTEST, "-n", "2", "--dist", "memory"]
        print("  --dist memory, no history", file=sys.stderr)
        rows.append(in_container(root, "pytest -n 2 --dist memory (no history)", memory))
        print("  --dist memory, with history", file=sys.stderr)
        rows.append(in_container(root, "pytest -n 2 --dist memory (history)", memory))
        remove_images("oomsuite")
        local = ["-n", "2", "--memory-budget", "1g"]
        print("  host runs", file=sys.stderr)
        rows.append(on_host(root, "host: pytest -n 2 --dist load", [*local, "--dist", "load"]))
        rows.append(on_host(root, "host: pytest -n 2 --dist memory (history)", [*local, "--dist", "memory"]))
        rows.append(on_host(root, "host: pytest (serial)", ["-n", "0"]))
    print(f"suite: {LIGHT} light tests (0.15 s) + {HEAVY} heavy tests ({HEAVY_MIB} MiB for 0.6 s)")
    header = f"{'configuration':<46}{'where':<26}{'passed':>7}{'failed':>7}{'lost':>6}{'OOM kills':>20}"
    print(header + f"{'wall':>9}{'peak':>11}")
    for row in rows:
        print(f"{row['name']!s:<46}{row['where']!s:<26}{row['passed']!s:>7}{row['failed']!s:>7}"
              f"{row['lost']!s:>6}{row['oom']!s:>20}{float(str(row['wall'])):>8.1f}s"
              f"{int(str(row['peak'])) / MiB:>8.0f} MiB")
    by_name = {str(row["name"]): row for row in rows}
    serial = float(str(by_name["pytest (serial)"]["wall"]))
    best = float(str(by_name["pytest -n 2 --dist memory (history)"]["wall"]))
    survivors = [float(str(r["wall"])) for r in rows[:3]
                 if r["failed"] == 0 and r["lost"] == 0 and not r["oom"]]
    first = by_name["pytest -n 2 --dist memory (no history)"]
    print(f"--dist memory (no history, a first run) vs serial: {serial / float(str(first['wall'])):.2f}x "
          f"faster with {first['oom']} OOM kill(s) (target >= 1.5, at most 1)")
    print(f"--dist memory (history) vs serial: {serial / best:.2f}x faster (target >= 1.5); second run / "
          f"first run {best / float(str(first['wall'])):.2f} (target <= 1.0, no OOM kill)")
    if survivors:
        print(f"--dist memory (history) / best surviving static configuration: "
              f"{best / min(survivors):.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
