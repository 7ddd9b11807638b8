"""Tests that briefly allocate a known amount of memory (150, 250, 300 MiB).

Every page is written, so the memory is really resident (not just reserved):
under a container memory limit below ~300 MiB + interpreter, these get killed.
"""
import pytest

MiB = 1024 * 1024
PAGE = 4096

pytestmark = pytest.mark.memory


def touch(n: int) -> bytearray:
    buf = bytearray(n)
    buf[::PAGE] = b"x" * len(range(0, n, PAGE))
    return buf


@pytest.mark.parametrize("mib", [150, 250, 300])
def test_allocate(mib):
    buf = touch(mib * MiB)
    try:
        assert len(buf) == mib * MiB
        assert buf[0] == ord("x") and buf[PAGE] == ord("x") and buf[-1] == 0
        assert buf.count(b"x", 0, 64 * PAGE) == 64
    finally:
        del buf
