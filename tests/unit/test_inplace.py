"""A flat-layout project's compiled modules are put beside its sources in /app, where its tests
import the package from."""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

from testdock_pytest.imagebuild.packagedata import place_compiled
from tests.conftest import write_tree

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def test_compiled_modules_go_beside_the_sources_and_nothing_else_moves(tmp_path: Path) -> None:
    site, app = tmp_path / "site", tmp_path / "app"
    write_tree(site, {f"yarl/_quoting_c{SUFFIX}": "compiled", "yarl/_url.py": "",
                      f"yarl/sub/_fast{SUFFIX}": "compiled", f"yarl/gone/_x{SUFFIX}": "compiled",
                      f"other/_other{SUFFIX}": "compiled"})
    write_tree(app, {"yarl/__init__.py": "", "yarl/_quoting_c.pyx": "", "yarl/sub/__init__.py": "",
                     "src/own/__init__.py": "", f"src/own/_mine{SUFFIX}": "built in place already"})
    write_tree(site, {f"own/_mine{SUFFIX}": "compiled"})
    placed = place_compiled(app, ["yarl", "src/own", "missing"], site)
    assert sorted(placed) == [f"yarl/_quoting_c{SUFFIX}", f"yarl/sub/_fast{SUFFIX}"]
    assert (app / "yarl" / f"_quoting_c{SUFFIX}").read_text() == "compiled"
    assert not (app / "yarl" / "gone").exists()  # no folder made that the sources do not have
    assert not (app / "yarl" / "_url.py").exists()
    assert (app / "src/own" / f"_mine{SUFFIX}").read_text() == "built in place already"
