"""One run's monitoring, the same for every kind of run (a phase in its container, a local run,
the backend app during its tests, the app under load): memory sampled into a CSV as it goes,
the tests running at each sample, Prometheus gauges live and in a file after, and the plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from testdock.monitor.metrics import RunMetrics
from testdock.monitor.plot import PlotRenderer
from testdock.monitor.sampler import MemorySampler, MemoryStats
from testdock.monitor.sources import MemorySource
from testdock.monitor.tests_running import ProgressFollower

# how long a run may go on after the plot was drawn early for that drawing to stand (the
# container's exit and removal take a fraction of it)
EARLY_DRAWING_SECONDS = 3.0


@dataclass(frozen=True)
class MonitoringFiles:
    csv: Path
    plot: Path
    title: str  # the plot's
    metrics: Path | None = None  # monitoring/metrics.prom, when the run's figures go to Prometheus


class MonitoringSession:
    """Start it (a `with` block, or start() and finish()), read `stats` after stop(). The plot is
    drawn by a child process that imports matplotlib while the run lasts, at a lower priority: the
    run neither waits for the import nor carries its memory."""

    def __init__(self, source: MemorySource, files: MonitoringFiles, follower: ProgressFollower | None,
                 interval: float, metrics_phase: str | None = None, metrics_port: int | None = None) -> None:
        self.source = source
        self.files = files
        self.follower = follower
        self.interval = interval
        self.metrics_phase = metrics_phase
        self.metrics_port = metrics_port
        self.stats: MemoryStats | None = None
        self.plot: Path | None = None
        self._sampler: MemorySampler | None = None
        self._metrics: RunMetrics | None = None
        self._renderer: PlotRenderer | None = None
        # the peak and the duration of the samples an early drawing was asked of
        self._drawn: tuple[int, float] | None = None

    def start(self) -> MonitoringSession:
        self._renderer = PlotRenderer()
        update = None
        if self.metrics_phase is not None and self.metrics_port:
            metrics = RunMetrics(self.metrics_phase)
            metrics.serve(self.metrics_port)
            self._metrics = metrics
            follower = self.follower

            def update(usage: int, stats: MemoryStats) -> None:
                done, failed, running = _counts(follower)
                metrics.update(usage, stats.limit, stats.peak, done, failed, running)
                metrics.update_resources(stats)

        self._sampler = MemorySampler(self.source, self.files.csv, self.follower, self.interval,
                                      update).start()
        return self

    def draw_early(self) -> None:
        """Start drawing the plot of the samples so far, where the run's end is near (pytest has
        printed its summary): the drawing overlaps the container's exit and removal instead of
        following them. finish() draws again if a higher peak comes after, or the run goes on for
        more than EARLY_DRAWING_SECONDS (a summary line that was not the end: a nested run's)."""
        if self._renderer is None or self._sampler is None or self._drawn is not None:
            return
        samples, peak, seconds = self._sampler.flush()
        if samples:
            self._renderer.request(self.files.csv, self.files.plot, self.files.title)
            self._drawn = (peak, seconds)

    def stop(self) -> MemoryStats:
        """Stop sampling (idempotent); the figures so far."""
        if self._sampler is not None:
            self.stats = self._sampler.stop()
            self._sampler = None
        return self.stats if self.stats is not None else MemoryStats()

    def finish(self) -> Path | None:
        """Stop, write the metrics file and draw the plot; the plot's path, None when nothing
        was sampled (or drawing failed)."""
        stats = self.stop()
        if self.follower is not None:
            self.follower.poll()
        if self.files.metrics is not None and self.metrics_phase is not None:
            metrics = self._metrics or RunMetrics(self.metrics_phase)
            done, failed, _ = _counts(self.follower)
            last = stats.series[-1][1] if stats.series else 0
            metrics.update(last, stats.limit, stats.peak, done, failed, 0)
            metrics.update_resources(stats)
            metrics.close(self.files.metrics)
        elif self._metrics is not None:
            self._metrics.close(None)
        self._metrics = None
        renderer, self._renderer = self._renderer, None
        if renderer is not None:
            self.plot = self._draw(renderer, stats)
        return self.plot

    def _draw(self, renderer: PlotRenderer, stats: MemoryStats) -> Path | None:
        try:
            if self._drawn is not None:
                plot = renderer.result(self.files.plot)
                peak, seconds = self._drawn
                late = stats.duration - seconds > EARLY_DRAWING_SECONDS
                if plot is not None and stats.peak <= peak and not late:
                    return plot
                # the peak, or more of the run, came after the early drawing: drawn again, by the
                # same process where it is still there
            elif not stats.samples:
                return None
            return renderer.render(self.files.csv, self.files.plot, self.files.title)
        finally:
            renderer.close()

    def __enter__(self) -> MonitoringSession:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.finish()


def _counts(follower: ProgressFollower | None) -> tuple[int, int, int]:
    if follower is None:
        return 0, 0, 0
    return follower.done, follower.failed, len(follower.running)
