"""What `testdock collect --compare` suggests when node ids differ: the dependencies of the real
run that the differing files use when they are collected, to install for real in the collection
image."""

from __future__ import annotations

import ast
import functools
import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from testdock import engine
from testdock.project.requirements import names
from testdock.project.settings import load_settings
from testdock.run.collect import Collection, differences
from testdock_pytest.collection.importnames import KNOWN

if TYPE_CHECKING:
    import docker


@functools.cache
def _parsed(path: Path) -> ast.Module:
    """A file's syntax tree, read once however many differing files share it (their conftests);
    an empty module when it cannot be read or parsed."""
    try:
        return ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return ast.Module(body=[], type_ignores=[])


class _CollectionTimeCode(ast.NodeVisitor):
    """What a file runs when it is collected: module level and class bodies, blocks included,
    decorators and default values; not function bodies (they run with the tests), except pytest's
    hooks (pytest_generate_tests...), which run during collection."""

    def __init__(self) -> None:
        self.imports: dict[str, set[str]] = {}  # module -> the names it binds
        self.used: set[str] = set()  # names loaded by collection-time code

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.partition(".")[0]
            self.imports.setdefault(alias.name.partition(".")[0], set()).add(bound)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and not node.level:
            module = node.module.partition(".")[0]
            self.imports.setdefault(module, set()).update(alias.asname or alias.name for alias in node.names)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if node.name.startswith("pytest_"):
            self.generic_visit(node)
            return
        for expression in (*node.decorator_list, *node.args.defaults, *node.args.kw_defaults):
            if expression is not None:
                self.visit(expression)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expression in node.args.defaults:
            self.visit(expression)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.used.add(node.id)


def _modules_in_use(path: Path, missing: set[str]) -> set[str]:
    """Top-level names of the modules `path` imports at collection time and either uses then
    (`KINDS = list(sqlalchemy.types)`, `@pytest.mark.parametrize("x", np.arange(3))`) or imports
    where they are missing (a try/except flag: their absence alone changes what is collected).
    A module only imported, its stand-in never used, cannot make the ids differ. (Not followed
    into the modules it imports: a test helper module pulls in everything any test needs.)"""
    code = _CollectionTimeCode()
    code.visit(_parsed(path))
    return {module for module, bound in code.imports.items() if module in missing or bound & code.used}


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
    to collect only with stubs) use at collection time, with how many such files use each."""
    only_stubbed, only_real = differences(collection, execution)
    stubbed, missing = set(collection.stubbed), set(collection.left_missing)
    # a collection that stopped early (a conftest failing: exit 4) never printed what it stubbed;
    # its failing files alone count (every test differs then), with every module they import,
    # and install_hint asks the collection image which it has for real
    candidates = (stubbed | missing) if _stubs_reported(collection) else None
    files = {nodeid.split("::")[0] for nodeid in (*only_stubbed, *only_real)} if candidates is not None \
        else set()
    files |= set(collection.errors)
    # a file the real run fails to collect too is not the stubs' doing: no install fixes it here
    files -= set(execution.errors)
    counts: Counter[str] = Counter()
    for name, paths in _files_with_conftests(root, sorted(files)).items():
        used = set().union(*(_modules_in_use(path, missing) for path in paths))
        # the project's own modules the error went through: what they import, wherever they use it
        for frame in collection.error_frames.get(name, []):
            used |= _imported_anywhere(root / frame)
        counts.update(used & candidates if candidates is not None else used - _STDLIB)
    return dict(counts)


_STDLIB = frozenset(sys.stdlib_module_names)


def _stubs_reported(collection: Collection) -> bool:
    return bool(collection.stubbed or collection.left_missing) or "testdock stubs" in collection.output


def _imported_anywhere(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, in functions too."""
    imported: set[str] = set()
    for node in ast.walk(_parsed(path)):
        if isinstance(node, ast.Import):
            imported.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.partition(".")[0])
    return imported


# Run in the execution image: which of the modules it has, and the distribution each comes from.
# (packages_distributions is Python 3.10's: before, the owner is guessed from the name tables)
_DISTRIBUTIONS = (
    "import importlib.metadata as m, importlib.util as u, json, sys\n"
    "owners = getattr(m, 'packages_distributions', dict)()\n"
    "print(json.dumps({n: (owners.get(n) or [None])[0] for n in sys.argv[1:] if u.find_spec(n)}))\n")


def real_distributions(client: docker.DockerClient, image: str, modules: Iterable[str]) -> dict[str, str]:
    """module -> the distribution providing it in `image`, for the modules `image` has; {} when
    the image cannot tell (the hint is then left out, never the comparison)."""
    import docker.errors

    try:
        # isolated (-I): neither /app (the working directory: its docker/ folder is no `docker`
        # package) nor the collection image's stubs answer for a module
        code, output = engine.run_to_completion(client, engine.ContainerSpec(
            image, ["python", "-I", "-c", _DISTRIBUTIONS, *sorted(modules)], network="none",
            profile=engine.Profile.PLAIN), timeout=300)
        if code != 0:
            return {}
        found: dict[str, str | None] = json.loads(output.strip().splitlines()[-1])
    except (docker.errors.DockerException, ValueError, IndexError):
        return {}
    return {module: owner or owner_by_name(module) for module, owner in found.items()}


def owner_by_name(module: str) -> str:
    """The distribution a module is known to come from (sklearn: scikit-learn), else its name."""
    return next((name for name, modules in KNOWN.items() if module in modules), module)


def install_hint(root: Path, collection: Collection, execution: Collection) -> list[str]:
    """What to tell the user when the stubs could not reproduce the real collection: the modules
    the differing files import that the real run has (a module it lacks too is no cause), and the
    setting that installs their distributions for real."""
    root = root.resolve()
    modules = suggested_modules(root, collection, execution)
    if not modules:
        return []
    settings = load_settings(root)
    client = engine.client()
    if not _stubs_reported(collection):
        here = real_distributions(client, collection.image, modules)
        modules = {module: files for module, files in modules.items() if module not in here}
    owners = real_distributions(client, execution.image, modules)
    counts: Counter[str] = Counter()
    for module, files in modules.items():
        if module in owners and canonicalize_name(owners[module]) not in names(settings.collection.install):
            counts[owners[module]] = max(counts[owners[module]], files)
    if not counts:
        return []
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0].lower()))
    listed = ", ".join(f"{name} ({count} file{'s' if count > 1 else ''})" for name, count in ranked)
    install = json.dumps([*settings.collection.install, *(name for name, _ in ranked)])
    return [f"the files that differ, or fail only here, use these dependencies of the real run when "
            f"collected (stubbed or missing here): {listed}",
            "if they compute with them at import time (parametrize lists, class bodies), install them "
            f"for real in the collection image: [tool.testdock.collection] install = {install}"]
