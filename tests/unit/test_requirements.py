"""Requirement strings and pip requirements files."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from testdock.errors import BadInput
from testdock.project.requirements import (
    local_package_path,
    merge,
    names,
    parse_requirement,
    read_requirements_file,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "projects"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def reqs(items: list[str]) -> list[Requirement]:
    return [Requirement(item) for item in items]


# --- parse_requirement ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "requests",
        "requests[socks,security]>=2,<3",
        'pywin32>=306; sys_platform == "win32"',
        "foo===1.0.local-weird",
        "pkg @ https://example.com/pkg-1.0-py3-none-any.whl",
        "pkg @ git+https://github.com/example/pkg.git@v1",
    ],
)
def test_parse_requirement_accepts_valid_requirements(text: str) -> None:
    assert parse_requirement(text, "here") == Requirement(text)


@pytest.mark.parametrize(
    "text",
    [
        "foo==1.0; $(rm -rf /)",
        "requests`id`",
        "foo===1.0$(id)",
        "foo | bar",
        "foo && bar",
        "foo${IFS}bar",
        "foo{1,2}",
        "foo\\bar",
        "foo\nbar",
        "foo\x00",
        "foo\x1b[31m",
    ],
)
def test_parse_requirement_rejects_shell_metacharacters(text: str) -> None:
    with pytest.raises(BadInput, match=r"^requirements\.txt:7: unsafe character in requirement"):
        parse_requirement(text, "requirements.txt:7")


@pytest.mark.parametrize("text", ["requests>=>2", "foo bar", "==1.0", "foo; os_name ==", "[x]"])
def test_parse_requirement_rejects_invalid_syntax(text: str) -> None:
    with pytest.raises(BadInput, match=r"^src: invalid requirement") as raised:
        parse_requirement(text, "src")

    assert "\n" not in str(raised.value)  # one line for the user


@pytest.mark.parametrize(
    "text",
    ["pkg @ ssh://git@github.com/example/pkg.git", "pkg @ git+ssh://git@github.com/x/pkg.git",
     "pkg @ ftp://example.com/pkg.tar.gz", "pkg @ git+file:///tmp/pkg",
     "pkg @ file:///tmp/pkg-1.0.tar.gz"],
)
def test_parse_requirement_rejects_unsupported_urls(text: str) -> None:
    with pytest.raises(BadInput, match=r"cannot install .* in an image"):
        parse_requirement(text, "here")


# --- read_requirements_file -------------------------------------------------------------------


def test_fixture_requirements_file() -> None:
    root = FIXTURES / "requirements_only"

    found = read_requirements_file(root / "requirements.txt", root)

    # comments, the --hash continuation lines, --index-url and `-e .` are all left out
    assert reqs(found) == reqs([
        "flask>=3.0",
        "gunicorn==22.0.0",
        'pywin32>=306; sys_platform == "win32"',
        "requests[socks]>=2.31",
    ])


def test_include_is_relative_to_the_including_file() -> None:
    root = FIXTURES / "requirements_only"

    found = read_requirements_file(root / "requirements" / "test.txt", root)

    assert [Requirement(r).name for r in found] == [
        "flask", "gunicorn", "pywin32", "requests", "pytest"]


def test_self_references_and_options_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "\n".join([
        "-e .",
        ".",
        "-e .[test]",
        "--editable .",
        "-i https://pypi.example.com/simple",
        "--extra-index-url https://pypi.example.com/extra",
        "--find-links ./wheels",
        "--pre",
        "--only-binary :all:",
        "attrs",
        "",
    ]))

    # the project itself is left out; the extras it is named with stand for their requirements
    assert read_requirements_file(path, tmp_path) == ["testdock-this-project[test]", "attrs"]


def test_comments_continuations_and_per_requirement_options(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", (
        "# full-line comment\n"
        "   # indented comment\n"
        "attrs==23.2.0 \\\n"
        "    --hash=sha256:aaaa \\\n"
        "    --hash=sha256:bbbb\n"
        "six  # trailing comment\n"
        'tomli; python_version < "3.11" --hash=sha256:cccc\n'
        "pkg @ https://example.com/pkg-1.0.tar.gz#sha256=abcdef\n"
        "wheel \\\n"
    ))

    found = read_requirements_file(path, tmp_path)

    assert reqs(found) == reqs([
        "attrs==23.2.0",
        "six",
        'tomli; python_version < "3.11"',
        "pkg @ https://example.com/pkg-1.0.tar.gz#sha256=abcdef",
        "wheel",
    ])


def test_constraint_files_are_not_requirements(tmp_path: Path) -> None:
    write(tmp_path / "constraints.txt", "urllib3<2\n")
    path = write(tmp_path / "requirements.txt", "-c constraints.txt\n--constraint=missing.txt\nattrs\n")

    assert read_requirements_file(path, tmp_path) == ["attrs"]


@pytest.mark.parametrize("include", ["-r base.txt", "-rbase.txt", "--requirement base.txt",
                                     "--requirement=base.txt", "-r ./sub/../base.txt"])
def test_include_spellings(tmp_path: Path, include: str) -> None:
    write(tmp_path / "base.txt", "attrs\n")
    (tmp_path / "sub").mkdir()
    path = write(tmp_path / "requirements.txt", f"{include}\nsix\n")

    assert read_requirements_file(path, tmp_path) == ["attrs", "six"]


def test_include_cycle_terminates(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "-r b.txt\nalpha\n")
    write(tmp_path / "b.txt", "-r a.txt\nbeta\n")

    assert read_requirements_file(tmp_path / "a.txt", tmp_path) == ["beta", "alpha"]
    assert read_requirements_file(tmp_path / "b.txt", tmp_path) == ["alpha", "beta"]


def test_file_including_itself_terminates(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "-r requirements.txt\n-r ./requirements.txt\nattrs\n")

    assert read_requirements_file(path, tmp_path) == ["attrs"]


def test_diamond_include_is_read_from_both_sides(tmp_path: Path) -> None:
    write(tmp_path / "common.txt", "attrs\n")
    write(tmp_path / "left.txt", "-r common.txt\nleft\n")
    write(tmp_path / "right.txt", "-r common.txt\nright\n")
    path = write(tmp_path / "all.txt", "-r left.txt\n-r right.txt\n")

    # not a cycle: common.txt appears twice, merge() dedupes later
    assert read_requirements_file(path, tmp_path) == ["attrs", "left", "attrs", "right"]


def test_missing_include_is_bad_input(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "attrs\n-r requirements/missing.txt\n")

    with pytest.raises(BadInput, match=r"missing\.txt: requirements file not found"):
        read_requirements_file(path, tmp_path)


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="requirements file not found"):
        read_requirements_file(tmp_path / "nope.txt", tmp_path)


def test_error_names_file_and_line_after_continuations(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "attrs \\\n  --hash=sha256:aa\n\nbad>=>1\n")

    with pytest.raises(BadInput, match=r"^requirements\.txt:4: invalid requirement 'bad>=>1'"):
        read_requirements_file(path, tmp_path)


def test_error_in_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "requirements" / "base.txt", "attrs\nsix`id`\n")
    path = write(tmp_path / "requirements.txt", "-r requirements/base.txt\n")

    with pytest.raises(BadInput, match=r"^requirements/base\.txt:2: unsafe character"):
        read_requirements_file(path, tmp_path)


def test_continued_line_error_reports_its_first_line(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "attrs\nfoo==1.0 \\\n  ; $(id)\n")

    with pytest.raises(BadInput, match=r"^requirements\.txt:2: unsafe character"):
        read_requirements_file(path, tmp_path)


def test_utf16_requirements_file_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes("attrs==23.2.0\n".encode("utf-16"))

    with pytest.raises(BadInput, match=r"requirements\.txt"):
        read_requirements_file(path, tmp_path)


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_bytes(b"\xef\xbb\xbfattrs==23.2.0\n")

    assert read_requirements_file(path, tmp_path) == ["attrs==23.2.0"]


# --- merge / names -------------------------------------------------------------------------------


def test_merge_dedupes_by_canonical_name_the_first_range_wins() -> None:
    merged = merge(["Foo_Bar>=1", "attrs"], ["foo-bar==3", "FOO.BAR<2", "six"], ["ATTRS==1"])

    # the first mention's range; where it has none, the first range given
    assert merged == ("Foo_Bar>=1", "attrs==1", "six")



def test_the_users_settings_override_the_projects_range_and_keep_its_extras() -> None:
    """black names `pytest>=7`; `extra_requirements = ["pytest<9.1"]` was dropped for it."""
    merged = merge(["pytest>=7", "httpx[http2]>=0.23", "six"], ["pytest>=8"],
                   overriding=["pytest<9.1", "httpx[zstd]", "new>=1"])
    assert reqs(list(merged)) == reqs(["pytest<9.1", "httpx[http2,zstd]>=0.23", "six", "new>=1"])

def test_merge_keeps_every_mentions_extras() -> None:
    merged = merge(["httpx2>=2.0.0", "uvicorn"], ["httpx2[zstd]>=2.0.0", "uvicorn[standard]"],
                   ["HTTPX2[http2]"])

    assert reqs(list(merged)) == reqs(["httpx2[http2,zstd]>=2.0.0", "uvicorn[standard]"])


def test_merge_keeps_the_same_name_under_different_markers() -> None:
    merged = merge(['tomli; python_version < "3.11"', "tomli>=2"],
                   ['tomli==1; python_version < "3.11"'])

    assert reqs(list(merged)) == reqs(['tomli==1; python_version < "3.11"', "tomli>=2"])


def test_merge_normalizes_spelling() -> None:
    (only,) = merge(["requests >= 2.0 , < 3"])

    assert Requirement(only) == Requirement("requests<3,>=2.0")
    assert " " not in only


def test_merge_of_nothing() -> None:
    assert merge() == ()
    assert merge([], []) == ()


def test_names_are_canonical() -> None:
    assert names(["Foo_Bar>=1", "foo.bar", "Attrs[x]; python_version > '3'"]) == {"foo-bar", "attrs"}


def test_editable_vcs_line_becomes_a_direct_reference(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("attrs\n")
    path = tmp_path / "requirements.txt"
    path.write_text("-e git+https://github.com/a/b@v1#egg=bee\n-r missing_dir/../base.txt\n")
    assert read_requirements_file(path, tmp_path) == ["bee @ git+https://github.com/a/b@v1", "attrs"]


def test_a_url_alone_is_named_by_its_egg_fragment(tmp_path: Path) -> None:
    path = write(tmp_path / "requirements.txt", "https://example.org/werkzeug-main.tar.gz#egg=werkzeug\n")
    assert read_requirements_file(path, tmp_path) == ["werkzeug @ https://example.org/werkzeug-main.tar.gz"]


@pytest.mark.parametrize(("line", "says"), [
    ("https://example.org/archive/refs/heads/main.tar.gz", "names no project; write it as 'NAME @ https"),
    ("./vendor/lib", "'vendor/lib' is not a Python package (no pyproject.toml"),
    ("../lib.whl", "cannot install the local path '../lib.whl' in an image: it lies outside the project"),
    ("/opt/lib", "cannot install the local path '/opt/lib'"),
])
def test_a_nameless_line_says_how_to_name_it(tmp_path: Path, line: str, says: str) -> None:
    path = write(tmp_path / "requirements.txt", f"attrs\n{line}\n")
    with pytest.raises(BadInput, match=r"^requirements\.txt:2: ") as raised:
        read_requirements_file(path, tmp_path)
    assert says in str(raised.value)


def test_a_package_folder_of_the_project_is_a_local_package(tmp_path: Path) -> None:
    """cloudpickle's dev-requirements.txt installs `./tests/cloudpickle_testpkg`, which its tests
    import: the images install it from the project's tree (init refused the line)."""
    write(tmp_path / "tests" / "testpkg" / "setup.py", "")
    write(tmp_path / "packages" / "core" / "pyproject.toml", "")
    path = write(tmp_path / "requirements" / "dev.txt",
                 "../tests/testpkg\n-e ../packages/core\n-e ..[socks]\nattrs\n")

    found = read_requirements_file(path, tmp_path)

    assert found == ["testpkg @ file:///testdock-local-package/tests/testpkg",
                     "core @ file:///testdock-local-package/packages/core",
                     "testdock-this-project[socks]", "attrs"]
    assert [local_package_path(text) for text in found] == ["tests/testpkg", "packages/core", None, None]
