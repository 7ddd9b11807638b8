"""Filling an installed package in with the data files its build left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from testdock_pytest.imagebuild.packagedata import fill


def test_data_files_the_build_left_out_are_copied_and_nothing_else(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "demo").mkdir(parents=True)
    (site / "demo" / "__init__.py").write_text("")
    (site / "demo" / "kept.txt").write_text("installed")
    (site / "tools").mkdir()  # another distribution's package of the same name as a project folder
    dist_info = site / "demo-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
    (dist_info / "RECORD").write_text("demo/__init__.py,,\ndemo/kept.txt,,\n")
    monkeypatch.syspath_prepend(str(site))
    project = tmp_path / "project"
    for relative, text in {"src/demo/__init__.py": "", "src/demo/kept.txt": "source",
                           "src/demo/static/manifest.txt": "data", "src/demo/tests/test_x.py": "",
                           "src/demo/__pycache__/x.txt": "", "tools/config.yml": "x"}.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    (project / "src" / "demo" / "linked.txt").symlink_to(project / "src" / "demo" / "kept.txt")
    (project / "src" / "demo" / "dangling.txt").symlink_to(project / "nowhere")

    copied = fill(str(project), "demo", ["src/demo", "tools"], str(site))

    assert sorted(copied) == ["demo/linked.txt", "demo/static/manifest.txt"]
    assert (site / "demo" / "kept.txt").read_text() == "installed"  # never overwritten
    linked = site / "demo" / "linked.txt"
    assert linked.read_text() == "source" and not linked.is_symlink()
    assert not (site / "demo" / "tests").exists() and not (site / "tools" / "config.yml").exists()
    assert fill(str(project), "not-installed", ["src/demo"], str(site)) == []
