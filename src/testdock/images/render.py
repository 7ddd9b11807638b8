"""Render the files `testdock init` writes: Dockerfiles, requirement sets, the health check."""

from __future__ import annotations

import functools
import json
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from testdock import __version__
from testdock.images.phases import (
    LIGHT_CANDIDATES_PATH,
    SPECS,
    USER_ID,
    USER_NAME,
    default_command,
    light_candidates,
    project_pins,
    requirement_set,
)
from testdock.images.pluginwheel import WHEEL_FOLDER, WHEEL_GLOB
from testdock.images.tools import (
    EXECUTION_TOOLS,
    UV,
    pin_within_tools,
)
from testdock.project.dependencytests import compiles_code, packages_to_keep
from testdock.project.inspection import Project
from testdock.project.modulenames import exact_versions, import_names
from testdock.project.settings import PHASES, Settings
from testdock.project.version import PLACEHOLDER as SCM_PLACEHOLDER
from testdock_pytest.contract import LABEL_MANAGED, LABEL_PHASE, LABEL_PROJECT, LABEL_VERSION, RESULTS_DIR_ENV
from testdock_pytest.sizes import parse_size

HEALTHCHECK_PATH = "docker/healthcheck.py"
BAKE_PATH = "docker/docker-bake.hcl"

if TYPE_CHECKING:
    import jinja2


@functools.cache  # made at the first rendering: a run of an image already built renders nothing
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("testdock.images", "templates"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # Dockerfiles, not HTML; every interpolated value is validated upstream
    )


def app_path(relative: str) -> str:
    """Where a project-relative path lives in the images: "src" -> "/app/src", "." -> "/app"."""
    return f"/app/{relative.strip('/')}".rstrip("/.") or "/app"


def app_pythonpath(project: Project) -> str:
    """The project's source roots inside the images, as PYTHONPATH."""
    return ":".join(app_path(root) for root in project.source_roots)


def base_image(project: Project, settings: Settings) -> str:
    return settings.base_image or f"python:{project.python_version}-slim"


def image_prefix(project: Project, settings: Settings) -> str:
    return settings.project or project.image_name


def _context(phase: str, project: Project, settings: Settings, locked: list[str],
             kept: list[str]) -> dict[str, Any]:
    spec = SPECS[phase]
    prefix = image_prefix(project, settings)
    packages = build_packages(project, settings)
    return {
        "version": __version__,
        "phase": phase,
        "purpose": spec.purpose,
        "base_image": base_image(project, settings),
        "image_prefix": prefix,
        "execution_image": f"{prefix}-execution:latest",
        "requirements_path": spec.requirements_path,
        "execution_requirements_path": SPECS["execution"].requirements_path,
        "installable": project.installable,
        "local_packages": list(project.local_packages),
        "pythonpath": app_pythonpath(project),
        "compile_paths": _compile_paths(project),
        "rewrite_paths": _rewrite_paths(project),
        "package_dirs": _package_dirs(project) if re.fullmatch(r"[\w.-]+", project.name) else [],
        "distribution": project.name,
        "scm_placeholder": SCM_PLACEHOLDER,
        "stub_modules": ",".join(settings.collection.stub),
        "light_candidates_path": LIGHT_CANDIDATES_PATH,
        # bytecode loads several times faster than source compiles
        "collection_compile_paths": _compile_paths(project, source=True),
        "plugin_wheel_glob": f"{WHEEL_FOLDER}/{WHEEL_GLOB}",
        "testdock_files": [f"/app/{path}" for path in testdock_files()],
        "results_dir_env": RESULTS_DIR_ENV,
        "label_keys": {"managed": LABEL_MANAGED, "project": LABEL_PROJECT, "phase": LABEL_PHASE,
                   "version": LABEL_VERSION},
        "light_budget": parse_size(settings.collection.light_budget),
        "provided_modules_path": "/opt/venv/testdock-provided-modules.txt",
        "installer": settings.build.installer,
        "uv_requirement": UV,
        "prune": settings.build.prune,
        "distroless": settings.build.distroless,
        "prune_keep": ",".join(kept),
        "prune_keep_sources": compiles_code([*project.dependencies, *project.test_dependencies]),
        # the real run has these; others, imported under try/except ImportError, stay missing
        # (the execution image's own tools too, and what they bring: pytest-cov's coverage,
        # pytest-xdist's execnet, psutil)
        # the versions stand-ins report where the project pins one exactly: pydantic checks that
        # pydantic-core is the very version it requires, and refused the stand-in's 99.0.0
        "stub_versions": ",".join(f"{name}={version}" for name, version in exact_versions(
            [*project.dependencies, *project.test_dependencies, *locked]).items()),
        "stub_dependencies": ",".join(import_names([*project.dependencies, *project.test_dependencies,
                                                    *locked, *EXECUTION_TOOLS, "coverage", "execnet",
                                                    *settings.phases.execution.extra_requirements])),
        # the programs its tests run, where tests run (not in the collection image)
        "system_packages": " ".join(dict.fromkeys([
            *settings.system_packages, *(project.program_packages if phase != "collection" else ())])),
        "build_packages": " ".join(packages),
        # the project's own wheel is built where the compilers are, and only the wheel goes on
        "project_wheel": builds_project_wheel(project, settings),
        "python_headers": project.builds_extensions,
        "command": json.dumps(default_command(phase, project, settings)),
        "user_id": USER_ID,
        "user_name": USER_NAME,
        "has_app": project.app is not None,
        "port": settings.backend.port,
        "host": settings.backend.host,
        "health_path": settings.backend.health_path,
        "health_max_memory": settings.backend.health_max_memory,
    }


# what compiling a C, C++ or Cython extension takes on Debian, where the project says nothing
# pkg-config: how meson (meson-python) and setup scripts find the libraries to link (shapely: GEOS)
COMPILERS = ("gcc", "g++", "libc6-dev", "pkg-config")


def builds_project_wheel(project: Project, settings: Settings) -> bool:
    """Whether the images get the project as a wheel built where the build packages are (its
    extension modules compiled there): the same stage in every image's Dockerfile."""
    return project.installable and bool(build_packages(project, settings))


def build_packages(project: Project, settings: Settings) -> list[str]:
    """The Debian packages the dependency stages install: the compilers where the project builds
    extension modules of its own, git where a requirement is a git URL (pydantic's test group:
    `pydantic-extra-types @ git+https://...`), and the user's (the headers of the libraries it
    links)."""
    compilers = COMPILERS if project.builds_extensions else ()
    requirements = [*project.dependencies, *project.test_dependencies,
                    *(requirement for phase in ("collection", "execution", "backend")
                      for requirement in getattr(settings.phases, phase).extra_requirements)]
    git = ("git",) if any("git+" in requirement for requirement in requirements) else ()
    return list(dict.fromkeys([*compilers, *git, *settings.build_packages]))


def _package_dirs(project: Project) -> list[str]:
    """The project's package folders relative to its root (src/metpy): the images fill the
    installed copies in with the data files a build left out."""
    found = [str(PurePosixPath(root) / package) for root in project.source_roots
             for package in project.packages if (project.root / root / package).is_dir()]
    return [folder for folder in found if re.fullmatch(r"[\w./-]+", folder)]


def _rewrite_paths(project: Project) -> str:
    """Where pytest finds the tests whose asserts it rewrites: the test paths (all of /app when
    they are not known)."""
    folders = sorted({app_path(path) for path in project.test_paths if (project.root / path).exists()})
    if not folders or "/app" in folders or not all(re.fullmatch(r"[\w./-]+", folder) for folder in folders):
        return ""  # all of /app: a path the shell would split is never written into a RUN
    return " ".join(folders)


def _compile_paths(project: Project, source: bool = False) -> str:
    """What an image precompiles: the tests (the installed project was compiled by pip), and the
    source too when the project runs from /app (or `source`: the collection image's editable one)."""
    paths = [*project.test_paths, *(project.source_roots if source or not project.installable else [])]
    existing = [path for path in paths if (project.root / path).exists()]
    folders = sorted({app_path(path) for path in existing})
    return " ".join(folders) or "/app"


def _requirements_text(phase: str, project: Project, settings: Settings) -> str:
    lines = [
        f"# The {phase} image's requirement set (docker/{SPECS[phase].dockerfile}).",
        "# Derived from the project's dependencies; add packages through",
        f"# [tool.testdock.phases.{phase}] extra_requirements rather than here.",
        *requirement_set(phase, project, settings),
    ]
    return "\n".join(lines) + "\n"


CONSTRAINTS_PATH = "docker/constraints.txt"


def _constraints_text(pins: list[str], source: str) -> str:
    # the images' tools stay within their own requirements, and what they depend on free; `-c URL`
    # lines are passed on for pip to read
    kept = [pin for pin in pins if pin.startswith("-c ") or pin_within_tools(pin)]
    header = (f"# Versions the images install within, from {source} (testdock init rewrites this file)."
              if source else "# The project pins no versions (no lock file, no -c constraints file).")
    return "\n".join([header, *kept]) + "\n"


def testdock_files() -> list[str]:
    """The files testdock writes into the project's tree for its builds (docker/), as paths
    relative to the project root; the plugin's wheel as a glob."""
    return [*(path for spec in SPECS.values() for path in (spec.dockerfile_path, spec.requirements_path)),
            CONSTRAINTS_PATH, LIGHT_CANDIDATES_PATH, HEALTHCHECK_PATH, BAKE_PATH,
            f"{WHEEL_FOLDER}/{WHEEL_GLOB}"]


def render_files(project: Project, settings: Settings) -> dict[str, str]:
    """Every generated file, by its path relative to the project root (not yet stamped)."""
    files: dict[str, str] = {}
    pins, source = project_pins(project)
    # a locked package is in the real run even when no dependency names it
    locked = [pin for pin in pins if not pin.startswith("-c ")]
    # packages whose test suites the project's code uses: the images keep them whole
    kept = sorted({*settings.build.keep_packages,
                   *packages_to_keep(project.root, project.test_paths, project.packages)})
    for phase in PHASES:
        spec = SPECS[phase]
        template = _environment().get_template(f"{spec.dockerfile}.j2")
        files[spec.dockerfile_path] = _tidy(template.render(_context(phase, project, settings, locked, kept)))
        files[spec.requirements_path] = _requirements_text(phase, project, settings)
    files[CONSTRAINTS_PATH] = _constraints_text(pins, source)
    files[LIGHT_CANDIDATES_PATH] = "\n".join([
        "# Dependencies the collection image installs for real when they and everything they need",
        "# are small wheels within [tool.testdock.collection] light_budget; the rest is stubbed.",
        *light_candidates(project, settings)]) + "\n"
    files[HEALTHCHECK_PATH] = _environment().get_template("healthcheck.py.j2").render()
    files[BAKE_PATH] = _environment().get_template("docker-bake.hcl.j2").render(
        base_image=base_image(project, settings), image_prefix=image_prefix(project, settings),
        scm_placeholder=SCM_PLACEHOLDER,
        dockerfiles=[(phase, SPECS[phase].dockerfile_path) for phase in PHASES])
    return files


def _tidy(text: str) -> str:
    """No runs of blank lines, no leading blank lines, one trailing newline."""
    lines: list[str] = []
    for line in text.splitlines():
        if not line.strip() and (not lines or not lines[-1].strip()):
            continue
        lines.append(line.rstrip())
    return "\n".join(lines).rstrip("\n") + "\n"
