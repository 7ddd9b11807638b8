"""`testdock collect`: collect the tests in the collection image (imports stubbed) and, with
--compare, in the execution image too, and list the node ids that differ."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testdock import engine
from testdock.errors import BadInput
from testdock.images.phases import memory_limit
from testdock.run.phase import HISTORY_DIR, writable_folder
from testdock.validation import check_tag
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.contract import (
    COLLECTION_PREFIX,
    LABEL_RUN,
    LIST_ENV,
    REAL_IDS_FILE,
    RESULTS_DIR_ENV,
    CollectionRecord,
    NewerContract,
)
from testdock_pytest.sizes import parse_size

if TYPE_CHECKING:
    import docker

# Runs pytest --collect-only in a child and reports its wall time and peak RSS as a last line. The
# plugin lists what was collected in its own lines (LIST_ENV), and --color=no comes
# after the project's addopts: `-v` or `--color=yes` there reshape pytest's own listing. xdist
# stays loaded (it does nothing when collecting only): addopts may say `--numprocesses=auto`
# (yarl's), which `-p no:xdist` turns into a usage error.
_MEASURED = (
    "import json, os, resource, subprocess, sys, time\n"
    "started = time.monotonic()\n"
    "code = subprocess.call([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider',"
    " '--collect-only', '-q', '--color=no', *sys.argv[1:]],"
    f" env={{**os.environ, {LIST_ENV!r}: '1'}})\n"
    "print('TESTDOCK-COLLECT ' + json.dumps({'code': code, 'seconds': time.monotonic() - started,"
    " 'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n"
    "sys.exit(code)\n")
_COLLECTION_FLAGS = ("--assert=plain", "--no-cov", "--junitxml=")
_ERROR_HEADING = re.compile(r"^_+ ERROR collecting (\S+) _+$")
_CONFTEST_FAILURE = re.compile(r"^\w+Error while loading conftest '([^']+)'")
_PROJECT_FRAME = re.compile(r"^([^/<\s][^:\s]*\.py):\d+: in ")  # relative: the project's, not /opt/venv's


@dataclass
class Collection:
    phase: str
    image: str
    exit_code: int
    nodeids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stubbed: list[str] = field(default_factory=list)
    left_missing: list[str] = field(default_factory=list)  # optional modules missing here as there
    predicted: list[str] = field(default_factory=list)  # differences the stubs announce
    unstable: list[str] = field(default_factory=list)  # ids another collection here did not repeat
    # files that failed only because of the stand-ins (the real run collects them): file -> why
    unverifiable: dict[str, str] = field(default_factory=dict)
    from_real_run: list[str] = field(default_factory=list)  # files listed with the last real run's ids
    # the project's files in each collection error's traceback (relative paths), by error
    error_frames: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    peak_rss: int = 0
    output: str = ""


def parse_output(phase: str, image: str, output: str) -> Collection:
    """A collection's result: the plugin's versioned record where the image's plugin printed one;
    else (pytest stopped before collecting, at a broken conftest) what pytest itself printed."""
    result = Collection(phase, image, -1, output=output)
    record: CollectionRecord | None = None
    for line in output.splitlines():
        if line.startswith("TESTDOCK-COLLECT "):
            figures: dict[str, Any] = json.loads(line.removeprefix("TESTDOCK-COLLECT "))
            result.exit_code = int(figures["code"])
            result.seconds = float(figures["seconds"])
            result.peak_rss = int(figures["rss"])
        elif line.startswith(COLLECTION_PREFIX):
            try:
                record = CollectionRecord.from_line(line)
            except NewerContract as error:
                raise BadInput(f"{image}: {error}; upgrade testdock, or rebuild the image with this "
                               "one (`testdock build`)") from None
    if record is not None:
        result.nodeids, result.errors = record.nodeids, record.errors
        result.error_frames = record.error_frames
        result.stubbed, result.left_missing = record.stubbed, record.left_missing
        result.predicted = record.predicted
        result.unverifiable = record.unverifiable
        result.from_real_run = record.from_real_run
        return result
    _read_pytest_output(result, output)
    return result


def stopped_before_collecting(collection: Collection) -> str | None:
    """Why pytest stopped before it collected anything (a plugin that fails to load, a usage
    error: exit 3 or 4 with no id and no error listed): its last error line; None otherwise."""
    if collection.exit_code not in (3, 4) or collection.nodeids or collection.errors:
        return None
    lines = [line.strip() for line in collection.output.splitlines()
             if line.strip() and not line.startswith(("TESTDOCK-", "WARNING: IPv4"))]
    raised = [line.removeprefix("E").strip() for line in lines if line.startswith("E ")]
    return (raised or lines or ["no output"])[-1]


def _read_pytest_output(result: Collection, output: str) -> None:
    """Node ids and errors from pytest's own `--collect-only -q` output: for an image without
    testdock's plugin, and for a conftest that stops pytest before it collects (exit 4)."""
    listing = True  # `--collect-only -q` lists node ids first, up to a blank line or a section
    failing: str | None = None  # the error whose traceback is being read
    for line in output.splitlines():
        stripped = line.strip()
        if heading := _ERROR_HEADING.match(line):
            failing = heading.group(1)
        elif conftest := _CONFTEST_FAILURE.match(stripped):
            failing = conftest.group(1).removeprefix("/app/")
            if failing not in result.errors:
                result.errors.append(failing)
        elif line.startswith("="):
            failing = None
        elif failing is not None and (frame := _PROJECT_FRAME.match(line)):
            frames = result.error_frames.setdefault(failing, [])
            if frame.group(1) not in frames:
                frames.append(frame.group(1))
        if listing and result.nodeids and (not stripped or line.startswith("=")):
            listing = False
        if listing and "::" in line and not line.startswith((" ", "ERROR", "FAILED", "E ", "TESTDOCK-")):
            result.nodeids.append(line.rstrip())
        elif line.startswith("ERROR "):
            result.errors.append(stripped.removeprefix("ERROR ").split(" - ")[0])


def collect_in(client: docker.DockerClient, phase: str, image: str, memory: int,
               arguments: Sequence[str] = (), volumes: dict[str, dict[str, str]] | None = None,
               environment: dict[str, str] | None = None) -> Collection:
    # each image collects as it does by default: the collection image without assertion rewriting
    # or coverage. The execution image (pytest-cov always installed) collects without coverage too:
    # an `addopts = --cov-report=xml` would write into the read-only /app once collection is over,
    # as would an `addopts = --junitxml=junit.xml` (an empty path writes none).
    if phase == "collection":
        command = client.images.get(image).attrs["Config"].get("Cmd") or []
        extra = [flag for flag in command if flag in _COLLECTION_FLAGS]
    else:
        extra = ["--no-cov", "--junitxml="]
    _, output = engine.run_to_completion(client, engine.ContainerSpec(
        image, ["python", "-c", _MEASURED, *extra, *arguments], memory, volumes=volumes or {},
        environment={**(environment or {}), RESULTS_DIR_ENV: "/tmp/testdock-results"},
        labels={LABEL_RUN: phase},
        profile=engine.Profile.PLAIN))
    return parse_output(phase, image, output)


def collect(target: Path | Workspace, tag: str = "latest", compare: bool = False) -> list[Collection]:
    """The collection image's collection, and the execution image's when comparing."""
    check_tag(tag)
    workspace = as_workspace(target)
    settings = workspace.settings
    client = engine.client()
    import docker.errors

    results: list[Collection] = []
    # the real collection below leaves its ids for the next stubbed one; a second collection of
    # this command (for ids that change on their own) must see what the first saw
    had_real_ids = (workspace.root / HISTORY_DIR / REAL_IDS_FILE).is_file()
    for phase in ("collection", "execution") if compare else ("collection",):
        image = workspace.image(phase, tag)
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise BadInput(f"image {image} not found; run `testdock build --phase {phase}`") from None
        # with the phase's environment, as `run` gives it: a suite may read it at collection; and
        # the history folder, where the real collection leaves its ids for the stubbed one
        results.append(collect_in(client, phase, image, parse_size(memory_limit(phase, settings)),
                                  volumes=history_volume(workspace.root),
                                  environment=dict(getattr(settings.phases, phase).environment)))
    if compare and set(results[0].nodeids) != set(results[1].nodeids):
        # once more, seconds later: ids made of the time or of random values change on their own
        again = collect_in(client, "collection", results[0].image,
                           parse_size(memory_limit("collection", settings)),
                           volumes=history_volume(workspace.root) if had_real_ids else {},
                           environment=dict(settings.phases.collection.environment))
        if again.exit_code == results[0].exit_code:  # a run that failed otherwise tells nothing
            results[0].unstable = changed_ids(results[0].nodeids, again.nodeids)
    return results


def history_volume(root: Path) -> dict[str, dict[str, str]]:
    return {str(writable_folder(root, HISTORY_DIR)): {"bind": f"/app/{HISTORY_DIR}", "mode": "rw"}}


def changed_ids(first: list[str], second: list[str]) -> list[str]:
    """The ids of the tests both collections found, but under other parameter ids."""
    by_test: dict[str, tuple[set[str], set[str]]] = {}
    for index, nodeids in enumerate((first, second)):
        for nodeid in nodeids:
            by_test.setdefault(_test_of(nodeid), (set(), set()))[index].add(nodeid)
    return sorted(nodeid for ids in by_test.values() if all(ids) and ids[0] != ids[1]
                  for nodeid in ids[0] ^ ids[1])


def _test_of(nodeid: str) -> str:
    """The node id without its parameters: tests/test_a.py::test_b[1-x] -> tests/test_a.py::test_b"""
    return nodeid.partition("[")[0]


def unstable_tests(collection: Collection) -> list[str]:
    """The tests whose parametrized ids changed between two collections in the same image."""
    return sorted({_test_of(nodeid) for nodeid in collection.unstable})


def differences(collection: Collection, execution: Collection) -> tuple[list[str], list[str]]:
    """(only in the collection image, only in the execution image), the tests whose ids change
    from one collection to the next left out."""
    unstable = set(unstable_tests(collection))
    stubbed = {n for n in collection.nodeids if _test_of(n) not in unstable}
    real = {n for n in execution.nodeids if _test_of(n) not in unstable}
    return sorted(stubbed - real), sorted(real - stubbed)


_MISSING_MODULE = re.compile(r"^E\s+ModuleNotFoundError: No module named '([\w.]+)'")


def error_sections(collection: Collection) -> dict[str, list[str]]:
    """pytest's report of each collection error, by the file that failed: its traceback lines."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in collection.output.splitlines():
        if heading := _ERROR_HEADING.match(line):
            current = sections.setdefault(heading.group(1), [])
        elif line.startswith(("=", "_")) or line.startswith("TESTDOCK-"):
            current = None
        elif current is not None:
            current.append(line.rstrip())
    return sections


def error_excerpt(collection: Collection, files: int = 2, lines: int = 8) -> list[str]:
    """The last lines of the first collection errors' reports, each headed by its file."""
    excerpt: list[str] = []
    for name, section in list(error_sections(collection).items())[:files]:
        body = [line for line in section if line.strip()]
        excerpt += [f"{name}:", *(f"  {line}" for line in body[-lines:])]
    return excerpt


def missing_plugins(collection: Collection) -> dict[str, str]:
    """The pytest plugins a collection's output shows missing: plugin -> what pytest did not know
    (a marker under `--strict-markers`, an ini option, a command-line option)."""
    from testdock.run.missingplugins import plugins_named

    found: dict[str, str] = {}
    for line in collection.output.splitlines():
        for plugin, named in plugins_named(line).items():
            found.setdefault(plugin, named)
    return found


def missing_modules(collection: Collection) -> dict[str, list[str]]:
    """The modules a collection failed to import (ModuleNotFoundError), with the files that failed."""
    missing: dict[str, list[str]] = {}
    for name, section in error_sections(collection).items():
        for line in section:
            if match := _MISSING_MODULE.match(line):
                files = missing.setdefault(match.group(1).partition(".")[0], [])
                if name not in files:
                    files.append(name)
    return missing
