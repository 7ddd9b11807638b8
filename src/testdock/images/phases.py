"""The four phases as data: what each image installs, runs and checks."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from testdock.images.tools import (
    BACKEND_TOOLS,
    COLLECTION_TOOLS,
    EXECUTION_TOOLS,
    LAST_PYTEST_BEFORE,
    STRESS_TOOLS,
    TOOL_DEPENDENCIES,
    pin_within_tools,
)
from testdock.project.inspection import Project
from testdock.project.requirements import merge, names, unpinned
from testdock.project.settings import PHASES, Settings

DEFAULT_MEMORY = {"collection": "512m", "execution": "1g", "stress": "2g", "backend": "1g"}
USER_ID = 10001
USER_NAME = "testdock"


@dataclass(frozen=True)
class PhaseSpec:
    """One test image: its Dockerfile, its requirement set and what it runs by default."""

    name: str
    dockerfile: str
    requirements_file: str
    purpose: str
    depends_on: str | None = None
    # A stage that needs nothing of `depends_on`, built while that is still building.
    early_stage: str | None = None

    @property
    def dockerfile_path(self) -> str:
        return f"docker/{self.dockerfile}"

    @property
    def requirements_path(self) -> str:
        return f"docker/{self.requirements_file}"


SPECS: dict[str, PhaseSpec] = {
    "collection": PhaseSpec("collection", "pytest.collection.Dockerfile",
                            "collection_requirements.txt",
                            "test discovery: pytest and the project's source, none of its dependencies"),
    "execution": PhaseSpec("execution", "pytest.execution.Dockerfile",
                           "execution_requirements.txt",
                           "test execution: runtime and test dependencies, xdist, coverage, timeouts"),
    "stress": PhaseSpec("stress", "pytest.stress.Dockerfile", "stress_requirements.txt",
                        "stress testing: the execution image plus profilers, benchmarks and load tools",
                        depends_on="execution", early_stage="stress-tools"),
    "backend": PhaseSpec("backend", "backend.test.Dockerfile", "test_requirements.txt",
                         "backend testing: the application under uvicorn with a memory-aware health check"),
}
assert tuple(SPECS) == PHASES


# Test tools that register a pytest plugin (a `pytest11` entry point) without a pytest- name, or
# build what tests are made of at import time (hypothesis strategies): collection needs them real.
COLLECTION_SHAPERS = frozenset({"hypothesis", "syrupy", "faker", "time-machine", "inline-snapshot",
                                "pytest", "anyio"})


# Plugins that drive a framework they do not depend on: pytest-django sets Django up (settings,
# apps, the test database) when pytest configures, which a stand-in for Django cannot survive.
PLUGIN_FRAMEWORKS = {"pytest-django": "django"}


def _plugin_frameworks(plugins: list[str]) -> list[str]:
    return [PLUGIN_FRAMEWORKS[name] for name in sorted(names(plugins)) if name in PLUGIN_FRAMEWORKS]


def _pytest_plugins(requirements: tuple[str, ...]) -> list[str]:
    """Test requirements that are pytest plugins: they can change what collection finds."""
    return [r for r in requirements
            if any(n.startswith("pytest-") or n in COLLECTION_SHAPERS for n in names([r]))]


def _chosen(wanted: list[str], project: Project) -> list[str]:
    """The project's own requirement for each wanted name (its version range and markers), else
    the name. Extras are the user's, not the project's: `dask` is dask, even where the project
    asks for `dask[complete]` (a web server, Arrow and a cluster scheduler besides)."""
    declared = {canonicalize_name(Requirement(r).name): Requirement(r)
                for r in (*project.dependencies, *project.test_dependencies)}
    chosen: list[str] = []
    for text in wanted:
        requirement = Requirement(text)
        own = declared.get(canonicalize_name(requirement.name))
        if own is None or requirement.specifier or requirement.url or requirement.marker:
            chosen.append(text)
            continue
        own.extras = requirement.extras
        chosen.append(str(own))
    return chosen


def requirement_set(phase: str, project: Project, settings: Settings) -> tuple[str, ...]:
    """What the phase's image installs (the project itself is installed separately)."""
    extra = tuple(getattr(settings.phases, phase).extra_requirements)
    dependencies, test_dependencies = _own_requirements(project)
    if phase == "collection":
        # the project's own pins first: another pytest may name parametrized tests differently
        # (a requirements.txt counts as runtime: starlette pins its pytest there)
        plugins = _pytest_plugins((*dependencies, *test_dependencies))
        installed = _chosen([*settings.collection.install, *_plugin_frameworks(plugins)], project)
        return merge(plugins, installed, _tools(COLLECTION_TOOLS, project), overriding=extra)
    if phase == "execution":
        return merge(dependencies, test_dependencies, _tools(EXECUTION_TOOLS, project),
                     project.coverage_plugins, overriding=extra)
    if phase == "stress":
        # Installed on top of the execution image: only what it lacks.
        return merge(STRESS_TOOLS, overriding=extra)
    return merge(dependencies, test_dependencies, _tools(BACKEND_TOOLS, project), project.coverage_plugins,
                 overriding=extra)


def _own_requirements(project: Project) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The project's runtime and test requirements, but where it names no pytest of its own, its
    versions of what the images' tools depend on are left to the tools: tornado's requirements.txt
    (a lock of its tox and docs tools) pins pluggy==1.0.0, which no pytest 8 installs beside.
    Where a newer pytest refuses the suite, the project's own pytest requirement is held below it."""
    if "pytest" in names([*project.dependencies, *project.test_dependencies]):
        ceiling = pytest_ceiling(project)
        if ceiling is None:
            return project.dependencies, project.test_dependencies

        def held(requirements: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(_held_below(text, ceiling) if names([text]) == {"pytest"} else text
                         for text in requirements)

        return held(project.dependencies), held(project.test_dependencies)
    tool_dependencies = names(TOOL_DEPENDENCIES)

    def freed(requirements: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(unpinned(text) if names([text]) & tool_dependencies else text for text in requirements)

    return freed(project.dependencies), freed(project.test_dependencies)


def _held_below(text: str, ceiling: str) -> str:
    requirement = Requirement(text)
    requirement.specifier &= SpecifierSet(f"<{ceiling}")
    return str(requirement)


def pytest_ceiling(project: Project) -> str | None:
    """The pytest release the images stay below ("9", "9.1"), or None: a newer pytest refuses some
    of the project's files (hooks with py.path arguments and marks on fixtures: pytest 9; reading
    config.inicfg under `filterwarnings = error`: pytest 9.1; see legacyhooks), and the project's
    own pytest requirement, if any, admits the release before it (`pytest>=7`: the project did not
    choose the newer one)."""
    if project.py_path_hooks or project.marked_fixtures:
        ceiling = "9"
    elif project.inicfg_readers:
        ceiling = "9.1"
    else:
        return None
    own = [Requirement(text) for text in (*project.dependencies, *project.test_dependencies)
           if names([text]) == {"pytest"}]
    last = LAST_PYTEST_BEFORE[ceiling]
    admitted = all(requirement.specifier.contains(last, prereleases=True) for requirement in own)
    # a lock that pins a newer pytest: the project's tests run with it, whatever its files look like
    below = SpecifierSet(f"<{ceiling}")
    newer_locked = any(not below.contains(next(iter(Requirement(pin).specifier)).version)
                       for pin in project_pins(project)[0]
                       if not pin.startswith("-c ") and names([pin]) == {"pytest"} and pin_within_tools(pin))
    return ceiling if admitted and not newer_locked else None


def project_pins(project: Project) -> tuple[list[str], str]:
    """The versions the project pins (lock file or `-c` files) and where they come from."""
    from testdock.project.inspection import requirement_files
    from testdock.project.pins import project_constraints

    runtime, test, dev = requirement_files(project.root)
    return project_constraints(project.root, project.name, [*runtime, *test, *dev])


def _tools(tools: tuple[str, ...], project: Project) -> tuple[str, ...]:
    ceiling = pytest_ceiling(project)
    if ceiling is None:
        return tools
    return tuple(f"pytest>=8,<{ceiling}" if names([tool]) == {"pytest"} else tool for tool in tools)


LIGHT_CANDIDATES_PATH = "docker/collection_light_requirements.txt"


def light_candidates(project: Project, settings: Settings) -> tuple[str, ...]:
    """The dependencies the collection image may install for real when they prove light (pure
    Python, small): all but what it installs anyway and what the user wants stubbed. What the
    real run installs besides (the execution phase's extra requirements) is among them: what they
    bring is known to the collection stage as the real run's."""
    installed = names(requirement_set("collection", project, settings))
    stubbed = {name.partition(".")[0].lower().replace("_", "-") for name in settings.collection.stub}
    real = merge(*_own_requirements(project), overriding=settings.phases.execution.extra_requirements)
    return tuple(requirement for requirement in real if not names([requirement]) & (installed | stubbed))


def memory_limit(phase: str, settings: Settings) -> str:
    return getattr(settings.phases, phase).memory or DEFAULT_MEMORY[phase]


CENTRAL_CONTEXT_WARNING = "Detected dynamic_context=test_function"  # pytest-cov's, at start-up


def default_command(phase: str, project: Project, settings: Settings) -> list[str]:
    """The image's CMD: what `docker run IMAGE` does without arguments."""
    configured = getattr(settings.phases, phase).command
    if configured:
        return list(configured)
    pytest = ["python", "-m", "pytest", "-p", "no:cacheprovider", *_newer_pytest_tolerated(project)]
    if phase == "collection":
        # collecting only: no assertion rewriting, which costs more than the imports on big suites,
        # and no coverage (an `addopts = --cov` would measure the imports, then fail to write)
        no_coverage = ["--no-cov"] if "pytest-cov" in names(requirement_set(phase, project, settings)) else []
        # nor the JUnit file of an `addopts = --junitxml=junit.xml` (an empty path writes none):
        # arrow's sdist ships its last one, root's, which the image's user cannot overwrite (exit
        # 1 after collecting every test)
        no_junit = ["--junitxml="] if project.pytest_writes_junit else []
        return [*pytest, "--collect-only", "-q", "--assert=plain", *no_coverage, *no_junit]
    if phase == "execution":
        # coverage costs a third to twice the suite's time: measured when the project measures it
        # (or the setting says so), the XML report in the results (an `addopts = --cov
        # --cov-report=xml` would write it into the read-only /app)
        wanted = settings.phases.execution.coverage
        measured = project.measures_coverage if wanted is None else wanted
        # what to measure: the project's coverage configuration where it says (a source given
        # here would override it), else its packages
        sources = ["--cov"] if project.coverage_selects_files else [
            f"--cov={package}" for package in project.packages]
        # a coverage configuration's `fail_under` fails only the runs whose pytest options ask
        # for coverage, as plain `pytest` does: platformdirs's 76% is its CI's, combined over
        # Windows, macOS and Linux, and one Linux run measured 71%
        keep_threshold = project.pytest_measures_coverage or wanted
        threshold = [] if keep_threshold else ["--cov-fail-under=0"]
        coverage = [*sources, "--cov-report=xml:test-results/coverage.xml", *threshold] if measured else []
        # workers from the memory budget, tests handed out so that they stay inside it; in one
        # process where the project's coverage records a context per test function, which
        # pytest-cov refuses to combine with xdist (per-test memory is measured all the same)
        in_one_process = bool(coverage) and project.coverage_contexts_per_test
        workers = [] if in_one_process else ["-n", "auto", "--dist", "memory"]
        # and pytest-cov warns at start-up that such a context is better asked of it, which a
        # project's `filterwarnings = error` turns into a failed start (fastapi measures with
        # `coverage run`, not pytest-cov): pytest-cov is testdock's choice, its advice is not
        # the project's to fail on
        quiet = ["-W", f"ignore:{CENTRAL_CONTEXT_WARNING}:Warning"] if in_one_process else []
        # a hung test ends after 10 minutes, unless the project chose its own timeout
        timeout = [] if project.pytest_timeout else ["--timeout=600"]
        return [*pytest, *workers, *quiet, "--junitxml=test-results/junit.xml", *timeout, *coverage]
    if phase == "stress":
        return [*pytest, "--junitxml=test-results/stress-junit.xml",
                "--html=test-results/stress-report.html", "--self-contained-html"]
    if project.app is None:
        return [*pytest, "--junitxml=test-results/backend-junit.xml"]
    interface = settings.backend.interface if settings.backend.app else project.app.interface
    factory = settings.backend.factory if settings.backend.app else project.app.factory
    return uvicorn_command(project.app.target, interface, settings, factory)


# pytest's own deprecations (PytestRemovedIn10Warning...): what a pytest newer than the suite
# deprecates in how the suite uses pytest
PYTEST_DEPRECATIONS_IGNORED = "ignore::pytest.PytestDeprecationWarning"


def _newer_pytest_tolerated(project: Project) -> list[str]:
    """Where the project's settings make warnings errors, pytest's own deprecation warnings are
    not: the images install a pytest that may be newer than the suite, and a deprecation of how
    the suite uses pytest (scrapy 2.19's session-scoped fixtures defined as methods, which pytest
    9.2 deprecates) is not a failure of the project's code. A command-line filter takes
    precedence over the settings' ones."""
    return ["-W", PYTEST_DEPRECATIONS_IGNORED] if project.warnings_fail else []


def uvicorn_command(target: str, interface: str, settings: Settings, factory: bool = False) -> list[str]:
    """uvicorn for a memory-limited container: few workers, bounded concurrency and keep-alive,
    no access log; uvloop and httptools are used when installed (uvicorn's "auto")."""
    backend = settings.backend
    command = ["python", "-m", "uvicorn", target, "--workers", str(backend.workers),
               "--limit-concurrency", str(backend.limit_concurrency),
               "--timeout-keep-alive", str(backend.keep_alive)]
    if not backend.access_log:
        command.append("--no-access-log")
    if interface == "wsgi":
        command += ["--interface", "wsgi"]
    if factory:
        command.append("--factory")
    return command
