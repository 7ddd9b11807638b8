"""monitoring/memory-profile.png: memory over time, the limit, the peak and its test."""

from __future__ import annotations

from pathlib import Path

from testdock.monitor.sampler import MemoryStats

MiB = 2**20


def plot_memory(stats: MemoryStats, path: Path, title: str) -> Path | None:
    """Write the plot; None when there is nothing to draw."""
    if not stats.series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    times = [elapsed for elapsed, _, _ in stats.series]
    usage = [value / MiB for _, value, _ in stats.series]
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
                      xy=(stats.peak_elapsed, stats.peak / MiB), xytext=(10, -30),
                      textcoords="offset points", fontsize=8,
                      arrowprops={"arrowstyle": "->", "color": "#555555"},
                      bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.9})
        axes.set_xlabel("seconds since start")
        axes.set_ylabel("MiB")
        axes.set_title(title)
        top = max(max(usage), (stats.limit or 0) / MiB) * 1.08
        axes.set_ylim(0, top or 1)
        axes.grid(alpha=0.3)
        axes.legend(loc="upper left", fontsize=8)
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
    finally:
        pyplot.close(figure)
    return path


def _shorten(text: str, width: int = 70) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3):]
