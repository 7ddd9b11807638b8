"""The version a project's build gets where its version comes from version control.

setuptools-scm (and hatch-vcs, built on it) reads the version from git, which a Docker build
context does not have: the images' builds pretend one. The version the project really has is
better than a placeholder where it is known: tests that check `__version__` against a pattern or
a release (ujson's `test_version`) then pass as on a developer's machine.
"""

from __future__ import annotations

import email.parser
import re
import subprocess
from pathlib import Path

from packaging.version import InvalidVersion, Version

PLACEHOLDER = "0.0.0+testdock"
GIT_TIMEOUT = 5.0


def _valid(text: str) -> str | None:
    """The release a tag names, normalised: `v1.2`, `V1.2`, `release-1.2`, `pkg-v1.2` (as
    setuptools-scm reads them); None for a tag that names none (`latest`)."""
    match = re.search(r"(?:^|[-_/])[vV]?(\d[^\s]*)$", text.strip())
    if match is None:
        return None
    try:
        return str(Version(match.group(1)))
    except InvalidVersion:
        return None


def _from_sdist(root: Path) -> str | None:
    """An unpacked sdist's PKG-INFO says the version it was built with."""
    try:
        headers = email.parser.Parser().parsestr((root / "PKG-INFO").read_text(encoding="utf-8",
                                                                                errors="replace"),
                                                 headersonly=True)
    except OSError:
        return None
    return _valid(headers.get("Version", ""))


def _from_git(root: Path) -> str | None:
    """The newest release tag reachable from the checkout's commit (tags naming no release, such
    as `latest` or `nightly`, passed over)."""
    if not (root / ".git").exists():
        return None
    try:
        tags = subprocess.run(["git", "-C", str(root), "tag", "--merged", "HEAD", "--sort=-creatordate"],
                              capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if tags.returncode != 0:
        return None
    return next((version for tag in tags.stdout.splitlines() if (version := _valid(tag))), None)


def scm_version(root: Path) -> str:
    """The version to pretend for builds that ask version control: the sdist's, else the last
    git tag's, else a placeholder that still reads as a version (0.0.0)."""
    return _from_sdist(root) or _from_git(root) or PLACEHOLDER
