"""Confirm leak suspects: run them again several times in one fresh process and see whether each
run keeps memory. `python -m testdock_pytest.memory.leaks RUNS NODEID...` prints JSON
{nodeid: [bytes kept by run 1, run 2, ...]} (a first, warm-up run is not counted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from testdock_pytest.contract import RESULTS_DIR_ENV

NESTED_ENV = "TESTDOCK_LEAK_CHECK"


def check(nodeids: list[str], runs: int, rootdir: Path, timeout: float = 600) -> dict[str, list[int]]:
    """Run the check in a fresh interpreter; {} when it could not run."""
    # glibc's fixed thresholds (the seed's settings): freed blocks go back to the kernel at once,
    # so what a run keeps shows in its RSS
    environment = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072",
                   **os.environ, NESTED_ENV: "1"}
    environment.pop("TESTDOCK_MEMORY_DIR", None)
    environment.pop(RESULTS_DIR_ENV, None)
    try:
        result = subprocess.run([sys.executable, "-m", "testdock_pytest.memory.leaks", str(runs), *nodeids],
                                cwd=rootdir, env=environment, capture_output=True, text=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {}
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return {str(k): [int(v) for v in values] for k, values in data.items()}


def _quiet_plugins() -> list[str]:
    """Options that stop plugins from keeping data of their own run after run: pytest-benchmark's
    timings would look like a leak in every benchmark."""
    import importlib.util

    return ["--benchmark-disable"] if importlib.util.find_spec("pytest_benchmark") else []


def _main(argv: list[str]) -> int:
    runs, nodeids = int(argv[0]), argv[1:]
    kept: dict[str, list[int]] = {nodeid: [] for nodeid in nodeids}
    with tempfile.TemporaryDirectory(prefix="testdock-leaks-") as folder:
        for run in range(runs + 1):
            report = Path(folder) / f"run{run}.json"
            arguments = ["-q", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider",
                         "--no-header", "--no-summary", "-o", "addopts=",
                         f"--testdock-report={report}",
                         f"--testdock-history={Path(folder) / 'history.json'}", *_quiet_plugins(), *nodeids]
            with Path(os.devnull).open("w") as quiet:
                stdout, sys.stdout = sys.stdout, quiet
                try:
                    pytest.main(arguments)
                finally:
                    sys.stdout = stdout
            if run == 0 or not report.is_file():
                continue  # the first run pays for imports and caches
            for test in json.loads(report.read_text())["tests"]:
                if test["nodeid"] in kept:
                    kept[test["nodeid"]].append(int(test["retained"]))
    print(json.dumps(kept))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
