"""Build the phase images in dependency order, several at once, logging every line."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from testdock import engine
from testdock.config import PHASES, load_settings
from testdock.errors import BadInput
from testdock.phases import SPECS
from testdock.project import inspect_project
from testdock.render import base_image, image_prefix

BUILD_LOG = Path("logs/build_test_images.log")


@dataclass(frozen=True)
class ImageResult:
    phase: str
    image: str  # the first tag
    tags: tuple[str, ...]
    seconds: float
    ok: bool
    size: int | None = None
    error_tail: tuple[str, ...] = ()


def default_tag(root: Path) -> str:
    """The project's git short commit, or "latest" outside git."""
    try:
        result = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "latest"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "latest"


def image_tags(prefix: str, phase: str, tag: str, registry: str = "") -> tuple[str, ...]:
    repository = f"{registry.rstrip('/')}/{prefix}-{phase}" if registry else f"{prefix}-{phase}"
    return tuple(dict.fromkeys([f"{repository}:{tag}", f"{repository}:latest"]))


def _ordered(phases: Sequence[str]) -> list[str]:
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise BadInput(f"unknown phase {unknown[0]!r}; choose from {', '.join(PHASES)}")
    return [p for p in PHASES if p in phases]


class _Log:
    """One log file for all builds, each line prefixed with its phase; thread-safe."""

    def __init__(self, path: Path, echo: Callable[[str, str], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._echo = echo

    def line(self, phase: str, text: str) -> None:
        with self._lock:
            self._handle.write(f"{time.strftime('%H:%M:%S')} [{phase}] {text}\n")
            self._handle.flush()
        self._echo(phase, text)

    def close(self) -> None:
        self._handle.close()


def build_images(root: Path, phases: Sequence[str] = PHASES, tag: str | None = None,
                 parallel: int | None = None, no_cache: bool = False,
                 echo: Callable[[str, str], None] = lambda phase, text: None) -> list[ImageResult]:
    """Build the phases' images; a failing image does not stop the others (stress, which is
    built FROM the execution image, is skipped when that fails)."""
    settings = load_settings(root)
    project = inspect_project(root, app_override=settings.backend.app)
    chosen = _ordered(phases)
    missing = [SPECS[p].dockerfile_path for p in chosen if not (root / SPECS[p].dockerfile_path).is_file()]
    if missing:
        raise BadInput(f"{root}: {missing[0]} is missing; run `testdock init` first")
    builder = engine.find_builder()
    engine.client()  # fail early, with one clear line, when no engine answers
    prefix = image_prefix(project, settings)
    tag = tag or default_tag(root)
    workers = parallel or settings.build.parallel
    log = _Log(root / BUILD_LOG, echo)
    results: dict[str, ImageResult] = {}

    def run(phase: str) -> ImageResult:
        tags = image_tags(prefix, phase, tag, settings.build.registry)
        args = {"BASE_IMAGE": base_image(project, settings)}
        dependency = SPECS[phase].depends_on
        if dependency:
            built = results.get(dependency)
            args["EXECUTION_IMAGE"] = built.image if built else image_tags(
                prefix, dependency, tag, settings.build.registry)[0]
        request = engine.BuildRequest(root, root / SPECS[phase].dockerfile_path, tags, args, no_cache)
        started = time.monotonic()
        try:
            engine.build(builder, request, lambda text: log.line(phase, text))
        except engine.BuildFailed as failure:
            log.line(phase, f"FAILED after {time.monotonic() - started:.1f}s")
            return ImageResult(phase, tags[0], tags, time.monotonic() - started, False,
                               error_tail=tuple(failure.tail[-15:]))
        seconds = time.monotonic() - started
        log.line(phase, f"built {tags[0]} in {seconds:.1f}s")
        return ImageResult(phase, tags[0], tags, seconds, True)

    pool = ThreadPoolExecutor(max_workers=workers)
    pending: dict[Future[ImageResult], str] = {}

    def _start_dependants(phase: str) -> None:
        for dependant in chosen:
            if SPECS[dependant].depends_on != phase:
                continue
            if results[phase].ok:
                pending[pool.submit(run, dependant)] = dependant
            else:
                tags = image_tags(prefix, dependant, tag, settings.build.registry)
                results[dependant] = ImageResult(
                    dependant, tags[0], tags, 0.0, False,
                    error_tail=(f"skipped: the {phase} image it builds FROM failed",))

    try:
        with pool:
            pending.update({pool.submit(run, p): p for p in chosen
                            if SPECS[p].depends_on not in chosen})
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    phase = pending.pop(future)
                    results[phase] = future.result()
                    _start_dependants(phase)
    finally:
        log.close()
    docker_client = engine.client()
    return [
        ImageResult(r.phase, r.image, r.tags, r.seconds, r.ok,
                    engine.image_size(docker_client, r.image) if r.ok else None, r.error_tail)
        for r in (results[p] for p in chosen)
    ]
