"""The plugin as one wheel: reproducible, installable by pip, registered with pytest on its own."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

from testdock.images.initialize import place_plugin
from testdock.images.pluginwheel import LEGACY_FOLDER, legacy_files, wheel_bytes, wheel_name, write_wheel
from testdock.images.stamps import stamp


def test_the_wheel_is_the_same_bytes_every_time_and_holds_the_whole_plugin() -> None:
    body = wheel_bytes()
    assert body == wheel_bytes()
    names = zipfile.ZipFile(io.BytesIO(body)).namelist()
    assert {"testdock_pytest/plugin.py", "testdock_pytest/contract.py", "testdock_pytest/collection/stubs.py",
            "testdock_pytest/py.typed", "testdock_stubs.pth"} <= set(names)
    assert names[-1].endswith(".dist-info/RECORD")
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_pip_installs_it_and_pytest_finds_it_through_its_entry_point(tmp_path: Path) -> None:
    wheel = tmp_path / wheel_name()
    wheel.write_bytes(wheel_bytes())
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)], check=True)
    check = ("import importlib.metadata as m, site, sys; site.addsitedir(sys.argv[1]); "
             "ep = [e for e in m.entry_points(group='pytest11') if e.dist.name == 'testdock-pytest']; "
             "print(ep[0].value, ep[0].dist.version, 'testdock_pytest.collection.stubs' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", check, str(target)], capture_output=True, text=True,
                           check=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert found.stdout.split() == ["testdock_pytest.plugin", "0.2.0", "False"]
    # collection images switch the import stubs on at the interpreter's start, by environment
    stubbed = subprocess.run([sys.executable, "-c", check, str(target)], capture_output=True, text=True,
                             check=True, cwd=tmp_path,
                             env={"PATH": "/usr/bin:/bin", "TESTDOCK_STUB_IMPORTS": "1"})
    assert stubbed.stdout.split()[-1] == "True"


def test_write_wheel_replaces_another_version_and_says_what_it_did(tmp_path: Path) -> None:
    (tmp_path / "docker").mkdir()
    older = tmp_path / "docker" / "testdock_pytest-0.0.9-py3-none-any.whl"
    older.write_bytes(b"old")
    assert write_wheel(tmp_path) == "update"
    assert not older.exists()
    assert (tmp_path / "docker" / wheel_name()).read_bytes() == wheel_bytes()
    assert write_wheel(tmp_path) == "unchanged"
    (tmp_path / "docker" / wheel_name()).unlink()
    assert write_wheel(tmp_path) == "create"


def test_init_removes_the_old_plugin_folder_only_when_nothing_uses_it_and_none_of_it_is_the_users(
        tmp_path: Path) -> None:
    from testdock import __version__

    folder = tmp_path / LEGACY_FOLDER
    folder.mkdir(parents=True)
    for relative, body in legacy_files().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(stamp(body, __version__))
    (folder / "records.py").write_text(stamp("# a module of the old flat layout\n", "0.1.0"))
    dockerfile = tmp_path / "docker" / "pytest.execution.Dockerfile"
    dockerfile.write_text("COPY docker/testdock_pytest /opt/testdock/testdock_pytest\n")
    assert ("remove", LEGACY_FOLDER) not in place_plugin(tmp_path)  # an edited Dockerfile still copies it
    assert folder.is_dir()

    dockerfile.write_text("COPY docker/testdock_pytest-*.whl /tmp/testdock-plugin/\n")
    (folder / "plugin.py").write_text((folder / "plugin.py").read_text() + "# the user's line\n")
    assert ("remove", LEGACY_FOLDER) not in place_plugin(tmp_path)  # an edited module is theirs
    assert folder.is_dir()

    (tmp_path / "docker/testdock_pytest/plugin.py").write_text(
        stamp(legacy_files()["docker/testdock_pytest/plugin.py"], __version__))
    assert place_plugin(tmp_path) == [("unchanged", f"docker/{wheel_name()}"), ("remove", LEGACY_FOLDER)]
    assert not folder.exists()
