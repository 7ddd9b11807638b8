"""When a run fails because the tests import what the image does not have (test dependencies a
project keeps outside its metadata: a requirements file its sdist leaves out, a tox.ini), every
such module at once, not one per failed run: the modules the failing output names, and those the
test files import unconditionally that the image cannot find, with the setting that adds them."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from testdock.project.testimports import files_of_tests, unconditional_imports
from testdock.run.missingplugins import plugins_named

if TYPE_CHECKING:
    import docker

    from testdock.project.inspection import Project

# how pytest and Python say a module is missing: an import error, a warning filter naming a
# module's category (`ignore::trio.TrioDeprecationWarning`), a `-p plugin` that does not import
_MISSING = re.compile(r"No module named '([\w.]+)'|Failed to import filter module '([\w.]+)'"
                      r"|Error importing plugin \"([\w.]+)\"")

# Run in the image with its own environment and /app as the working directory (the tests' own
# helper modules are found as pytest finds them): the modules it cannot find
_ABSENT = ("import importlib.util as u, json, sys\n"
           "print(json.dumps([n for n in sys.argv[1:] if u.find_spec(n) is None]))\n")


# where pytest says which file it was importing: a collection error's heading, a conftest's
_WHERE = re.compile(r"^_+ ERROR collecting (\S+) _+$|^ImportError while loading conftest '([^']+)'")
# a line that says a test failed on an import (`E   ModuleNotFoundError: ...`, a traceback's last
# line, the short summary's `FAILED test - ModuleNotFoundError: ...`): the output of code under
# test that merely mentions one (sphinx's tests of autodoc's mocks warn of `missing_module` by the
# dozen) is no missing dependency
_RAISED = re.compile(r"^(?:E\s+)?(?:[\w.]+\.)?(?:ModuleNotFoundError|ImportError)\b"
                     r"|\s-\s(?:[\w.]+\.)?(?:ModuleNotFoundError|ImportError)\b")
_CAPTURED = re.compile(r"^-+ Captured \w+")  # a test's captured output or log, to the next heading


class OutputScanner:
    """Reads a run's output as it streams, in chunks that may cut lines: the modules it says
    are missing, each with the file pytest was importing when it said so (None where unsaid)."""

    def __init__(self) -> None:
        self.missing: dict[str, str | None] = {}
        self.plugins: dict[str, str] = {}  # pytest plugin -> the fixture, marker... pytest lacked
        self._partial = ""
        self._file: str | None = None
        self._captured = False  # in a test's captured output

    def feed(self, text: str) -> OutputScanner:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if where := _WHERE.match(line):
                self._file = next(group for group in where.groups() if group)
                self._captured = False
            elif line.startswith(("___", "===")):  # another section: a test's failure, a summary
                self._file, self._captured = None, False
            elif _CAPTURED.match(line):
                self._captured = True
            if self._captured:
                continue
            for plugin, named in plugins_named(line).items():
                self.plugins.setdefault(plugin, named)
            for match in _MISSING.finditer(line):
                if match.group(1) and self._file is None and not _RAISED.search(line):
                    continue  # named in a message, not raised: not what the test failed on
                module = next(group for group in match.groups() if group).partition(".")[0]
                if self.missing.get(module) is None:
                    self.missing[module] = self._file
        return self


_NOT_THE_PROJECTS = {"node_modules", "__pycache__", "docker"}


def _walk(root: Path) -> Iterable[tuple[str, list[str], list[str]]]:
    """os.walk of the project's own folders (no hidden folder, virtualenv or testdock's docker/)."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")
                               and name not in _NOT_THE_PROJECTS and "venv" not in name)
        yield folder, subfolders, files


def _bare_folders(base: Path) -> Iterable[tuple[str, list[str], list[str]]]:
    """The folders under `base` whose modules a test can import by their bare name: those that are
    not packages (src/, the root, a folder of scripts) and folders of tests, packages or not (dill's
    runner puts dill/tests on the path: `import test_mixins`). A module of another package
    (sqlglot/dialects/duckdb.py) is imported by its package's name; its bare name (`duckdb`) is a
    distribution's."""
    for folder, subfolders, files in _walk(base):
        if "__init__.py" not in files or any(_is_test_file(name) for name in files):
            yield folder, subfolders, files


def _is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")
                                     or name == "conftest.py")


def _local_names(root: Path, folders: Iterable[str]) -> set[str]:
    """Modules and packages that live in the project's tree (a tests folder's helpers, the
    project's own packages): never a dependency to install."""
    local: set[str] = set()
    for folder in {".", *folders}:
        base = root / folder
        if not base.is_dir():
            continue
        for _folder, subfolders, files in _bare_folders(base):
            local.update(name for name in subfolders)
            local.update(name[:-3] for name in files if name.endswith(".py"))
    return local


def project_modules(root: Path, modules: Iterable[str]) -> dict[str, str]:
    """module -> its file, for the modules that are files of the project's own tree (dill's tests
    import their sibling `test_mixins` by its bare name, as its own runner allows): never a
    distribution to install, whatever the output said."""
    wanted = set(modules)
    found: dict[str, str] = {}
    for folder, subfolders, files in _bare_folders(root):
        for module in sorted(wanted - found.keys()):
            if f"{module}.py" in files or (module in subfolders
                                          and (Path(folder) / module / "__init__.py").is_file()):
                path = Path(folder) / (f"{module}.py" if f"{module}.py" in files else module)
                found[module] = path.relative_to(root).as_posix()
    return found


def third_party_imports(root: Path, test_paths: Iterable[str], source_roots: Iterable[str]) -> dict[str, str]:
    """The third-party modules the test files import unconditionally: module -> the first file
    (relative to root) that does; the standard library and the project's own modules left out."""
    paths = list(test_paths)
    excluded = set(sys.stdlib_module_names) | _local_names(root, [*paths, *source_roots])
    found: dict[str, str] = {}
    for path in files_of_tests(root, paths):
        try:
            source = path.read_bytes()
        except OSError:
            continue
        for module in sorted(unconditional_imports(source, str(path)) - excluded):
            found.setdefault(module, os.path.relpath(path, root).replace(os.sep, "/"))
    return found


def absent_in_image(client: docker.DockerClient, image: str, modules: Iterable[str]) -> set[str] | None:
    """Which of `modules` the image cannot import; None when it cannot tell."""
    import docker.errors

    from testdock import engine

    names = sorted(set(modules))
    if not names:
        return set()
    try:
        code, output = engine.run_to_completion(client, engine.ContainerSpec(
            image, ["python", "-c", _ABSENT, *names], network="none",
            profile=engine.Profile.PLAIN), timeout=120)
        if code != 0:
            return None
        absent = json.loads(output.strip().splitlines()[-1])
    except (docker.errors.DockerException, ValueError, IndexError):
        return None
    return {str(name) for name in absent} if isinstance(absent, list) else None


def every_missing(client: docker.DockerClient, image: str, project: Project,
                  named: dict[str, str | None]) -> dict[str, str | None]:
    """Every module the tests import that the image lacks, from those the output named (with the
    file it was importing): the test files' other imports are checked in the image, so that one
    run names them all."""
    imported = third_party_imports(project.root, project.test_paths, project.source_roots)
    candidates = {module for module in imported if module not in named}
    absent = absent_in_image(client, image, candidates) or set()
    found = {module: imported.get(module) or (named.get(module) or "").removeprefix("/app/") or None
             for module in {*named, *absent}}
    return dict(sorted(found.items()))


def declared_owners(modules: Iterable[str], optional: Iterable[tuple[str, str]],
                    plugins: Iterable[str] = ()) -> dict[str, tuple[str, str]]:
    """module or plugin -> (the requirement, where the project declares it) for the modules one
    of the project's own extras or groups provides (plotnine's `skmisc`: scikit-misc of its
    extra `all`), and the plugins one of them names."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    from testdock_pytest.collection.importnames import declared_module_names

    wanted_plugins = {canonicalize_name(plugin): plugin for plugin in plugins}
    owners: dict[str, tuple[str, str]] = {}
    for requirement, where in optional:
        try:
            name = Requirement(requirement).name
        except InvalidRequirement:
            continue
        if canonicalize_name(name) in wanted_plugins:
            owners.setdefault(wanted_plugins[canonicalize_name(name)], (requirement, where))
        provided = declared_module_names(name)
        for module in modules:
            if module in provided:
                owners.setdefault(module, (requirement, where))
    return owners


def local_hint(local: dict[str, str]) -> list[str]:
    """What to say of the project's own modules the tests could not import by their bare name."""
    if not local:
        return []
    listed = ", ".join(f"{module} ({where})" for module, where in sorted(local.items()))
    folders = sorted({str(Path(where).parent) for where in local.values()})
    return [f"testdock: the tests import {len(local)} module(s) of the project's own tree by their bare "
            f"name, and pytest does not put their folder on the import path: {listed}",
            "testdock: not a dependency to install; where the project's own runner puts the folder on "
            f"sys.path, pytest's `pythonpath` setting does the same (pythonpath = {' '.join(folders)} in "
            "its configuration), or the tests import them by their package"]


def hint(phase: str, missing: dict[str, str | None], declared: dict[str, tuple[str, str]] | None = None,
         plugins: dict[str, str] | None = None) -> list[str]:
    """The lines that name every missing module and pytest plugin and the setting that installs
    them: the project's own declaration where it has one, else the distribution it is known by."""
    from testdock.run.installhint import owner_by_name

    plugins = plugins or {}
    if not missing and not plugins:
        return []
    declared = declared or {}
    lines: list[str] = []
    if missing:
        listed = ", ".join(f"{module} ({where})" if where else module
                           for module, where in sorted(missing.items()))
        lines.append(f"testdock: the tests import {len(missing)} module(s) the {phase} image does not "
                     f"have: {listed}")
    if plugins:
        listed = ", ".join(f"{named} ({plugin})" for plugin, named in sorted(plugins.items()))
        lines.append(f"testdock: the tests use {len(plugins)} pytest plugin(s) the {phase} image does not "
                     f"have: {listed}")
    owners = json.dumps(sorted({declared[name][0] if name in declared else owner_by_name(name)
                                for name in missing} | {declared[plugin][0] if plugin in declared else plugin
                                                         for plugin in plugins}))
    lines.append("testdock: no dependency the image installs provides them; declare them as the project's "
                 f"test dependencies, or set [tool.testdock.phases.{phase}] extra_requirements = {owners} "
                 "in pyproject.toml, then run testdock build")
    # a module's name is not always its distribution's (skmisc is scikit-misc): never installed
    # on a guess without the user's look
    lines += [f"testdock: {name}: the project declares {requirement} in its {where}"
              for name, (requirement, where) in sorted(declared.items())
              if name in missing or name in plugins]
    guessed = sorted(module for module in missing
                     if module not in declared and owner_by_name(module) == module)
    if guessed:
        plural = "s" if len(guessed) > 1 else ""
        lines.append(f"testdock: {', '.join(guessed)}: named after the module{plural}; check the "
                     "distribution's name (the project's docs or extras, PyPI) before adding it")
    return lines
