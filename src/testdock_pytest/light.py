"""Install a project's light dependencies into the collection image, at build time.

A dependency is light when it and everything it depends on come as wheels, pure Python or
compiled but small (at most 1 MiB each), that fit the budget together: installing it costs
little, and its real data (time zones, locales, enumerations, configuration read from YAML) then
feeds collection exactly as in the real run. Everything else (big compiled packages such as
numpy, packages only published as sources, whatever would exceed the budget) is left to the
import stubs.

With --closure-of, it also writes the names of every distribution the real run installs (the
execution image's requirements, resolved by pip without installing anything): the stubs then
know a module the project gets through a dependency, such as dateutil through pandas, is there
in the real run, even where the project never names it.

    python light.py CANDIDATES --budget BYTES --pip PIP --python VENV_PYTHON \
        [--closure-of REQUIREMENTS --closure-out FILE]

Standard library only: it runs in the image's build, before anything else is installed.
"""

from __future__ import annotations

import argparse
import json
import re
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


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# Run in the venv: what the named distributions and those installed for them may use, their
# optional dependencies (extras) included. (Markers other than extras are not evaluated.)
_USED = r"""
import importlib.metadata as m, json, re, sys
def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()
installed = {canonical(d.metadata["Name"] or ""): d for d in m.distributions()}
pending, seen, used = [canonical(n) for n in sys.argv[1:]], set(), set()
while pending:
    name = pending.pop()
    if name in seen or name not in installed:
        continue
    seen.add(name)
    for line in installed[name].requires or []:
        found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if found:
            used.add(canonical(found.group(1)))
            if "extra ==" not in line:
                pending.append(canonical(found.group(1)))
print(json.dumps(sorted(used)))
"""


def used_by_installed(python: str, roots: list[str]) -> set[str]:
    """The projects that `roots` (distributions installed for real on purpose) and what they
    brought in may use, in the environment of `python`: pandas may use pyarrow, dask
    distributed. pytest and its plugins are not roots: their extras are of no concern."""
    if not roots:
        return set()
    result = subprocess.run([python, "-c", _USED, *roots], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    return set(json.loads(lines[-1])) if result.returncode == 0 and lines else set()


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


def closure(pip: list[str], requirements_file: Path, constraint: str | None = None) -> list[str]:
    """The names of every distribution installing `requirements_file` would install, resolved by
    pip without installing (metadata only); [] when pip cannot resolve them here."""
    with tempfile.TemporaryDirectory(prefix="testdock-closure-") as temporary:
        report = Path(temporary) / "report.json"
        command = [*pip, "install", "--dry-run", "--quiet", "--ignore-installed", "--report", str(report),
                   "--requirement", str(requirements_file)]
        if constraint:
            command += ["--constraint", constraint]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0 or not report.is_file():
            tail = (result.stderr.strip().splitlines() or ["no report"])[-1]
            print(f"testdock closure: not resolved ({tail}); optional modules are judged without it")
            return []
        installs = json.loads(report.read_text(encoding="utf-8")).get("install", [])
        return sorted({str(item["metadata"]["name"]) for item in installs})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--budget", type=int, default=4 << 20, help="bytes of wheels, at most")
    parser.add_argument("--pip", default=f"{sys.executable} -m pip", help="the pip command")
    parser.add_argument("--python", required=True, help="the interpreter of the venv to install into")
    parser.add_argument("--constraint", help="a constraints file the downloads stay within")
    parser.add_argument("--closure-of", type=Path, help="the real run's requirements file")
    parser.add_argument("--closure-out", type=Path, help="where to write the distributions it installs")
    parser.add_argument("--real", default="", help="what is installed for real on purpose, comma-separated")
    options = parser.parse_args(argv)
    pip = options.pip.split()
    candidates = requirements(options.candidates) if options.candidates.is_file() else []
    if not candidates or options.budget <= 0:
        print("testdock light dependencies: none to consider")
        write_closure(options, pip)
        return 0
    with tempfile.TemporaryDirectory(prefix="testdock-light-") as temporary:
        chosen, notes = choose(pip, candidates, options.budget, Path(temporary),
                               installed_projects(options.python), options.constraint)
        for note in notes:
            print(f"testdock light dependencies: {note}")
        if chosen:
            subprocess.run([*pip, "--python", options.python, "install", "--quiet", "--no-index", "--no-deps",
                            *(str(wheel) for wheel in chosen.values())], check=True)
    write_closure(options, pip)
    return 0


def write_closure(options: argparse.Namespace, pip: list[str]) -> None:
    """The real run's distributions, for the stubs to stand in for. Those that a library the
    image installs for real on purpose (`--real`: [tool.testdock.collection] install) may use
    are left out: stubbed, they would make the project's code
    and that library disagree (the project sees pyarrow, stubbed; pandas, real, does not), and
    missing, they are missing for both."""
    if not (options.closure_of and options.closure_out):
        return
    resolved = closure(pip, options.closure_of, options.constraint)
    # (not the light packages: small helpers whose extras, partd's numpy, are of no concern)
    used = used_by_installed(options.python, [name for name in options.real.split(",") if name])
    names = [name for name in resolved if _canonical(name) not in used]
    options.closure_out.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    print(f"testdock closure: the real run installs {len(resolved)} distributions; "
          f"{len(resolved) - len(names)} of them are left missing, as libraries installed here may use them")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
