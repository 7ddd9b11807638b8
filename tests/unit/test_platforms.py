"""Images for other platforms: names, tags, the build's and the run's arguments, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from testdock import engine
from testdock.cli import main
from testdock.engine import platforms
from testdock.engine.builds import image_tags
from testdock.errors import BadInput
from tests.conftest import EXAMPLE


def test_platforms_are_read_checked_and_named() -> None:
    assert platforms.parse_platforms("linux/amd64, linux/arm64,linux/amd64") == ("linux/amd64", "linux/arm64")
    assert platforms.suffix("linux/arm64") == "-arm64" and platforms.suffix("linux/arm/v7") == "-armv7"
    assert platforms.architecture("linux/arm/v7") == "arm"
    for bad in ("arm64", "linux/arm64/v8/x", "linux/sparc", "linux/amd64;rm", ""):
        with pytest.raises(BadInput):
            platforms.parse_platforms(bad)


def test_arm64_is_arm64_v8_and_other_variants_must_match() -> None:
    assert platforms.same_platform("linux/arm64", "linux/arm64/v8")
    assert not platforms.same_platform("linux/arm/v7", "linux/arm/v6")
    assert not platforms.same_platform("linux/arm64", "linux/amd64")

    image = SimpleNamespace(attrs={"Os": "linux", "Architecture": "arm", "Variant": "v7"})
    assert platforms.image_platform(image) == "linux/arm/v7"


def test_a_platforms_tags_end_with_its_architecture() -> None:
    assert image_tags("shop", "execution", "abc123", "", "-arm64") == (
        "shop-execution:abc123-arm64", "shop-execution:latest-arm64")
    assert image_tags("shop", "execution", "latest", "reg:5000", "-arm64") == (
        "reg:5000/shop-execution:latest-arm64",)


def test_the_build_and_the_container_get_the_platform() -> None:
    builder = engine.Builder(("/usr/bin/docker", "build"), {}, "")
    request = engine.BuildRequest(Path("/p"), Path("/p/Dockerfile"), ("t",), platform="linux/arm64")
    argv = engine.build_argv(builder, request)
    assert argv[argv.index("--platform") + 1] == "linux/arm64"
    native = engine.BuildRequest(Path("/p"), Path("/p/Dockerfile"), ("t",))
    assert "--platform" not in engine.build_argv(builder, native)
    options = engine.container_options(engine.ContainerSpec("image", platform="linux/arm64"))
    assert options["platform"] == "linux/arm64"
    assert "platform" not in engine.container_options(engine.ContainerSpec("image"))


def test_loopback_registries_are_spoken_to_over_http_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    class Done:
        def __init__(self, argv: list[str]) -> None:
            calls.append(argv)
            self.returncode, self.stdout, self.stderr = 0, "sha256:abc\n", ""

    monkeypatch.setattr("testdock.engine.platforms.subprocess.run", lambda argv, **_: Done(argv))
    digest = platforms.push_manifest_list("docker", "127.0.0.1:5000/shop-execution:latest",
                                          ["127.0.0.1:5000/shop-execution:latest-amd64"])
    assert digest == "sha256:abc"
    assert [call[2] for call in calls] == ["rm", "create", "push"]
    assert "--insecure" in calls[1] and "--insecure" in calls[2] and "--purge" in calls[2]
    calls.clear()
    platforms.push_manifest_list("docker", "registry.example.com/team/shop-execution:latest", ["a", "b"])
    assert not any("--insecure" in call for call in calls)


@pytest.mark.parametrize(("args", "message"), [
    (["build", "{project}", "--platform", "arm64"], "--platform 'arm64' is not a platform"),
    (["build", "{project}", "--platform", ","], "--platform is empty"),
    (["run", "execution", "{project}", "--platform", "linux/x"], "is not a platform"),
    (["run", "stress", "{project}", "--platform", "linux/arm64"], "runs the execution and collection"),
    (["build", "{project}", "--bake", "--platform", "linux/arm64"], "--bake builds for the engine's"),
])
def test_bad_platforms_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    CliRunner().invoke(main, ["init", str(project)])
    result = CliRunner().invoke(main, [arg.replace("{project}", str(project)) for arg in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
