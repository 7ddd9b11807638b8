"""A run's records beside the history: a live run's are never taken, a dead run's are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from testdock_pytest.memory.history import RecordWriter, load_history
from testdock_pytest.memory.unfinished import RUNS_DIR, RunFolder, recover
from tests.conftest import REPO


def _measured(folder: Path, nodeid: str) -> None:
    writer = RecordWriter(folder, "gw0")
    writer.add(nodeid, "gw0", 100, 300, 0, 0.5, "passed", 0.1, 0, 0)
    writer.write_startup(1.5, 50, collection=0.4)
    writer.close()


def test_a_live_runs_records_stay_and_a_dead_runs_are_recovered_once(tmp_path: Path) -> None:
    history = tmp_path / ".testdock" / "memory-history.json"
    live = RunFolder.open(history)
    _measured(live.path, "test_a.py::test_live")
    # a controller that dies with its folder open: the kernel releases its lock
    dying = ("import sys; from pathlib import Path; from testdock_pytest.memory.unfinished import RunFolder; "
             "from tests.unit.test_unfinished import _measured; "
             "_measured(RunFolder.open(Path(sys.argv[1])).path, 'test_a.py::test_dead'); "
             "import os; os._exit(0)")
    subprocess.run([sys.executable, "-c", dying, str(history)], check=True, cwd=REPO)
    (dead,) = [path for path in (history.parent / RUNS_DIR).iterdir() if path != live.path]

    assert recover(history, keep=5) == 1
    recorded = load_history(history)
    assert list(recorded["tests"]) == ["test_a.py::test_dead"]
    assert recorded["tests"]["test_a.py::test_dead"]["runs"][0][:2] == [200, 300]
    assert recorded["worker_start"] == [1.5] and recorded["worker_collection"] == [0.4]
    assert recorded["unfinished"] is True  # what killed it is not known: no serial plan next
    assert not dead.exists() and live.path.is_dir()
    assert recover(history, keep=5) == 0  # the live one is never taken, the dead one is gone

    live.close()
    assert not (history.parent / RUNS_DIR).exists()  # made by the live run, empty: removed
    assert json.loads(history.read_text())["run"] == 1


def test_a_history_that_cannot_be_written_beside_gets_a_temporary_folder(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    folder = RunFolder.open(blocked / "memory-history.json")
    assert folder.path.is_dir() and not folder.path.is_relative_to(tmp_path)
    assert recover(blocked / "memory-history.json", keep=5) == 0
    folder.close()
    assert not folder.path.exists()


def test_a_run_leaves_no_folder_it_made_for_its_records(tmp_path: Path) -> None:
    history = tmp_path / ".testdock" / "memory-history.json"
    folder = RunFolder.open(history)
    folder.close()
    assert list(tmp_path.iterdir()) == []
    history.parent.mkdir()
    history.write_text("{}")
    folder = RunFolder.open(history)
    folder.close()
    assert [path.name for path in history.parent.iterdir()] == ["memory-history.json"]
