"""The per-test probe: its inline /proc reads agree with the slower general functions, it falls
back to them where the fast way fails, and a forked child reads its own process."""

from __future__ import annotations

import mmap
import os
import platform
import sys
from pathlib import Path

import pytest

from testdock_pytest.memory.measure import (
    Probe,
    current_rss,
    private_and_file_memory,
    release_memory,
    storage_bytes,
)

MiB = 2**20

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads Linux's /proc")


def test_fast_readings_agree_with_the_general_functions() -> None:
    probe = Probe()
    rss, waited, read, written = probe.start()
    assert abs(rss - current_rss()) < 4 * MiB
    assert waited >= 0 and (read, written) <= storage_bytes()
    data = bytearray(64 * MiB)  # touched: resident
    peak, rss_now, waited_after, *_ = probe.read()
    assert peak >= rss + 60 * MiB and abs(rss_now - current_rss()) < 4 * MiB
    assert waited_after >= waited
    del data
    probe.stop()


def test_own_memory_and_the_files_pages_split_the_rss() -> None:
    """What the process allocated is its own; the pages of a file it maps (as it maps its shared
    libraries) are apart, shared with every process mapping the same file: the probe says both at
    a test's start and end."""
    own, files = private_and_file_memory()
    assert files > 0 and abs(own + files - current_rss()) < 4 * MiB
    probe = Probe()
    probe.start()
    data = bytearray(64 * MiB)
    with Path(sys.executable).open("rb") as binary:
        mapped = mmap.mmap(binary.fileno(), 0, access=mmap.ACCESS_READ)
        touched = sum(mapped[offset] for offset in range(0, len(mapped), 4096))  # resident now
        probe.read()
        assert probe.files_now >= probe.files_at_start and touched >= 0
        own_now, files_now = private_and_file_memory()
        assert own_now >= own + 60 * MiB and abs(files_now - probe.files_now) < 4 * MiB
        mapped.close()
    del data
    probe.stop()


def test_the_peak_is_reset_by_start() -> None:
    probe = Probe()
    probe.start()
    data = bytearray(80 * MiB)
    high = probe.read()[0]
    del data
    baseline = probe.start()[0]
    assert probe.read()[0] < high - 60 * MiB
    assert probe.read()[0] >= baseline - MiB


def test_when_the_fast_way_fails_the_general_functions_answer() -> None:
    probe = Probe()
    probe.start()
    os.close(probe._files[0])  # type: ignore[index]  # a read that fails: the probe falls back
    peak, rss, *_ = probe.read()
    assert probe._files is None
    assert abs(rss - current_rss()) < 4 * MiB and peak >= rss - MiB
    start = probe.start()  # and go on answering
    assert abs(start[0] - current_rss()) < 4 * MiB


def test_a_forked_child_reads_its_own_process() -> None:
    probe = Probe()
    probe.start()
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child grows by 100 MiB; readings through the parent's files would not see it
        before = probe.start()[0]
        data = bytearray(100 * MiB)
        os.write(writer, str(probe.read()[1] - before).encode())
        del data
        os._exit(0)
    os.close(writer)
    grown = int(os.read(reader, 64))
    os.waitpid(pid, 0)
    assert grown >= 90 * MiB


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc_trim")
def test_freed_memory_scattered_through_the_heap_is_given_back() -> None:
    """Blocks under glibc's mmap threshold come from the heap; freed, with a live block above
    them, their pages stay in the process's RSS until malloc_trim gives them back."""
    blocks = [b"x" * (100 * 1024) for _ in range(2000)]  # 200 MiB, written: resident
    pinned = blocks[-1]
    before = current_rss()
    del blocks
    freed = current_rss()
    release_memory()
    after = current_rss()
    assert len(pinned) == 100 * 1024
    assert before - after > 150 * MiB, (before, freed, after)
