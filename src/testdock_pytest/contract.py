"""What the host (testdock) and the plugin (testdock_pytest) agree on, importable by both with the
standard library alone: testdock runs where pytest is not installed (a CI job's bare venv), so the
host imports this module, never one of the plugin's modules that need pytest.

Machine-readable output is JSON with a version: the host never reads the plugin's wording."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

VERSION = 1  # of every record below; a host refuses a newer one rather than misread it

# environment the host sets for the plugin
LIST_ENV = "TESTDOCK_LIST_COLLECTED"  # "1": print the collection record
RESULTS_DIR_ENV = "TESTDOCK_RESULTS_DIR"  # where progress events and memory results go
HISTORY_ENV = "TESTDOCK_HISTORY"  # the memory history's path, when not the default

# files, in the results folder
PROGRESS_FILE = "testdock-progress.jsonl"
MEMORY_REPORT_FILE = "memory.json"
HISTORY_FILE = "memory-history.json"  # in .testdock/ by default
REAL_IDS_FILE = "collected-ids.json"  # beside it: the last real collection's ids, per test file

# image and container labels
LABEL_MANAGED = "io.testdock.managed"
LABEL_PROJECT = "io.testdock.project"
LABEL_PHASE = "io.testdock.phase"
LABEL_RUN = "io.testdock.run"
LABEL_VERSION = "io.testdock.version"

COLLECTION_PREFIX = "TESTDOCK-COLLECTION "  # one line on stdout, then the record as JSON

# a leak suspect is confirmed when every counted re-run keeps at least this much: a leak, not noise
LEAK_CONFIRM_FLOOR = 512 * 1024


def leak_confirmed(kept: list[int]) -> bool:
    """Whether the bytes each re-run of a suspect kept (`kept`) confirm a leak."""
    return bool(kept) and all(value >= LEAK_CONFIRM_FLOOR for value in kept)


class NewerContract(ValueError):
    """A record written by a newer plugin than this host knows."""


@dataclass
class CollectionRecord:
    """What a collection found: its node ids, the files that failed to collect (with the
    project's own files in each error's traceback), and what the stubs did."""

    nodeids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_frames: dict[str, list[str]] = field(default_factory=dict)
    stubbed: list[str] = field(default_factory=list)  # modules the stubs stood in for
    left_missing: list[str] = field(default_factory=list)  # optional modules left missing
    predicted: list[str] = field(default_factory=list)  # ids the stubs say will differ, and why
    # files that failed only because of the stand-ins (skipped, left to the real run): node id -> why
    unverifiable: dict[str, str] = field(default_factory=dict)
    # files whose ids are the last real collection's (unchanged since): the stand-ins' differed
    from_real_run: list[str] = field(default_factory=list)
    version: int = VERSION

    def line(self) -> str:
        return COLLECTION_PREFIX + json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> CollectionRecord:
        data: dict[str, Any] = json.loads(line.removeprefix(COLLECTION_PREFIX))
        if int(data.get("version", 0)) > VERSION:
            raise NewerContract(f"collection record version {data.get('version')}, this testdock "
                                f"reads up to {VERSION}")
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)
