"""monitoring/memory-profile.png: memory over time, the limit, the peak and its test; CPU,
storage and processes below it where the source read them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from testdock.monitor.sampler import MemoryStats, ResourceSample

MiB = 2**20


def plot_memory(stats: MemoryStats, path: Path, title: str) -> Path | None:
    """Write the plot; None when there is nothing to draw. Memory on top; below it, where the
    source read them, CPU (and its throttling), storage bytes and processes, on the same time
    axis, with the memory peak's moment marked in each."""
    if not stats.series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    times = [elapsed for elapsed, _, _ in stats.series]
    usage = [value / MiB for _, value, _ in stats.series]
    resources = [sample for sample in stats.resources
                 if sample.cpu_percent is not None or sample.written_bytes is not None
                 or sample.processes is not None]
    if resources:
        figure, panels = pyplot.subplots(4, 1, figsize=(11, 10), dpi=110, sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1.4, 1.4, 1]})
        axes = panels[0]
    else:
        figure, axes = pyplot.subplots(figsize=(11, 5), dpi=110)
    try:
        axes.plot(times, usage, color="#1f77b4", linewidth=1.2, label="memory in use")
        axes.fill_between(times, usage, color="#1f77b4", alpha=0.15)
        if stats.limit:
            axes.axhline(stats.limit / MiB, color="#d62728", linestyle="--", linewidth=1.2,
                         label=f"limit {stats.limit / MiB:.0f} MiB")
            axes.axhline(0.9 * stats.limit / MiB, color="#ff7f0e", linestyle=":", linewidth=1,
                         label="90% of the limit")
        peak_label = stats.peak_tests[0] if stats.peak_tests else "no test running"
        if len(stats.peak_tests) > 1:
            peak_label += f" (+{len(stats.peak_tests) - 1} more)"
        axes.plot([stats.peak_elapsed], [stats.peak / MiB], marker="o", color="#d62728")
        axes.annotate(f"peak {stats.peak / MiB:.0f} MiB\n{_shorten(peak_label)}",
                      xy=(stats.peak_elapsed, stats.peak / MiB),
                      # to the left of a peak in the right half, so the label stays in the figure
                      xytext=(-200 if stats.peak_elapsed > times[-1] / 2 else 10, -30),
                      textcoords="offset points", fontsize=8,
                      arrowprops={"arrowstyle": "->", "color": "#555555"},
                      bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})
        axes.set_ylabel("MiB")
        axes.set_title(title)
        top = max(max(usage), (stats.limit or 0) / MiB) * 1.08
        axes.set_ylim(0, top or 1)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)
        if resources:
            _resource_panels(stats, resources, panels[1:])
            panels[-1].set_xlabel("seconds since start")
        else:
            axes.set_xlabel("seconds since start")
        # fixed margins, not tight_layout(): the labels are known, and measuring them cost a
        # third of the drawing, which the run waits for
        if resources:
            figure.subplots_adjust(left=0.07, right=0.985, top=0.965, bottom=0.05, hspace=0.1)
        else:
            figure.subplots_adjust(left=0.07, right=0.985, top=0.93, bottom=0.1)
        path.parent.mkdir(parents=True, exist_ok=True)
        # zlib's fastest level: a slightly larger file, written in a fraction of the time
        figure.savefig(path, pil_kwargs={"compress_level": 1})
    finally:
        pyplot.close(figure)
    return path


def _resource_panels(stats: MemoryStats, resources: list[ResourceSample], panels: Any) -> None:
    """CPU (and throttling), storage bytes, processes: one panel each, the memory peak marked."""
    cpu_axes, io_axes, process_axes = panels
    times = [sample.elapsed for sample in resources]
    cpu = [sample.cpu_percent for sample in resources]
    cpu_axes.plot(times, [value if value is not None else float("nan") for value in cpu],
                  color="#2ca02c", linewidth=1.1, label="CPU (100% = one CPU)")
    throttled = [sample.throttled_percent for sample in resources]
    if any(value for value in throttled):
        cpu_axes.plot(times, [value if value is not None else float("nan") for value in throttled],
                      color="#d62728", linewidth=1, label="held back by the CPU quota")
    if stats.peak_cpu_tests:
        peak = max((sample for sample in resources if sample.cpu_percent is not None),
                   key=lambda sample: sample.cpu_percent or 0.0, default=None)
        if peak is not None:
            cpu_axes.annotate(_shorten(stats.peak_cpu_tests[0], 60), xy=(peak.elapsed, peak.cpu_percent or 0),
                              xytext=(-200 if peak.elapsed > times[-1] / 2 else 10, -12),
                              textcoords="offset points", fontsize=7,
                              arrowprops={"arrowstyle": "->", "color": "#555555"})
    cpu_axes.set_ylabel("CPU %")
    cpu_axes.set_ylim(bottom=0)
    written = [sample.written_bytes for sample in resources]
    read = [sample.read_bytes for sample in resources]
    io_axes.plot(times, [value / MiB if value is not None else float("nan") for value in written],
                 color="#9467bd", linewidth=1.1, label="written")
    io_axes.plot(times, [value / MiB if value is not None else float("nan") for value in read],
                 color="#8c564b", linewidth=1.1, linestyle="--", label="read")
    io_axes.set_ylabel("storage MiB")
    io_axes.set_ylim(bottom=0)
    processes = [sample.processes for sample in resources]
    process_axes.step(times, [value if value is not None else float("nan") for value in processes],
                      where="post", color="#7f7f7f", linewidth=1.1, label="processes")
    process_axes.set_ylabel("processes")
    process_axes.set_ylim(bottom=0)
    for axes in panels:
        axes.axvline(stats.peak_elapsed, color="#d62728", linestyle=":", linewidth=0.8)  # the memory peak
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=7)


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]


def idle_priority(pid: int) -> None:
    """Let the process run only when no other wants the CPU (Linux's SCHED_IDLE; elsewhere the
    lowest nice): the import of matplotlib must not slow a run that keeps every CPU busy, which
    a nice of 10 alone still did by a tenth of a second per CPU-second."""
    import contextlib
    import os

    try:
        os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, pid, 19)


def normal_priority(pid: int) -> None:
    """Undo idle_priority, where the system allows it (else the process stays as it was)."""
    import contextlib
    import os

    with contextlib.suppress(AttributeError, OSError):
        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))


def stats_from_csv(csv_path: Path, peak_tests: list[str] | None = None) -> MemoryStats:
    """The plot's inputs, read back from monitoring/memory.csv."""
    import csv

    stats = MemoryStats()
    with csv_path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            elapsed, usage = float(row["elapsed_s"]), int(row["usage_bytes"])
            stats.series.append((elapsed, usage, row["running_tests"]))
            if row["limit_bytes"]:  # an empty one at the end: the cgroup was already gone
                stats.limit = int(row["limit_bytes"])
            if usage > stats.peak:
                stats.peak, stats.peak_elapsed = usage, elapsed
                stats.peak_tests = [t for t in row["running_tests"].split(" | ") if t]
            if row.get("processes") is not None:  # an older CSV has memory only
                sample = ResourceSample(elapsed, _number(row["cpu_percent"]),
                                        _number(row["throttled_percent"]), _whole(row["read_bytes"]),
                                        _whole(row["written_bytes"]), _whole(row["processes"]))
                stats.resources.append(sample)
                if sample.cpu_percent is not None and sample.cpu_percent > stats.peak_cpu_percent:
                    stats.peak_cpu_percent = sample.cpu_percent
                    stats.peak_cpu_tests = [t for t in row["running_tests"].split(" | ") if t]
    stats.samples = len(stats.series)
    if peak_tests is not None:
        stats.peak_tests = peak_tests
    return stats


def _number(cell: str | None) -> float | None:
    return float(cell) if cell else None


def _whole(cell: str | None) -> int | None:
    return int(cell) if cell else None


class PlotRenderer:
    """A child process that imports matplotlib while the tests run, on CPU time they leave idle,
    then draws the plot when asked: the run neither waits for the import nor carries its memory."""

    def __init__(self) -> None:
        import subprocess
        import sys

        self._process = subprocess.Popen(
            [sys.executable, "-m", "testdock.monitor.plot"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)  # Ctrl-C stops the run, not the plot of it
        idle_priority(self._process.pid)

    def render(self, csv_path: Path, path: Path, title: str, timeout: float = 120) -> Path | None:
        self.request(csv_path, path, title)
        return self.result(path, timeout)

    def request(self, csv_path: Path, path: Path, title: str) -> None:
        """Start drawing the CSV as it is now; result() waits for it."""
        import json

        normal_priority(self._process.pid)  # the tests are over: the plot is what the run waits for
        request = json.dumps({"csv": str(csv_path), "png": str(path), "title": title})
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(request + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, ValueError):  # the child is gone: result() says None
            pass

    def result(self, path: Path, timeout: float = 120) -> Path | None:
        """The drawing asked for last: its path, None if it failed or took longer than `timeout`
        (the process is then ended). The process stays for another request."""
        import select

        stdout = self._process.stdout
        assert stdout is not None
        if self._process.poll() is not None or not select.select([stdout], [], [], timeout)[0]:
            self.close()
            return None
        return path if stdout.readline().strip() == "ok" else None

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout, self._process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _serve() -> int:
    import io
    import json
    import sys

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot  # imported now, while the tests run

    # and a first drawing, thrown away: the fonts and the renderer's caches load now too, not
    # when the run waits for the plot (it halves the drawing's time)
    figure, axes = pyplot.subplots(figsize=(2, 1))
    axes.set_title("warm-up")
    figure.savefig(io.BytesIO(), format="png")
    pyplot.close(figure)
    for line in sys.stdin:  # a request a line, until the run closes the pipe
        if not line.strip():
            continue
        request = json.loads(line)
        csv_path = Path(request["csv"])
        drawn = csv_path.is_file() and plot_memory(stats_from_csv(csv_path), Path(request["png"]),
                                                   request["title"])
        print("ok" if drawn else "empty", flush=True)
    return 0


if __name__ == "__main__":
    # no interpreter teardown (matplotlib's modules): the run waits for this process's end
    os._exit(_serve())
