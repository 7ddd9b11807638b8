"""One parser and one formatter for memory sizes, used by settings, flags and reports."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str) -> int:
    """Bytes in a size such as "512m", "1g", "1.5GiB", "300 MiB" or "1048576".

    Docker's suffixes (k, m, g) and the binary ones (KiB, MiB...) both mean powers of 1024,
    as `docker run --memory` reads them.
    """
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use a number with k, m, g or t, e.g. '512m', '1g')")
    number, prefix, _ = match.groups()
    return int(float(number) * 1024 ** _POWERS[prefix.lower()])


def format_size(size: int) -> str:
    """A size for humans: "512.0 MiB", "1.50 GiB"."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"
