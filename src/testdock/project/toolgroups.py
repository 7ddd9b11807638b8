"""Test dependencies that project managers keep in their own tables: Hatch's environments, PDM's
development groups, tox's test environment and nox's test sessions. Read as the tools read them
(nox's without running its file), as named groups of requirement strings."""

from __future__ import annotations

import ast
import configparser
import contextlib
import re
from pathlib import Path
from typing import Any

from testdock.errors import BadInput
from testdock.project.pyproject import ini_lines, read_ini, read_toml, table
from testdock.project.requirements import read_requirements_file

# a tox line that applies to some environments only (`py38: mock`, `tests,mypy: pytest`)
_TOX_FACTORS = re.compile(r"^[\w.{},!-]+:\s")
_TOX_INCLUDE = re.compile(r"^-r\s*(\S+)$")

# Hatch's own test environment (`hatch test`), and its default one, which every other inherits
_HATCH_TEST_ENV = "hatch-test"
_HATCH_DEFAULT_ENV = "default"


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _hatch_env(envs: dict[str, Any], name: str, project: str,
               seen: frozenset[str] = frozenset()) -> list[str]:
    """An environment's requirements: its dependencies, extra dependencies and features (the
    project's extras, as `project[feature]`), after those of the environment it inherits from."""
    env = envs.get(name)
    if not isinstance(env, dict) or name in seen:
        return []
    template = env.get("template", _HATCH_DEFAULT_ENV if name != _HATCH_DEFAULT_ENV else None)
    inherited = (_hatch_env(envs, template, project, seen | {name})
                 if isinstance(template, str) and template else [])
    features = [f"{project}[{feature}]" for feature in _strings(env.get("features"))] if project else []
    return [*inherited, *_strings(env.get("dependencies")), *_strings(env.get("extra-dependencies")),
            *features]


def hatch_groups(data: dict[str, Any]) -> dict[str, list[str]]:
    """Hatch's environments as groups: `hatch-test` counts as the test group, `default` as the
    development one (where the project has no env of those names)."""
    envs = table(data, "tool", "hatch", "envs")
    project = str(table(data, "project").get("name", ""))
    groups: dict[str, list[str]] = {}
    for name in envs:
        key = {_HATCH_TEST_ENV: "test", _HATCH_DEFAULT_ENV: "dev"}.get(name, name)
        if key in groups and key != name:
            continue  # an env the project named `test` itself comes first
        groups[key] = _hatch_env(envs, name, project)
    return {key: requirements for key, requirements in groups.items() if requirements}


def pdm_groups(data: dict[str, Any]) -> dict[str, list[str]]:
    """PDM's development groups, without its editable references to the project itself."""
    return {name: [entry for entry in _strings(value) if not entry.startswith("-e")]
            for name, value in table(data, "tool", "pdm", "dev-dependencies").items()
            if _strings(value)}


# a line standing for another section's value: `{[test-requirements]deps}` (scrapy)
_TOX_SECTION_REFERENCE = re.compile(r"^\{\[([^\]]+)\]([\w-]+)\}$")


def _tox_lines(parser: configparser.ConfigParser, section: str, key: str, depth: int = 0) -> list[str]:
    """The lines of a tox setting, with lines that stand for another section's setting replaced
    by its lines (a few levels deep)."""
    lines: list[str] = []
    for line in ini_lines(parser.get(section, key, fallback="")):
        reference = _TOX_SECTION_REFERENCE.match(line)
        if reference and depth < 3 and parser.has_section(reference.group(1)):
            lines += _tox_lines(parser, reference.group(1), reference.group(2), depth + 1)
        else:
            lines.append(line)
    return lines


def _tox_ini(root: Path, pyproject: dict[str, Any]) -> tuple[configparser.ConfigParser, str] | None:
    """tox's INI configuration and where it is, found as tox looks for it: tox.ini, setup.cfg
    with a `[tox:tox]` section, pyproject.toml's `[tool.tox] legacy_tox_ini` string (tqdm)."""
    path = root / "tox.ini"
    if path.is_file():
        return read_ini(path), "tox.ini"
    setup_cfg = root / "setup.cfg"
    if setup_cfg.is_file():
        parser = read_ini(setup_cfg)
        if parser.has_section("tox:tox"):
            return parser, "setup.cfg"
    legacy = table(pyproject, "tool", "tox").get("legacy_tox_ini")
    if isinstance(legacy, str):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(legacy, source=f"{root / 'pyproject.toml'} legacy_tox_ini")
        except configparser.Error:
            return None
        return parser, "pyproject.toml [tool.tox] legacy_tox_ini"
    return None


def _tox_toml(root: Path, pyproject: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """tox's TOML configuration of every environment (tox 4.21's native format): pyproject.toml's
    `[tool.tox.env_run_base]`, or tox.toml's `[env_run_base]`."""
    base = table(pyproject, "tool", "tox", "env_run_base")
    if base:
        return base, "pyproject.toml [tool.tox.env_run_base]"
    path = root / "tox.toml"
    if path.is_file():
        base = table(read_toml(path), "env_run_base")
        if base:
            return base, "tox.toml [env_run_base]"
    return None


def tox_requirements(root: Path, project: str, pyproject: dict[str, Any]) -> tuple[list[str], str]:
    """What tox's `[testenv]` installs in every environment, and where tox's configuration is:
    its `deps` (requirements files named with `-r` included, where they exist) and `extras` (the
    project's, as `project[extra]`); the lines of some environments only, and tox's
    substitutions, are left out. `pyproject`: pyproject.toml's content, read once."""
    found_ini = _tox_ini(root, pyproject)
    if found_ini is not None:
        parser, where = found_ini
        if not parser.has_section("testenv"):
            return [], where
        extras = [line for line in ini_lines(parser.get("testenv", "extras", fallback=""))
                  if not _TOX_FACTORS.match(line) and "{" not in line]
        return (_tox_deps(root, _tox_lines(parser, "testenv", "deps")) + _with_extras(project, extras),
                f"{where} [testenv]")
    found_toml = _tox_toml(root, pyproject)
    if found_toml is None:
        return [], ""
    base, where = found_toml
    requirements = _tox_deps(root, _strings(base.get("deps")))
    return requirements + _with_extras(project, _strings(base.get("extras"))), where


def _with_extras(project: str, extras: list[str]) -> list[str]:
    """The project with these extras, as one requirement (`project[a,b]`); none without any."""
    return [f"{project}[{','.join(extras)}]"] if project and extras else []


def _tox_deps(root: Path, lines: list[str]) -> list[str]:
    found: list[str] = []
    for line in lines:
        if _TOX_FACTORS.match(line) or "{" in line or line.startswith(("-c", "--")):
            continue
        if include := _TOX_INCLUDE.match(line):
            try:
                found += read_requirements_file(root / include.group(1), root)
            except BadInput:
                continue  # a file the sdist left out, or one that is not the suite's
            continue
        found.append(line)
    return found


# a nox session that runs the tests: `tests`, `test-3.12`, `unit`, `pytest`
_NOX_TEST_SESSION = re.compile(r"test|unit|pytest", re.IGNORECASE)


def nox_requirements(root: Path, project: str) -> list[str]:
    """What noxfile.py's test sessions install, read without running it: the string literals
    given to `session.install(...)` (and module-level lists of them passed with `*`), requirements
    files named with `-r`, and the project's extras (`.[test]`, as `project[test]`). Installs
    built from variables or inside other functions are left out."""
    path = root / "noxfile.py"
    if not path.is_file():
        return []
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return []
    constants = {target.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)}
    found: list[str] = []
    for function in tree.body:
        if not (isinstance(function, ast.FunctionDef) and _is_nox_test_session(function)):
            continue
        for call in ast.walk(function):
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "install"):
                found += _nox_install_arguments(call.args, constants, root, project)
    return list(dict.fromkeys(found))


def _is_nox_test_session(function: ast.FunctionDef) -> bool:
    for decorator in function.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        named = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if named != "session":
            continue
        name = function.name
        if isinstance(decorator, ast.Call):
            for keyword in decorator.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    name = str(keyword.value.value)
        return bool(_NOX_TEST_SESSION.search(name))
    return False


def _nox_install_arguments(arguments: list[ast.expr], constants: dict[str, ast.expr], root: Path,
                           project: str) -> list[str]:
    values: list[str] = []
    for argument in arguments:
        if isinstance(argument, ast.Starred) and isinstance(argument.value, ast.Name):
            listed = constants.get(argument.value.id)
            if isinstance(listed, ast.List | ast.Tuple):
                values += [item.value for item in listed.elts
                           if isinstance(item, ast.Constant) and isinstance(item.value, str)]
        elif isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            values.append(argument.value)
        else:
            values.append("")  # a value only known when nox runs: what it qualifies is unknown too
    found: list[str] = []
    option = ""
    for value in values:
        if value.startswith("-r") and len(value) > 2:  # `-rrequirements.txt`
            option, value = "-r", value[2:].strip()
        if option in ("-r", "--requirement") and value:
            with contextlib.suppress(BadInput):  # a file the checkout does not have
                found += read_requirements_file(root / value, root)
        elif option in ("-c", "--constraint") or not value:
            pass
        elif value.startswith("-"):
            option = value
            continue
        elif extras := re.fullmatch(r"\.(\[[\w,\s-]+\])", value):
            if project:
                found.append(f"{project}{extras.group(1)}")
        elif option not in ("-e", "--editable") and value != "." and not value.startswith(("./", "/", "..")):
            found.append(value)
        option = ""
    return found


# the task runners' files whose recipes say how the project runs its tests
_TASK_FILES = ("Justfile", "justfile", ".justfile", "Makefile", "makefile", "GNUmakefile")
_EXTRA_OPTION = re.compile(r"--extra[= ]+([A-Za-z0-9][\w.-]*)")


def task_runner_extras(root: Path, project: str, extras: list[str]) -> list[str]:
    """The project's extras that the test recipes of its Justfile or Makefile run pytest with
    (cattrs: `uv run --all-extras --group test pytest`), as `project[extra,...]`: every extra for
    `--all-extras`, the named ones for `--extra NAME`. Only lines that run pytest count."""
    wanted: list[str] = []
    for name in _TASK_FILES:
        path = root / name
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if "pytest" not in line or line.lstrip().startswith("#"):
                continue
            if "--all-extras" in line:
                wanted += extras
            wanted += [extra for extra in _EXTRA_OPTION.findall(line) if extra in extras]
    return _with_extras(project, list(dict.fromkeys(wanted)))
