"""Credentials never go into an image: the .dockerignore block init writes leaves out the common
credential files and folders at any depth, and before a build the context, as the engine will
receive it (.dockerignore applied), is searched for files that look like credentials, by name
and by content (private-key headers, cloud access-key ids, tokens in small text files)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testdock.engine.dockerignore import Matcher, read_patterns
from testdock.errors import BadInput
from testdock.project.testimports import TEST_DIRS

# .dockerignore lines (init's block): credential files and folders, at any depth
IGNORE_LINES = (
    "**/.git", "**/.hg", "**/.svn", "**/.env", "**/.env.*", "**/.envrc", "**/*.pem", "**/*.key",
    "**/id_rsa*", "**/id_dsa*", "**/id_ecdsa*", "**/id_ed25519*", "**/.ssh", "**/.gnupg",
    "**/.aws", "**/.azure", "**/.kube", "**/.docker/config.json", "**/.netrc", "**/.pypirc",
    "**/.npmrc", "**/.yarnrc", "**/.git-credentials", "**/.pgpass", "**/*.p12", "**/*.pfx",
    "**/*.jks", "**/*.keystore", "**/secrets.json", "**/secrets.y*ml", "**/credentials.json",
    "**/*.tfstate", "**/*.tfvars",
)

# names that are credentials wherever they are (matched against the file name, and the folder)
# (*.pem and *.key are judged by content: a certificate is no secret)
_NAMES = ("id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", ".pypirc", ".npmrc", ".yarnrc",
          ".git-credentials", ".pgpass", ".env", ".env.*", ".envrc", "*.p12", "*.pfx", "*.jks",
          "*.keystore", "secrets.json", "secrets.yml", "secrets.yaml", "credentials.json",
          "*.tfstate", "*.tfvars")
# one expression for all the names: the first alternative that matches names the pattern
_NAME_PATTERN = re.compile("|".join(f"(?P<n{index}>{fnmatch.translate(name).removeprefix('(?s:')[:-3]})"
                                    for index, name in enumerate(_NAMES)))
_FOLDERS = (".ssh", ".aws", ".azure", ".gnupg", ".kube", ".git")
_CONTENT = re.compile(
    rb"-----BEGIN (?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
    rb"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    rb"|\bgh[pousr]_[A-Za-z0-9]{36}\b|\bgithub_pat_[A-Za-z0-9_]{60,}"
    rb"|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    rb"|\bglpat-[A-Za-z0-9_-]{20}\b"
    rb"|\"private_key\":\s*\"-----BEGIN")
_CONTENT_LIMIT = 256 * 1024  # only small files are read: credentials are small, and speed matters
_SKIPPED_SUFFIXES = (".py", ".pyc", ".so", ".whl", ".gz", ".zip", ".png", ".jpg", ".ipynb", ".svg",
                     ".html", ".css", ".js", ".map", ".csv", ".parquet", ".npy", ".tar")


# key and certificate files under the test paths are the tests' fixtures (TLS and SSH tests),
# and so are the credential files of tools that the tests parse (httpx's tests/fixtures/.netrc:
# a real one lives in the home folder, never in a tests folder)
_FIXTURE_NAMES = ("*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "id_rsa*", "id_dsa*",
                  "id_ecdsa*", "id_ed25519*", ".netrc", ".pypirc")
# where a private key or a key id is an example, not a secret: documentation, and AWS's own
# documented example key id
_DOCUMENTATION_SUFFIXES = (".md", ".rst", ".adoc", ".txt.example")
_DOCUMENTATION_FOLDERS = ("docs", "doc")
_EXAMPLE_KEY_ID = re.compile(rb"^(?:AKIA|ASIA)[0-9A-Z]*EXAMPLE$")


# keys and certificates in test folders are the tests' fixtures wherever they are: tornado keeps
# its tests (and its TLS tests' test.key) in tornado/test, under a test path of "."


def fixture_patterns(test_paths: Sequence[str]) -> list[str]:
    """Keys and certificates under the test paths and in any test folder: the tests' fixtures,
    which init's .dockerignore block lets into the images and the check lets through."""
    folders = [*(path.strip("/") for path in test_paths if path not in (".", "")),
               *(f"**/{folder}" for folder in TEST_DIRS)]
    return [f"{folder}/**/{name}" for folder in dict.fromkeys(folders) for name in _FIXTURE_NAMES]


def _is_example(relative: str, test_paths: Sequence[str]) -> bool:
    """Whether a private key or key id found in this file is a fixture or an example: under the
    test paths, or in the documentation."""
    parts = relative.split("/")
    if relative.endswith(_DOCUMENTATION_SUFFIXES) or any(p in _DOCUMENTATION_FOLDERS for p in parts[:-1]):
        return True
    if any(part in TEST_DIRS for part in parts[:-1]):
        return True
    return any(relative.startswith(path.strip("/") + "/") for path in test_paths if path not in (".", ""))


@dataclass(frozen=True)
class Suspect:
    path: str  # relative to the context, POSIX
    why: str


def _by_name(relative: str) -> str | None:
    parts = relative.split("/")
    folders = [part for part in parts[:-1] if part in _FOLDERS]
    if folders:
        return f"inside a {folders[0]} folder"
    match = _NAME_PATTERN.fullmatch(parts[-1])
    if match is None:
        return None
    index = next(i for i in range(len(_NAMES)) if match.group(f"n{i}") is not None)
    return f"named like a credential ({_NAMES[index]})"


def named_like_credential(relative: str) -> bool:
    """Whether a path (POSIX, relative to the context) is named like a credential file."""
    return _by_name(relative) is not None


def _by_content(path: Path) -> str | None:
    try:
        if path.stat().st_size > _CONTENT_LIMIT:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:1024]:
        return None  # binary
    match = next((found for found in _CONTENT.finditer(data)
                  if not _EXAMPLE_KEY_ID.fullmatch(found.group(0))), None)
    if match is None:
        return None
    found = match.group(0)
    what = ("a private key" if b"PRIVATE KEY" in found else
            "an AWS access key id" if found[:2] in (b"AK", b"AS") else "an access token")
    return f"holds {what}"


def suspects(context: Path, allowed: Sequence[str] = (), test_paths: Sequence[str] = ()) -> list[Suspect]:
    """Files the engine would receive that look like credentials, except those matching
    `allowed` (globs relative to the context, .dockerignore syntax); keys and key ids found by
    content under `test_paths` or in documentation are fixtures and examples, not suspects."""
    allow = Matcher(allowed) if allowed else None
    found: list[Suspect] = []
    for posix in sorted(Matcher(read_patterns(context)).walk(context)):
        path = context / posix
        if path.is_symlink() or not path.is_file():
            continue
        if allow is not None and allow.matches(posix):
            continue
        why = _by_name(posix)
        if why is None and not posix.endswith(_SKIPPED_SUFFIXES) and not _is_example(posix, test_paths):
            why = _by_content(path)
        if why is not None:
            found.append(Suspect(posix, why))
    return found


def check_context(context: Path, allowed: Sequence[str] = (), test_paths: Sequence[str] = ()) -> None:
    """Stop the build (BadInput) when the context holds files that look like credentials."""
    found = suspects(context, [*allowed, *fixture_patterns(test_paths)], test_paths)
    if not found:
        return
    listed = ", ".join(f"{item.path} ({item.why})" for item in found[:5])
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    raise BadInput(f"the build context would put credentials into the images: {listed}{more}; "
                   "add them to .dockerignore, or, to let one through on purpose (a test fixture), "
                   "list it in [tool.testdock.build] allow_credentials")
