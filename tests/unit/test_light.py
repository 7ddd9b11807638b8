"""The collection image's light dependencies: pure-Python wheels within the budget are installed,
compiled ones, sdist-only ones and those over the budget are left to the stubs. Offline: pip and
uv read a local folder of wheels made here; the wheels' lists of files are read over HTTP from a
server on 127.0.0.1."""

from __future__ import annotations

import http.server
import sys
import threading
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from testdock_pytest.imagebuild.light import (
    RemoteFile,
    Wheel,
    choose,
    closures_with_pip,
    closures_with_uv,
    main,
    requirements,
    top_level_modules,
)

UV = str(Path(sys.executable).with_name("uv"))


def wheel(folder: Path, name: str, tag: str = "py3-none-any", requires: tuple[str, ...] = (),
          padding: int = 0) -> Path:
    path = folder / f"{name}-1.0-{tag}.whl"
    info = f"{name}-1.0.dist-info"
    metadata = "\n".join(["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0",
                          *(f"Requires-Dist: {r}" for r in requires)]) + "\n"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}/__init__.py", "DATA = ['a', 'b']\n" + "#" * padding)
        archive.writestr(f"{info}/METADATA", metadata)
        archive.writestr(f"{info}/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n")
        archive.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    wheel(folder, "zones", requires=("zonedata",))
    wheel(folder, "zonedata")
    native = "cp{0}{1}-cp{0}{1}-linux_x86_64".format(*sys.version_info[:2])
    wheel(folder, "fastmath", tag=native, padding=1_200_000)  # compiled and big: numpy's kind
    wheel(folder, "tinyparser", tag=native)  # compiled and small: PyYAML's kind
    wheel(folder, "pureapp", requires=("fastmath",))
    wheel(folder, "huge")
    (folder / "onlysource-1.0.tar.gz").write_bytes(b"not a wheel")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("UV_OFFLINE", "1")
    monkeypatch.setenv("UV_FIND_LINKS", str(folder))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    return folder


def pip_closures(candidates: list[str], folder: Path) -> list[tuple[str, list[Wheel] | None]]:
    return closures_with_pip([sys.executable, "-m", "pip"], candidates, folder)


def uv_closures(candidates: list[str]) -> list[tuple[str, list[Wheel] | None]]:
    return closures_with_uv([UV], candidates, sys.executable)


@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_light_dependencies_are_chosen_and_the_rest_explained(index: Path, tmp_path: Path,
                                                              resolver: str) -> None:
    (index / "huge-1.0-py3-none-any.whl").unlink()
    wheel(index, "huge", padding=300_000)
    candidates = ["zones", "pureapp", "onlysource", "huge", "tinyparser"]
    closures = pip_closures(candidates, tmp_path / "work") if resolver == "pip" else uv_closures(candidates)
    if resolver == "uv":  # a local index publishes no sizes: the files' are used, as PyPI's would be
        closures = [(requirement, None if wheels is None else [
            Wheel(w.project, w.name, (index / w.name).stat().st_size, w.location) for w in wheels])
            for requirement, wheels in closures]
    choice = choose(closures, 100_000)
    chosen, notes = choice.chosen, choice.notes
    assert sorted(chosen) == ["tinyparser", "zonedata", "zones"]
    assert choice.modules is None  # onlysource's dependencies are not known
    assert notes[0].startswith("installed zones: 2 wheel(s)")
    assert notes[1].startswith("stubbed pureapp: compiled (fastmath-1.0-cp")
    assert notes[2] == "stubbed onlysource: not every part of it is published as a wheel"
    assert notes[3].startswith("stubbed huge:") and "exceed the budget" in notes[3]
    assert notes[4].startswith("installed tinyparser: 1 wheel(s)")


def test_projects_installed_on_purpose_count_as_there(index: Path, tmp_path: Path) -> None:
    choice = choose(pip_closures(["pureapp"], tmp_path / "work"), 100_000, installed={"fastmath"})
    chosen, notes = choice.chosen, choice.notes
    assert sorted(chosen) == ["pureapp"]
    assert choice.modules == {"pureapp", "fastmath"}  # what it brings, installed or not
    assert notes[0].startswith("installed pureapp: 1 wheel(s)")  # fastmath is installed already


def test_a_compiled_wheel_whose_size_is_not_published_counts_as_big() -> None:
    unknown = Wheel("fastmath", "fastmath-1.0-cp311-cp311-linux_x86_64.whl", 0, "https://127.0.0.1/x.whl")
    choice = choose([("fastmath", [unknown])], 100_000, modules_of=lambda wheel: {"fastmath"})
    assert not choice.chosen
    assert choice.notes == ["stubbed fastmath: compiled (fastmath-1.0-cp311-cp311-linux_x86_64.whl, "
                            "size not published)"]
    assert choice.modules == {"fastmath"}


@pytest.mark.parametrize("resolver", ["pip", "uv"])
def test_main_installs_into_the_target_environment(index: Path, tmp_path: Path, resolver: str) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("# a comment\nzones  # inline\n-r other.txt\nfastmath\n")
    assert requirements(candidates) == ["zones", "fastmath"]
    python = str(target / "bin" / "python")
    modules = tmp_path / "provided.txt"
    arguments = ["--uv", UV] if resolver == "uv" else ["--pip", f"{sys.executable} -m pip"]
    assert main([str(candidates), *arguments, "--python", python, "--modules", str(modules)]) == 0
    assert modules.read_text().split() == ["fastmath", "zonedata", "zones"]
    site = next((target / "lib").glob("python*/site-packages"))
    assert (site / "zones" / "__init__.py").is_file() and (site / "zonedata").is_dir()
    assert not (site / "fastmath").exists()



def test_a_wheels_top_level_modules_are_read_from_its_files(tmp_path: Path) -> None:
    path = tmp_path / "PyYAML-6.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("yaml/__init__.py", "_yaml/__init__.py", "six.py",
                     "_cffi.cpython-311-x86_64-linux-gnu.so", "PyYAML-6.0.dist-info/METADATA",
                     "PyYAML-6.0.data/scripts/tool", "extra.pth",
                     "google/protobuf/__init__.py"):
            archive.writestr(name, "")
    assert top_level_modules(path) == {"yaml", "_yaml", "six", "_cffi", "google"}


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP range requests (the standard library's handler ignores them), and
    counts the bytes it sent."""

    sent: ClassVar[list[int]] = []
    ranges = True

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        data = path.read_bytes()
        wanted = self.headers.get("Range")
        if wanted and self.ranges:
            start_text, end_text = wanted.removeprefix("bytes=").split("-")
            start, end = int(start_text), min(int(end_text or len(data) - 1), len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            data = data[start:end + 1]
        else:
            self.send_response(200)
        self.sent.append(len(data))  # before the client can have it all and look
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, type[RangeHandler]]]:
    folder = tmp_path / "served"
    folder.mkdir()

    class Handler(RangeHandler):
        sent: ClassVar[list[int]] = []

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", Handler
    httpd.shutdown()
    httpd.server_close()


def big_wheel(folder: Path) -> Path:
    """numpy's kind: a few MiB of compiled code in front of its list of files."""
    path = folder / "fastmath-1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("fastmath/_core.cpython-311-x86_64-linux-gnu.so", bytes(range(256)) * 16_384)
        for number in range(300):
            archive.writestr(f"fastmath/tests/test_{number}.py", "")
        archive.writestr("_fastmath_helper.py", "")
        archive.writestr("fastmath-1.0.dist-info/METADATA", "Name: fastmath\n")
    return path


@pytest.mark.parametrize("ranges", [True, False])
def test_a_remote_wheels_modules_are_read_from_its_end(server: tuple[str, type[RangeHandler]],
                                                        tmp_path: Path, ranges: bool) -> None:
    url, handler = server
    handler.ranges = ranges
    path = big_wheel(tmp_path / "served")
    size = path.stat().st_size
    remote = Wheel("fastmath", path.name, size, f"{url}/{path.name}")
    assert top_level_modules(remote) == {"fastmath", "_fastmath_helper"}
    if ranges:  # the list of files only, not the 4 MiB in front of it
        assert sum(handler.sent) <= RemoteFile.TAIL < size
    else:  # a server without ranges sends the whole file, once
        assert handler.sent == [size]
    unknown_size = Wheel("fastmath", path.name, 0, f"{url}/{path.name}")  # found by a HEAD request
    assert top_level_modules(unknown_size) == {"fastmath", "_fastmath_helper"}
    assert top_level_modules(Wheel("gone", "gone-1.0-py3-none-any.whl", 0, f"{url}/gone.whl")) == set()


def test_the_smallest_closures_go_first_within_the_budget() -> None:
    """fastapi: logfire's 2.4 MiB of wheels, listed first, left no room for httpx2's 197 KiB,
    without which starlette warns at every import of its test client."""
    def pure(name: str, size: int) -> Wheel:
        return Wheel(name, f"{name}-1.0-py3-none-any.whl", size, f"https://127.0.0.1/{name}.whl")

    closures = [("biglib", [pure("biglib", 900), pure("shared", 50)]), ("small", [pure("small", 100)]),
                ("tiny", [pure("tiny", 10), pure("shared", 50)])]
    choice = choose(closures, 1000, modules_of=lambda wheel: set())  # biglib alone would fit
    assert sorted(choice.chosen) == ["shared", "small", "tiny"]
    notes = [note.split(":")[0] for note in choice.notes]  # in the candidates' order
    assert notes == ["stubbed biglib", "installed small", "installed tiny"]
