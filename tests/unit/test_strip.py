"""Stripping the symbols of an image's installed extension modules: real shared objects compiled
here with gcc (-g), stripped with binutils' strip, loaded before and after by a real venv's
interpreter. What auditwheel patched, the grafted libraries and what fails to load stay as they
were."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import venv
from pathlib import Path

import pytest

from testdock_pytest.imagebuild import strip
from testdock_pytest.imagebuild.prune import site_packages
from testdock_pytest.imagebuild.strip import elf_facts, report, strip_venv

SOURCE = "int answer(void) { return 42; }\nint twice(int x) { return 2 * x; }\n"


def _shared_object(path: Path, *flags: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    source = path.parent / "source.c"
    source.write_text(SOURCE)
    subprocess.run(["gcc", "-g", "-shared", "-fPIC", "-o", str(path), str(source), *flags], check=True)
    source.unlink()
    return path


@pytest.fixture
def environment(tmp_path: Path) -> Path:
    folder = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(folder)
    return folder


def test_the_symbols_and_debug_sections_are_counted_and_a_patched_file_is_recognised(tmp_path: Path) -> None:
    plain = _shared_object(tmp_path / "plain.so")
    facts = elf_facts(plain)
    assert facts is not None and not facts.patched
    assert facts.symbols > 1000  # -g: .debug_info, .symtab, .strtab...
    patched = elf_facts(_shared_object(tmp_path / "patched.so", "-Wl,-rpath,$ORIGIN/../pkg.libs"))
    assert patched is not None and patched.patched
    subprocess.run(["strip", "--strip-unneeded", str(plain)], check=True)
    stripped = elf_facts(plain)
    assert stripped is not None and stripped.symbols == 0


def test_what_is_not_elf_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "text.so").write_text("not a shared object")
    (tmp_path / "short.so").write_bytes(b"\x7fELF\x02\x01")
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 33 + struct.pack("<Q", 10**9) + b"\0" * 32)
    assert elf_facts(tmp_path / "text.so") is None
    assert elf_facts(tmp_path / "short.so") is None
    assert elf_facts(truncated) is None
    assert elf_facts(tmp_path / "missing.so") is None


def test_extension_modules_are_stripped_patched_and_grafted_files_stay(environment: Path) -> None:
    site = site_packages(environment)
    plain = _shared_object(site / "fonts" / "_speed.cpython-311-x86_64-linux-gnu.so")
    patched = _shared_object(site / "pillowy" / "_imaging.so", "-Wl,-rpath,$ORIGIN/../pillowy.libs")
    grafted = _shared_object(site / "pillowy.libs" / "libgraft-1234abcd.so.1.0")
    sizes = {path: path.stat().st_size for path in (plain, patched, grafted)}
    outcome = strip_venv(environment, min_gain=0, install=False)
    assert set(outcome.stripped) == {plain} and not outcome.restored
    assert 0 < outcome.stripped[plain] == sizes[plain] - plain.stat().st_size
    assert patched.stat().st_size == sizes[patched] and grafted.stat().st_size == sizes[grafted]
    assert strip.loading(str(environment / "bin" / "python"), [plain]) == {plain}
    lines = report(outcome, site)
    assert lines[0].startswith("testdock strip: fonts: ") and "symbols and debug information" in lines[0]
    assert lines[-1].startswith("testdock strip: removed ") and "from 1 extension module(s)" in lines[-1]


def test_a_file_that_does_not_load_once_stripped_gets_its_bytes_back(environment: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    site = site_packages(environment)
    module = _shared_object(site / "fragile" / "_core.so")
    original = module.read_bytes()
    # a strip that leaves files the loader refuses (patchelf'd files stripped: "ELF load command
    # address/offset not page-aligned")
    breaking = tmp_path / "breaking-strip"
    breaking.write_text('#!/bin/sh\nfor f in "$@"; do\n'
                        '  case "$f" in -*) ;; *) printf "\\177ELF broken" > "$f";; esac\ndone\n')
    breaking.chmod(breaking.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(strip, "find_strip", lambda install: (str(breaking), ""))
    outcome = strip_venv(environment, min_gain=0)
    assert outcome.restored == [module] and not outcome.stripped
    assert module.read_bytes() == original
    assert "kept as it was (it does not load stripped)" in report(outcome, site)[0]


def test_too_little_to_gain_or_no_strip_program_changes_nothing(environment: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    site = site_packages(environment)
    module = _shared_object(site / "small" / "_core.so")
    original = module.read_bytes()
    outcome = strip_venv(environment, min_gain=64 * 1024 * 1024)
    assert "under 64.0 MiB: left as they are" in outcome.skipped and module.read_bytes() == original
    monkeypatch.setattr(shutil, "which", lambda name: None)
    outcome = strip_venv(environment, min_gain=0, install=True)
    assert "no strip program in the build stage" in outcome.skipped or "could not" in outcome.skipped
    assert module.read_bytes() == original
    assert report(outcome, site) == [f"testdock strip: {outcome.skipped}"]
    assert os.access(module, os.R_OK)
