"""The host side imports only its declared dependencies: `pip install testdock` into a bare venv
has no pytest, and every generated pipeline runs testdock there. A quick guard beside the real
check (tests/integration/test_packaging.py installs the wheel into a fresh venv)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

from packaging.requirements import Requirement

from tests.conftest import REPO


def _development_only_modules() -> set[str]:
    """Top-level modules of the dev extra's distributions (and the pytest stack under them) that no
    runtime dependency provides."""
    runtime: set[str] = set()
    development: set[str] = {"pluggy", "iniconfig", "execnet"}
    for text in importlib.metadata.requires("testdock") or []:
        requirement = Requirement(text)
        target = development if requirement.marker and "extra" in str(requirement.marker) else runtime
        target.add(requirement.name.lower().replace("_", "-"))
    modules: set[str] = set()
    for module, distributions in importlib.metadata.packages_distributions().items():
        names = {name.lower().replace("_", "-") for name in distributions}
        if names & development and not names & runtime:
            modules.add(module)
    return modules | {"_pytest", "pytest"}


_PROBE = textwrap.dedent("""
    import importlib, importlib.abc, pkgutil, sys
    BLOCKED = set(sys.argv[1].split(","))

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not installed in a bare venv)")
            return None

    sys.meta_path.insert(0, Block())
    import testdock
    for module in pkgutil.walk_packages(testdock.__path__, "testdock."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    import click
    from testdock.cli import main
    commands = [[]]
    for name, command in main.commands.items():
        commands.append([name])
        if isinstance(command, click.Group):
            commands.extend([name, sub] for sub in command.commands)
    for command in commands:
        try:
            main([*command, "--help"], prog_name="testdock")
        except SystemExit as stop:
            assert stop.code == 0, (command, stop.code)
    print("imported", len(sys.modules), "modules")
""")


def test_every_host_module_and_command_help_imports_without_the_development_tools() -> None:
    blocked = _development_only_modules()
    assert {"pytest", "xdist", "pluggy"} <= blocked
    result = subprocess.run([sys.executable, "-c", _PROBE, ",".join(sorted(blocked))], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout
