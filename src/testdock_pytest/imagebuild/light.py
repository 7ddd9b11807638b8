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


def choose(pip: list[str], candidates: list[str], budget: int, folder: Path,
           installed: set[str] | None = None, constraint: str | None = None
           ) -> tuple[dict[str, Path], list[str]]:
    """The wheels to install (by project) and a line of explanation per candidate. Projects in
    `installed` are there already (installed for real on purpose): they count as satisfied."""
    present = installed or set()
    chosen: dict[str, Path] = {}
    used = 0
    notes = []
    for index, requirement in enumerate(candidates):
        wheels = _download(pip, requirement, folder / str(index), constraint)
        if wheels is None:
            notes.append(f"stubbed {requirement}: not every part of it is published as a wheel")
            continue
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
    return chosen, notes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--budget", type=int, default=4 << 20, help="bytes of wheels, at most")
    parser.add_argument("--pip", default=f"{sys.executable} -m pip", help="the pip command")
    parser.add_argument("--python", required=True, help="the interpreter of the venv to install into")
    parser.add_argument("--constraint", help="a constraints file the downloads stay within")
    options = parser.parse_args(argv)
    pip = options.pip.split()
    candidates = requirements(options.candidates) if options.candidates.is_file() else []
    if not candidates or options.budget <= 0:
        print("testdock light dependencies: none to consider")
        return 0
    with tempfile.TemporaryDirectory(prefix="testdock-light-") as temporary:
        chosen, notes = choose(pip, candidates, options.budget, Path(temporary),
                               installed_projects(options.python), options.constraint)
        for note in notes:
            print(f"testdock light dependencies: {note}")
        if chosen:
            subprocess.run([*pip, "--python", options.python, "install", "--quiet", "--no-index", "--no-deps",
                            *(str(wheel) for wheel in chosen.values())], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
