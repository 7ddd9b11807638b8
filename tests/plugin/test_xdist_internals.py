"""What testdock relies on beyond xdist's public interfaces (testdock_pytest/parallel/xdist_internals.py):
these fail loudly, with what changed, when an xdist or pytest upgrade breaks it."""

from __future__ import annotations

import inspect

import pytest
from xdist.dsession import DSession
from xdist.workermanage import WorkerController


def test_xdist_still_clones_a_node_the_way_the_replacement_of_a_full_worker_needs() -> None:
    assert list(inspect.signature(DSession._clone_node).parameters) == ["self", "node"]
    source = inspect.getsource(DSession._clone_node)
    assert "setup_node" in source and "_active_nodes.add" in source
    # a worker that finished cleanly (the scheduler retired it) reaches the scheduler's remove_node
    assert "self.sched.remove_node(node)" in inspect.getsource(DSession.worker_workerfinished)
    # a crashed worker reaches the scheduler's remove_node before xdist replaces it, so that the
    # scheduler can decline its replacement (a worker that died collecting beside others)
    errordown = inspect.getsource(DSession.worker_errordown)
    assert errordown.index("self.sched.remove_node(node)") < errordown.index("self._clone_node(node)")
    # a finished worker's process ends when asked, before the session's end
    assert callable(getattr(WorkerController, "ensure_teardown", None))
    assert "gateway.exit()" in inspect.getsource(WorkerController.ensure_teardown)
    assert "self.workeroutput = " in inspect.getsource(WorkerController.process_from_remote)


@pytest.mark.parametrize("load", [["-p", "testdock_pytest.plugin", "-p", "xdist.plugin"],
                                  ["-p", "xdist.plugin", "-p", "testdock_pytest.plugin"]])
def test_dist_accepts_memory_whichever_plugin_loads_first(pytester: pytest.Pytester,
                                                          load: list[str]) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:testdock", "-p", "no:xdist", *load, "--help")
    assert result.ret == 0, result.stderr.str()
    help_text = result.stdout.str()
    assert "distributed and subprocess testing" in help_text  # xdist's group kept its own title
    ran = pytester.runpytest_subprocess("-p", "no:testdock", "-p", "no:xdist", *load,
                                        "-n", "1", "--dist", "memory")
    ran.assert_outcomes(passed=1)  # a choice xdist does not know is a usage error (exit 4)
