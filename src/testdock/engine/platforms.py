"""Images for other CPU architectures (`--platform linux/arm64`): the names, the tags each
platform's images get, and the multi-architecture image (a manifest list) pushed to a registry.

Every platform is built on its own (`docker build --platform P`: a classic client with BuildKit
builds one platform at a time, and an engine's local image store holds one architecture per tag);
a platform other than the engine's runs under emulation (QEMU with binfmt_misc) where the machine
has it. Each platform's images are tagged `TAG-ARCH` (`latest-arm64`); the engine's own platform
keeps the plain tags too, so a run without `--platform` finds them. With `--push`, the plain tags
in the registry become manifest lists of every platform's image."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

from testdock.errors import BadInput, TestdockError
from testdock.validation import is_platform

if TYPE_CHECKING:
    import docker

LOOPBACK_REGISTRY = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?(/|$)")


class ManifestFailed(TestdockError):
    """The registry refused the multi-architecture image, or the client cannot make one."""


def check_platform(value: str, what: str = "--platform") -> str:
    if not is_platform(value):
        raise BadInput(f"{what} {value!r} is not a platform; write os/architecture, like linux/amd64 "
                       "or linux/arm64 (linux/arm/v7 with a variant)")
    return value


def parse_platforms(text: str, what: str = "--platform") -> tuple[str, ...]:
    """`linux/amd64,linux/arm64` -> each checked, in order, once."""
    platforms = [part.strip() for part in text.split(",") if part.strip()]
    if not platforms:
        raise BadInput(f"{what} is empty; write one platform or several, comma-separated, like "
                       "linux/amd64,linux/arm64")
    return tuple(dict.fromkeys(check_platform(platform, what) for platform in platforms))


def suffix(platform: str) -> str:
    """What the platform's image tags end with: `-arm64`, `-armv7`."""
    return "-" + "".join(platform.split("/")[1:])


def architecture(platform: str) -> str:
    return platform.split("/")[1]


def native_platform(docker_client: docker.DockerClient) -> str:
    """The engine's own platform, `linux/amd64` on this kind of machine."""
    version = docker_client.version()
    return f"{version.get('Os', 'linux')}/{version.get('Arch', 'amd64')}"


def image_platform(image: object) -> str:
    """The platform an image was built for, from its configuration."""
    attrs = getattr(image, "attrs", {})
    variant = attrs.get("Variant")
    found = f"{attrs.get('Os', 'linux')}/{attrs.get('Architecture', 'amd64')}"
    return f"{found}/{variant}" if variant else found


def same_platform(wanted: str, found: str) -> bool:
    """linux/arm64 is linux/arm64/v8; other variants must match."""
    def normal(platform: str) -> str:
        return platform.removesuffix("/v8") if platform.startswith("linux/arm64") else platform
    return normal(wanted) == normal(found)


def push_manifest_list(docker_binary: str, target: str, sources: Sequence[str]) -> str:
    """Make `target` (registry/repository:tag) a manifest list of the pushed images `sources`
    (one per platform; each image's platform comes from the registry) and push it. Returns the
    list's digest. A registry on the loopback address is spoken to over plain HTTP, as the
    engine does by default."""
    insecure = ["--insecure"] if LOOPBACK_REGISTRY.match(target) else []

    def client(*arguments: str) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run([docker_binary, "manifest", *arguments], capture_output=True,
                                  text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ManifestFailed(f"docker manifest {arguments[0]} {target}: {error}") from None

    client("rm", target)  # a list left in the client's store by an earlier run would be amended
    created = client("create", *insecure, target, *sources)
    if created.returncode != 0:
        raise ManifestFailed(f"making the multi-platform image {target} failed: "
                             f"{(created.stderr or created.stdout).strip().splitlines()[-1:]}")
    pushed = client("push", "--purge", *insecure, target)
    if pushed.returncode != 0:
        client("rm", target)
        raise ManifestFailed(f"pushing the multi-platform image {target} failed: "
                             f"{(pushed.stderr or pushed.stdout).strip().splitlines()[-1:]}")
    return pushed.stdout.strip().splitlines()[-1] if pushed.stdout.strip() else ""
