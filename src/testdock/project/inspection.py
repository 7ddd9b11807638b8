"""Inspect a Python project: what it depends on, which Python, where its tests and app are."""

from __future__ import annotations

import ast
import configparser
import contextlib
import copy
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from testdock.errors import BadInput
from testdock.images.tools import TOOL_NAMES
from testdock.project import poetry, unittestdiscovery
from testdock.project.apps import AppRef, detect_app
from testdock.project.extensions import builds_extensions
from testdock.project.legacyhooks import inicfg_files, marked_fixture_files, py_path_hook_files
from testdock.project.programs import packages_for_distributions, packages_for_programs
from testdock.project.pyproject import ini_lines, ini_list, read_ini, read_toml, table
from testdock.project.pytestconfig import (
    addopts_text,
    pytest_settings,
    sets_timeout,
    warnings_fail,
    writes_junit,
)
from testdock.project.requirements import (
    SELF_REFERENCE,
    local_package_path,
    merge,
    read_requirements_file,
    requirement_text,
    unpinned,
)
from testdock.project.testimports import (
    PYTEST_DEFAULT_FILES,
    holds_files_matching,
    imported_by_tests,
    imported_through_project,
)
from testdock.project.toolgroups import (
    hatch_groups,
    nox_requirements,
    pdm_groups,
    task_runner_extras,
    tox_requirements,
)
from testdock.project.version import PLACEHOLDER as PLACEHOLDER_VERSION
from testdock.project.version import scm_version
from testdock_pytest.collection.importnames import declared_module_names, module_names

TEST_GROUPS = ("test", "tests", "testing")
DEV_GROUPS = ("dev", "develop", "development")
# Pythons a default base image may be chosen from, newest last.
KNOWN_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHON = "3.12"
NEWEST_STABLE = "3.13"


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")
# Tools a "dev" set often carries that no test needs; dropped when dev stands in for test.
DEV_ONLY_TOOLS = frozenset({
    "black", "blacken-docs", "build", "bump2version", "bumpver", "check-manifest", "flake8",
    "flit", "hatch", "isort", "mypy", "nox", "pip-tools", "pre-commit", "pylint", "ruff",
    "setuptools", "sphinx", "sphinx-rtd-theme", "furo", "mkdocs", "mkdocs-material", "tox",
    "twine", "wheel", "towncrier", "codespell", "pyupgrade", "autopep8", "yapf", "bandit",
})


@dataclass(frozen=True)
class Project:
    """What testdock needs to know about a project to build its test images."""

    root: Path
    name: str
    python_version: str
    requires_python: str | None
    dependencies: tuple[str, ...]
    test_dependencies: tuple[str, ...]
    test_paths: tuple[str, ...]
    source_roots: tuple[str, ...]
    packages: tuple[str, ...]
    installable: bool
    app: AppRef | None
    sources: tuple[str, ...] = field(default=())  # where dependencies were read from
    # the project measures coverage when it tests (its pytest options or a coverage configuration)
    measures_coverage: bool = False
    # its coverage configuration records a context per test function (`dynamic_context =
    # test_function`), which pytest-cov refuses under xdist
    coverage_contexts_per_test: bool = False
    coverage_selects_files: bool = False  # its coverage configuration sets source or include
    # pytest's own options ask for coverage (`addopts = --cov`): plain `pytest` measures it too
    pytest_measures_coverage: bool = False
    # its pytest configuration sets pytest-timeout's timeout (fastapi's 20 s): testdock's own
    # default is not passed over it
    pytest_timeout: bool = False
    # its pytest options write a JUnit file (arrow's `--junitxml=junit.xml`): into /app, which
    # the collection image cannot write
    pytest_writes_junit: bool = False
    # pytest's settings for tests it would not find by itself, from the project's own
    # `unittest discover` command (where it was read, `testpaths` and `python_files`): init
    # writes them to [tool.pytest.ini_options] (mkdocs's `*_tests.py`)
    unittest_settings: tuple[str, dict[str, list[str]]] | None = None
    # the distributions of the coverage plugins its configuration loads (`plugins = covdefaults`):
    # coverage refuses to start without them, and pytest-cov with it
    coverage_plugins: tuple[str, ...] = ()
    # every requirement its extras and groups declare, with where: (requirement, "extra 'http2'")
    optional_requirements: tuple[tuple[str, str], ...] = ()
    builds_extensions: bool = False  # installing it compiles C, C++ or Cython code of its own
    # conftest files implementing hooks with py.path arguments (`path`), which pytest 9 removed
    py_path_hooks: tuple[str, ...] = ()
    marked_fixtures: tuple[str, ...] = ()  # test files marking a fixture (pytest 9 refuses)
    # files reading config.inicfg, which pytest 9.1 deprecates, where its settings make warnings
    # errors
    inicfg_readers: tuple[str, ...] = ()
    # its pytest settings turn warnings into errors (`filterwarnings = error`)
    warnings_fail: bool = False
    # package folders of its own tree that its requirements name by path (`./tests/testpkg`)
    local_packages: tuple[str, ...] = ()
    # the Debian packages of well-known programs its tests run (`git init`): the images that run
    # them install these
    program_packages: tuple[str, ...] = ()
    # the version its build gets where it asks version control (setuptools-scm), which images lack
    scm_version: str = PLACEHOLDER_VERSION

    @property
    def image_name(self) -> str:
        """The project's name as Docker accepts it in image names."""
        return image_safe_name(self.name)


def image_safe_name(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return safe or "project"


@dataclass
class _Collected:
    dependencies: list[list[str]] = field(default_factory=list)
    test_dependencies: list[list[str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    extras: dict[str, list[str]] = field(default_factory=dict)  # every extra the project declares
    # every requirement declared in a group or extra, chosen or not: what tests may turn out to need
    declared: list[tuple[str, str]] = field(default_factory=list)  # (requirement, where)

    def add(self, source: str, runtime: Iterable[str], test: Iterable[str]) -> None:
        runtime, test = list(runtime), list(test)
        if runtime or test:
            self.sources.append(source)
        self.dependencies.append(runtime)
        self.test_dependencies.append(test)


def _without_dev_tools(requirements: Iterable[str]) -> list[str]:
    return [r for r in requirements
            if canonicalize_name(Requirement(r).name) not in DEV_ONLY_TOOLS
            and not canonicalize_name(Requirement(r).name).startswith(("sphinx", "types-", "flake8-"))]


def _pick_groups(available: Iterable[str]) -> list[str]:
    """The test groups/extras present, else the dev ones."""
    normalized: dict[str, str] = {canonicalize_name(str(key)): key for key in available}
    chosen = [normalized[g] for g in TEST_GROUPS if g in normalized]
    return chosen or [normalized[g] for g in DEV_GROUPS if g in normalized]


def _only_dev(available: Iterable[str]) -> bool:
    """True when no test group exists and a dev group stands in for it."""
    return not any(canonicalize_name(str(key)) in TEST_GROUPS for key in available)


def _test_set(requirements: list[str], available: Iterable[str]) -> list[str]:
    return _without_dev_tools(requirements) if _only_dev(available) else requirements


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise BadInput(f"{where}: expected a list of requirement strings")
    return [requirement_text(item, where) for item in value]


def _expand_self(requirements: list[str], name: str, extras: dict[str, list[str]],
                 seen: frozenset[str] = frozenset()) -> list[str]:
    """Replace `project[extra]` self-references by the extra's own requirements."""
    own = canonicalize_name(name) if name else ""
    result: list[str] = []
    for text in requirements:
        requirement = Requirement(text)
        if own and canonicalize_name(requirement.name) == own:
            for extra in sorted(requirement.extras):
                key = canonicalize_name(extra)
                if key in seen:
                    continue
                matched = next((v for k, v in extras.items() if canonicalize_name(k) == key), [])
                result += _expand_self(matched, name, extras, seen | {key})
            continue
        result.append(text)
    return result


def _pep621(data: dict[str, Any], collected: _Collected) -> None:
    project = table(data, "project")
    if not project:
        return
    name = str(project.get("name", ""))
    runtime = _strings(project.get("dependencies", []), "pyproject.toml [project] dependencies")
    optional_raw = table(data, "project", "optional-dependencies")
    optional = {
        key: _strings(value, f"pyproject.toml [project.optional-dependencies] {key}")
        for key, value in optional_raw.items()
    }
    test: list[str] = []
    for extra in _pick_groups(optional):
        test += _expand_self(optional[extra], name, optional)
    collected.extras.update(optional)
    collected.add("pyproject.toml [project]", runtime, _test_set(test, optional))


def _dependency_groups(data: dict[str, Any], collected: _Collected) -> None:
    groups = table(data, "dependency-groups")
    if not groups:
        return

    by_name = {canonicalize_name(name): name for name in groups}

    def resolve(group: str, seen: frozenset[str]) -> list[str]:
        group = by_name.get(canonicalize_name(group), group)
        if group in seen:
            raise BadInput(f"pyproject.toml [dependency-groups] {group}: includes itself")
        entries = groups.get(group)
        if not isinstance(entries, list):
            raise BadInput(f"pyproject.toml [dependency-groups] {group}: expected a list")
        result: list[str] = []
        for entry in entries:
            if isinstance(entry, dict) and "include-group" in entry:
                result += resolve(str(entry["include-group"]), seen | {group})
            elif isinstance(entry, str):
                result.append(requirement_text(entry, f"pyproject.toml [dependency-groups] {group}"))
            else:
                raise BadInput(f"pyproject.toml [dependency-groups] {group}: bad entry {entry!r}")
        return result

    test: list[str] = []
    for group in _pick_groups(groups):
        test += resolve(group, frozenset())
    for group in groups:
        try:
            collected.declared += [(r, f"dependency group {group!r}") for r in resolve(group, frozenset())]
        except BadInput:
            continue  # a group the tests do not use is no reason to stop
    name = str(table(data, "project").get("name", ""))
    extras = {
        key: [str(v) for v in value]
        for key, value in table(data, "project", "optional-dependencies").items()
        if isinstance(value, list)
    }
    collected.add("pyproject.toml [dependency-groups]", [],
                  _test_set(_expand_self(test, name, extras), groups))


def _tool_groups(data: dict[str, Any], collected: _Collected) -> None:
    """Hatch's environments and PDM's development groups: their test group, else the dev one.
    An entry that is no requirement (Hatch's `{root:uri}` context formatting) is left out: a group
    is read for what it declares, not refused for what testdock cannot read."""
    name = str(table(data, "project").get("name", ""))
    for source, kind, found in (
            ("pyproject.toml [tool.hatch.envs]", "Hatch environment", hatch_groups(data)),
            ("pyproject.toml [tool.pdm.dev-dependencies]", "PDM group", pdm_groups(data))):
        groups: dict[str, list[str]] = {}
        for group, entries in found.items():
            for entry in entries:
                try:
                    groups.setdefault(group, []).append(requirement_text(entry, f"{source} {group}"))
                except BadInput:
                    continue
        test = [requirement for group in _pick_groups(groups) for requirement in groups[group]]
        collected.declared += [(r, f"{kind} {group!r}") for group, requirements in groups.items()
                               for r in requirements]
        collected.add(source, [], _test_set(_expand_self(test, name, collected.extras), groups))


def _test_runner(entries: Iterable[str], source: str, collected: _Collected) -> None:
    """What a test runner's configuration installs for the tests (tox's `[testenv]`, nox's test
    sessions), its lines that are no requirement skipped; the project's extras (`SELF_REFERENCE`)
    expand once all are read."""
    found: list[str] = []
    for entry in entries:
        try:
            found.append(requirement_text(entry, source))
        except BadInput:
            continue
    collected.add(source, [], _without_dev_tools(found))


def _poetry_table(entries: dict[str, Any], where: str, optional: bool = False) -> list[str]:
    """The table's requirements: its required ones, or with `optional` its optional ones."""
    result: list[str] = []
    for name, spec in entries.items():
        if canonicalize_name(name) == "python":
            continue
        if bool(isinstance(spec, dict) and spec.get("optional")) != optional:
            continue
        requirement = poetry.dependency_to_requirement(name, spec, where)
        if requirement is not None:
            result.append(requirement_text(requirement, where))
    return result


def _poetry(data: dict[str, Any], collected: _Collected) -> None:
    tool_poetry = table(data, "tool", "poetry")
    if not tool_poetry:
        return
    runtime = _poetry_table(table(tool_poetry, "dependencies"), "pyproject.toml [tool.poetry.dependencies]")
    groups = {name: table(group, "dependencies") for name, group in table(tool_poetry, "group").items()
              if isinstance(group, dict)}
    where = {name: f"pyproject.toml [tool.poetry.group.{name}.dependencies]" for name in groups}
    if "dev-dependencies" in tool_poetry and "dev" not in groups:
        groups["dev"] = table(tool_poetry, "dev-dependencies")
        where["dev"] = "pyproject.toml [tool.poetry.dev-dependencies]"
    test: list[str] = []
    for group in _pick_groups(groups):
        test += _poetry_table(groups[group], where[group])
    pools = {f"Poetry group {group!r}": (groups[group], where[group]) for group in groups}
    pools["Poetry's optional dependencies"] = (table(tool_poetry, "dependencies"),
                                               "pyproject.toml [tool.poetry.dependencies]")
    for label, (entries, place) in pools.items():
        try:
            collected.declared += [(r, label) for r in _poetry_table(
                entries, place, optional=label.endswith("optional dependencies"))]
        except BadInput:
            continue  # a group the tests do not use is no reason to stop
    collected.add("pyproject.toml [tool.poetry]", runtime, _test_set(test, groups))


def _setup_cfg(root: Path, collected: _Collected) -> None:
    path = root / "setup.cfg"
    if not path.is_file():
        return
    try:
        _setup_cfg_options(read_ini(path, interpolate=True), collected)
    except configparser.InterpolationError as error:
        raise BadInput(f"{path}: {str(error).splitlines()[0]}") from None


def _setup_cfg_options(parser: configparser.ConfigParser, collected: _Collected) -> None:
    runtime: list[str] = []
    if parser.has_option("options", "install_requires"):
        runtime = [requirement_text(line, "setup.cfg install_requires")
                   for line in ini_lines(parser.get("options", "install_requires"))]
    test: list[str] = []
    if parser.has_section("options.extras_require"):
        extras = {key: ini_lines(value) for key, value in parser.items("options.extras_require")}
        collected.extras.update({key: [requirement_text(line, f"setup.cfg extras_require {key}")
                                       for line in lines] for key, lines in extras.items()})
        for extra in _pick_groups(extras):
            test += [requirement_text(line, f"setup.cfg extras_require {extra}")
                     for line in extras[extra]]
        test = _test_set(test, extras)
    collected.add("setup.cfg", runtime, test)


def _requirement_list(value: object, root: Path | None = None) -> list[str]:
    """setuptools takes a list of requirements or one string of them, a line each; setup.py may
    also read them from files."""
    if isinstance(value, RequirementFiles) and root is not None:
        return [line for path in value for line in read_requirements_file(path, root)]
    if isinstance(value, str):
        return ini_lines(value)
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return []


def _module_assignments(body: list[ast.stmt], opened: tuple[str, ...] = (), nested: bool = False
                        ) -> Iterator[tuple[str, ast.expr, tuple[str, ...], bool]]:
    """(name, value, files opened around it, within a block) of each `name = value` at module
    level, within `with open(...)` and if/try blocks too (`with open("reqs/base.txt") as f:
    REQUIRES = ...`)."""
    for statement in body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            yield statement.targets[0].id, statement.value, opened, nested
        elif isinstance(statement, ast.With):
            files = tuple(text for item in statement.items for text in _strings_in(item.context_expr))
            yield from _module_assignments(statement.body, opened + files, True)
        elif isinstance(statement, (ast.If, ast.Try)):
            for block in (statement.body, statement.orelse, getattr(statement, "finalbody", [])):
                yield from _module_assignments(block, opened, True)


def _strings_in(node: ast.AST) -> list[str]:
    return [child.value for child in ast.walk(node)
            if isinstance(child, ast.Constant) and isinstance(child.value, str)]


def _setup_py_keywords(root: Path) -> dict[str, Any]:
    """The keyword arguments of setup() in setup.py (which is parsed, never executed): literals,
    names bound once to a literal, and requirement lists read from files: a keyword computed from
    the contents of a .txt file of the project (`open("requirements.txt").read().splitlines()`,
    directly or through a name) stands for that file, as a `RequirementFiles`."""
    path = root / "setup.py"
    if not path.is_file():
        return {}
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return {}
    # a name bound once at the top level (later additions in blocks aside), else once in a block
    top: dict[str, list[tuple[ast.expr, tuple[str, ...]]]] = {}
    anywhere: dict[str, list[tuple[ast.expr, tuple[str, ...]]]] = {}
    for name, bound, around, nested in _module_assignments(tree.body):
        anywhere.setdefault(name, []).append((bound, around))
        if not nested:
            top.setdefault(name, []).append((bound, around))
    assigned = {name: top.get(name) or bindings for name, bindings in anywhere.items()}
    keywords: dict[str, Any] = {}
    for node in ast.walk(tree):
        function = getattr(node, "func", None)
        if not (isinstance(node, ast.Call) and getattr(function, "id", getattr(function, "attr", ""))
                == "setup"):
            continue
        for keyword in node.keywords:
            value: ast.expr = keyword.value
            opened: tuple[str, ...] = ()
            if isinstance(value, ast.Name) and len(assigned.get(value.id, [])) == 1:
                value, opened = assigned[value.id][0]
            try:
                # names inside the value too: `extras_require={"tests": tests_require}` (responses)
                keywords[str(keyword.arg)] = _literal_requirements(_NamesBoundOnce(assigned).visit(value))
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                files = [root / text for text in (*_strings_in(value), *opened)
                         if text.endswith(".txt") and (root / text).is_file()]
                if files:
                    keywords[str(keyword.arg)] = RequirementFiles(files)
    return keywords


def _literal_requirements(node: ast.AST) -> Any:
    """A setup() keyword's literal value, where a requirement made by formatting is left out of its
    list, and an extra whose list is computed is left out of the dict: sqlglot's
    `extras_require={"dev": ["duckdb>=0.6", ...], "c": [f"sqlglotc=={version}"]}` keeps every extra
    with its literal requirements (one f-string made the whole dict unreadable). Anything else
    computed raises, as before (`[*read("requirements.txt")]` is read from its file)."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        pass
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        extras = {}
        for key, value in zip(node.keys, node.values, strict=True):
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                extras[ast.literal_eval(key)] = _literal_requirements(value)  # type: ignore[arg-type]
        return extras
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal_requirements(element) for element in node.elts
                if not isinstance(element, ast.JoinedStr)]
    return ast.literal_eval(node)  # raises: not a literal


class _NamesBoundOnce(ast.NodeTransformer):
    """An expression with each name bound once to a value replaced by that value (copied, a few
    levels deep at most), for `ast.literal_eval`."""

    def __init__(self, assigned: dict[str, list[tuple[ast.expr, tuple[str, ...]]]]) -> None:
        self.assigned = assigned
        self.depth = 0

    def visit_Name(self, node: ast.Name) -> ast.AST:
        bindings = self.assigned.get(node.id, [])
        if len(bindings) != 1 or self.depth >= 5:
            return node
        self.depth += 1
        try:
            replaced: ast.AST = self.visit(copy.deepcopy(bindings[0][0]))
            return replaced
        finally:
            self.depth -= 1


class RequirementFiles(list[Path]):
    """A setup() keyword read from requirements files at build time."""


def _setup_py(root: Path, collected: _Collected) -> None:
    keywords = _setup_py_keywords(root)
    if not keywords:
        return
    runtime = [requirement_text(v, "setup.py install_requires")
               for v in _requirement_list(keywords.get("install_requires"), root)]
    test: list[str] = []
    extras = keywords.get("extras_require")
    if isinstance(extras, dict):
        collected.extras.update({str(key): [requirement_text(v, f"setup.py extras_require {key}")
                                            for v in _requirement_list(value)]
                                 for key, value in extras.items()})
        for extra in _pick_groups(extras):
            test += [requirement_text(v, f"setup.py extras_require {extra}")
                     for v in _requirement_list(extras[extra])]
        test = _test_set(test, extras)
    test += _tests_require(keywords.get("tests_require"), root)
    collected.add("setup.py", runtime, test)


def _tests_require(value: object, root: Path) -> list[str]:
    """setup()'s `tests_require` (pyrsistent: `['pytest<7', 'hypothesis<7']`), a deprecated
    field that went stale where it is kept: what it names is the tests' (hypothesis), but the
    versions of the images' own tools it bounds are left to them (no pytest 6 runs xdist 3)."""
    requirements = [requirement_text(v, "setup.py tests_require") for v in _requirement_list(value, root)]
    return [unpinned(text) if canonicalize_name(Requirement(text).name) in TOOL_NAMES else text
            for text in requirements]


# requirements-update.txt, requirements-wheels.txt (wcwidth): locks of the maintainers' own tools
# (a script that updates data files, cibuildwheel), which the tests neither import nor run with
_TOOLING_WORDS = {"update", "updates", "upgrade", "wheel", "wheels", "build", "builds", "publish",
                  "deploy", "bench", "benchmark", "benchmarks", "ci", "tools", "tooling", "packaging",
                  "dist", "upload", "precommit", "pre-commit", "tox", "setup", "pip", "bootstrap",
                  "security", "audit", "format", "formatting"}


def requirement_files(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(runtime, test, dev) requirements files by their conventional names."""
    files = sorted(root.glob("requirements*.txt")) + sorted(root.glob("*requirements.txt"))
    for folder in (root / "requirements", root / "reqs", root / "requirements.d"):
        if folder.is_dir():
            files += sorted(folder.glob("*.txt"))
    tests_folders = (root / "tests", root / "test")  # tests/requirements.txt: what the tests need
    for folder in tests_folders:
        files += sorted(folder.glob("requirements*.txt")) + sorted(folder.glob("*requirements.txt"))
    runtime: list[Path] = []
    test: list[Path] = []
    dev: list[Path] = []
    for path in dict.fromkeys(files):
        # reqs/base-requirements.txt is the base set, as requirements/base.txt is
        stem = re.sub(r"[-_.]?(requirements|reqs)$", "", path.stem.lower()) or "requirements"
        if "test" in stem or path.parent in tests_folders:
            test.append(path)
        elif "dev" in stem:
            dev.append(path)
        elif (any(word in stem for word in ("doc", "lint", "typing", "mypy", "style", "release"))
              or _TOOLING_WORDS & set(re.split(r"[-_.]", stem))):
            continue
        elif path.parent == root or stem in ("base", "main", "prod", "production", "common",
                                             "runtime", "requirements"):
            runtime.append(path)
    test = _without_variants(test)
    # a tests folder's file adds to the dev set rather than replacing it (it may be a tool's own)
    replaces_dev = [path for path in test if path.parent not in tests_folders]
    return runtime, test, (dev if not replaces_dev else [])


# tests-min.txt, tests-dev.txt: the test set again, at the oldest supported versions or the
# dependencies' development branches, for a CI matrix's other rows. Merged with the plain set,
# their pins would win over its own.
_VARIANT = re.compile(r"[-_.](min|minimum|minimal|oldest|lowest|dev|devel|nightly|upstream|latest"
                      r"|pre|prerelease|main|master|head|git)$")


def _test_stem(path: Path) -> str:
    return re.sub(r"[-_.]?(requirements|reqs)$", "", re.sub(r"^requirements[-_.]", "", path.stem.lower()))


def _without_variants(test_files: list[Path]) -> list[Path]:
    """The test requirements files without a plain set's variants, where the plain set exists."""
    plain = {(path.parent, _test_stem(path)) for path in test_files
             if _test_stem(path) in ("test", "tests", "testing")}
    return [path for path in test_files
            if not ((match := _VARIANT.search(_test_stem(path)))
                    and (path.parent, _test_stem(path)[:match.start()]) in plain)]


def _requirements_txt(root: Path, collected: _Collected) -> None:
    runtime_files, test_files, dev_files = requirement_files(root)
    for path in runtime_files:
        collected.add(str(path.relative_to(root)), read_requirements_file(path, root), [])
    for path in test_files:
        try:
            requirements = read_requirements_file(path, root)
        except BadInput:
            if path.parent.name in ("tests", "test"):
                continue  # not necessarily the suite's: a requirements tool's test data
            raise
        collected.add(str(path.relative_to(root)), [], requirements)
    for path in dev_files:
        collected.add(str(path.relative_to(root)), [],
                      _without_dev_tools(read_requirements_file(path, root)))


def _python_version(root: Path, data: dict[str, Any]) -> tuple[str, str | None]:
    requires = table(data, "project").get("requires-python")
    origin = root / "pyproject.toml"
    if requires is None:
        poetry_python = table(data, "tool", "poetry", "dependencies").get("python")
        if isinstance(poetry_python, str):
            requires = poetry.constraint_to_specifier(poetry_python, "[tool.poetry] python")
    setup_requires_python = _setup_py_keywords(root).get("python_requires") if requires is None else None
    if isinstance(setup_requires_python, str):
        requires = setup_requires_python
        origin = root / "setup.py"
    if requires is None and (root / "setup.cfg").is_file():
        parser = read_ini(root / "setup.cfg")
        if parser.has_option("options", "python_requires"):
            requires = parser.get("options", "python_requires")
            origin = root / "setup.cfg"
    pinned = root / ".python-version"
    if pinned.is_file():
        try:
            lines = pinned.read_text(encoding="utf-8").split()
        except UnicodeDecodeError:
            raise BadInput(f"{pinned}: not UTF-8 text") from None
        match = re.match(r"^(?:python-?|cpython-?)?(\d+)\.(\d+)", lines[0]) if lines else None
        if match:
            return f"{match.group(1)}.{match.group(2)}", str(requires) if requires else None
    if requires is None:
        return DEFAULT_PYTHON, None
    try:
        specifier = SpecifierSet(str(requires))
    except InvalidSpecifier:
        raise BadInput(f"{origin}: requires-python {requires!r} is not a valid "
                       "version specifier (like '>=3.11')") from None
    allowed = [v for v in KNOWN_PYTHONS if specifier.contains(f"{v}.0", prereleases=True)
               or specifier.contains(f"{v}.99", prereleases=True)]
    if not allowed:
        raise BadInput(f"{origin}: no Python from {KNOWN_PYTHONS[0]} to {KNOWN_PYTHONS[-1]} satisfies "
                       f"requires-python {requires!r}; set [tool.testdock] base_image")
    # The newest allowed release that is not newer than the newest stable default line.
    stable = [v for v in allowed if _minor(v) <= _minor(NEWEST_STABLE)]
    chosen = (stable or allowed)[-1]
    return chosen, str(requires)


def _pytest_testpaths(root: Path, pytest_config: tuple[str, dict[str, Any]]) -> list[str] | None:
    """`testpaths` from pytest's configuration (the one file pytest reads it from)."""
    where, settings = pytest_config
    value = settings.get("testpaths")
    if value is None:
        return None
    if isinstance(value, str):
        return ini_list(value) or None
    if not isinstance(value, list):
        raise BadInput(f"{root / 'pyproject.toml'}: {where} testpaths must be a list of paths")
    return [str(v) for v in value] or None


_INI_FILES = ("pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg")


def _measures_coverage(root: Path, data: dict[str, Any], pytest_options: dict[str, Any]) -> bool:
    """Whether the project's own test runs measure coverage: `--cov` in pytest's options, or a
    coverage configuration (.coveragerc, [tool.coverage], a [coverage:...] section)."""
    if (root / ".coveragerc").is_file() or "coverage" in table(data, "tool"):
        return True
    if _pytest_options_measure_coverage(pytest_options):
        return True
    return any(section.startswith("coverage:") for name in _INI_FILES
               if (root / name).is_file() for section in read_ini(root / name).sections())


def _pytest_options_measure_coverage(pytest_options: dict[str, Any]) -> bool:
    """Whether pytest's own options (addopts) ask for coverage: plain `pytest` then measures it,
    and fails under the configuration's `fail_under` as testdock's run does."""
    return "--cov" in addopts_text(pytest_options)


def _coverage_run_option(root: Path, data: dict[str, Any], option: str) -> object:
    """An option of coverage's [run] settings, where the project's configuration sets it
    (pyproject's [tool.coverage.run], .coveragerc's [run], a [coverage:run] section); None if not."""
    value = table(data, "tool", "coverage", "run").get(option)
    if value is not None:
        return value
    for name, section in ((".coveragerc", "run"), ("setup.cfg", "coverage:run"), ("tox.ini", "coverage:run")):
        if (root / name).is_file():
            found = read_ini(root / name).get(section, option, fallback=None)
            if found is not None:
                return found.strip()
    return None


def _coverage_contexts_per_test(root: Path, data: dict[str, Any]) -> bool:
    """Whether the coverage configuration sets `dynamic_context = test_function`."""
    return _coverage_run_option(root, data, "dynamic_context") == "test_function"


def _coverage_selects_files(root: Path, data: dict[str, Any]) -> bool:
    """Whether the coverage configuration says what to measure (`source` or `include`): a
    `--cov=PACKAGE` would override its source, and coverage warns that `include` is ignored,
    which a project's `filterwarnings = error` turns into a failed start."""
    return any(_coverage_run_option(root, data, option) not in (None, "", [])
               for option in ("source", "include", "source_pkgs"))


def _coverage_plugins(root: Path, data: dict[str, Any], pytest_options: dict[str, Any]) -> tuple[str, ...]:
    """The distributions of the plugins coverage's [run] settings load, by their top-level
    module (`Cython.Coverage` is Cython's; pip reads `coverage_conditional_plugin` as the
    distribution with hyphens)."""
    value = _coverage_run_option(root, data, "plugins")
    modules = value if isinstance(value, list) else re.split(r"[\s,]+", str(value or ""))
    plugins = (str(module).strip().partition(".")[0] for module in modules)
    # a plugin of the project's own tree (`plugins = tests.coverage_plugin`) is no distribution,
    # there or in a folder pytest's `pythonpath` adds (filelock's tasks/coverage_pragmas.py)
    extra = pytest_options.get("pythonpath", [])
    extra = extra if isinstance(extra, list) else str(extra).split()
    folders = [root, root / "src", *(root / str(folder) for folder in extra)]
    return tuple(dict.fromkeys(
        plugin for plugin in plugins if re.fullmatch(r"[A-Za-z_]\w*", plugin)
        and not any((folder / plugin).is_dir() or (folder / f"{plugin}.py").is_file() for folder in folders)))


def _test_paths(root: Path, pytest_config: tuple[str, dict[str, Any]]) -> tuple[str, ...]:
    configured = _pytest_testpaths(root, pytest_config)
    if configured:
        return tuple(configured)
    for candidate in ("tests", "test"):
        if (root / candidate).is_dir() and holds_files_matching(root / candidate, PYTEST_DEFAULT_FILES):
            return (candidate,)
    # pytest's own default: the whole tree (trio's tests are src/trio/_tests; its tests/ folder
    # holds helper scripts)
    return (".",)


def _source_roots(root: Path) -> tuple[str, ...]:
    return ("src",) if (root / "src").is_dir() else (".",)


def _packages(root: Path, source_roots: tuple[str, ...], test_paths: tuple[str, ...],
              name: str = "") -> tuple[str, ...]:
    """The project's top-level packages: folders with an __init__.py beside its tests, not its
    tests. A test path named as the project is its package, with doctests in it (wcwidth's
    `testpaths = tests wcwidth`)."""
    own = re.sub(r"[-.]+", "_", name).lower()
    skipped = {*(top for p in test_paths if (top := p.strip("/").split("/")[0]).lower() != own),
               "tests", "test", "docs", "examples", "scripts", "build", "dist", "docker"}
    found: list[str] = []
    for source_root in source_roots:
        base = root / source_root
        for entry in sorted(base.iterdir()):
            if entry.name in skipped or entry.name.startswith((".", "_")) or "venv" in entry.name:
                continue
            if entry.is_dir() and (entry / "__init__.py").is_file() and entry.name.isidentifier():
                found.append(entry.name)
            elif (entry.suffix == ".py" and entry.stem.isidentifier() and source_root == "src"):
                found.append(entry.stem)
    return tuple(found)


def _project_name(root: Path, data: dict[str, Any]) -> str:
    for candidate in (table(data, "project").get("name"), table(data, "tool", "poetry").get("name")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    if (root / "setup.cfg").is_file():
        parser = read_ini(root / "setup.cfg")
        if parser.has_option("metadata", "name"):
            return parser.get("metadata", "name").strip()
    setup_name = _setup_py_keywords(root).get("name")
    if isinstance(setup_name, str) and setup_name.strip():
        return setup_name.strip()
    # an unpacked sdist's folder carries the version: requests-2.32.3 is requests
    return re.sub(r"-v?\d+(\.\d+)+([._-]?[a-z]+\d*)*$", "", root.resolve().name) or root.resolve().name


def _needed_by_tests(root: Path, test_paths: tuple[str, ...], collected: _Collected,
                     chosen: Iterable[str], own: str) -> list[tuple[str, str]]:
    """Requirements of extras and groups not chosen for the tests (`optional`, `plot`) whose
    modules test files import unconditionally: the tests cannot be collected without them.
    Returns (requirement, where it was declared), in declaration order, extras first. Modules
    that what is chosen already provides, or the standard library, or testdock's own tools
    (pytest: a `pytest<7` pin in an unused group) never count."""
    chosen_names = [Requirement(r).name for r in chosen]
    have = {canonicalize_name(name) for name in chosen_names} | {own} | TOOL_NAMES
    # setup.py's ":python_version<'3'" keys are conditional install_requires, not extras
    pool = [(r, f"extra {key!r}") for key, requirements in collected.extras.items() if ":" not in key
            for r in requirements]
    pool += collected.declared
    # a docs extra's pins are the docs build's; an exact pin in a group not chosen for the tests
    # is another job's (narwhals's `extreme-minimum-versions` pins numpy==1.21.4, which no
    # Python 3.11 installs): a range declared elsewhere comes first, else the bare name
    pool.sort(key=lambda entry: ("doc" in entry[1], _exactly_pinned(entry[0])))
    offered: dict[str, tuple[str, str]] = {}  # canonical name -> its first declaration
    for text, where in pool:
        for requirement in _expand_self(_expand_self([text], SELF_REFERENCE, collected.extras), own,
                                        collected.extras):
            name = canonicalize_name(Requirement(requirement).name)
            if name not in have:
                offered.setdefault(name, (requirement, where))
    # the project's own package too: pydantic's tests import pydantic, which is not the first
    # word of pydantic-docs (a docs group's, from a git source) that they need
    provided = set(sys.stdlib_module_names).union(
        *(module_names(name) for name in (*chosen_names, *TOOL_NAMES, own)))
    modules = {name: declared_module_names(Requirement(requirement).name) - provided
               for name, (requirement, _) in offered.items()}
    candidates = set().union(*modules.values())
    imported = {**imported_through_project(root, test_paths, _source_roots(root), candidates),
                **imported_by_tests(root, test_paths, candidates)}
    return [(unpinned(requirement) if _exactly_pinned(requirement) else requirement, where)
            for name, (requirement, where) in offered.items() if modules[name] & imported.keys()]


def _exactly_pinned(text: str) -> bool:
    try:
        return any(spec.operator in ("==", "===") and "*" not in spec.version
                   for spec in Requirement(text).specifier)
    except InvalidRequirement:
        return False


def _is_project(root: Path) -> bool:
    if any((root / marker).is_file() for marker in _PROJECT_MARKERS):
        return True
    return bool(list(root.glob("requirements*.txt"))) or any(
        (root / folder).is_dir() for folder in ("requirements", "reqs", "requirements.d"))


def inspect_project(root: Path, app_override: str | None = None) -> Project:
    """Describe the project at `root`; bad input (not a project, broken files) raises BadInput."""
    if not root.exists():
        raise BadInput(f"{root}: no such directory")
    if not root.is_dir():
        raise BadInput(f"{root}: not a directory; give the project's folder")
    if not _is_project(root):
        raise BadInput(f"{root}: not a Python project (no pyproject.toml, setup.py, setup.cfg or "
                       "requirements*.txt); run testdock in the project's folder")
    pyproject = root / "pyproject.toml"
    data = read_toml(pyproject) if pyproject.is_file() else {}
    collected = _Collected()
    _pep621(data, collected)
    _dependency_groups(data, collected)
    _tool_groups(data, collected)
    _test_runner(*tox_requirements(root, SELF_REFERENCE, data), collected)
    _test_runner(nox_requirements(root, SELF_REFERENCE), "noxfile.py test sessions", collected)
    _test_runner(task_runner_extras(root, SELF_REFERENCE, list(collected.extras)),
                 "the test recipes of its Justfile or Makefile", collected)
    _poetry(data, collected)
    _setup_cfg(root, collected)
    _setup_py(root, collected)
    _requirements_txt(root, collected)
    name = _project_name(root, data)
    own = canonicalize_name(name)
    # `-e .[socks]` in a requirements file: the extra's own requirements
    runtime = [_expand_self(group, SELF_REFERENCE, collected.extras) for group in collected.dependencies]
    test = [_expand_self(group, SELF_REFERENCE, collected.extras) for group in collected.test_dependencies]
    dependencies = tuple(r for r in merge(*runtime) if canonicalize_name(Requirement(r).name) != own)
    test_dependencies = tuple(r for r in merge(*test) if canonicalize_name(Requirement(r).name) != own)
    python_version, requires_python = _python_version(root, data)
    pytest_config = pytest_settings(root, data)  # (where, pytest's settings): read once
    unittest_settings = None
    if not pytest_config[0] and (discovered := unittestdiscovery.pytest_settings_for(root)) is not None:
        unittest_settings = (discovered[0].where, discovered[1])
        pytest_config = (f"unittest discover in {discovered[0].where}", discovered[1])
    pytest_options = pytest_config[1]
    test_paths = _test_paths(root, pytest_config)
    needed = _needed_by_tests(root, test_paths, collected, (*dependencies, *test_dependencies), own)
    if needed:
        test_dependencies = tuple(merge(test_dependencies, [requirement for requirement, _ in needed]))
        collected.sources.append("tests' imports (" + ", ".join(
            f"{Requirement(requirement).name} from {where}" for requirement, where in needed) + ")")
    local_packages = tuple(dict.fromkeys(
        path for r in (*dependencies, *test_dependencies) if (path := local_package_path(r))))
    dependencies = tuple(r for r in dependencies if not local_package_path(r))
    test_dependencies = tuple(r for r in test_dependencies if not local_package_path(r))
    source_roots = _source_roots(root)
    installable = bool(table(data, "build-system")) or bool(table(data, "project")) or bool(
        table(data, "tool", "poetry")) or (root / "setup.py").is_file() or (root / "setup.cfg").is_file()
    app = parse_app_reference(app_override) if app_override else detect_app(
        [root / source_root for source_root in source_roots])
    packages = _packages(root, source_roots, test_paths, name)
    return Project(
        root=root.resolve(),
        name=name,
        python_version=python_version,
        requires_python=requires_python,
        dependencies=dependencies,
        test_dependencies=test_dependencies,
        test_paths=test_paths,
        source_roots=source_roots,
        packages=packages,
        installable=installable,
        app=app,
        sources=tuple(collected.sources),
        measures_coverage=_measures_coverage(root, data, pytest_options),
        pytest_measures_coverage=_pytest_options_measure_coverage(pytest_options),
        pytest_timeout=sets_timeout(pytest_options),
        pytest_writes_junit=writes_junit(pytest_options),
        unittest_settings=unittest_settings,
        coverage_contexts_per_test=_coverage_contexts_per_test(root, data),
        coverage_selects_files=_coverage_selects_files(root, data),
        coverage_plugins=_coverage_plugins(root, data, pytest_options),
        optional_requirements=(*((r, f"extra {key!r}") for key, requirements in collected.extras.items()
                                 if ":" not in key for r in requirements), *collected.declared),
        builds_extensions=installable and builds_extensions(
            root, data, [root / folder / package for folder in source_roots for package in packages]),
        py_path_hooks=tuple(py_path_hook_files(root, test_paths)),
        marked_fixtures=tuple(marked_fixture_files(root, test_paths)),
        inicfg_readers=tuple(inicfg_files(root, test_paths)
                             if warnings_fail(pytest_options) else ()),
        warnings_fail=warnings_fail(pytest_options),
        local_packages=local_packages,
        program_packages=tuple(dict.fromkeys([
            *packages_for_programs(root, test_paths),
            *packages_for_distributions([*dependencies, *test_dependencies])])),
        scm_version=scm_version(root),
    )


_APP_REFERENCE = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")


def parse_app_reference(text: str, interface: str = "asgi") -> AppRef:
    """`module:attribute` as given by a user."""
    match = _APP_REFERENCE.match(text.strip())
    if not match:
        raise BadInput(f"app {text!r} is not of the form 'package.module:attribute'")
    return AppRef(match.group(1), match.group(2), interface, "configured")
