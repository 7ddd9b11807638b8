"""Scheduler benchmark (issue 18): what `--dist memory` costs the controller per test, on suites
of 1,000 to 20,000 tests, with no history (a first run) and with one (every test known).

The controller is one of the run's processes: on a 2-CPU machine its time is taken from the
workers. This drives the real scheduler and memory model with two stand-in workers (they finish
each test at once, reporting 1 MiB of growth), so only the scheduling is measured, no pytest.

    python bench/scheduler.py [--tests 1000,5000,20000]

Per row: the seconds the scheduling took, microseconds a test, and how many times a test's
expected growth was looked up per test (a step walking every pending test shows here as a count
growing with the suite).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from testdock_pytest.parallel.model import MemoryModel
from testdock_pytest.parallel.scheduler import MemoryScheduling

MiB = 2**20


class Worker:
    """Stands in for xdist's WorkerController: takes what it is sent."""

    def __init__(self, name: str) -> None:
        self.shutting_down = False
        self.gateway = type("Gateway", (), {"id": name})()

    def send_runtest_some(self, indices: list[int]) -> None:
        pass

    def shutdown(self) -> None:
        self.shutting_down = True


class Config:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.pluginmanager = type("Manager", (), {"get_plugin": lambda self, name: None})()

    def getvalue(self, name: str) -> object:
        return self.getoption(name)

    def getoption(self, name: str) -> object:
        return {"tx": [f"{self.workers}*popen"], "maxschedchunk": None}.get(name)


def drive(collection: list[str], history: bool) -> tuple[float, int]:
    """(seconds, growth lookups) to schedule the whole collection on two workers."""
    expected = {nodeid: (1 * MiB, 0.001) for nodeid in collection} if history else {}
    model = MemoryModel(2048 * MiB, 0.1, 60 * MiB, expected, 10 * MiB)
    lookups = [0]
    growth = model.growth

    def counted(nodeid: str) -> int:
        lookups[0] += 1
        return growth(nodeid)

    model.growth = counted  # type: ignore[method-assign]
    sched = MemoryScheduling(Config(2), None, model)
    workers: list[Any] = [Worker("gw0"), Worker("gw1")]
    started = time.perf_counter()
    for worker in workers:
        sched.add_node(worker)
        sched.add_node_collection(worker, collection)
    sched.schedule()
    while not sched.tests_finished:
        # a worker finishes its running test once it has a successor queued (or was shut down)
        worker = next(w for w in workers if sched.node2pending[w]
                      and (len(sched.node2pending[w]) > 1 or w.shutting_down))
        index = sched.node2pending[worker][0]
        model.observe(worker, collection[index], 1 * MiB, 100 * MiB)
        sched.mark_test_complete(worker, index)
    return time.perf_counter() - started, lookups[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", default="1000,5000,20000", help="suite sizes, comma-separated")
    sizes = [int(value) for value in parser.parse_args().tests.split(",")]
    print(f"{'tests':>7} {'history':>8} {'seconds':>8} {'us a test':>10} {'lookups a test':>15}")
    for size in sizes:
        # 50 tests a module, half of them parametrizations of a few functions
        collection = [f"tests/test_m{i // 50}.py::test_f{i}" if i % 2 else
                      f"tests/test_m{i // 50}.py::test_p{i // 10}[{i}]" for i in range(size)]
        for history in (False, True):
            seconds, lookups = drive(collection, history)
            print(f"{size:>7} {'yes' if history else 'no':>8} {seconds:>8.2f} "
                  f"{seconds / size * 1e6:>10.0f} {lookups / size:>15.1f}")


if __name__ == "__main__":
    main()
