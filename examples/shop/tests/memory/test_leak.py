"""A slow leak on purpose: each run keeps ~8 MiB of touched bytes alive."""
import pytest

MiB = 1024 * 1024
PAGE = 4096
LEAK_MIB = 8

_retained: list[bytearray] = []


@pytest.mark.leak
@pytest.mark.parametrize("round_", range(3))
def test_slow_leak(round_):
    buf = bytearray(LEAK_MIB * MiB)
    buf[::PAGE] = b"x" * len(range(0, len(buf), PAGE))
    _retained.append(buf)
    assert len(_retained) >= 1
    assert sum(len(b) for b in _retained) >= LEAK_MIB * MiB
