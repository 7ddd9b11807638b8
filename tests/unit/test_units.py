from __future__ import annotations

import pytest

from testdock_pytest.sizes import format_size, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("512m", 512 * 2**20), ("1g", 2**30), ("1.5GiB", int(1.5 * 2**30)), ("300 MiB", 300 * 2**20),
    ("1048576", 2**20), ("64k", 64 * 1024), ("2T", 2 * 2**40), ("10MB", 10 * 2**20),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1x", "-1g", "1 g b"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_format_size() -> None:
    assert format_size(512) == "512 B"
    assert format_size(300 * 2**20) == "300.0 MiB"
    assert format_size(3 * 2**30 // 2) == "1.5 GiB"
