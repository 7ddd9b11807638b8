"""The folders testdock writes into stay inside the project, and no link is written through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testdock.errors import BadInput
from testdock.safepaths import check_inside, drop_links, open_for_writing, output_folder, write_atomically


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "precious").write_text("root's\n")
    return folder


def _untouched(outside: Path) -> bool:
    return sorted(p.name for p in outside.iterdir()) == ["precious"] and (
        (outside / "precious").read_text() == "root's\n")


def test_a_results_folder_that_is_a_link_is_refused_with_one_line(tmp_path: Path, outside: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "test-results").symlink_to(outside)
    with pytest.raises(BadInput) as refused:
        output_folder(project, "test-results")
    assert "is a symbolic link" in str(refused.value) and "\n" not in str(refused.value)
    assert _untouched(outside)


def test_a_link_on_the_way_and_a_file_in_the_way_are_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "monitoring").symlink_to(outside)
    with pytest.raises(BadInput, match="symbolic link"):
        output_folder(tmp_path, "monitoring/profiles")
    (tmp_path / "test-results").write_text("a file\n")
    with pytest.raises(BadInput, match="is a file"):
        output_folder(tmp_path, "test-results")
    with pytest.raises(BadInput, match="only inside the project"):
        check_inside(tmp_path, "../elsewhere")
    assert _untouched(outside)


def test_links_left_in_a_mounted_folder_are_dropped_not_followed(tmp_path: Path, outside: Path) -> None:
    results = output_folder(tmp_path, "test-results")
    (results / "junit.xml").symlink_to(outside / "precious")
    (results / "deep").mkdir()
    (results / "deep" / "away").symlink_to(outside)
    (results / "kept.txt").write_text("a result\n")
    removed = drop_links(results)
    assert sorted(path.name for path in removed) == ["away", "junit.xml"]
    assert (results / "kept.txt").read_text() == "a result\n"
    assert _untouched(outside)


def test_writes_replace_a_link_rather_than_follow_it(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "report.html").symlink_to(outside / "precious")
    write_atomically(tmp_path / "report.html", "<html>\n")
    assert not (tmp_path / "report.html").is_symlink()
    (tmp_path / "memory.csv").symlink_to(outside / "precious")
    with os.fdopen(open_for_writing(tmp_path / "memory.csv"), "w") as handle:
        handle.write("time,usage\n")
    assert (tmp_path / "memory.csv").read_text() == "time,usage\n"
    assert _untouched(outside)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_results_folder_and_what_is_in_it_are_made_the_image_users_when_testdock_is_root(
        tmp_path: Path) -> None:
    """A file left by a local run or a copied tree must not stop the container replacing it."""

    from testdock.images.phases import USER_ID
    from testdock.run.phase import writable_folder

    (tmp_path / "test-results" / "old").mkdir(parents=True)
    (tmp_path / "test-results" / "old" / "coverage.xml").write_text("<coverage/>")
    folder = writable_folder(tmp_path, "test-results")
    owner = USER_ID if os.getuid() == 0 else os.getuid()
    assert {path.stat().st_uid for path in [folder, *folder.rglob("*")]} == {owner}
