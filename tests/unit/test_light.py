"""The collection image's light dependencies: pure-Python wheels within the budget are installed,
compiled ones, sdist-only ones and those over the budget are left to the stubs. Offline: pip reads
a local folder of wheels made here."""

from __future__ import annotations

import sys
import venv
import zipfile
from pathlib import Path

import pytest

from testdock_pytest.imagebuild.light import choose, main, requirements, top_level_modules


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
    return folder


def test_light_dependencies_are_chosen_and_the_rest_explained(index: Path, tmp_path: Path) -> None:
    (index / "huge-1.0-py3-none-any.whl").unlink()
    wheel(index, "huge", padding=300_000)
    pip = [sys.executable, "-m", "pip"]
    choice = choose(pip, ["zones", "pureapp", "onlysource", "huge", "tinyparser"], 100_000, tmp_path / "work")
    chosen, notes = choice.chosen, choice.notes
    assert sorted(chosen) == ["tinyparser", "zonedata", "zones"]
    assert choice.modules is None  # onlysource's dependencies are not known
    assert notes[0].startswith("installed zones: 2 wheel(s)")
    assert notes[1].startswith("stubbed pureapp: compiled (fastmath-1.0-cp")
    assert notes[2] == "stubbed onlysource: not every part of it is published as a wheel"
    assert notes[3].startswith("stubbed huge:") and "exceed the budget" in notes[3]
    assert notes[4].startswith("installed tinyparser: 1 wheel(s)")


def test_projects_installed_on_purpose_count_as_there(index: Path, tmp_path: Path) -> None:
    pip = [sys.executable, "-m", "pip"]
    choice = choose(pip, ["pureapp"], 100_000, tmp_path / "work", installed={"fastmath"})
    chosen, notes = choice.chosen, choice.notes
    assert sorted(chosen) == ["pureapp"]
    assert choice.modules == {"pureapp", "fastmath"}  # what it brings, installed or not
    assert notes[0].startswith("installed pureapp: 1 wheel(s)")  # fastmath is installed already


def test_main_installs_into_the_target_environment(index: Path, tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    candidates = tmp_path / "candidates.txt"
    candidates.write_text("# a comment\nzones  # inline\n-r other.txt\nfastmath\n")
    assert requirements(candidates) == ["zones", "fastmath"]
    python = str(target / "bin" / "python")
    modules = tmp_path / "provided.txt"
    assert main([str(candidates), "--pip", f"{sys.executable} -m pip", "--python", python,
                 "--modules", str(modules)]) == 0
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
