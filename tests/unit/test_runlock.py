"""One run of a project at a time: a second waits, saying so, and goes on when the first ends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from testdock.run.lock import lock_path, one_run_at_a_time
from tests.conftest import REPO

_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from testdock.run.lock import one_run_at_a_time
    with one_run_at_a_time(Path(sys.argv[1]), "run execution", print):
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def test_a_second_run_waits_for_the_first_and_says_why(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), "1.5"], cwd=REPO,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        said: list[str] = []
        started = time.monotonic()
        with one_run_at_a_time(tmp_path, "run backend", said.append):
            waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.communicate()
    assert waited > 0.5  # it held the lock for 1.5 s after saying so
    assert len(said) == 1 and "another testdock run of" in said[0] and "waits for it" in said[0]


def test_nested_runs_in_one_process_do_not_wait_and_other_projects_are_free(tmp_path: Path) -> None:
    said: list[str] = []
    with one_run_at_a_time(tmp_path / "a", "run backend", said.append), \
            one_run_at_a_time(tmp_path / "a", "run execution", said.append), \
            one_run_at_a_time(tmp_path / "b", "run execution", said.append):
        pass
    assert said == []
    assert lock_path(tmp_path / "a") != lock_path(tmp_path / "b")
    assert not str(lock_path(tmp_path / "a")).startswith(str(tmp_path))  # out of every container's reach
