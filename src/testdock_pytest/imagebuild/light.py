"""Install a project's light dependencies into the collection image, at build time.

A dependency is light when it and everything it depends on come as wheels, pure Python or
compiled but small (at most 1 MiB each), that fit the budget together: installing it costs
little, and its real data (time zones, locales, enumerations, configuration read from YAML) then
feeds collection exactly as in the real run. Everything else (big compiled packages such as
numpy, packages only published as sources, whatever would exceed the budget) is left to the
import stubs.

With uv (`--uv`), nothing but the light wheels is downloaded: each candidate's closure is resolved
from the index's metadata (`uv pip compile` to a pylock.toml, which names each wheel with its
size), and the top-level modules of the heavy ones are read from the end of their files (the zip
central directory, by HTTP range requests). With pip, each candidate's closure is downloaded.

    python light.py CANDIDATES --budget BYTES [--uv UV | --pip PIP] --python VENV_PYTHON

Standard library only: it runs in the image's build, before anything else is installed.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path


def requirements(path: Path) -> list[str]:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            lines.append(line)
    return lines


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


@dataclass(frozen=True)
class Wheel:
    project: str  # normalized
    name: str  # the file's name
    size: int  # bytes; 0 when the index did not say
    location: str  # a local path, or the URL it is published at

    @property
    def pure(self) -> bool:
        return self.name.endswith("-none-any.whl")


def _local(path: Path) -> Wheel:
    return Wheel(_normalized(path.name.split("-", 1)[0]), path.name, path.stat().st_size, str(path))


# a candidate's requirement, and the wheels of it and of everything it needs (None when some part
# is not published as a wheel)
Closure = tuple[str, list[Wheel] | None]


def _download(pip: list[str], requirement: str, target: Path, constraint: str | None = None
              ) -> list[Wheel] | None:
    """The wheels of `requirement` and everything it needs; None when some part has none."""
    command = [*pip, "download", "--quiet", "--only-binary=:all:", "--dest", str(target)]
    if constraint:
        command += ["--constraint", constraint]
    result = subprocess.run([*command, requirement], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return [_local(path) for path in sorted(target.glob("*.whl"))] if target.is_dir() else []


def closures_with_pip(pip: list[str], candidates: Sequence[str], folder: Path,
                      constraint: str | None = None) -> list[Closure]:
    return [(requirement, _download(pip, requirement, folder / str(index), constraint))
            for index, requirement in enumerate(candidates)]


def _resolve(uv: list[str], requirement: str, python: str, constraint: str | None) -> list[Wheel] | None:
    """The wheels uv would install for `requirement` and everything it needs, from the index's
    metadata alone; None when some part is not published as a wheel."""
    command = [*uv, "pip", "compile", "-", "--quiet", "--no-header", "--only-binary", ":all:",
               "--python", python, "--format", "pylock.toml"]
    if constraint:
        command += ["--constraint", constraint]
    result = subprocess.run(command, input=requirement + "\n", capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    try:
        packages = tomllib.loads(result.stdout).get("packages", [])
    except tomllib.TOMLDecodeError:
        return None
    wheels = []
    for package in packages:
        files = package.get("wheels") or []
        location = files[0].get("url") or files[0].get("path") if files else None
        if not location:
            return None
        # the best match for the interpreter comes first: the one uv installs
        name = urllib.parse.unquote(str(location).rsplit("/", 1)[-1])
        wheels.append(Wheel(_normalized(str(package["name"])), name, int(files[0].get("size") or 0),
                            str(location)))
    return wheels


def closures_with_uv(uv: list[str], candidates: Sequence[str], python: str,
                     constraint: str | None = None) -> list[Closure]:
    """Every candidate's closure, resolved side by side (each waits on the index, not the CPU)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(lambda requirement: _resolve(uv, requirement, python, constraint), candidates)
        return list(zip(candidates, found, strict=True))


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
    chosen: dict[str, Wheel] = field(default_factory=dict)  # project -> its wheel, to install
    notes: list[str] = field(default_factory=list)  # a line of explanation per candidate
    # the top-level modules of every project the candidates need, down to the last dependency;
    # None when some part is not published as a wheel (its dependencies are then not known)
    modules: set[str] | None = field(default_factory=set)


class RemoteFile(io.RawIOBase):
    """A file on an HTTP server, read by range requests: zipfile finds a wheel's list of files at
    its end, so reading that list costs a request or two instead of the whole download. A server
    that ignores ranges sends the whole file once."""

    TAIL = 256 * 1024  # what the first read fetches from the end: a big wheel's list of files

    def __init__(self, url: str, size: int) -> None:
        super().__init__()
        self.url = url
        self.size = size or self._length()
        self.position = 0
        self._cached_from = self.size
        self._cached = b""

    def _open(self, headers: dict[str, str], method: str = "GET") -> object:
        return urllib.request.urlopen(urllib.request.Request(self.url, headers=headers, method=method),
                                      timeout=60)

    def _length(self) -> int:
        with self._open({}, "HEAD") as response:  # type: ignore[attr-defined]
            return int(response.headers["Content-Length"])

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        end = min(self.size, self.position + len(buffer))
        if end <= self.position:
            return 0
        if self.position < self._cached_from:
            start = min(self.position, max(0, self.size - self.TAIL))
            with self._open({"Range": f"bytes={start}-{self._cached_from - 1}"}) as response:  # type: ignore[attr-defined]
                body = response.read()
                if response.status == 200:  # no range support: the whole file came
                    start = 0
            self._cached = body[:self._cached_from - start] + self._cached
            self._cached_from = start
        offset = self.position - self._cached_from
        data = self._cached[offset:offset + end - self.position]
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


def _open_wheel(location: str, size: int = 0) -> zipfile.ZipFile:
    if location.startswith(("http://", "https://")):
        return zipfile.ZipFile(RemoteFile(location, size))
    if location.startswith("file://"):
        location = urllib.request.url2pathname(urllib.parse.urlparse(location).path)
    return zipfile.ZipFile(location)


def top_level_modules(wheel: Path | Wheel) -> set[str]:
    """The top-level modules a wheel installs (`yaml`, `_yaml`; `google` for a namespace)."""
    modules = set()
    try:
        with (zipfile.ZipFile(wheel) if isinstance(wheel, Path)
              else _open_wheel(wheel.location, wheel.size)) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, KeyError):
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


def choose(closures: Sequence[Closure], budget: int, installed: set[str] | None = None,
           modules_of: Callable[[Wheel], set[str]] = top_level_modules) -> Choice:
    """The wheels to install (by project), a line of explanation per candidate, and the modules
    the candidates bring with them. Projects in `installed` are there already (installed for real
    on purpose): they count as satisfied. A wheel whose size the index did not give counts as big
    when it is compiled."""
    present = installed or set()
    choice = Choice()
    chosen = choice.chosen
    notes: dict[int, str] = {}
    used = 0

    def weight(position: int) -> int:
        wheels = closures[position][1]
        return sum(wheel.size for wheel in wheels if wheel.project not in present) if wheels else 0

    # the smallest closures first: the most dependencies real within the budget (fastapi's
    # 197 KiB httpx2, which starlette warns without, came after logfire's 2.4 MiB and was left out)
    for position in sorted(range(len(closures)), key=weight):
        requirement, wheels = closures[position]
        if wheels is None:
            notes[position] = f"stubbed {requirement}: not every part of it is published as a wheel"
            choice.modules = None
            continue
        wheels = [wheel for wheel in wheels if wheel.project not in present]
        native = [wheel for wheel in wheels
                  if not wheel.pure and (wheel.size > SMALL_NATIVE or not wheel.size)]
        if native:
            told = f"{native[0].size // 1024} KiB" if native[0].size else "size not published"
            notes[position] = f"stubbed {requirement}: compiled ({native[0].name}, {told})"
            continue
        new = [wheel for wheel in wheels if wheel.project not in chosen]
        size = sum(wheel.size for wheel in new)
        if used + size > budget:
            notes[position] = f"stubbed {requirement}: {size // 1024} KiB of wheels would exceed the budget"
            continue
        used += size
        for wheel in new:
            chosen[wheel.project] = wheel
        notes[position] = f"installed {requirement}: {len(new)} wheel(s), {size // 1024} KiB"
    choice.notes = [notes[position] for position in range(len(closures))]
    if choice.modules is not None:
        # every wheel of every closure, installed or not: what the declared dependencies provide
        every = {wheel.location: wheel for _, wheels in closures for wheel in wheels or []}
        with ThreadPoolExecutor(max_workers=8) as pool:
            for names in pool.map(modules_of, every.values()):
                choice.modules |= names
    return choice


def _as_url(location: str) -> str:
    return location if "://" in location else Path(location).resolve().as_uri()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", type=Path)
    parser.add_argument("--budget", type=int, default=4 << 20, help="bytes of wheels, at most")
    parser.add_argument("--pip", default=f"{sys.executable} -m pip", help="the pip command")
    parser.add_argument("--uv", help="the uv command: resolve from the index's metadata, download "
                                     "only what is installed (default: pip downloads every closure)")
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
        if options.uv:
            closures = closures_with_uv(options.uv.split(), candidates, options.python, options.constraint)
        else:
            closures = closures_with_pip(pip, candidates, Path(temporary), options.constraint)
        choice = choose(closures, options.budget, installed_projects(options.python))
        for note in choice.notes:
            print(f"testdock light dependencies: {note}")
        wheels = list(choice.chosen.values())
        if wheels and options.uv:
            pinned = [f"{wheel.project} @ {_as_url(wheel.location)}" for wheel in wheels]
            subprocess.run([*options.uv.split(), "pip", "install", "--quiet", "--python", options.python,
                            "--no-deps", *pinned],
                           # uv's cache is a mount: a hard link into the image cannot reach it
                           env={"UV_LINK_MODE": "copy", **os.environ}, check=True)
        elif wheels:
            subprocess.run([*pip, "--python", options.python, "install", "--quiet", "--no-index", "--no-deps",
                            *(wheel.location for wheel in wheels)], check=True)
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
