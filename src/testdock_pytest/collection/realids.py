"""The node ids of the last real collection, per test file with the file's content hash, kept
beside the memory history (.testdock/collected-ids.json). A real run (the execution image) writes
them; the collection image, whose stand-ins cannot always reproduce a parametrize list computed
from a dependency, lists a file's real ids instead of its own wherever the file is unchanged since."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from testdock_pytest.contract import LIST_ENV, REAL_IDS_FILE, RESULTS_DIR_ENV

IDS_FILE = REAL_IDS_FILE
VERSION = 1


def ids_path(config: pytest.Config) -> Path:
    from testdock_pytest.memory.pertest import history_path

    return history_path(config).parent / IDS_FILE


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:24]
    except OSError:
        return None


def load(path: Path) -> dict[str, dict[str, Any]]:
    """file (relative to the root) -> {"sha256": ..., "ids": [...]}; empty when unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    if not isinstance(data.get("files"), dict):
        return {}
    return {name: entry for name, entry in data["files"].items()
            if isinstance(entry, dict) and isinstance(entry.get("ids"), list)}


def by_file(nodeids: list[str]) -> dict[str, list[str]]:
    files: dict[str, list[str]] = {}
    for nodeid in nodeids:
        files.setdefault(nodeid.split("::", 1)[0], []).append(nodeid)
    return files


def selection(config: pytest.Config) -> str:
    """The run's mark and keyword expressions (its `-m` and `-k`, from the command line or the
    project's addopts): a file's recorded deselection holds for a collection with the same."""
    return json.dumps([config.getoption("markexpr", "") or "", config.getoption("keyword", "") or ""])


class RealIdsRecorder:
    """In a real run: every collected file's ids (before -k or -m deselect any), those the run's
    -m and -k deselected, and the file's hash."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.nodeids: list[str] | None = None
        self.deselected: set[str] = set()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        if any("::" in str(argument) for argument in config.args):
            return  # a part of a file: its entry would be short
        self.nodeids = [item.nodeid for item in items]

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.deselected.update(item.nodeid for item in items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self.nodeids is None:
            return
        config = self.config
        root = config.rootpath
        path = ids_path(config)
        files = load(path)
        chosen = selection(config)
        for name, nodeids in by_file(self.nodeids).items():
            digest = file_hash(root / name)
            if digest is not None:
                files[name] = {"sha256": digest, "ids": nodeids, "selection": chosen,
                               "deselected": [nodeid for nodeid in nodeids if nodeid in self.deselected]}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps({"version": VERSION, "files": files}, separators=(",", ":")),
                                 encoding="utf-8")
            temporary.replace(path)
        except OSError:
            pass  # a read-only or missing history folder: nothing to keep, the run goes on


def with_real_ids(root: Path, path: Path, nodeids: list[str], failed: set[str],
                  skipped: set[str], visited: Sequence[str] = (), chosen: str = "",
                  deselected_here: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """The collection's ids, each unchanged file's taken from the last real collection instead,
    for the files collected here, those skipped as not verifiable with stand-ins, and those it
    went through and found no test in (classes whose bases are stand-ins: `pandas.tests`'
    extension-array suites) (a file that failed with a real error keeps failing: no ids for it);
    and the files whose ids changed. A file's real ids are those its real collection kept where
    that ran with this one's -m and -k (`chosen`: the project's addopts `-m "not slow"`), else
    those this collection did not deselect."""
    known = load(path)
    collected = by_file(nodeids)
    # in the order this collection went through the files
    order = list(dict.fromkeys([*visited, *collected]))
    names = [name for name in order if name in collected or name in known]
    names += [name for name in known if _among(name, skipped) and name not in names]
    result: list[str] = []
    replaced: list[str] = []
    for name in names:
        entry = known.get(name)
        if entry is not None and name not in failed and file_hash(root / name) == entry.get("sha256"):
            dropped = (set(map(str, entry.get("deselected", []))) if entry.get("selection") == chosen
                       else deselected_here)
            ids = [str(nodeid) for nodeid in entry["ids"] if str(nodeid) not in dropped]
            if ids != collected.get(name, []):
                replaced.append(name)
            result += ids
        else:
            result += collected.get(name, [])
    return result, replaced


def _among(name: str, skipped: set[str]) -> bool:
    """Whether the file is one skipped, or under a folder skipped (a conftest the stand-ins broke
    leaves its folder to the real run: "tests", or "." for the whole tree)."""
    return name in skipped or "." in skipped or any(name.startswith(f"{folder.rstrip('/')}/")
                                                     for folder in skipped)


def register(config: pytest.Config, stubbed: bool) -> None:
    """Record in a real collection that testdock runs (a container run, or `testdock collect`),
    in the process that collects (xdist's first worker, or the only process)."""
    if stubbed or not (os.environ.get(RESULTS_DIR_ENV) or os.environ.get(LIST_ENV) == "1"):
        return
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("workerid") != "gw0":
        return
    if config.pluginmanager.has_plugin("xdist") and not workerinput and _distributed(config):
        return  # the controller collects nothing
    config.pluginmanager.register(RealIdsRecorder(config), "testdock-real-ids")


def _distributed(config: pytest.Config) -> bool:
    numprocesses = config.getoption("numprocesses", None)
    return bool(numprocesses) and config.getoption("dist", "no") != "no"
