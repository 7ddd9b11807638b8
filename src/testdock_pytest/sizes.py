"""Memory sizes, read and written one way by everything: settings, flags, reports, the plugin.
Standard library only, so that the host imports it too."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in "512m", "1g", "1.5GiB", "300 MiB" (powers of 1024, as Docker reads them)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. '512m', '1g', '300 MiB')")
    number, prefix, _ = match.groups()
    return int(float(number) * 1024 ** "_kmgt".index(prefix.lower() or "_"))


def format_size(size: float) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.2f} TiB"
