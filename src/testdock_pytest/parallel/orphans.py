"""The processes a crashed worker leaves behind end with it.

A test that starts processes (a multiprocessing pool: sqlglot's executor tests) leaves them
running when the kernel kills its worker at the memory limit: they hold what they held (200 MiB
each there), and every fresh worker started in their place was killed in turn, 33 of them in a
row. Under `--dist memory`, where no one types at a terminal (a container's run, a CI job), each
worker leads its own process group, which its children join, and tells the controller its process
id through a folder the controller made; when a worker crashes, the controller ends what is left
of its group before xdist starts the replacement. At a terminal the workers stay in the
controller's group, where its Ctrl-C and job control reach them. A controller killed outright takes
its workers with it all the same (execnet's worker ends when its channel to the controller closes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

FOLDER_INPUT = "testdock_worker_pids"  # the folder, in each worker's workerinput
FOLDER_KEY = pytest.StashKey[str]()


def make_folder(config: pytest.Config) -> None:
    """On the controller, before the workers start. Only where no one types at a terminal: there
    the terminal's Ctrl-C and job control reach the workers' group, as they should (a container
    run, a CI job and testdock's own runs have none)."""
    if not hasattr(os, "setpgid") or _at_a_terminal():
        return
    folder = tempfile.mkdtemp(prefix="testdock-workers-")
    config.stash[FOLDER_KEY] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def _at_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False


def pass_folder(config: pytest.Config, node: Any) -> None:
    """On the controller, for each worker it starts (replacements too): where to say its pid.
    Through the worker's input, not the environment, which a run nested in a test would inherit."""
    folder = config.stash.get(FOLDER_KEY, None)
    if folder is not None:
        node.workerinput[FOLDER_INPUT] = folder


def lead_own_group(config: pytest.Config) -> None:
    """In a worker: lead a process group of its own, and say which."""
    workerinput = getattr(config, "workerinput", None) or {}
    folder = workerinput.get(FOLDER_INPUT)
    if not folder or not hasattr(os, "setpgid"):
        return
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
        (Path(folder) / str(workerinput["workerid"])).write_text(str(os.getpid()), encoding="ascii")


def _left_in(group: int) -> int:
    """How many live processes besides its leader (the dead worker, a zombie until reaped) the
    group holds, by the kernel's /proc; 0 where that is not known."""
    count = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # after the command: state, ppid, pgrp
        if len(fields) > 2 and int(fields[2]) == group and int(entry.name) != group and fields[0] != b"Z":
            count += 1
    return count


def end_left_processes(config: pytest.Config, node: Any) -> int:
    """On the controller, once `node`'s worker crashed: end the processes left in its group.
    Returns how many there were."""
    folder = config.stash.get(FOLDER_KEY, None)
    worker = getattr(getattr(node, "gateway", None), "id", None)
    if folder is None or worker is None:
        return 0
    try:
        group = int((Path(folder) / str(worker)).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return 0
    left = _left_in(group)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signal.SIGKILL)  # none left: a group ends with its last process
    return left
