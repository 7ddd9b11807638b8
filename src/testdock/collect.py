"""`testdock collect`: collect the tests in the collection image (imports stubbed) and, with
--compare, in the execution image too, and list the node ids that differ."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from testdock import engine
from testdock.config import load_settings
from testdock.errors import BadInput
from testdock.phases import memory_limit
from testdock.project import inspect_project
from testdock.render import image_prefix
from testdock.requirements import names
from testdock.units import parse_size

# Runs pytest --collect-only in a child and reports its wall time and peak RSS as a last line.
_MEASURED = (
    "import json, resource, subprocess, sys, time\n"
    "started = time.monotonic()\n"
    "code = subprocess.call([sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-p', 'no:xdist',"
    " '--collect-only', '-q', *sys.argv[1:]])\n"
    "print('TESTDOCK-COLLECT ' + json.dumps({'code': code, 'seconds': time.monotonic() - started,"
    " 'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n"
    "sys.exit(code)\n")
_COLLECTION_FLAGS = ("--assert=plain", "--no-cov")
_PREDICTED = "node ids will differ from the real collection: "
_STUBBED = re.compile(r"stubbed \d+ module\(s\) that are not installed: (.*)$")
_LEFT_MISSING = re.compile(r"^left missing, as optional .*: (.*)$")


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
    seconds: float = 0.0
    peak_rss: int = 0
    output: str = ""


def parse_output(phase: str, image: str, output: str) -> Collection:
    result = Collection(phase, image, -1, output=output)
    listing = True  # `--collect-only -q` lists node ids first, up to a blank line or a section
    for line in output.splitlines():
        stripped = line.strip()
        if listing and result.nodeids and (not stripped or line.startswith("=")):
            listing = False
        if line.startswith("TESTDOCK-COLLECT "):
            figures: dict[str, Any] = json.loads(line.removeprefix("TESTDOCK-COLLECT "))
            result.exit_code = int(figures["code"])
            result.seconds = float(figures["seconds"])
            result.peak_rss = int(figures["rss"])
        elif listing and "::" in line and not line.startswith((" ", "ERROR", "FAILED", "E ")):
            result.nodeids.append(line.rstrip())
        elif line.startswith("ERROR "):
            result.errors.append(stripped.removeprefix("ERROR ").split(" - ")[0])
        elif stripped.startswith(_PREDICTED):
            result.predicted.append(stripped.removeprefix(_PREDICTED))
        elif match := _STUBBED.search(stripped):
            result.stubbed = [name.strip() for name in match.group(1).split(",")]
        elif match := _LEFT_MISSING.match(stripped):
            result.left_missing = [name.strip() for name in match.group(1).split(",")]
    return result


def collect_in(client: Any, phase: str, image: str, memory: int, arguments: Sequence[str] = (),
               volumes: dict[str, dict[str, str]] | None = None) -> Collection:
    # each image collects as it does by default: the collection image without assertion rewriting
    # or coverage
    command = client.images.get(image).attrs["Config"].get("Cmd") or []
    extra = [flag for flag in command if flag in _COLLECTION_FLAGS] if phase == "collection" else []
    container = client.containers.run(
        image, ["python", "-c", _MEASURED, *extra, *arguments], detach=True, network_mode="host",
        mem_limit=memory, memswap_limit=memory, volumes=volumes or {},
        environment={"TESTDOCK_RESULTS_DIR": "/tmp/testdock-results"},
        labels={"io.testdock.run": phase, "io.testdock.managed": "true"})
    try:
        container.wait(timeout=1800)
        output = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    return parse_output(phase, image, output)


def collect(root: Path, tag: str = "latest", compare: bool = False) -> list[Collection]:
    """The collection image's collection, and the execution image's when comparing."""
    root = root.resolve()
    settings = load_settings(root)
    project = inspect_project(root, app_override=settings.backend.app)
    client = engine.client()
    import docker.errors

    results: list[Collection] = []
    for phase in ("collection", "execution") if compare else ("collection",):
        image = f"{image_prefix(project, settings)}-{phase}:{tag}"
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise BadInput(f"image {image} not found; run `testdock build --phase {phase}`") from None
        results.append(collect_in(client, phase, image, parse_size(memory_limit(phase, settings))))
    return results


def differences(collection: Collection, execution: Collection) -> tuple[list[str], list[str]]:
    """(only in the collection image, only in the execution image)."""
    stubbed, real = set(collection.nodeids), set(execution.nodeids)
    return sorted(stubbed - real), sorted(real - stubbed)


def _collection_time_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements a file runs when it is collected: at module level and in class
    bodies, within blocks (if, try, with), not inside functions, which run later."""
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            yield statement
        elif not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for block in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(statement, block, None) or [])


def _imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports at collection time. (Not followed into the
    modules it imports: a test helper module pulls in everything any test needs, and the hint
    would name it all.)"""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return set()
    imported: set[str] = set()
    for statement in _collection_time_imports(tree):
        if isinstance(statement, ast.Import):
            imported.update(alias.name.partition(".")[0] for alias in statement.names)
        elif statement.module and not statement.level:
            imported.add(statement.module.partition(".")[0])
    return imported


def _files_with_conftests(root: Path, files: Iterable[str]) -> dict[str, set[Path]]:
    """Each test file with the conftest.py files between it and the root (they are imported to
    collect it). A folder (a collection error in its conftest.py) stands for its conftest.py."""
    result: dict[str, set[Path]] = {}
    for name in files:
        path = root / name
        paths = {path / "conftest.py" if path.is_dir() else path}
        for folder in path.parents:
            if folder != root and root not in folder.parents:
                break
            if (folder / "conftest.py").is_file():
                paths.add(folder / "conftest.py")
        result[name] = paths
    return result


def suggested_modules(root: Path, collection: Collection, execution: Collection) -> dict[str, int]:
    """The modules, stubbed or left missing, that the files whose node ids differ (or that fail
    to collect only with stubs) import at collection time, with how many such files import each."""
    only_stubbed, only_real = differences(collection, execution)
    files = {nodeid.split("::")[0] for nodeid in (*only_stubbed, *only_real)}
    files |= set(collection.errors) - set(execution.errors)
    absent = set(collection.stubbed) | set(collection.left_missing)
    counts: Counter[str] = Counter()
    for paths in _files_with_conftests(root, sorted(files)).values():
        counts.update(set().union(*(_imported_modules(path) for path in paths)) & absent)
    return dict(counts)


# Run in the execution image: which of the modules it has, and the distribution each comes from.
_DISTRIBUTIONS = (
    "import importlib.metadata as m, importlib.util as u, json, sys\n"
    "owners = getattr(m, 'packages_distributions', dict)()\n"
    "print(json.dumps({n: (owners.get(n) or [n])[0] for n in sys.argv[1:] if u.find_spec(n)}))\n")


def real_distributions(client: Any, image: str, modules: Iterable[str]) -> dict[str, str]:
    """module -> the distribution providing it in `image`, for the modules `image` has."""
    output = client.containers.run(image, ["python", "-c", _DISTRIBUTIONS, *sorted(modules)], remove=True,
                                   network_mode="none", labels={"io.testdock.managed": "true"})
    found: dict[str, str] = json.loads(output.decode().strip().splitlines()[-1])
    return found


def install_hint(root: Path, collection: Collection, execution: Collection) -> list[str]:
    """What to tell the user when the stubs could not reproduce the real collection: the modules
    the differing files import that the real run has (a module it lacks too is no cause), and the
    setting that installs their distributions for real."""
    root = root.resolve()
    modules = suggested_modules(root, collection, execution)
    if not modules:
        return []
    settings = load_settings(root)
    owners = real_distributions(engine.client(), execution.image, modules)
    counts: Counter[str] = Counter()
    for module, files in modules.items():
        if module in owners and canonicalize_name(owners[module]) not in names(settings.collection.install):
            counts[owners[module]] = max(counts[owners[module]], files)
    if not counts:
        return []
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0].lower()))
    listed = ", ".join(f"{name} ({count} file{'s' if count > 1 else ''})" for name, count in ranked)
    install = json.dumps([*settings.collection.install, *(name for name, _ in ranked)])
    return [f"the files that differ import, when collected, these dependencies of the real run, stubbed or "
            f"missing here: {listed}",
            "if they compute with them at import time (parametrize lists, class bodies), install them "
            f"for real in the collection image: [tool.testdock.collection] install = {install}"]
