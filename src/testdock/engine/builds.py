"""Build the phase images in dependency order, several at once: each image is built under a
private tag and given its real tags only once complete, so a failure or Ctrl-C never leaves a
half-tagged image. Every line of every build goes to one log."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from testdock import engine
from testdock.engine import buildmemory, builtimages, platforms
from testdock.engine.credentials import check_context
from testdock.engine.pipfailure import PipWatch
from testdock.errors import BadInput
from testdock.images import basepython
from testdock.images.phases import SPECS
from testdock.images.pluginwheel import (
    LEGACY_FOLDER,
    refresh_legacy_folder,
    uses_legacy_folder,
    wheel_name,
    write_wheel,
)
from testdock.images.render import base_image, builds_project_wheel, image_prefix
from testdock.images.sync import sync_generated_files
from testdock.project.inspection import Project
from testdock.project.programs import files_running_programs
from testdock.project.settings import PHASES, Settings
from testdock.safepaths import check_inside
from testdock.validation import check_tag
from testdock.workspace import Workspace, as_workspace, repository
from testdock_pytest.contract import LABEL_MANAGED, LABEL_PHASE, LABEL_PROJECT
from testdock_pytest.sizes import format_size, parse_size

DEFAULT_LOG = Path("logs/build_test_images.log")
STEP_LINE = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
_CACHED = re.compile(r"^#(\d+) CACHED$")


@dataclass(frozen=True)
class ImageResult:
    phase: str
    image: str  # the first tag
    tags: tuple[str, ...]
    seconds: float
    state: str  # built, failed, skipped, interrupted
    size: int | None = None
    previous_size: int | None = None
    cache_hits: int = 0
    steps: int = 0
    error_tail: tuple[str, ...] = ()
    pushed: tuple[str, ...] = ()
    peak_memory: int | None = None  # the most its steps used at once, where measured
    oom_step: str = ""  # the step the kernel killed for memory ("" when it did not)
    retried: bool = False  # built again, alone, after an OOM kill
    platform: str = ""  # built for this platform ("" : the engine's own, not asked for)

    @property
    def ok(self) -> bool:
        return self.state == "built"

    @property
    def size_change(self) -> int | None:
        if self.size is None or self.previous_size is None:
            return None
        return self.size - self.previous_size


class BuildListener(Protocol):
    """What a progress view hears: state changes and every output line."""

    def state(self, phase: str, state: str, detail: str = "") -> None: ...

    def line(self, phase: str, text: str) -> None: ...

    def note(self, text: str) -> None: ...  # a line about the whole build, before it starts


@dataclass(frozen=True)
class BuildOptions:
    phases: Sequence[str] = PHASES
    tag: str | None = None
    parallel: int | Literal["auto"] | None = None
    no_cache: bool = False
    pull: bool = False
    registry: str | None = None
    push: bool = False
    log_path: Path | None = None
    bake: bool = False
    cache_from: str | None = None  # a tag in the registry whose images seed the cache
    platforms: tuple[str, ...] = ()  # each image built for each (empty: the settings', else the engine's)


def default_tag(root: Path) -> str:
    """The project's git short commit, or "latest" outside git."""
    try:
        result = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "latest"
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else "latest"


def image_tags(prefix: str, phase: str, tag: str, registry: str = "", suffix: str = "") -> tuple[str, ...]:
    name = repository(prefix, phase, registry)
    return tuple(dict.fromkeys([f"{name}:{tag}{suffix}", f"{name}:latest{suffix}"]))


def ordered_phases(phases: Sequence[str]) -> list[str]:
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise BadInput(f"unknown phase {unknown[0]!r}; choose from {', '.join(PHASES)}")
    return [p for p in PHASES if p in phases]


def build_log(root: Path, chosen: Path | None) -> Path:
    """The build log: the one the user chose, else logs/build_test_images.log inside the project
    (never through a link)."""
    if chosen is not None:
        return root / chosen
    check_inside(root, DEFAULT_LOG, folder=False)
    return root / DEFAULT_LOG


class _Log:
    """One log file for all builds, each line prefixed with time and phase; thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def line(self, phase: str, text: str) -> None:
        with self._lock:
            self._handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{phase}] {text}\n")
            self._handle.flush()

    def close(self) -> None:
        self._handle.close()


@dataclass
class _StepCounter:
    steps: set[int] = field(default_factory=set)
    cached: set[int] = field(default_factory=set)
    current: str = ""

    def feed(self, text: str) -> None:
        step = STEP_LINE.match(text)
        if step and not step.group(2).startswith("internal"):
            self.steps.add(int(step.group(1)))
            self.current = f"[{step.group(2)}] {step.group(3)}"[:120]
        cached = _CACHED.match(text)
        if cached:
            self.cached.add(int(cached.group(1)))


class _Run:
    """One invocation of `testdock build`: shared state of the worker threads."""

    def __init__(self, root: Path, project: Project, settings: Settings, options: BuildOptions,
                 registry: str, listener: BuildListener, platform: str = "", native: bool = True) -> None:
        self.root = root
        # another platform than the engine's (or several): its tags end with -ARCH; the engine's
        # own platform keeps the plain tags too
        self.platform = platform
        self.suffix = platforms.suffix(platform) if platform else ""
        self.native = native
        self.project = project
        self.settings = settings
        self.options = options
        self.listener = listener
        self.prefix = image_prefix(project, settings)
        self.tag = options.tag or default_tag(root)
        self.registry = registry
        self.builder = engine.find_builder()
        self.client = engine.client()
        self.processes = engine.Processes()
        self.log = _Log(build_log(root, options.log_path))
        self.results: dict[str, ImageResult] = {}
        self.private_tags: set[str] = set()
        self.scratch = tempfile.TemporaryDirectory(prefix="testdock-build-")
        self._lock = threading.Lock()
        # BuildKit's steps are measured where the engine runs on this machine
        found = buildmemory.buildkit_cgroup() if os.environ.get(
            "DOCKER_HOST", "unix://").startswith("unix://") else None
        self.buildkit = buildmemory.BuildKitMemory(*found) if found else None

    def output(self, phase: str, text: str) -> None:
        self.log.line(phase, text)
        self.listener.line(phase, text)

    def tags(self, phase: str) -> tuple[str, ...]:
        own = image_tags(self.prefix, phase, self.tag, self.registry, self.suffix)
        if self.suffix and self.native:
            return (*own, *image_tags(self.prefix, phase, self.tag, self.registry))
        return own

    def base_image(self) -> str:
        chosen = self.settings.build.platform_base_images.get(self.platform)
        return chosen or base_image(self.project, self.settings)

    def build(self, phase: str, retry: bool = False) -> ImageResult:
        tags = self.tags(phase)
        previous = engine.image_info(self.client, tags[-1])
        private = f"{repository(self.prefix, phase)}:testdock-building-{uuid.uuid4().hex[:8]}"
        with self._lock:
            self.private_tags.add(private)
        args = {"BASE_IMAGE": self.base_image(), "SCM_VERSION": self.project.scm_version}
        dependency = SPECS[phase].depends_on
        if dependency:
            built = self.results.get(dependency)
            args["EXECUTION_IMAGE"] = built.image if built else self.tags(dependency)[0]
        cache_from: tuple[str, ...] = ()
        if self.options.cache_from:
            seed = f"{self.options.cache_from}{self.suffix}"
            cache_from = (f"{repository(self.prefix, phase, self.registry)}:{seed}",)
        if self.options.push or cache_from:
            args["BUILDKIT_INLINE_CACHE"] = "1"  # pushed images carry their cache for the next build
        request = engine.BuildRequest(self.root, self.root / SPECS[phase].dockerfile_path, (private,),
                                      args, self.options.no_cache, self.options.pull,
                                      cache_from=cache_from, iidfile=self.iidfile(phase),
                                      platform=self.platform or None)
        counter = _StepCounter()
        pip = PipWatch()

        def on_line(text: str) -> None:
            counter.feed(text)
            pip.feed(text)
            self.output(phase, text)

        self.listener.state(phase, "building", "alone, after an OOM kill" if retry else "")
        started = time.monotonic()
        begun = self.buildkit.begin() if self.buildkit else None
        try:
            engine.build(self.builder, request, on_line, self.processes)
        except engine.BuildFailed as failure:
            seconds = time.monotonic() - started
            peak, kills = self.buildkit.end(begun) if self.buildkit and begun else (None, 0)
            # a step ended by SIGKILL (exit code 137): in a build, the kernel's OOM killer (its
            # count confirms it where cgroup v2 keeps it for the whole of BuildKit)
            killed = any("exit code: 137" in line for line in failure.tail)
            if peak and killed:
                buildmemory.record(self.root, phase, peak)  # what it needs, at least
            state = "interrupted" if self.processes.stopping else "failed"
            self.output(phase, f"{state.upper()} after {seconds:.1f}s"
                        + (f" (killed for memory at {counter.current})" if killed else ""))
            self.listener.state(phase, state, counter.current)
            tail = tuple(line for line in failure.tail if line.strip())[-15:]
            explanation = pip.explanation()
            if killed and not self.processes.stopping:
                used = f"; BuildKit's steps held up to {format_size(peak)}" if peak else ""
                why = "for memory (OOM)" if kills else "(SIGKILL: the OOM killer, most likely)"
                tail = (f"the kernel killed the build {why} at {counter.current}{used}", *tail)
            elif explanation and not self.processes.stopping:
                tail = (explanation, *tail)
            return ImageResult(phase, tags[0], tags, seconds, state, cache_hits=len(counter.cached),
                               steps=len(counter.steps), error_tail=tail, peak_memory=peak,
                               oom_step=counter.current if killed and not self.processes.stopping else "",
                               retried=retry, platform=self.platform)
        peak, _ = self.buildkit.end(begun) if self.buildkit and begun else (None, 0)
        if peak:
            buildmemory.record(self.root, phase, peak)
        self.record(request, phase)
        engine.tag(self.client, private, tags)
        engine.untag(self.client, private)
        with self._lock:
            self.private_tags.discard(private)
        seconds = time.monotonic() - started
        info = engine.image_info(self.client, tags[0])
        self.output(phase, f"built {tags[0]} in {seconds:.1f}s")
        self.listener.state(phase, "built", f"{seconds:.1f}s")
        return ImageResult(phase, tags[0], tags, seconds, "built", info.size if info else None,
                           previous.size if previous else None, len(counter.cached), len(counter.steps),
                           peak_memory=peak, retried=retry, platform=self.platform)

    def waits(self, chosen: list[str]) -> dict[str, tuple[str, str | None]]:
        """phase -> (the build it waits for, the stage of its own it may build meanwhile): the
        image it builds FROM, and, where the project's wheel is compiled (the same stage in
        every Dockerfile), the backend image waits for the execution image's: it finds the wheel
        in the cache instead of compiling it a second time beside it."""
        waits = {phase: (str(SPECS[phase].depends_on), SPECS[phase].early_stage) for phase in chosen
                 if SPECS[phase].depends_on in chosen}
        both = "execution" in chosen and "backend" in chosen
        if both and builds_project_wheel(self.project, self.settings):
            waits["backend"] = ("execution", "deps")
        return waits

    def build_early_stage(self, phase: str, stage: str, waiting_for: str) -> None:
        """Build (into the cache only) the phase's stage that does not need what it waits for,
        so that it runs alongside that build; failures show in the real build."""
        args = {"BASE_IMAGE": self.base_image(), "SCM_VERSION": self.project.scm_version}
        # BuildKit leaves the stage as an untagged image: labelled and recorded, cleanup finds it
        labels = {LABEL_MANAGED: "true", LABEL_PROJECT: self.prefix, LABEL_PHASE: phase,
                  "io.testdock.stage": stage}
        request = engine.BuildRequest(self.root, self.root / SPECS[phase].dockerfile_path, (), args,
                                      self.options.no_cache, self.options.pull, target=stage,
                                      labels=labels, iidfile=self.iidfile(f"{phase}-{stage}"),
                                      platform=self.platform or None)
        self.listener.state(phase, "building", f"{stage} while {waiting_for} builds")
        try:
            engine.build(self.builder, request, lambda text: self.output(phase, text), self.processes)
            self.record(request, phase)
        except engine.BuildFailed:
            self.output(phase, f"early stage {stage} failed; the full build will show why")
        if not self.processes.stopping:
            self.listener.state(phase, "waiting", f"for {waiting_for}")

    def skipped(self, phase: str, reason: str, state: str = "skipped") -> ImageResult:
        tags = self.tags(phase)
        self.listener.state(phase, state, reason)
        return ImageResult(phase, tags[0], tags, 0.0, state, error_tail=(reason,), platform=self.platform)

    def iidfile(self, name: str) -> Path:
        return Path(self.scratch.name) / f"{name}.iid"

    def record(self, request: engine.BuildRequest, phase: str) -> None:
        """Note the image a build produced in the record cleanup reads."""
        try:
            image_id = request.iidfile.read_text().strip() if request.iidfile else ""
        except OSError:
            return
        if image_id:
            builtimages.BuiltImages().add(self.client, image_id, self.prefix, phase)

    def forget_private_tags(self) -> None:
        for reference in list(self.private_tags):
            engine.untag(self.client, reference)


_EXPECTED_ORDER = ("execution", "stress", "backend", "collection")


def _gate(run: _Run, chosen: list[str],
          parallel: int | Literal["auto"]) -> tuple[int, buildmemory.MemoryGate]:
    """How many builds at most, and the gate that starts them: with "auto", by the memory their
    recent builds took; with a number, that many whatever their memory."""
    history = buildmemory.load(run.root)

    def expected(phase: str) -> int:
        return buildmemory.expected_peak(history, phase) or buildmemory.UNKNOWN_PEAK

    if parallel != "auto":
        return parallel, buildmemory.MemoryGate(1 << 62, expected)
    setting = run.settings.build.memory
    memory = parse_size(setting) if setting else buildmemory.available_memory(run.buildkit)
    cpus = engine.cpu_count(run.client)
    for warning in buildmemory.too_big_alone(chosen, history, memory):
        run.listener.note(warning)
    if len(chosen) > 1:
        run.listener.note(buildmemory.parallel_plan(chosen, history, memory, cpus))
    return max(1, min(buildmemory.most_at_once(cpus), len(chosen))), buildmemory.MemoryGate(memory, expected)


def _schedule(run: _Run, chosen: list[str], parallel: int | Literal["auto"]) -> None:
    """Start each build once its dependency is built and the gate lets it in; a build the kernel
    killed for memory goes again once the others are over, alone."""
    workers, gate = _gate(run, chosen, parallel)
    pending: dict[Future[ImageResult | None], tuple[str, str]] = {}  # (kind, phase)
    # the longest builds first: they set the wall time
    waits = run.waits(chosen)
    ready = sorted((phase for phase in chosen if phase not in waits), key=lambda p: _EXPECTED_ORDER.index(p))
    early = [phase for phase, (_, stage) in waits.items() if stage and not run.options.no_cache]
    killed: list[str] = []
    with ThreadPoolExecutor(max_workers=workers + len(early), thread_name_prefix="build") as pool:

        def launch() -> None:
            for phase in list(ready):
                if sum(kind == "build" for kind, _ in pending.values()) >= workers:
                    return
                if not gate.may_start(phase):
                    continue
                ready.remove(phase)
                dependency = SPECS[phase].depends_on
                if dependency in run.results and not run.results[dependency].ok:
                    run.results[phase] = run.skipped(phase, f"the {dependency} image it builds FROM failed")
                    continue
                gate.started(phase)
                pending[pool.submit(run.build, phase)] = ("build", phase)
            for phase in list(early):  # a stage that needs nothing built, while there is room
                if gate.may_start(phase) and gate.running:
                    early.remove(phase)
                    gate.started(f"{phase} (early stage)", gate.expected(phase))
                    waiting_for, stage = waits[phase]
                    started: Future[ImageResult | None] = pool.submit(
                        run.build_early_stage, phase, str(stage), waiting_for)
                    pending[started] = ("early", phase)

        for phase, (waiting_for, _) in waits.items():
            run.listener.state(phase, "waiting", f"for {waiting_for}")
        launch()
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    kind, phase = pending.pop(future)
                    if kind == "early":
                        gate.ended(f"{phase} (early stage)")
                        future.result()
                        continue
                    gate.ended(phase)
                    result = future.result()
                    assert result is not None
                    run.results[phase] = result
                    if result.oom_step and not result.retried:
                        killed.append(phase)
                        run.listener.state(phase, "waiting", "to be built again alone (killed for memory)")
                        continue
                    dependants = [other for other, (waiting_for, _) in waits.items() if waiting_for == phase]
                    ready.extend(dependants)
                    early[:] = [other for other in early if other not in dependants]  # too late
                launch()
                if not pending and killed:  # the others are over: the killed builds, one at a time
                    phase = killed.pop(0)
                    gate.started(phase)
                    pending[pool.submit(run.build, phase, True)] = ("build", phase)
            for phase in early:  # never started: the gate had no room beside the others
                run.output(phase, "early stage not built beside the others: no memory to spare")
        except BaseException:
            run.processes.stop_all()
            for waiting in pending:
                waiting.cancel()
            raise


def build_images(target: Path | Workspace, options: BuildOptions,
                 listener: BuildListener) -> list[ImageResult]:
    """Build the chosen phases' images. A failing image does not stop the others (stress, built
    FROM the execution image, is skipped when that fails). Ctrl-C stops every build, removes
    their private tags and re-raises KeyboardInterrupt."""
    workspace = as_workspace(target)
    root, settings, project = workspace.root, workspace.settings, workspace.project
    chosen = ordered_phases(options.phases)
    # every value that reaches a tag or the engine is checked before anything is built or written
    registry = workspace.registry(options.registry)
    if options.tag is not None:
        check_tag(options.tag)
    if options.cache_from is not None:
        check_tag(options.cache_from, "--cache-from")
    check_context(root, settings.build.allow_credentials, project.test_paths)
    if options.cache_from and not registry:
        raise BadInput("--cache-from needs a registry: pass --registry HOST[:PORT][/PREFIX] or set "
                       "[tool.testdock.build] registry")
    if options.push and not registry:
        raise BadInput("--push needs a registry: pass --registry HOST[:PORT][/PREFIX] or set "
                       "[tool.testdock.build] registry")
    wanted = options.platforms or tuple(settings.build.platforms)
    if options.bake and wanted:
        raise BadInput("--bake builds for the engine's platform only; leave out --bake to build "
                       f"for {', '.join(wanted)}")
    for message in sync_generated_files(workspace).messages():
        listener.note(message)
    python_warning = basepython.describe(project, settings)[1]
    if python_warning:
        listener.note(f"testdock: warning: {python_warning}")
    if settings.build.distroless and "execution" in chosen:
        running = files_running_programs(root, project.test_paths)
        if running:
            listener.note(f"testdock: warning: distroless: {', '.join(running)} start programs "
                          "(subprocess, os.system, shutil.which); the distroless image has no shell and no "
                          "program but python: tests that run others fail there ([tool.testdock.build] "
                          "distroless = false)")
    missing = [SPECS[p].dockerfile_path for p in chosen if not (root / SPECS[p].dockerfile_path).is_file()]
    if missing:
        raise BadInput(f"{root}: {missing[0]} is missing; run `testdock init` first")
    try:
        placed = write_wheel(root)
    except OSError as error:
        raise BadInput(f"{root / 'docker'}: cannot write the plugin's wheel: {error.strerror}") from None
    if placed == "update":
        listener.state(chosen[0], "plugin updated", f"docker/{wheel_name()} replaces another "
                       "testdock's plugin; the images get this one's")
    if uses_legacy_folder(root):
        refreshed, edited = refresh_legacy_folder(root)
        if refreshed:
            listener.state(chosen[0], "plugin updated", f"{len(refreshed)} file(s) of {LEGACY_FOLDER} "
                           "were another testdock's; the images get this one's")
        elif edited:
            listener.state(chosen[0], "plugin kept", f"{edited[0]} is edited, so {LEGACY_FOLDER} stays "
                           "as it is, older than this testdock; `testdock init --force` replaces it")
    if options.bake:
        return _bake(root, project, settings, options, registry, chosen, listener)
    native = platforms.native_platform(engine.client()) if wanted else ""
    if wanted:
        listener.note(f"testdock: building for {', '.join(wanted)}, one platform after the other "
                      f"(the engine's own: {native}; others run under emulation, several times slower)")
    results: list[ImageResult] = []
    for platform in wanted or ("",):
        run = _Run(root, project, settings, options, registry, listener, platform,
                   native=not platform or platforms.same_platform(platform, native))
        try:
            parallel = options.parallel or settings.build.parallel
            _schedule(run, chosen, parallel if isinstance(parallel, int) else "auto")
        finally:
            run.forget_private_tags()
            if run.buildkit is not None:
                run.buildkit.close()
            run.log.close()
            run.scratch.cleanup()
        built = [run.results[p] for p in chosen]
        if options.push:
            built = [_push(run, result) for result in built]
        results += built
    if options.push and wanted:
        results = _push_manifest_lists(engine.find_builder(), results, wanted, listener)
    return results


def _push(run: _Run, result: ImageResult) -> ImageResult:
    """Push the result's tags; for a platform asked for, only its own (TAG-ARCH): the plain tags
    in the registry become the manifest lists of every platform."""
    if not result.ok:
        return result
    pushed: list[str] = []
    for reference in [tag for tag in result.tags if tag.endswith(run.suffix)]:
        run.listener.state(result.phase, "pushing", reference)
        try:
            engine.push(run.client, reference)
        except engine.PushFailed as failure:
            run.listener.state(result.phase, "failed", str(failure))
            return ImageResult(**{**result.__dict__, "state": "failed", "pushed": tuple(pushed),
                                  "error_tail": (str(failure),)})
        pushed.append(reference)
    run.listener.state(result.phase, "pushed", ", ".join(pushed))
    return ImageResult(**{**result.__dict__, "pushed": tuple(pushed)})


def _push_manifest_lists(builder: engine.Builder, results: list[ImageResult], wanted: Sequence[str],
                         listener: BuildListener) -> list[ImageResult]:
    """Per phase whose image was built and pushed for every platform: its plain tags in the
    registry become manifest lists of the platforms' images. A phase missing a platform gets
    none (a list without it would say the image runs where it was never built)."""
    by_phase: dict[str, list[ImageResult]] = {}
    for result in results:
        by_phase.setdefault(result.phase, []).append(result)
    final: list[ImageResult] = []
    for phase, images in by_phase.items():
        if not all(image.ok and image.pushed for image in images) or len(images) != len(wanted):
            final += images
            continue
        plain = [tag.removesuffix(platforms.suffix(images[0].platform))
                 for tag in images[0].tags if tag.endswith(platforms.suffix(images[0].platform))]
        made: list[str] = []
        try:
            for target in plain:
                listener.state(phase, "pushing", f"{target} for {', '.join(wanted)}")
                sources = [target + platforms.suffix(image.platform) for image in images]
                platforms.push_manifest_list(builder.argv[0], target, sources)
                made.append(target)
        except platforms.ManifestFailed as failure:
            listener.state(phase, "failed", str(failure))
            final += [ImageResult(**{**image.__dict__, "state": "failed", "error_tail": (str(failure),)})
                      for image in images]
            continue
        listener.state(phase, "pushed", f"{', '.join(made)} ({', '.join(wanted)})")
        final += [ImageResult(**{**image.__dict__, "pushed": (*image.pushed, *made)}) for image in images]
    return final


class PlainListener:
    """Line output for logs and CI: state changes, and each build step as it starts."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self._echo = echo
        self._lock = threading.Lock()

    def state(self, phase: str, state: str, detail: str = "") -> None:
        with self._lock:
            self._echo(f"[{phase}] {state}{': ' + detail if detail else ''}")

    def note(self, text: str) -> None:
        with self._lock:
            self._echo(text)

    def line(self, phase: str, text: str) -> None:
        step = STEP_LINE.match(text)
        if step and not step.group(2).startswith("internal") and not text.endswith(("DONE", "CACHED")):
            with self._lock:
                self._echo(f"[{phase}] [{step.group(2)}] {step.group(3)[:100]}")


def _bake(root: Path, project: Project, settings: Settings, options: BuildOptions, registry: str,
          chosen: list[str], listener: BuildListener) -> list[ImageResult]:
    """All chosen images through `docker buildx bake` and the docker-bake.hcl init wrote."""
    bake_file = root / "docker" / "docker-bake.hcl"
    if not bake_file.is_file():
        raise BadInput(f"{bake_file} is missing; run `testdock init` first")
    builder = engine.find_bake()
    client = engine.client()
    prefix = image_prefix(project, settings)
    tag = options.tag or default_tag(root)
    argv = [*builder.argv, "--file", str(bake_file), "--progress=plain", "--load",
            *(["--no-cache"] if options.no_cache else []), *(["--pull"] if options.pull else []), *chosen]
    environment = {**os.environ, "TAG": tag, "REGISTRY": registry,
                   "BASE_IMAGE": base_image(project, settings), "SCM_VERSION": project.scm_version}
    log = _Log(build_log(root, options.log_path))
    counter = _StepCounter()
    for phase in chosen:
        listener.state(phase, "building")
    started = time.monotonic()
    tail: list[str] = []
    with subprocess.Popen(argv, cwd=root, env=environment, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as process:
        assert process.stdout is not None
        for text in process.stdout:
            text = text.rstrip("\n")
            counter.feed(text)
            tail = [*tail[-39:], text]
            log.line("bake", text)
            listener.line(chosen[0], text)
        returncode = process.wait()
    log.close()
    seconds = time.monotonic() - started
    results: list[ImageResult] = []
    for phase in chosen:
        tags = image_tags(prefix, phase, tag, registry)
        info = engine.image_info(client, tags[0]) if returncode == 0 else None
        state = "built" if info else "failed"
        listener.state(phase, state)
        results.append(ImageResult(phase, tags[0], tags, seconds, state, info.size if info else None,
                                   cache_hits=len(counter.cached), steps=len(counter.steps),
                                   error_tail=() if info else tuple(tail[-15:])))
    return results
