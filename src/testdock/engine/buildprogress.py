"""A live view of parallel builds: each image's state, current step and elapsed time."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from testdock.engine.builds import STEP_LINE

_STYLE = {"waiting": "dim", "building": "cyan", "built": "green", "pushing": "cyan",
          "pushed": "green", "failed": "bold red", "skipped": "yellow", "interrupted": "yellow"}


@dataclass
class _Row:
    state: str = "queued"
    step: str = ""
    started: float | None = None
    finished: float | None = None


class LiveListener:
    """A Rich table redrawn a few times a second; use as a context manager."""

    def __init__(self, phases: list[str], console: Console) -> None:
        self._rows = {phase: _Row() for phase in phases}
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=console, refresh_per_second=4, transient=False,
                          get_renderable=self._render)

    def __enter__(self) -> LiveListener:
        self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._live.__exit__(kind, error, traceback)

    def state(self, phase: str, state: str, detail: str = "") -> None:
        with self._lock:
            row = self._rows.setdefault(phase, _Row())
            row.state = state
            if state == "building" and row.started is None:
                row.started = time.monotonic()
            if state in ("built", "failed", "skipped", "interrupted"):
                row.finished = time.monotonic()
            if detail:
                row.step = detail

    def note(self, text: str) -> None:
        self._live.console.print(text, markup=False, highlight=False)

    def line(self, phase: str, text: str) -> None:
        step = STEP_LINE.match(text)
        if step and not step.group(2).startswith("internal"):
            with self._lock:
                self._rows[phase].step = f"[{step.group(2)}] {step.group(3)}"

    def _render(self) -> Table:
        table = Table(box=None, pad_edge=False, expand=False)
        for column in ("phase", "state", "elapsed", "step"):
            table.add_column(column, no_wrap=True)
        now = time.monotonic()
        with self._lock:
            for phase, row in self._rows.items():
                elapsed = ""
                if row.started is not None:
                    elapsed = f"{(row.finished or now) - row.started:5.1f}s"
                table.add_row(phase, Text(row.state, style=_STYLE.get(row.state, "")), elapsed,
                              Text(row.step[:90], overflow="ellipsis"))
        return table
