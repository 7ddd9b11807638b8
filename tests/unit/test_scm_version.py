"""The version a project's image build pretends for setuptools-scm (ujson's test_version failed
on the placeholder `0+testdock`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from testdock.project.version import PLACEHOLDER, scm_version


def test_an_unpacked_sdist_keeps_the_version_it_was_built_with(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_text("Metadata-Version: 2.4\nName: ujson\nVersion: 6.1.0\n\nlong text\n")
    assert scm_version(tmp_path) == "6.1.0"


def test_a_git_checkout_gets_its_last_release_tag(tmp_path: Path) -> None:
    _commit(tmp_path, "a.py")
    _git(tmp_path, "tag", "v2.3.1")
    _commit(tmp_path, "b.py")

    assert scm_version(tmp_path) == "2.3.1"


def test_elsewhere_a_placeholder_that_still_reads_as_a_release(tmp_path: Path) -> None:
    (tmp_path / "PKG-INFO").write_text("Name: x\nVersion: not a version\n")
    assert scm_version(tmp_path) == PLACEHOLDER
    assert PLACEHOLDER.split("+")[0].count(".") == 2


def test_tags_are_read_as_setuptools_scm_reads_them(tmp_path: Path) -> None:
    _commit(tmp_path, "a.py")
    _git(tmp_path, "tag", "release-1.02")
    _git(tmp_path, "tag", "latest")  # names no release: passed over

    assert scm_version(tmp_path) == "1.2"


def _git(root: Path, *arguments: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *arguments],
                   check=True, capture_output=True)


def _commit(root: Path, name: str) -> None:
    """A commit adding the file `name` (the repository made first where there is none)."""
    if not (root / ".git").exists():
        _git(root, "init", "-q")
    (root / name).write_text("")
    _git(root, "add", name)
    _git(root, "commit", "-q", "-m", name)
