"""The live build view and the plain one: what a person sees while images build."""

from __future__ import annotations

import io

from rich.console import Console

from testdock.engine.buildprogress import LiveListener
from testdock.engine.buildreport import as_json, as_table, failures
from testdock.engine.builds import ImageResult, PlainListener


def test_live_view_shows_state_step_and_elapsed_time() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=140, color_system=None)
    with LiveListener(["collection", "execution", "stress", "backend"], console) as live:
        live.state("collection", "building")
        live.line("collection", "#7 [deps 2/3] COPY docker/collection_requirements.txt /tmp/requirements.txt")
        live.state("execution", "building")
        live.state("stress", "waiting", "for execution")
        live.state("backend", "built", "1.0s")
    screen = output.getvalue()
    assert "backend" in screen and "built" in screen
    assert "waiting" in screen and "for execution" in screen
    assert "[deps 2/3] COPY docker/collection_requirements.txt" in screen
    assert "s " in screen or "s\n" in screen  # an elapsed time such as "  0.0s"


def test_plain_view_prints_steps_not_noise() -> None:
    lines: list[str] = []
    listener = PlainListener(lines.append)
    listener.state("backend", "building")
    listener.line("backend", "#5 [internal] load build context")
    listener.line("backend", "#9 [app 3/5] COPY . /app")
    listener.line("backend", "#9 DONE 0.1s")
    listener.line("backend", "#9 0.345 Collecting fastapi")
    assert lines == ["[backend] building", "[backend] [app 3/5] COPY . /app"]


def _result(phase: str, state: str, size: int | None, previous: int | None) -> ImageResult:
    return ImageResult(phase, f"shop-{phase}:abc123", (f"shop-{phase}:abc123", f"shop-{phase}:latest"),
                       12.34, state, size, previous, cache_hits=3, steps=9,
                       error_tail=("ERROR: boom",) if state == "failed" else ())


def test_summary_table_and_json() -> None:
    results = [_result("collection", "built", 200 * 2**20, 190 * 2**20),
               _result("backend", "failed", None, None)]
    output = io.StringIO()
    Console(file=output, width=160, color_system=None).print(as_table(results, {}))
    table = output.getvalue()
    assert "shop-collection" in table and "abc123" in table and "200.0 MiB" in table
    assert "+10.0 MiB" in table and "3/9" in table and "12.3s" in table and "failed" in table
    report = as_json(results, {}, None)
    assert report["ok"] is False
    assert report["images"][0]["size_change"] == 10 * 2**20
    assert report["images"][1]["error_tail"] == ["ERROR: boom"]
    assert failures(results, {}) == ["shop-backend:abc123: failed", "    ERROR: boom"]
