"""A worker, not the controller, is what the kernel kills at the memory limit.

When a container (or the machine) runs out of memory, the kernel's OOM killer ends the process it
scores highest, mostly by its size: a controller that holds a large suite's reports can outscore
its workers, and its death ends the whole run (xarray's first run in 1 GiB: three workers
replaced, then the controller killed at 56%, 12,068 tests done). Each xdist worker raises its own
score to the most killable (the kernel lets any process raise its own; lowering needs privileges),
and what it starts inherits that: the kernel takes a worker, or a worker's child, whose tests the
controller reports and recovers from, before the controller."""

from __future__ import annotations

from pathlib import Path

OOM_SCORE_ADJ = Path("/proc/self/oom_score_adj")
MOST_KILLABLE = 1000


def volunteer(path: Path = OOM_SCORE_ADJ) -> bool:
    """Make this process the OOM killer's first choice; False where the system has no such score
    (not Linux) or refuses."""
    try:
        path.write_text(str(MOST_KILLABLE))
    except OSError:
        return False
    return True
