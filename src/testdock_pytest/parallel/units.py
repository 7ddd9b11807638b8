"""Tests that must run on one worker, in their order, under `--dist memory`.

- The items of a document or a notebook (a Sybil document's examples, a notebook's cells under
  nbval): such plugins run a file's items in one namespace (one kernel),
  each example reading what the ones before it defined. Handed out one by one, parsel's
  `docs/usage.rst` failed 21 times with `NameError` on two workers.
- The tests of one `@pytest.mark.xdist_group` (what xdist's `--dist loadgroup` keeps on one
  worker: tests that share a resource, a port or a file). Marks are known to the workers only:
  each writes its collection's groups into a folder the controller passes it, before it reports
  its collection, and the scheduler reads them.
- What the project's own `--dist` asks (its addopts, PYTEST_ADDOPTS): `loadfile` keeps a file's
  tests together, `loadscope` a module's or a class's; testdock's `--dist memory` replaces the
  mode, not the promise the suite was written for.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

# test files whose items share one namespace, each reading what the ones before it defined: a
# document's examples (Sybil, pytest's doctest files), a notebook's cells (nbval); not data-driven
# suites (YAML, JSON), whose cases stand alone
DOCUMENT_SUFFIXES = (".rst", ".md", ".markdown", ".txt", ".ipynb")
GROUPS_INPUT = "testdock_groups"  # the folder, in each worker's workerinput
GROUPS_KEY = pytest.StashKey[str]()

# the project's --dist modes that keep tests together, by what they keep together
_TOGETHER_MODES = ("loadfile", "loadscope")


def project_dist_mode(addopts: Sequence[str]) -> str | None:
    """The last `--dist` the project's own options give (addopts, then $PYTEST_ADDOPTS)."""
    arguments = [*addopts, *shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))]
    mode = None
    for position, argument in enumerate(arguments):
        if argument == "--dist" and position + 1 < len(arguments):
            mode = arguments[position + 1]
        elif argument.startswith("--dist="):
            mode = argument.partition("=")[2]
    return mode


def unit_key(nodeid: str, mode: str | None) -> str | None:
    """The unit the test belongs to; None where it may run anywhere."""
    path, _, rest = nodeid.partition("::")
    if rest and PurePosixPath(path).suffix.lower() in DOCUMENT_SUFFIXES:
        return f"file:{path}"
    if mode == "loadfile":
        return f"file:{path}"
    if mode == "loadscope":
        return f"scope:{nodeid.partition('[')[0].rpartition('::')[0] or path}"
    return None


def units(collection: Sequence[str], mode: str | None,
          groups: dict[int, str] | None = None) -> dict[int, tuple[int, ...]]:
    """Each test of a unit of two or more -> the unit's tests, in the collection's order.
    `groups`: the tests' xdist_group names, by their place in the collection."""
    if mode not in _TOGETHER_MODES:
        mode = None
    groups = groups or {}
    members: dict[str, list[int]] = {}
    for index, nodeid in enumerate(collection):
        key = f"group:{groups[index]}" if index in groups else unit_key(nodeid, mode)
        if key is not None:
            members.setdefault(key, []).append(index)
    found: dict[int, tuple[int, ...]] = {}
    for indices in members.values():
        if len(indices) > 1:
            unit = tuple(indices)
            found.update(dict.fromkeys(unit, unit))
    return found


def describe(collection: Sequence[str], found: dict[int, tuple[int, ...]], mode: str | None) -> str | None:
    """A line for the run's header; None where no test is kept with others."""
    if not found:
        return None
    count = len(set(found.values()))
    example = collection[next(iter(found))].partition("::")[0]
    why = (f"the project's --dist {mode}" if mode in _TOGETHER_MODES
           else "xdist_group marks, or the items of a document or a notebook")
    return (f"testdock: the tests of {count} unit(s) each run on one worker, in their order "
            f"({why}; e.g. {example})")


def group_name(item: pytest.Item) -> str | None:
    """The item's xdist_group, named as xdist's loadgroup names it."""
    names = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
             for mark in item.iter_markers("xdist_group")}
    return "_".join(sorted(names)) if names else None


def make_groups_folder(config: pytest.Config) -> None:
    """On the controller, before the workers start."""
    folder = tempfile.mkdtemp(prefix="testdock-groups-")
    config.stash[GROUPS_KEY] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def pass_groups_folder(config: pytest.Config, node: Any) -> None:
    folder = config.stash.get(GROUPS_KEY, None)
    if folder is not None:
        node.workerinput[GROUPS_INPUT] = folder


class GroupsWriter:
    """In a worker: its collection's groups, written before xdist reports the collection."""

    def __init__(self, folder: str, worker: str) -> None:
        self.path = Path(folder) / f"{worker}.json"

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        groups = {index: name for index, item in enumerate(session.items)
                  if (name := group_name(item)) is not None}
        with contextlib.suppress(OSError):
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(groups), encoding="utf-8")
            partial.replace(self.path)


def register_groups_writer(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None) or {}
    folder = workerinput.get(GROUPS_INPUT)
    if folder:
        config.pluginmanager.register(GroupsWriter(folder, str(workerinput["workerid"])),
                                      "testdock-groups-writer")


def read_groups(config: Any) -> dict[int, str]:
    """On the controller, once the workers' collections came: a worker's groups (they all
    collected the same tests)."""
    folder = config.stash.get(GROUPS_KEY, None) if hasattr(config, "stash") else None
    if folder is None:
        return {}
    for path in sorted(Path(folder).glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            return {int(index): str(name) for index, name in json.loads(path.read_text("utf-8")).items()}
    return {}
