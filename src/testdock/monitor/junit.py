"""A JUnit file from progress events, for runs killed before pytest could write its own."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from testdock.safepaths import write_atomically


def junit_from_progress(progress_file: Path, target: Path, killed_tests: list[str], reason: str) -> int:
    """Write `target` with every finished test and the killed ones as errors; returns the count."""
    finished: dict[str, tuple[str, float]] = {}
    started: dict[str, float] = {}
    try:
        lines = progress_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        nodeid = event.get("nodeid")
        if event.get("event") == "start" and nodeid:
            started[nodeid] = float(event.get("ts", 0))
        elif event.get("event") == "finish" and nodeid:
            duration = float(event.get("ts", 0)) - started.get(nodeid, float(event.get("ts", 0)))
            finished[nodeid] = (str(event.get("outcome", "passed")), duration)
    suite = ElementTree.Element("testsuite", name="testdock", tests=str(len(finished) + len(killed_tests)),
                                failures=str(sum(1 for o, _ in finished.values() if o == "failed")),
                                errors=str(len(killed_tests)))
    for nodeid, (outcome, duration) in finished.items():
        case = _case(suite, nodeid, duration)
        if outcome == "failed":
            ElementTree.SubElement(case, "failure", message="failed (details lost with the run)")
    for nodeid in killed_tests:
        case = _case(suite, nodeid, 0.0)
        ElementTree.SubElement(case, "error", message=reason)
    root = ElementTree.Element("testsuites")
    root.append(suite)
    write_atomically(target, ElementTree.tostring(root, encoding="unicode", xml_declaration=True))
    return len(finished) + len(killed_tests)


def _case(suite: ElementTree.Element, nodeid: str, duration: float) -> ElementTree.Element:
    path, _, name = nodeid.partition("::")
    classname = path.removesuffix(".py").replace("/", ".")
    return ElementTree.SubElement(suite, "testcase", classname=classname, name=name or path,
                                  time=f"{max(0.0, duration):.3f}")
