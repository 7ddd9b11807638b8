"""`[tool.testdock]`: one typed, validated schema; unknown keys and bad values are errors."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from testdock.errors import BadInput
from testdock.project.pyproject import read_toml
from testdock.project.requirements import requirement_text
from testdock.validation import (
    check_registry,
    is_environment_name,
    is_image_reference,
    is_platform,
    is_project_name,
)
from testdock_pytest.sizes import parse_size

PHASES = ("collection", "execution", "stress", "backend")
MINIMUM_CONTAINER_MEMORY = 6 * 2**20  # Docker refuses a smaller memory limit


def _image_reference(value: str) -> str:
    if not is_image_reference(value):
        raise ValueError(f"{value!r} is not a Docker image reference (like 'python:3.12-slim')")
    return value


def _platforms(values: list[str]) -> list[str]:
    for value in values:
        if not is_platform(value):
            raise ValueError(f"{value!r} is not a platform (os/architecture: linux/amd64, linux/arm64)")
    return values


def _platform_images(values: dict[str, str]) -> dict[str, str]:
    _platforms(list(values))
    for value in values.values():
        _image_reference(value)
    return values


def _project_name(value: str) -> str:
    if not is_project_name(value):
        raise ValueError(f"{value!r} must be lower-case letters, digits and . _ - (an image name)")
    return value


def _registry(value: str) -> str:
    try:
        return check_registry(value, what="")
    except BadInput as error:  # pydantic wants a ValueError; the wording is the flag's
        raise ValueError(str(error).strip()) from None


def _size(value: str) -> str:
    parse_size(value)
    return value


def _percent(value: str) -> str:
    if not re.fullmatch(r"\d{1,2}(?:\.\d+)?%", value):
        raise ValueError(f"{value!r} must be a percentage below 100, like '10%'")
    return value


def _requirements(values: list[str]) -> list[str]:
    try:
        return [requirement_text(v, "requirement") for v in values]
    except BadInput as error:
        raise ValueError(str(error).removeprefix("requirement: ")) from None


def _debian_packages(values: list[str]) -> list[str]:
    for value in values:
        if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+:~-]+)?", value):
            raise ValueError(f"{value!r} is not a Debian package name (like 'libpq-dev' or 'gcc=4:12.2.0-3')")
    return values


def _module_names(values: list[str]) -> list[str]:
    for value in values:
        if not re.fullmatch(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*", value):
            raise ValueError(f"{value!r} is not a module name")
    return values


def _container_memory(value: str) -> str:
    if parse_size(value) < MINIMUM_CONTAINER_MEMORY:
        raise ValueError(f"{value!r} is below the 6 MiB Docker gives a container at least (like '1g')")
    return value


def _parallel(value: int | str) -> int | str:
    if value == "auto" or (isinstance(value, int) and 1 <= value <= 32):
        return value
    raise ValueError(f"{value!r} is neither a number from 1 to 32 nor 'auto'")


ImageRef = Annotated[str, AfterValidator(_image_reference)]
Size = Annotated[str, AfterValidator(_size)]
ContainerMemory = Annotated[str, AfterValidator(_size), AfterValidator(_container_memory)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BuildSettings(_Strict):
    # images built at once: "auto" starts builds while their recent peak memory fits what the
    # machine has available (one per CPU, at least 3); a number is that many, memory or not
    parallel: Annotated[int | str, AfterValidator(_parallel)] = "auto"
    # the memory builds may use together under "auto" (default: what the machine has available)
    memory: ContainerMemory | None = None
    registry: Annotated[str, AfterValidator(_registry)] = ""
    keep: int = Field(default=3, ge=0)
    # files of the build context that look like credentials but go into the images on purpose
    # (.dockerignore globs, like "tests/fixtures/fake_aws_credentials")
    allow_credentials: list[str] = []
    # what installs the dependencies in the build stages: uv (pip where uv cannot), or pip alone
    installer: Literal["uv", "pip"] = "uv"
    # the execution image (and the stress image on it) without a shell, a package manager or pip:
    # the Python runtime, the venv, the project and the shared libraries they link against
    distroless: bool = False
    # what a test run never loads leaves the images: the dependencies' own test suites, C/Cython
    # sources, headers and static libraries (listed with their sizes in the build log)
    prune: bool = True
    # top-level packages kept whole, for tests that use their test helpers or sources in ways a
    # scan of the project's imports does not see (those it sees are kept anyway)
    keep_packages: Annotated[list[str], AfterValidator(_module_names)] = []
    # the platforms every image is built for (`testdock build --platform`); empty: the engine's.
    # Each platform's images are tagged TAG-ARCH (latest-arm64); with --push the plain tags in the
    # registry become multi-platform images (manifest lists). Another architecture than the
    # engine's builds and runs under emulation (QEMU with binfmt_misc), several times slower
    platforms: Annotated[list[str], AfterValidator(_platforms)] = []
    # a base image per platform, where base_image is not published for all of them (a local or
    # mirrored image has one architecture): {"linux/arm64" = "registry.example/python:3.12-arm64"}
    platform_base_images: Annotated[dict[str, str], AfterValidator(_platform_images)] = {}


def _environment(values: dict[str, str]) -> dict[str, str]:
    for name in values:
        if not is_environment_name(name):
            raise ValueError(f"{name!r} is not an environment variable name")
    return values


Environment = Annotated[dict[str, str], AfterValidator(_environment)]


class PhaseSettings(_Strict):
    # true: the container's root filesystem (with /app) is read-only, a hardening that suites writing
    # into their own tree or working directory fail under. Off by default: a suite that passes in
    # a plain venv passes here, and the host stays protected either way (only the results folders
    # are mounted)
    read_only: bool = False
    memory: ContainerMemory | None = None
    cpus: float | None = Field(default=None, gt=0)
    command: list[str] | None = None
    extra_requirements: Annotated[list[str], AfterValidator(_requirements)] = []
    environment: Environment = {}  # for the tests (`TERMINAL_WIDTH = "3000"`, as the project's CI sets)
    # the execution phase measures coverage (pytest-cov, XML in test-results/); by default only
    # when the project does in its own runs (`--cov` in its pytest options, a coverage configuration)
    coverage: bool | None = None


class MemorySettings(_Strict):
    margin: Annotated[str, AfterValidator(_percent)] = "10%"
    max_worker_rss: Size | None = None


class CollectionSettings(_Strict):
    stub: Annotated[list[str], AfterValidator(_module_names)] = []
    # dependencies made only of small wheels (pure Python, or compiled up to 1 MiB each) are
    # installed for real, up to this many bytes of wheels ("0": none; everything is stubbed)
    light_budget: Size = "4m"
    # dependencies installed for real whatever their weight: for test modules that compute with
    # them at import time (arrays built in a class body), which no stand-in can do
    install: Annotated[list[str], AfterValidator(_requirements)] = []




class ServiceSettings(_Strict):
    """A service the backend needs (a database, a cache), run as a container on the host network.
    `{port}` in command, env, ready and exports is the service's port (a free one when unset)."""

    image: ImageRef
    port: int | None = Field(default=None, ge=1, le=65535)
    command: list[str] | None = None
    env: Environment = {}
    ready: list[str] | None = None  # run inside the container until it exits 0; else the port opens
    ready_timeout: float = Field(default=60.0, gt=0)
    exports: Environment = {}  # given to the app and its tests
    memory: ContainerMemory = "256m"


class BackendSettings(_Strict):
    app: str | None = None
    interface: Literal["asgi", "wsgi"] = "asgi"  # of a configured app (a detected one is known)
    factory: bool = False  # the configured app is a function that returns the app (uvicorn --factory)
    health_path: str = Field(default="/health", pattern=r"^/[\w./?=&-]*$")
    port: int = Field(default=8000, ge=1, le=65535)
    host: str = Field(default="127.0.0.1", pattern=r"^[0-9a-fA-F.:]+$|^localhost$")
    # uvicorn in a memory-limited container: one worker, bounded concurrency and keep-alive
    workers: int = Field(default=1, ge=1, le=64)
    limit_concurrency: int = Field(default=64, ge=1)
    keep_alive: int = Field(default=5, ge=1)
    access_log: bool = False
    health_max_memory: float = Field(default=0.9, gt=0, le=1)  # unhealthy above this share of the limit
    health_timeout: float = Field(default=60.0, gt=0)
    tests: list[str] = []  # pytest arguments selecting the integration tests (default: detected)
    environment: Environment = {}  # for the app and its tests; `{app_url}` is the app's URL
    services: dict[str, ServiceSettings] = {}


class PhasesSettings(_Strict):
    collection: PhaseSettings = PhaseSettings()
    execution: PhaseSettings = PhaseSettings()
    stress: PhaseSettings = PhaseSettings()
    backend: PhaseSettings = PhaseSettings()


class LoadSettings(_Strict):
    """The stress phase's load test: bounded users, rate and duration; it stops by itself."""

    enabled: bool = True
    users: int = Field(default=10, ge=1, le=1000)
    spawn_rate: float = Field(default=5.0, gt=0, le=1000)  # users started per second
    rate_per_user: float = Field(default=5.0, gt=0, le=1000)  # requests per second, at most
    duration: float = Field(default=20.0, gt=0, le=3600)  # seconds
    locustfile: str | None = None  # default: locustfile.py at the project's root, else GET health_path


class StressSettings(_Strict):
    regression: Annotated[str, AfterValidator(_percent)] = "10%"  # slower than this: a regression
    profile_top: int = Field(default=3, ge=0, le=20)  # memray profiles of the heaviest tests
    leak_runs: int = Field(default=3, ge=1, le=20)
    load: LoadSettings = LoadSettings()


class Settings(_Strict):
    """The merged `[tool.testdock]` table."""

    base_image: ImageRef | None = None
    project: Annotated[str, AfterValidator(_project_name)] | None = None
    # Debian packages (apt): in every image (runtime libraries), and only where dependencies
    # are built (compilers, headers), which keeps them out of the final images
    system_packages: Annotated[list[str], AfterValidator(_debian_packages)] = []
    build_packages: Annotated[list[str], AfterValidator(_debian_packages)] = []
    build: BuildSettings = BuildSettings()
    phases: PhasesSettings = PhasesSettings()
    memory: MemorySettings = MemorySettings()
    collection: CollectionSettings = CollectionSettings()
    backend: BackendSettings = BackendSettings()
    stress: StressSettings = StressSettings()


def _known_keys(model: type[BaseModel], path: tuple[str | int, ...]) -> list[str]:
    current: Any = model
    for part in path:
        if get_origin(current) is dict:  # a table of named entries: the name is any key
            current = get_args(current)[1]
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        current = field.annotation if field else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    location = tuple(first["loc"])
    section = ".".join(["tool", "testdock", *(str(p) for p in location[:-1])])
    key = str(location[-1]) if location else ""
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, _known_keys(Settings, location[:-1]), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"[{section}] unknown key '{key}'{hint}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"[{section}] {key}: {message}"


def settings_from_table(data: dict[str, Any], where: str = "pyproject.toml") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise BadInput(f"{where}: {_describe(error)}") from None


def load_settings(root: Path) -> Settings:
    """The project's `[tool.testdock]` settings (defaults where the table or a key is missing)."""
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return Settings()
    data = read_toml(pyproject)
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise BadInput(f"{pyproject}: [tool] must be a table")
    section = tool.get("testdock", {})
    if not isinstance(section, dict):
        raise BadInput(f"{pyproject}: [tool.testdock] must be a table, like `[tool.testdock]` "
                       "followed by keys")
    return settings_from_table(section, str(pyproject))
