"""The credential check and the .dockerignore matcher it walks the context with."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from docker.utils.build import PatternMatcher, exclude_paths

from testdock.engine.credentials import check_context, fixture_patterns, suspects
from testdock.engine.dockerignore import Matcher, read_patterns
from testdock.errors import BadInput
from testdock.images.initialize import DOCKERIGNORE_LINES, _dockerignore
from tests.conftest import write_tree

PRIVATE_KEY = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
               "-----END OPENSSH PRIVATE KEY-----\n")
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"
# what the issue found readable in /app, and more
CREDENTIALS = {
    ".git-credentials": "https://user:token@example.invalid\n",
    ".aws/credentials": "[default]\naws_access_key_id = x\n",
    ".ssh/id_ecdsa": PRIVATE_KEY,
    "id_ed25519": PRIVATE_KEY,
    ".npmrc": "//registry/:_authToken=x\n",
    ".envrc": "export TOKEN=x\n",
    "secrets.json": "{}\n",
    "client.p12": "binary",
    "sub/.git/config": "[remote]\n",
    "deploy/ops.txt": PRIVATE_KEY,
    "conf/settings.ini": "key = AKIAABCDEFGHIJKLMNOP\n",
}


@pytest.mark.parametrize("lines", [
    DOCKERIGNORE_LINES,
    ["*", "!src", "!tests/**/*.key", "src/secret*", "**/.git"],
    ["data/", "!data/keep.txt", "**/*.log", "build/**", "../up", "./dot", "[ab]*.py", "?x"],
])
def test_the_fast_matcher_agrees_with_the_docker_sdk(lines: list[str]) -> None:
    paths = ["/".join(parts) for depth in (1, 2, 3) for parts in itertools.product(
        ["src", "tests", ".git", "data", "build", "a.py", ".env", "x.key", "keep.txt", "ax", "id_rsa.pub",
         "__pycache__", "node_modules", "monitoring", "m.csv"], repeat=depth)]
    reference = PatternMatcher(list(lines))
    fast = Matcher(lines)
    # the SDK's stubs say PathLike; its matcher takes (and needs) the str it is given here
    differ = [path for path in paths if fast.matches(path) != reference.matches(path)]  # type: ignore[arg-type]
    assert differ == []


def test_the_fast_walk_finds_what_the_docker_sdk_sends(tmp_path: Path) -> None:
    write_tree(tmp_path, {path: "x" for path in [
        "src/pkg/a.py", "src/pkg/__pycache__/a.pyc", ".git/HEAD", "tests/certs/server.key",
        "tests/test_a.py", "data/keep.txt", "data/drop.txt", ".venv/bin/python", "docs/index.md"]})
    lines = [*DOCKERIGNORE_LINES, "data", "!data/keep.txt", *(f"!{p}" for p in fixture_patterns(["tests"]))]
    (tmp_path / ".dockerignore").write_text("\n".join(lines) + "\n")
    assert set(Matcher(lines).walk(tmp_path)) == exclude_paths(str(tmp_path), list(lines))


def test_inits_dockerignore_keeps_every_credential_out_at_any_depth(tmp_path: Path) -> None:
    nested = {f"nested/deep/{path}": text for path, text in CREDENTIALS.items()}
    write_tree(tmp_path, {**CREDENTIALS, **nested, "src/app.py": "print('hi')\n"})
    (tmp_path / ".dockerignore").write_text(_dockerignore(None, ("tests",))[0])
    received = set(Matcher(_dockerignore(None, ("tests",))[0].splitlines()).walk(tmp_path))
    leaked = [path for path in CREDENTIALS if path in received or f"nested/deep/{path}" in received]
    # a private key or access key in an innocently named text file is left to the content check
    assert leaked == ["deploy/ops.txt", "conf/settings.ini"]
    assert [item.path for item in suspects(tmp_path)] == ["conf/settings.ini", "deploy/ops.txt",
                                                         "nested/deep/conf/settings.ini",
                                                         "nested/deep/deploy/ops.txt"]


def test_without_a_dockerignore_every_credential_is_named(tmp_path: Path) -> None:
    write_tree(tmp_path, {**CREDENTIALS, "src/app.py": "KEY = 'not scanned: code'\n",
                          "certs/ca.pem": CERTIFICATE, "notes.txt": "nothing here\n"})
    found = {item.path: item.why for item in suspects(tmp_path)}
    assert set(found) == set(CREDENTIALS)
    assert found["deploy/ops.txt"] == "holds a private key"
    assert found["conf/settings.ini"] == "holds an AWS access key id"
    assert found["sub/.git/config"] == "inside a .git folder"
    assert found["secrets.json"].startswith("named like a credential")


def test_the_check_stops_the_build_naming_the_files_and_the_ways_out(tmp_path: Path) -> None:
    write_tree(tmp_path, {"secrets.json": "{}\n", "src/app.py": ""})
    with pytest.raises(BadInput) as stopped:
        check_context(tmp_path)
    message = str(stopped.value)
    assert "secrets.json (named like a credential" in message
    assert ".dockerignore" in message and "allow_credentials" in message and "\n" not in message
    check_context(tmp_path, ["secrets.json"])  # let through on purpose


def test_test_fixture_keys_that_init_lets_in_pass(tmp_path: Path) -> None:
    write_tree(tmp_path, {"tests/certs/server.key": PRIVATE_KEY, "tests/certs/ca.pem": CERTIFICATE,
                          "src/app.py": ""})
    (tmp_path / ".dockerignore").write_text(_dockerignore(None, ("tests",))[0])
    assert suspects(tmp_path, fixture_patterns(["tests"])) == []
    # a key the project's own line lets in elsewhere is a suspect
    write_tree(tmp_path, {"config/server.key": PRIVATE_KEY})
    (tmp_path / ".dockerignore").write_text(_dockerignore(None, ("tests",))[0] + "!config/server.key\n")
    assert [item.path for item in suspects(tmp_path, fixture_patterns(["tests"]))] == ["config/server.key"]


def test_keys_in_a_test_folder_inside_the_package_are_fixtures_too(tmp_path: Path) -> None:
    """tornado keeps its tests in tornado/test (its test path is "."): its TLS tests' test.key
    was left out of the images, and 112 tests failed on `keyfile ... does not exist`."""
    write_tree(tmp_path, {"tornado/test/test.key": PRIVATE_KEY, "tornado/test/test.crt": CERTIFICATE,
                          "tornado/web.py": "", "deploy/prod.key": PRIVATE_KEY})
    (tmp_path / ".dockerignore").write_text(_dockerignore(None, (".",))[0])
    sent = set(Matcher(read_patterns(tmp_path)).walk(tmp_path))
    assert "tornado/test/test.key" in sent and "deploy/prod.key" not in sent
    assert suspects(tmp_path, fixture_patterns(["."]), ["."]) == []
    check_context(tmp_path, test_paths=["."])


def test_fixtures_and_documented_examples_are_no_false_alarm(tmp_path: Path) -> None:
    write_tree(tmp_path, {
        "tests/data/server_key.txt": PRIVATE_KEY,  # a fixture read by the TLS tests
        "tests/ssh/id_rsa": PRIVATE_KEY,
        "tests/certs/client.p12": "binary\n",
        "tests/fixtures/.netrc": "machine example.org login user password pass\n",  # httpx's netrc tests
        "docs/serialization.rst": f"Load a key::\n\n{PRIVATE_KEY}",
        "README.md": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
        "config/sample.ini": "key = AKIAIOSFODNN7EXAMPLE\n",  # AWS's documented example key id
        "src/app.py": ""})
    (tmp_path / ".dockerignore").write_text(_dockerignore(None, ("tests",))[0])
    assert suspects(tmp_path, fixture_patterns(["tests"]), ["tests"]) == []
    check_context(tmp_path, test_paths=["tests"])
    sent = set(Matcher(read_patterns(tmp_path)).walk(tmp_path))  # what the engine receives
    assert {"tests/fixtures/.netrc", "tests/ssh/id_rsa"} <= sent
    # the same key in a file of the project itself is a suspect
    (tmp_path / "config" / "deploy.txt").write_text(PRIVATE_KEY)
    (tmp_path / "config" / ".netrc").write_text("machine example.org login user password pass\n")
    assert [item.path for item in suspects(tmp_path, fixture_patterns(["tests"]), ["tests"])] == [
        "config/deploy.txt"]


def test_init_says_which_files_of_the_tests_it_leaves_out_as_credentials(tmp_path: Path) -> None:
    """flask's dotenv tests read tests/test_apps/.env: it stays out of the images (a developer's
    tests/.env may hold real secrets), and init names it with the line that lets it in."""
    from testdock.images.initialize import InitOptions, plan

    write_tree(tmp_path, {"pyproject.toml": '[project]\nname = "app"\nversion = "1"\n', "app/__init__.py": "",
                          "tests/test_apps/.env": "FOO=env\n", "tests/test_env.py": "", ".env": "X=1\n",
                          "tests/certs/server.pem": "fixture\n"})
    warnings = plan(tmp_path, InitOptions())[2]
    assert [warning for warning in warnings if "named like credentials" in warning] == [
        ".dockerignore leaves out tests/test_apps/.env of the tests, named like credentials; if the tests "
        'read them, list them in [tool.testdock.build] allow_credentials ("tests/test_apps/.env") and '
        "run init again"]
    # as told: the file goes into the images and passes the check; the project's own .env does not
    with (tmp_path / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.testdock.build]\nallow_credentials = ["tests/test_apps/.env"]\n')
    _, planned, warnings = plan(tmp_path, InitOptions())
    assert not [warning for warning in warnings if "named like credentials" in warning]
    from testdock.images.initialize import apply
    from testdock.project.settings import load_settings

    apply(tmp_path, planned)
    sent = set(Matcher(read_patterns(tmp_path)).walk(tmp_path))
    assert "tests/test_apps/.env" in sent and ".env" not in sent
    check_context(tmp_path, load_settings(tmp_path).build.allow_credentials, ["tests"])
