"""The one place the plugin reaches past pytest-xdist's public interfaces, because they have no
way to do two things it needs. tests/plugin/test_xdist_internals.py fails loudly when an xdist
upgrade changes either.

- `--dist memory`: xdist fixes the choices of its --dist option, and has no hook to extend them
  (pytest-dev/pytest-xdist#970). The choice is added to the option as xdist declared it, found
  through pytest's public option groups, before the command line is parsed.
- Replacing a worker the scheduler retired (too full to run the next test): xdist starts a new
  worker only for a crashed one; `DSession._clone_node` is its way, and there is no public one
  (pytest-dev/pytest-xdist#363). Crashing the worker instead would spend xdist's restart allowance
  and lose the worker's end-of-session output.
- Not replacing a worker that died collecting the tests beside others: xdist replaces every
  crashed worker at once, with no hook to decline; a one-time `_clone_node` that does nothing.
- Ending a finished worker's process: xdist tears its workers' gateways down only when the whole
  session ends, so a worker that finished early (retired for the memory it keeps) would hold that
  memory, idle, beside its replacement. `WorkerController.ensure_teardown` is xdist's own way.
"""

from __future__ import annotations

from typing import Any

import pytest
import xdist

MEMORY_DIST = "memory"


def is_xdist(plugin: object) -> bool:
    return getattr(plugin, "__name__", "") == "xdist.plugin"


def add_dist_choice(parser: pytest.Parser) -> bool:
    """Let xdist's --dist option accept "memory"; call once xdist's options exist (asking for a
    group that does not exist yet would create it under the wrong title). True when done."""
    for option in parser.getgroup("xdist").options:
        if "--dist" in option.names():
            choices = option.attrs().get("choices")
            if isinstance(choices, list):
                if MEMORY_DIST not in choices:
                    choices.append(MEMORY_DIST)
                return True
    return False


def start_replacement_worker(config: pytest.Config, node: Any) -> None:
    """A fresh worker with `node`'s specification, counted by xdist's session as active."""
    session = config.pluginmanager.get_plugin("dsession")
    clone = getattr(session, "_clone_node", None)
    if not callable(clone):
        raise RuntimeError(f"testdock: pytest-xdist {xdist.__version__} has no DSession._clone_node, "
                           "which --dist memory needs to replace a full worker; run with --dist load "
                           "until testdock supports this xdist")
    clone(node)


def skip_next_replacement(config: pytest.Config) -> None:
    """xdist replaces a crashed worker at once (`DSession.worker_errordown`, right after the
    scheduler's remove_node); let it not, this once: a worker that died collecting the tests,
    beside others collecting them too, died of what they hold together (an OOM kill)."""
    session = config.pluginmanager.get_plugin("dsession")
    if session is None or not callable(getattr(session, "_clone_node", None)):
        return

    def not_this_time(node: Any) -> None:
        del session._clone_node  # the class's own again

    session._clone_node = not_this_time


def end_finished_worker(node: Any) -> None:
    """Let a worker that has finished (its session's end was reported) exit now rather than with
    the session: its process gives back what it kept (execnet waits up to 5 s for the worker's
    last hooks, then interrupts it)."""
    teardown = getattr(node, "ensure_teardown", None)
    if callable(teardown):
        teardown()
