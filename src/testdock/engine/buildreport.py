"""The end-of-build summary: one table (or JSON) of images, sizes, times, cache hits, results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from testdock.engine.builds import ImageResult
from testdock.engine.cleanup import CleanupReport
from testdock.engine.healthtests import HealthResult
from testdock_pytest.sizes import format_size


def _change(result: ImageResult) -> str:
    change = result.size_change
    if change is None:
        return "new" if result.ok else "-"
    if change == 0:
        return "same"
    return ("+" if change > 0 else "-") + format_size(abs(change))


def rows(results: Sequence[ImageResult], health: dict[str, HealthResult]) -> list[dict[str, Any]]:
    table: list[dict[str, Any]] = []
    for result in results:
        repository, _, tag = result.image.rpartition(":")
        check = health.get(result.image)
        table.append({
            "phase": result.phase, "image": repository, "tag": tag, "tags": list(result.tags),
            "platform": result.platform or None,
            "size": result.size, "size_change": result.size_change,
            "seconds": round(result.seconds, 2), "cache_hits": result.cache_hits,
            "steps": result.steps, "result": result.state, "pushed": list(result.pushed),
            "health": None if check is None else {"ok": check.ok, "detail": check.detail},
            "error_tail": list(result.error_tail),
            "peak_memory": result.peak_memory, "oom_step": result.oom_step or None,
            "retried_alone": result.retried,
        })
    return table


def as_json(results: Sequence[ImageResult], health: dict[str, HealthResult],
            cleanup: CleanupReport | None) -> dict[str, Any]:
    return {
        "images": rows(results, health),
        "cleanup": None if cleanup is None else {"removed": cleanup.removed, "kept": cleanup.kept,
                                                 "refused": cleanup.refused},
        "ok": all(r.ok for r in results) and all(h.ok for h in health.values()),
    }


def as_table(results: Sequence[ImageResult], health: dict[str, HealthResult]) -> Table:
    table = Table(title="testdock build", title_justify="left")
    for column, justify in (("image", "left"), ("tag", "left"), ("size", "right"),
                            ("change", "right"), ("time", "right"), ("cache hits", "right"),
                            ("memory", "right"), ("result", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in results:
        repository, _, tag = result.image.rpartition(":")
        outcome = result.state
        if result.retried:
            outcome += ", alone after an OOM kill"
        if result.pushed:
            outcome += ", pushed"
        check = health.get(result.image)
        if check is not None:
            outcome += ", health ok" if check.ok else ", health FAILED"
        style = "green" if result.ok and (check is None or check.ok) else "red"
        table.add_row(repository, tag, format_size(result.size) if result.size is not None else "-",
                      _change(result), f"{result.seconds:.1f}s",
                      f"{result.cache_hits}/{result.steps}" if result.steps else "-",
                      format_size(result.peak_memory) if result.peak_memory else "-",
                      f"[{style}]{outcome}[/{style}]")
    return table


def failures(results: Sequence[ImageResult], health: dict[str, HealthResult]) -> list[str]:
    """Lines explaining what failed: the tail of each failing build, each failed health test."""
    lines: list[str] = []
    for result in results:
        if not result.ok:
            lines.append(f"{result.image}: {result.state}")
            lines += [f"    {line}" for line in result.error_tail]
    for check in health.values():
        if not check.ok:
            lines.append(f"{check.image}: health test failed: {check.detail}")
    return lines
