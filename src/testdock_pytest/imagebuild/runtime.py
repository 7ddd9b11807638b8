"""Gather what a distroless image needs to run the tests into a root folder, at build time: the
Python interpreter and its standard library, the venv, the project, the shared libraries that the
interpreter and every installed extension module link against (found with the system's `ldd`),
CA certificates, time zones, and the test user. No shell, no package manager, no pip.

    python -m testdock_pytest.imagebuild.runtime ROOTFS --venv /opt/venv --app /app --user NAME --uid N

Standard library only (and testdock's plugin): it runs in the image's build, with the venv's own
interpreter. Ownership and modes are kept, so that the test user owns what it owned.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

from testdock_pytest.sizes import format_size

# left out of the standard library: what installs, what needs a display, what only teaches
STDLIB_LEFT_OUT = frozenset({"ensurepip", "idlelib", "tkinter", "turtledemo", "lib2to3", "test",
                             "site-packages", "dist-packages", "config-3"})
# system files a Python test run reads, where the base image has them
SYSTEM_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/usr/lib/ssl", "/etc/ssl/openssl.cnf",
                "/usr/share/zoneinfo", "/etc/localtime", "/etc/nsswitch.conf", "/etc/mime.types")
_LDD_PATH = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x[0-9a-f]+\)")


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def linked_libraries(binaries: Iterable[Path]) -> tuple[set[Path], list[str]]:
    """The shared libraries (and the dynamic loader) the binaries need, by `ldd`; and what ldd
    could not find ("libfoo.so.1 => not found"), for the log."""
    found: set[Path] = set()
    missing: list[str] = []
    for binary in binaries:
        try:
            result = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60,
                                    check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        for line in result.stdout.splitlines():
            if "not found" in line:
                missing.append(f"{binary.name}: {line.strip()}")
            elif match := _LDD_PATH.search(line):
                found.add(Path(os.path.normpath(match.group(1))))  # `numpy/_core/../../numpy.libs`
    return found, sorted(set(missing))


def _walk(root: Path, left_out: frozenset[str] = frozenset()) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root):
        if Path(folder) == root:
            subfolders[:] = [name for name in subfolders if name not in left_out]
        for name in files:
            yield Path(folder) / name


def _ensure_folder(folder: Path, rootfs: Path) -> None:
    """The folder at the same path under rootfs, with its mode and owner; a folder that is a
    link (/lib -> usr/lib on merged-/usr systems) is a link there too, relative, to its target."""
    target = rootfs / folder.relative_to("/")
    if os.path.lexists(target) or folder == Path("/"):
        return
    _ensure_folder(folder.parent, rootfs)
    if folder.is_symlink():
        pointed = Path(os.path.normpath(folder.parent / folder.readlink()))
        _ensure_folder(pointed, rootfs)
        target.symlink_to(os.path.relpath(pointed, folder.parent))
        return
    target.mkdir()
    _same_metadata(folder, target)


def copy_into(source: Path, rootfs: Path) -> int:
    """Copy a file, a link (and the chain of what it points to) or a folder to the same path
    under rootfs, keeping modes and owners; the bytes copied."""
    target = rootfs / source.relative_to("/")
    if os.path.lexists(target):
        return 0
    _ensure_folder(source.parent, rootfs)
    target = rootfs / Path(os.path.realpath(rootfs / source.parent.relative_to("/"))).relative_to(
        os.path.realpath(rootfs)) / source.name  # through the folders that are links
    if os.path.lexists(target):
        return 0
    if source.is_symlink():
        link = source.readlink()
        target.symlink_to(link)
        os.lchown(target, source.lstat().st_uid, source.lstat().st_gid)
        pointed = Path(os.path.normpath(source.parent / link))
        return copy_into(pointed, rootfs) if os.path.lexists(pointed) else 0
    if source.is_dir():
        target.mkdir()
        _same_metadata(source, target)
        return sum(copy_into(entry, rootfs) for entry in sorted(source.iterdir()))
    shutil.copy2(source, target, follow_symlinks=False)
    _same_metadata(source, target)
    return source.lstat().st_size


def _same_metadata(source: Path, target: Path) -> None:
    status = source.lstat()
    os.lchown(target, status.st_uid, status.st_gid)
    if not stat.S_ISLNK(status.st_mode):
        target.chmod(stat.S_IMODE(status.st_mode))


def stdlib_folders() -> list[Path]:
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    return sorted({Path(paths["stdlib"]), Path(paths["platstdlib"])})


def gather(rootfs: Path, venv: Path, app: Path | None, user: str, uid: int) -> list[str]:
    """Fill rootfs; the build log's lines."""
    rootfs.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    interpreter = Path(os.path.realpath(sys.executable))
    sizes: dict[str, int] = {}
    sizes["interpreter"] = copy_into(interpreter, rootfs)
    stdlib = 0
    for folder in stdlib_folders():
        for entry in sorted(folder.iterdir()):
            if entry.name not in STDLIB_LEFT_OUT and not entry.name.startswith("config-"):
                stdlib += copy_into(entry, rootfs)
    sizes["standard library"] = stdlib
    debian_site = Path("/etc") / f"python{sys.version_info.major}.{sys.version_info.minor}"
    if debian_site.is_dir():  # Debian's sitecustomize.py lives there
        copy_into(debian_site, rootfs)
    sizes["venv"] = copy_into(venv, rootfs)
    if app is not None and app.is_dir():
        sizes["project"] = copy_into(app, rootfs)
    files = [*(path for folder in stdlib_folders() for path in _walk(folder, STDLIB_LEFT_OUT)), *_walk(venv)]
    binaries = [interpreter, *(path for path in files
                               if (".so" in path.name or path.parent.name == "bin") and is_elf(path))]
    libraries, missing = linked_libraries(binaries)
    sizes["shared libraries"] = sum(copy_into(library, rootfs) for library in sorted(libraries))
    system = 0
    for name in SYSTEM_FILES:
        if os.path.lexists(name):
            system += copy_into(Path(name), rootfs)
    sizes["certificates, time zones"] = system
    _user_files(rootfs, user, uid)
    for what, size in sizes.items():
        lines.append(f"testdock distroless: {what} {format_size(size)}")
    lines.append(f"testdock distroless: {len(libraries)} shared libraries for {len(binaries)} binaries")
    lines += [f"testdock distroless: not found (as in the full image): {entry}" for entry in missing]
    return lines


def gather_libraries(rootfs: Path, folder: Path) -> list[str]:
    """Only the shared libraries the binaries under `folder` link against, outside it (for what
    is installed over a distroless image: the stress tools)."""
    binaries = [path for path in _walk(folder) if ".so" in path.name and is_elf(path)]
    libraries, missing = linked_libraries(binaries)
    outside = sorted(library for library in libraries if not library.is_relative_to(folder))
    size = sum(copy_into(library, rootfs) for library in outside)
    return [f"testdock distroless: {len(outside)} shared libraries ({format_size(size)}) for "
            f"{len(binaries)} binaries", *(f"testdock distroless: not found: {entry}" for entry in missing)]


def _user_files(rootfs: Path, user: str, uid: int) -> None:
    """/etc/passwd and /etc/group with root and the test user, its home, and /tmp."""
    etc = rootfs / "etc"
    etc.mkdir(exist_ok=True)
    home = Path("/home") / user
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/sbin/nologin\n"
                                f"{user}:x:{uid}:{uid}::{home}:/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\n{user}:x:{uid}:\n")
    copied_home = rootfs / home.relative_to("/")
    copied_home.mkdir(parents=True, exist_ok=True)
    os.chown(copied_home, uid, uid)
    for folder in ("tmp", "var/tmp"):
        path = rootfs / folder
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o1777)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--app", type=Path)
    parser.add_argument("--user", help="the test user's name")
    parser.add_argument("--uid", type=int, help="its uid (and gid)")
    parser.add_argument("--libraries-only", action="store_true",
                        help="only the shared libraries the venv's binaries need")
    options = parser.parse_args(argv)
    if options.libraries_only:
        lines = gather_libraries(options.rootfs, options.venv)
    elif options.user is None or options.uid is None:
        parser.error("--user and --uid are required")
    else:
        lines = gather(options.rootfs, options.venv, options.app, options.user, options.uid)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
