"""Install a project's light dependencies into the collection image, at build time.

A dependency is light when it and everything it depends on come as wheels, pure Python or
compiled but small (at most 1 MiB each), that fit the budget together: installing it costs
little, and its real data (time zones, locales, enumerations, configuration read from YAML) then
feeds collection exactly as in the real run. Everything else (big compiled packages such as
numpy, packages only published as sources, whatever would exceed the budget) is left to the
import stubs.

    python light.py CANDIDATES --budget BYTES --pip PIP --python VENV_PYTHON

Standard library only: it runs in the image's build, before anything else is installed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


def requirements(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def _project(wheel: Path) -> str:
    return wheel.name.split("-", 1)[0].lower().replace("_", "-").replace(".", "-")


def _download(pip: list[str], requirement: str, target: Path, constraint: str | None = None
              ) -> list[Path] | None:
    """The wheels of `requirement` and everything it needs; None when some part has none."""
    command = [*pip, "download", "--quiet", "--only-binary=:all:", "--dest", str(target)]
    if constraint:
        command += ["--constraint", constraint]
    result = subprocess.run([*command, requirement], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return sorted(target.glob("*.whl")) if target.is_dir() else []


def installed_projects(python: str) -> set[str]:
    """The projects already installed in the environment of `python`."""
    result = subprocess.run([python, "-c", "import importlib.metadata as m; "
                             "print('\\n'.join(d.metadata['Name'] or '' for d in m.distributions()))"],
                            capture_output=True, text=True, check=False)
    return {line.strip().lower().replace("_", "-").replace(".", "-") for line in result.stdout.splitlines()
            if line.strip()}


# A compiled wheel this small is a parser or a helper (PyYAML, MarkupSafe, msgpack, psutil), often
# used at import time (configuration read from YAML); the big ones (numpy, pydantic-core,
# SQLAlchemy) are what the stubs are for.
SMALL_NATIVE = 1 << 20


@dataclass
class Choice:
    chosen: dict[str, Path] = field(default_factory=dict)  # project -> its wheel, to install
    notes: list[str] = field(default_factory=list)  # a line of explanation per candidate
    # the top-level modules of every project the candidates need, down to the last dependency;
    # None when some part is not published as a wheel (its dependencies are then not known)
    modules: set[str] | None = field(default_factory=set)


def top_level_modules(wheel: Path) -> set[str]:
    """The top-level modules a wheel installs (`yaml`, `_yaml`; `google` for a namespace)."""
    modules = set()
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return set()
    for name in names:
        first = name.split("/", 1)[0]
        if first.endswith((".dist-info", ".data")) or first.endswith(".pth"):
            continue
        if "/" in name or first.endswith(".py"):
            modules.add(first.removesuffix(".py"))
        elif first.endswith((".so", ".pyd")):
            modules.add(first.split(".", 1)[0])
    return {module for module in modules if module.isidentifier()}


def choose(pip: list[str], candidates: list[str], budget: int, folder: Path,
           installed: set[str] | None = None, constraint: str | None = None) -> Choice:
    """The wheels to install (by project), a line of explanation per candidate, and the modules
    the candidates bring with them. Projects in `installed` are there already (installed for real
    on purpose): they count as satisfied."""
    present = installed or set()
    choice = Choice()
    chosen = choice.chosen
    notes = choice.notes
    used = 0
    for index, requirement in enumerate(candidates):
        wheels = _download(pip, requirement, folder / str(index), constraint)
        if wheels is None:
            notes.append(f"stubbed {requirement}: not every part of it is published as a wheel")
            choice.modules = None
            continue
        if choice.modules is not None:
            for downloaded in wheels:
                choice.modules |= top_level_modules(downloaded)
        wheels = [wheel for wheel in wheels if _project(wheel) not in present]
        native = [wheel for wheel in wheels if not wheel.name.endswith("-none-any.whl")
                  and wheel.stat().st_size > SMALL_NATIVE]
        if native:
            size = native[0].stat().st_size // 1024
            notes.append(f"stubbed {requirement}: compiled ({native[0].name}, {size} KiB)")
            continue
        new = [wheel for wheel in wheels if _project(wheel) not in chosen]
        size = sum(wheel.stat().st_size for wheel in new)
        if used + size > budget:
            notes.append(f"stubbed {requirement}: {size // 1024} KiB of wheels would exceed the budget")
            continue
        used += size
        for wheel in new:
            chosen[_project(wheel)] = wheel
        notes.append(f"installed {requirement}: {len(new)} wheel(s), {size // 1024} KiB")
    return choice


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--budget", type=int, default=4 << 20, help="bytes of wheels, at most")
    parser.add_argument("--pip", default=f"{sys.executable} -m pip", help="the pip command")
    parser.add_argument("--python", required=True, help="the interpreter of the venv to install into")
    parser.add_argument("--constraint", help="a constraints file the downloads stay within")
    parser.add_argument("--modules", type=Path,
                        help="where to write the top-level modules of everything the candidates "
                             "need (written only when all of it is known)")
    options = parser.parse_args(argv)
    pip = options.pip.split()
    candidates = requirements(options.candidates) if options.candidates.is_file() else []
    if not candidates or options.budget <= 0:
        print("testdock light dependencies: none to consider")
        if options.modules is not None and not candidates:
            options.modules.write_text("", encoding="utf-8")  # no dependency: none is provided
        return 0
    with tempfile.TemporaryDirectory(prefix="testdock-light-") as temporary:
        choice = choose(pip, candidates, options.budget, Path(temporary),
                        installed_projects(options.python), options.constraint)
        for note in choice.notes:
            print(f"testdock light dependencies: {note}")
        if choice.chosen:
            subprocess.run([*pip, "--python", options.python, "install", "--quiet", "--no-index", "--no-deps",
                            *(str(wheel) for wheel in choice.chosen.values())], check=True)
    if options.modules is not None:
        if choice.modules is None:
            print("testdock light dependencies: what the dependencies need is not all known (not "
                  "every part is published as a wheel): an import that no declared dependency "
                  "provides is stubbed in collection, not reported")
        else:
            options.modules.write_text("".join(f"{name}\n" for name in sorted(choice.modules)),
                                       encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
