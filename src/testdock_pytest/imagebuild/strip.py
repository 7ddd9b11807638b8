"""Strip the symbol tables and debug information that the installed dependencies' extension
modules ship, at build time, and list what went with its size.

A test run never reads them: the dynamic loader uses the dynamic symbol table, which stays
(`strip --strip-unneeded`, as Debian strips every shared library it ships). Left as they are:
files that auditwheel patched (they carry an RPATH/RUNPATH to the libraries grafted into the
wheel, and stripping a file patchelf has rewritten is a known way to corrupt it), the grafted
libraries themselves (`numpy.libs/`), and anything that does not load again once stripped (each
file is loaded before and after; one that loaded before and fails after gets its bytes back).

Binutils' `strip` is used where the build stage has it; where it has not, and there is enough to
gain, binutils is installed with the stage's apt-get (the stage stays in the build, the final
image copies the venv only). Nothing here fails a build: what cannot be stripped stays as it was.

    python -m testdock_pytest.imagebuild.strip VENV [--min-gain MIB]

Standard library only (and testdock's plugin): it runs in the image's build, with the venv's own
interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from testdock_pytest.imagebuild.prune import site_packages
from testdock_pytest.sizes import format_size

# below this much to gain, installing binutils (seconds of a cold build) is not worth it
MIN_GAIN_MIB = 8
STRIP_TIMEOUT = 600
APT_TIMEOUT = 300
_SHT_DYNAMIC = 6
_DT_RPATH, _DT_RUNPATH = 15, 29


@dataclass(frozen=True)
class ElfFacts:
    symbols: int  # bytes of symbol tables and debug sections, what stripping removes
    patched: bool  # it has an RPATH or RUNPATH: auditwheel rewrote it with patchelf


def elf_facts(path: Path) -> ElfFacts | None:
    """What stripping `path` would remove, from its section headers (read alone: a library may
    weigh hundreds of megabytes); None for a file that is not an ELF object this reader knows."""
    try:
        with path.open("rb") as handle:
            return _read_facts(handle)
    except (OSError, struct.error, IndexError, ValueError):
        return None


def _read_facts(handle: BinaryIO) -> ElfFacts | None:
    ident = handle.read(64)
    if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] not in (1, 2) or ident[5] not in (1, 2):
        return None
    wide = ident[4] == 2
    order = "<" if ident[5] == 1 else ">"
    if wide:
        section_offset, = struct.unpack_from(order + "Q", ident, 0x28)
        entry_size, count, names_index = struct.unpack_from(order + "HHH", ident, 0x3A)
        header = order + "IIQQQQIIQQ"
    else:
        section_offset, = struct.unpack_from(order + "I", ident, 0x20)
        entry_size, count, names_index = struct.unpack_from(order + "HHH", ident, 0x2E)
        header = order + "IIIIIIIIII"
    if count == 0 or entry_size < struct.calcsize(header):
        return None

    def read(offset: int, size: int) -> bytes:
        handle.seek(offset)
        data = handle.read(size)
        if len(data) < size:
            raise ValueError("truncated")
        return data

    table = read(section_offset, count * entry_size)
    sections = [struct.unpack_from(header, table, index * entry_size) for index in range(count)]
    names = read(sections[names_index][4], sections[names_index][5])

    def name(section: tuple[int, ...]) -> str:
        return names[section[0]:names.find(b"\0", section[0])].decode("ascii", "replace")

    symbols = sum(section[5] for section in sections
                  if name(section) in (".symtab", ".strtab") or name(section).startswith(".debug"))
    step = 16 if wide else 8
    tag_format = order + ("qQ" if wide else "iI")
    patched = False
    for section in sections:
        if section[1] == _SHT_DYNAMIC:
            entries = read(section[4], section[5])
            tags = {struct.unpack_from(tag_format, entries, at)[0]
                    for at in range(0, len(entries) - step + 1, step)}
            patched = patched or bool(tags & {_DT_RPATH, _DT_RUNPATH})
    return ElfFacts(symbols, patched)


def candidates(site: Path) -> dict[Path, int]:
    """The extension modules and shared libraries under site-packages worth stripping, with what
    each would lose; the grafted libraries (`*.libs`) and patched files left out."""
    found: dict[Path, int] = {}
    for folder, subfolders, files in os.walk(site):
        subfolders[:] = [name for name in subfolders if not name.endswith(".libs")]
        for file_name in files:
            if not (file_name.endswith(".so") or ".so." in file_name):
                continue
            path = Path(folder) / file_name
            if path.is_symlink():
                continue
            facts = elf_facts(path)
            if facts is not None and facts.symbols > 0 and not facts.patched:
                found[path] = facts.symbols
    return found


def loading(python: str, paths: list[Path]) -> set[Path] | None:
    """Those of `paths` that the dynamic loader loads (into the venv's interpreter, where the
    Python symbols extension modules need are); None when the check itself did not finish."""
    if not paths:
        return set()
    script = ("import ctypes, json, sys\nloaded = []\nfor path in sys.argv[1:]:\n"
              "    try:\n        ctypes.CDLL(path)\n        loaded.append(path)\n"
              "    except OSError:\n        pass\n"
              "print('TESTDOCK-STRIP ' + json.dumps(loaded))\n")
    try:
        result = subprocess.run([python, "-c", script, *map(str, paths)], capture_output=True,
                                text=True, timeout=STRIP_TIMEOUT, check=False,
                                cwd=tempfile.gettempdir())
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in result.stdout.splitlines():
        if line.startswith("TESTDOCK-STRIP "):
            return {Path(path) for path in json.loads(line.removeprefix("TESTDOCK-STRIP "))}
    return None


def find_strip(install: bool) -> tuple[str | None, str]:
    """The `strip` program, installed with apt-get (as root) when asked and absent; and why not."""
    program = shutil.which("strip")
    if program or not install:
        return program, "" if program else "no strip program in the build stage"
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None, "no strip program in the build stage, and no apt-get (as root) to install binutils"
    try:
        for command in (["apt-get", "update", "-qq"],
                        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "binutils"]):
            subprocess.run(command, capture_output=True, timeout=APT_TIMEOUT, check=True,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.SubprocessError):
        return None, "binutils could not be installed with apt-get"
    program = shutil.which("strip")
    return program, "" if program else "binutils installed no strip program"


@dataclass
class Outcome:
    stripped: dict[Path, int]  # path -> bytes saved
    restored: list[Path]
    skipped: str = ""  # why nothing was stripped


def strip_venv(venv: Path, min_gain: int, python: str | None = None,
               install: bool = True) -> Outcome:
    site = site_packages(venv)
    python = python or str(venv / "bin" / "python")
    found = candidates(site)
    gain = sum(found.values())
    if gain < min_gain:
        return Outcome({}, [], f"{format_size(gain)} of symbols to strip, under "
                               f"{format_size(min_gain)}: left as they are")
    program, why = find_strip(install)
    if program is None:
        return Outcome({}, [], f"{why}: {format_size(gain)} of symbols kept")
    paths = sorted(found)
    before = loading(python, paths)
    if before is None:
        return Outcome({}, [], "the extension modules could not be loaded to check them: nothing stripped")
    paths = [path for path in paths if path in before]
    sizes = {path: path.stat().st_size for path in paths}
    with tempfile.TemporaryDirectory(prefix="testdock-strip-") as backup_folder:
        backups = {path: Path(backup_folder) / str(index) for index, path in enumerate(paths)}
        for path, backup in backups.items():
            shutil.copy2(path, backup)
        failed = False
        for start in range(0, len(paths), 200):
            batch = [str(path) for path in paths[start:start + 200]]
            try:
                subprocess.run([program, "--strip-unneeded", "--preserve-dates", *batch],
                               capture_output=True, timeout=STRIP_TIMEOUT, check=True)
            except (OSError, subprocess.SubprocessError):
                failed = True
                break
        after = None if failed else loading(python, paths)
        restored = [path for path in paths if after is None or path not in after]
        for path in restored:
            shutil.copy2(backups[path], path)
    kept = set(restored)
    stripped = {path: sizes[path] - path.stat().st_size for path in paths if path not in kept}
    return Outcome({path: saved for path, saved in stripped.items() if saved > 0},
                   restored if after is not None else [])


def report(outcome: Outcome, site: Path) -> list[str]:
    if outcome.skipped:
        return [f"testdock strip: {outcome.skipped}"]
    per_package: dict[str, int] = {}
    for path, saved in outcome.stripped.items():
        package = path.relative_to(site).parts[0]
        per_package[package] = per_package.get(package, 0) + saved
    lines = [f"testdock strip: {package}: {format_size(saved)} (symbols and debug information)"
             for package, saved in sorted(per_package.items(), key=lambda item: -item[1])]
    lines += [f"testdock strip: {path.relative_to(site)}: kept as it was (it does not load stripped)"
              for path in outcome.restored]
    lines.append(f"testdock strip: removed {format_size(sum(outcome.stripped.values()))} in all from "
                 f"{len(outcome.stripped)} extension module(s)")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("venv", type=Path)
    parser.add_argument("--min-gain", type=float, default=MIN_GAIN_MIB,
                        help="MiB of symbols below which nothing is done (binutils is not installed)")
    options = parser.parse_args(argv)
    outcome = strip_venv(options.venv, int(options.min_gain * 1024 * 1024))
    for line in report(outcome, site_packages(options.venv)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
