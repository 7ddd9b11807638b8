"""The distroless image's root folder, gathered from a real venv on this machine: the interpreter,
its standard library without what installs or needs a display, the shared libraries found with
ldd (the dynamic loader included), owners and modes kept, the test user and /tmp. (The image
built from it runs the example's suite in tests/integration/test_images.py.)"""

from __future__ import annotations

import os
import stat
import sys
import venv
from pathlib import Path

from testdock_pytest.imagebuild.runtime import gather, stdlib_folders


def test_the_runtime_holds_what_python_needs_and_keeps_owners(tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(environment)
    app = tmp_path / "app"
    (app / "tests").mkdir(parents=True)
    (app / "tests" / "test_a.py").write_text("def test_a():\n    pass\n")
    os.chown(app / "tests" / "test_a.py", 4242, 4242)
    rootfs = tmp_path / "rootfs"
    lines = gather(rootfs, environment, app, "tester", 4242)

    def inside(path: Path | str) -> Path:
        return rootfs / Path(path).relative_to("/")

    interpreter = Path(os.path.realpath(sys.executable))
    assert inside(interpreter).is_file() and os.access(inside(interpreter), os.X_OK)
    assert os.path.lexists(inside(environment / "bin" / "python"))  # the venv's link chain
    stdlib = stdlib_folders()[0]
    assert inside(stdlib / "json" / "__init__.py").is_file()
    assert not inside(stdlib / "ensurepip").exists() and not inside(stdlib / "site-packages").exists()
    libraries = [path for path in rootfs.rglob("*") if path.name.startswith(("libc.so", "ld-linux"))]
    assert libraries, "the C library and the dynamic loader, found with ldd"
    copied = inside(app / "tests" / "test_a.py")
    assert copied.stat().st_uid == 4242 and copied.read_text().startswith("def test_a")
    assert "tester:x:4242:4242::/home/tester:" in (rootfs / "etc" / "passwd").read_text()
    assert (rootfs / "home" / "tester").stat().st_uid == 4242
    assert stat.S_IMODE((rootfs / "tmp").stat().st_mode) == 0o1777
    assert any(line.startswith("testdock distroless: shared libraries ") for line in lines)
    assert not any(path.name in ("sh", "bash", "dash", "apt", "pip") for path in rootfs.rglob("*"))
