"""Poetry's dependency tables turned into PEP 508 requirement strings."""

from __future__ import annotations

import re
from typing import Any

from packaging.version import InvalidVersion, Version

from testdock.errors import BadInput

_VERSION = re.compile(r"^\d+(?:\.\d+)*$")


def _release(version: str) -> list[int]:
    """The numeric release part of a version: "2.0.0b1" -> [2, 0, 0]."""
    return list(Version(version).release)


def _is_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return bool(re.match(r"^\d", text))


def _bump(parts: list[int], index: int) -> str:
    bumped = [*parts[:index], parts[index] + 1]
    return ".".join(str(p) for p in bumped)


def _single(constraint: str) -> str:
    constraint = constraint.strip()
    if constraint in ("", "*"):
        return ""
    if constraint.startswith("^"):
        version = constraint[1:].strip()
        parts = _release(version)
        first_nonzero = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        return f">={version},<{_bump(parts, first_nonzero)}"
    if constraint.startswith("~") and not constraint.startswith("~="):
        version = constraint[1:].strip()
        parts = _release(version)
        return f">={version},<{_bump(parts, 1 if len(parts) > 1 else 0)}"
    if constraint.endswith(".*") and _VERSION.match(constraint[:-2]):
        return f"=={constraint}"
    if _is_version(constraint):
        return f"=={constraint}"
    return constraint.replace(" ", "")


def constraint_to_specifier(constraint: str, where: str) -> str:
    """PEP 440 specifier for a Poetry constraint: "^1.2" -> ">=1.2,<2", "~1.2.3" -> ">=1.2.3,<1.3"."""
    if "||" in constraint or " or " in constraint:
        # PEP 440 has no "or": keep the first alternative, the one Poetry itself would try first.
        constraint = re.split(r"\|\||\bor\b", constraint)[0]
    try:
        pieces = [_single(p) for p in re.split(r",|\s+(?=[<>=!~^])", constraint.strip()) if p]
    except (ValueError, InvalidVersion):
        raise BadInput(f"{where}: cannot read Poetry constraint {constraint!r}") from None
    return ",".join(p for p in pieces if p)


def dependency_to_requirement(name: str, spec: Any, where: str) -> str | None:
    """One entry of a Poetry dependency table as a PEP 508 string; None for path dependencies."""
    if isinstance(spec, list):  # multiple-constraint dependency: take the first
        spec = spec[0] if spec else "*"
    if isinstance(spec, str):
        return f"{name}{constraint_to_specifier(spec, where)}"
    if not isinstance(spec, dict):
        raise BadInput(f"{where}: dependency {name!r} must be a string or a table")
    if "path" in spec:
        return None
    extras = spec.get("extras") or []
    extras_text = f"[{','.join(extras)}]" if extras else ""
    markers: list[str] = []
    if spec.get("markers"):
        markers.append(str(spec["markers"]))
    if spec.get("python"):
        python_spec = constraint_to_specifier(str(spec["python"]), where)
        markers += [f'python_version {p[:2] if p[1] == "=" else p[0]} "{p.lstrip("<>=!~")}"'
                    for p in python_spec.split(",") if p]
    marker_text = f"; {' and '.join(markers)}" if markers else ""
    if "git" in spec:
        ref = spec.get("rev") or spec.get("tag") or spec.get("branch")
        url = f"git+{spec['git']}" + (f"@{ref}" if ref else "")
        return f"{name}{extras_text} @ {url}{marker_text}"
    if "url" in spec:
        return f"{name}{extras_text} @ {spec['url']}{marker_text}"
    version = constraint_to_specifier(str(spec.get("version", "*")), where)
    return f"{name}{extras_text}{version}{marker_text}"
