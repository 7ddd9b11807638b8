"""Monitoring overhead benchmark (issue 4): `testdock run execution` on the example project with
memory monitoring on and off, runs interleaved in one session.

    python bench/monitor.py [--rounds 5]    # needs DOCKER_HOST and TESTDOCK_BASE_IMAGE

Per mode: end-to-end wall time of the command, pytest's own duration inside the container (does
sampling slow the tests?), and the testdock process's peak RSS (GNU time). Medians; ratios on-/off.
Then the sampler's own cost per sample (memory alone, and with CPU, storage and processes), and
the build memory of the example's four images (issue 19): each built alone, with no layer cached,
its peak as `testdock build` measures it (BuildKit's steps, from the engine's cgroup).
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
# testdock's own peak RSS, and its children's (the plot renderer), reported at exit
MEASURED = (
    "import atexit, resource, runpy, sys\n"
    "def report():\n"
    "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    print(f'MAXRSS {own} {children}', file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['testdock', *sys.argv[1:]]\n"
    "runpy.run_module('testdock', run_name='__main__')\n")


def testdock(*args: str) -> list[str]:
    return [sys.executable, "-m", "testdock", *args]


def pytest_args(repeat: int) -> list[str]:
    return ["-q", "-p", "no:randomly", "--keep-duplicates", *(["tests"] * repeat)]


def one_run(root: Path, monitor: bool, repeat: int) -> tuple[float, float, int, int]:
    """(wall s, pytest s, testdock's peak RSS, the renderer's) of one `testdock run execution`."""
    argv = [sys.executable, "-c", MEASURED, "run", "execution", str(root),
            *([] if monitor else ["--no-monitor"]), "--", *pytest_args(repeat)]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"run failed ({result.returncode}):\n{result.stdout[-2000:]}\n"
                         f"{result.stderr[-2000:]}")
    pytest_seconds = float(re.findall(r"passed(?:, [^\n]*?)? in ([\d.]+)s", result.stdout)[-1])
    own, children = re.findall(r"MAXRSS (\d+) (\d+)", result.stderr)[-1]
    return wall, pytest_seconds, int(own) * 1024, int(children) * 1024


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


def measure(root: Path, rounds: int, repeat: int) -> list[tuple[str, str, str, str, str]]:
    one_run(root, True, repeat)  # warm-up: page cache, image layers
    runs: dict[bool, list[tuple[float, float, int, int]]] = {True: [], False: []}
    for index in range(rounds):
        for monitor in ((False, True) if index % 2 == 0 else (True, False)):
            runs[monitor].append(one_run(root, monitor, repeat))
            print(f"  x{repeat} round {index + 1} monitor={'on' if monitor else 'off'}: "
                  f"{runs[monitor][-1][0]:.2f}s", file=sys.stderr)

    def median(monitor: bool, index: int) -> float:
        return statistics.median(run[index] for run in runs[monitor])

    wall_off, wall_on = median(False, 0), median(True, 0)
    test_off, test_on = median(False, 1), median(True, 1)
    rss_off, rss_on = median(False, 2), median(True, 2)
    samples = len((root / "monitoring" / "memory.csv").read_text().splitlines()) - 1
    suite = f"suite x{repeat}"
    return [
        (f"{suite}: end-to-end wall", f"{wall_off:.2f} s", f"{wall_on:.2f} s",
         f"{wall_on / wall_off:.3f}", "<= 1.02"),
        (f"{suite}: pytest time in container", f"{test_off:.2f} s", f"{test_on:.2f} s",
         f"{test_on / test_off:.3f}", ""),
        (f"{suite}: testdock peak RSS", f"{rss_off / 2**20:.1f} MiB", f"{rss_on / 2**20:.1f} MiB",
         f"+{(rss_on - rss_off) / 2**20:.1f} MiB", "<= +10 MiB"),
        (f"{suite}: plot renderer (own process)", "-",
         f"{median(True, 3) / 2**20:.1f} MiB", "", ""),
        (f"{suite}: samples in a monitored run", "-", str(samples), "", ""),
    ]


def sampling_cost(base_image: str, reads: int = 400) -> list[tuple[str, str, str, str, str]]:
    """The sampler's own cost per sample, against a live container with a few processes: memory
    alone, then with CPU, storage and processes (issue 19), each read `reads` times."""
    from testdock import engine
    from testdock.monitor.resources import CgroupResources
    from testdock.monitor.sources import CgroupSource, cgroup_files

    client = engine.client()
    script = ("import subprocess, time; [subprocess.Popen(['sleep', '60']) for _ in range(4)]; "
              "time.sleep(60)")
    container = client.containers.run(base_image, ["python3", "-c", script], detach=True,
                                      network_mode="host", labels={"io.testdock.bench": "1"})
    try:
        time.sleep(1)
        files = cgroup_files(str(container.id))
        if files is None:
            return [("sampling cost per sample", "-", "no cgroup files here", "", "")]
        costs = []
        resources = CgroupResources(str(container.id), files.version)
        for source in (CgroupSource(files), CgroupSource(files, resources)):
            started = time.perf_counter()
            for _ in range(reads):
                source.read()
            costs.append((time.perf_counter() - started) / reads)
    finally:
        container.remove(force=True)
    memory, everything = costs
    # "monitor off" column: memory alone; "monitor on": with CPU, storage and processes
    return [("sampler: per sample (memory / +resources)", f"{memory * 1e6:.0f} us",
             f"{everything * 1e6:.0f} us", f"{everything / memory:.1f}", ""),
            ("sampler: one CPU's share at 20 Hz", f"{memory * 20:.2%}", f"{everything * 20:.2%}", "",
             "part of <= 2% wall")]


def build_memory(base_image: str, folder: Path) -> list[tuple[str, str, str, str, str]]:
    """Each of the example's images built alone (--parallel 1, no layer cached): its peak."""
    import json

    root = folder / "buildmem"
    shutil.copytree(REPO / "examples" / "shop", root)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.testdock]\nproject = "bench-buildmem"\n')
    subprocess.run(testdock("init", str(root), "--base-image", base_image), check=True, capture_output=True)
    result = subprocess.run(testdock("build", str(root), "--parallel", "1", "--no-cache", "--json",
                                     "--tag", "bench"), capture_output=True, text=True, check=False)
    rows = []
    try:
        images = json.loads(result.stdout)["images"]
    except (ValueError, KeyError):
        return [("build memory", "-", f"build failed: {result.stderr[-200:]}", "", "")]
    for image in images:
        peak = image.get("peak_memory")
        rows.append((f"build memory: {image['phase']} image", "-",
                     f"{peak / 2**20:.0f} MiB" if peak else "not measured", f"{image['seconds']:.0f} s", ""))
    from overhead import remove_images  # bench/overhead.py: the images it built, by label

    remove_images("bench-buildmem")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", default="1,8", help="suite sizes: the example suite run N times")
    parser.add_argument("--build-memory-only", action="store_true",
                        help="only the build memory of the example's four images")
    args = parser.parse_args()
    base_image = os.environ.get("TESTDOCK_BASE_IMAGE")
    if not base_image:
        raise SystemExit("set TESTDOCK_BASE_IMAGE (eval \"$(scripts/engine.sh)\")")
    rows: list[tuple[str, str, str, str, str]] = []
    if args.build_memory_only:
        with tempfile.TemporaryDirectory() as folder:
            rows = build_memory(base_image, Path(folder))
        for title, _, on, seconds, _ in rows:
            print(f"{title:<40}{on:>14}{seconds:>10}")
        return
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "shop"
        shutil.copytree(REPO / "examples" / "shop", root)
        subprocess.run(testdock("init", str(root), "--base-image", base_image), check=True,
                       capture_output=True)
        subprocess.run(testdock("build", str(root), "--phase", "execution", "--tag", "latest"),
                       check=True, capture_output=True)
        for repeat in (int(r) for r in args.repeats.split(",")):
            rows += measure(root, args.rounds, repeat)
        rows.append(("plot rendering alone (incl. import)", "-", f"{plot_seconds(root):.2f} s", "", ""))
        rows += sampling_cost(base_image)
        rows += build_memory(base_image, Path(folder))
    print(f"example execution phase, {args.rounds} interleaved rounds per mode, medians")
    print(f"{'figure':<40}{'monitor off':>14}{'monitor on':>14}{'on/off':>12}  target")
    for title, off, on, ratio, target in rows:
        print(f"{title:<40}{off:>14}{on:>14}{ratio:>12}  {target}")


if __name__ == "__main__":
    main()
