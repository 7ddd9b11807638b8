"""What the host (testdock) and the plugin (testdock_pytest) agree on, importable by both with the
standard library alone: testdock runs where pytest is not installed (a CI job's bare venv), so the
host imports this module, never one of the plugin's modules that need pytest."""

from __future__ import annotations

# `testdock collect` and `testdock shard` set LIST_ENV=1 and read these lines from pytest's output
LIST_ENV = "TESTDOCK_LIST_COLLECTED"
NODEID_PREFIX = "TESTDOCK-NODEID "
ERROR_PREFIX = "TESTDOCK-ERROR "

# a leak suspect is confirmed when every counted re-run keeps at least this much: a leak, not noise
LEAK_CONFIRM_FLOOR = 512 * 1024


def leak_confirmed(kept: list[int]) -> bool:
    """Whether the bytes each re-run of a suspect kept (`kept`) confirm a leak."""
    return bool(kept) and all(value >= LEAK_CONFIRM_FLOOR for value in kept)
