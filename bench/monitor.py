"""Monitoring overhead benchmark (issue 4): `testdock run execution` on the example project with
memory monitoring on and off, runs interleaved in one session.

    python bench/monitor.py [--rounds 5]    # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE

Per mode: end-to-end wall time of the command, pytest's own duration inside the container (does
sampling slow the tests?), and the testdock process's peak RSS (GNU time). Medians; ratios on-/off.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTEST_ARGS = ["-q", "-p", "no:randomly", "tests"]


def testdock(*args: str) -> list[str]:
    return [sys.executable, "-m", "testdock", *args]


def one_run(root: Path, monitor: bool) -> tuple[float, float, int]:
    """(wall seconds, pytest seconds, peak RSS bytes) of one `testdock run execution`."""
    argv = ["/usr/bin/time", "-f", "MAXRSS %M", *testdock("run", "execution", str(root),
                                                          *([] if monitor else ["--no-monitor"]),
                                                          "--", *PYTEST_ARGS)]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"run failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
                         f"{result.stderr[-2000:]}")
    pytest_seconds = float(re.findall(r"passed in ([\d.]+)s", result.stdout)[-1])
    rss = int(re.findall(r"MAXRSS (\d+)", result.stderr)[-1]) * 1024
    return wall, pytest_seconds, rss


def plot_seconds(root: Path) -> float:
    """Time to render memory-profile.png alone, from the CSV the last monitored run wrote."""
    code = (
        "import csv, time; from pathlib import Path;"
        "from testdock.monitor.sampler import MemoryStats; from testdock.monitor.plot import plot_memory;"
        f"rows = list(csv.DictReader(open('{root}/monitoring/memory.csv')));"
        "s = MemoryStats(); s.series = [(float(r['elapsed_s']), int(r['usage_bytes']), r['running_tests'])"
        " for r in rows]; s.samples = len(rows); s.peak = max(v for _, v, _ in s.series);"
        "s.limit = int(rows[0]['limit_bytes'] or 0) or None;"
        "t = time.monotonic(); plot_memory(s, Path('/tmp/bench-plot.png'), 'bench');"
        "print(time.monotonic() - t)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    base_image = os.environ.get("TESTDOCK_BASE_IMAGE")
    if not base_image:
        raise SystemExit("set TESTDOCK_BASE_IMAGE (eval \"$(scripts/engine.sh)\")")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "shop"
        shutil.copytree(REPO / "examples" / "shop", root)
        subprocess.run(testdock("init", str(root), "--base-image", base_image), check=True,
                       capture_output=True)
        subprocess.run(testdock("build", str(root), "--phase", "execution", "--tag", "latest"),
                       check=True, capture_output=True)
        one_run(root, True)  # warm-up: page cache, image layers
        runs: dict[bool, list[tuple[float, float, int]]] = {True: [], False: []}
        for index in range(args.rounds):
            for monitor in ((False, True) if index % 2 == 0 else (True, False)):
                runs[monitor].append(one_run(root, monitor))
                print(f"  round {index + 1} monitor={'on' if monitor else 'off'}: "
                      f"{runs[monitor][-1][0]:.2f}s", file=sys.stderr)
        samples = len((root / "monitoring" / "memory.csv").read_text().splitlines()) - 1
        plot = plot_seconds(root)

    def median(monitor: bool, index: int) -> float:
        return statistics.median(run[index] for run in runs[monitor])

    wall_off, wall_on = median(False, 0), median(True, 0)
    test_off, test_on = median(False, 1), median(True, 1)
    rss_off, rss_on = median(False, 2), median(True, 2)
    rows = [
        ("end-to-end wall (median)", f"{wall_off:.2f} s", f"{wall_on:.2f} s",
         f"{wall_on / wall_off:.3f}", "<= 1.02"),
        ("pytest duration in the container", f"{test_off:.2f} s", f"{test_on:.2f} s",
         f"{test_on / test_off:.3f}", ""),
        ("testdock process peak RSS", f"{rss_off / 2**20:.1f} MiB", f"{rss_on / 2**20:.1f} MiB",
         f"+{(rss_on - rss_off) / 2**20:.1f} MiB", "<= +10 MiB"),
        ("plot rendering alone", "-", f"{plot:.2f} s", "", ""),
        ("samples in the last monitored run", "-", str(samples), "", ""),
    ]
    print(f"example execution phase, {args.rounds} interleaved rounds per mode")
    print(f"{'figure':<36}{'monitor off':>14}{'monitor on':>14}{'on/off':>12}  target")
    for title, off, on, ratio, target in rows:
        print(f"{title:<36}{off:>14}{on:>14}{ratio:>12}  {target}")


if __name__ == "__main__":
    main()
