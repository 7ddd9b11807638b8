"""Checks of the values that reach a Dockerfile, a label, a tag or the Docker API, whole-string
(a trailing newline is not "the end" here, unlike `$`), each naming the setting or flag the user
gave when it fails."""

from __future__ import annotations

import re

from testdock.errors import BadInput

# [registry[:port]/]name[:tag][@digest], lower-case path components (the engine's grammar)
IMAGE_REFERENCE = re.compile(
    r"(?:[a-zA-Z0-9.-]+(?::\d+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::\w[\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?")
PROJECT_NAME = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
TAG = re.compile(r"\w[\w.-]{0,127}")
REGISTRY = re.compile(r"[a-zA-Z0-9.-]+(?::\d{1,5})?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# os/architecture[/variant], as Docker and OCI name them: linux/amd64, linux/arm64, linux/arm/v7
PLATFORM = re.compile(r"linux/(?:amd64|arm64|arm|386|ppc64le|s390x|riscv64)(?:/v[5-8])?")


def is_image_reference(value: str) -> bool:
    return IMAGE_REFERENCE.fullmatch(value) is not None


def is_project_name(value: str) -> bool:
    return PROJECT_NAME.fullmatch(value) is not None and len(value) <= 100


def is_platform(value: str) -> bool:
    return PLATFORM.fullmatch(value) is not None


def is_environment_name(value: str) -> bool:
    return ENVIRONMENT_NAME.fullmatch(value) is not None


def check_tag(value: str, what: str = "--tag") -> str:
    """A Docker tag: letters, digits, _ . -, not starting with . or -, at most 128 characters."""
    if TAG.fullmatch(value) is None:
        raise BadInput(f"{what} {value!r} is not a Docker tag: use letters, digits, '_', '.' and '-' "
                       "(not first), at most 128 characters, like v1.2.0")
    return value


def check_registry(value: str, what: str = "--registry") -> str:
    if value and REGISTRY.fullmatch(value) is None:
        raise BadInput(f"{what} {value!r} is not HOST[:PORT][/PREFIX] (like 127.0.0.1:5000/team)")
    return value


def check_cpus(value: float, available: int, what: str) -> float:
    """A CPU limit the engine can give: Docker refuses more CPUs than the machine has."""
    if value > available:
        raise BadInput(f"{what} = {value:g} is more CPUs than the Docker engine has ({available}); "
                       f"set at most {available}, or leave it unset for no limit")
    return value
