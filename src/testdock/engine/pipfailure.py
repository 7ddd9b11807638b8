"""Which requirement a failed `pip install` in an image build was on. pip names it at the top
level only when it builds wheels; a failure preparing an sdist's metadata or installing its build
dependencies ends in `error: subprocess-exited-with-error`, hundreds of lines after the
`Collecting` line that names the culprit."""

from __future__ import annotations

import re

_BUILD_OUTPUT = re.compile(r"^#(\d+) \d+(?:\.\d+)? (.*)$")  # BuildKit's "#10 29.23 " prefix
_SOURCE_ARCHIVE = re.compile(r"\.(?:tar\.gz|tar\.bz2|tgz|zip)\b")
_UNNAMED_FAILURES = ("error: subprocess-exited-with-error", "error: metadata-generation-failed")
# pip has moved past what it was collecting: the project itself, or the install
_PAST_COLLECTING = ("Processing ", "Obtaining ", "Successfully installed", "Installing collected packages",
                    "Building wheels for", "Requirement already satisfied")


# what a build from source says it lacked, and what to name in build_packages for it
_LACKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"No such file or directory: '(?:[\w-]+-)?(gcc|g\+\+|cc|c\+\+)'"
                r"|command '(?:[\w/-]+/)?(gcc|g\+\+|cc|c\+\+)' failed|unable to execute '(gcc|cc)'"),
     "a C/C++ compiler: name gcc, g++ and libc6-dev in [tool.testdock] build_packages"),
    (re.compile(r"fatal error: ([\w./+-]+\.h): No such file or directory"),
     "the C header {0}: name the Debian package that has it (usually lib<name>-dev) in "
     "[tool.testdock] build_packages"),
    (re.compile(r"[Mm]ake sure the ([\w+.-]+(?:(?:,| and| or) [\w+.-]+)*) development packages "
                r"are installed"),
     "the development packages of {0}: name them in [tool.testdock] build_packages (Debian calls "
     "them lib<name>-dev: libxml2-dev, libxslt1-dev...)"),
    (re.compile(r"Package '?([\w+.-]+)'?,? (?:required by '[^']*', )?(?:was )?not found"
                r"(?: in the pkg-config search path)?"),
     "the development files of {0} (pkg-config): name the Debian package that has them (usually "
     "lib<name>-dev) in [tool.testdock] build_packages"),
    # meson's (meson-python builds: shapely's GEOS)
    (re.compile(r"Dependency lookup for ([\w+.-]+) with method '[\w-]+' failed"
                r"|Dependency \"?([\w+.-]+)\"? not found|Run-time dependency ([\w+.-]+) found: NO"),
     "the development files of {0} (meson finds them with pkg-config): name the Debian package that has "
     "them (usually lib<name>-dev: libgeos-dev...) in [tool.testdock] build_packages, and its library in "
     "system_packages"),
    (re.compile(r"The headers or library files could not be found for ([\w+.-]+)"),
     "the headers and library of {0}: name the Debian package that has them (usually lib<name>-dev: "
     "libjpeg-dev, zlib1g-dev...) in [tool.testdock] build_packages, and the library in system_packages"),
    (re.compile(r"Cannot find command 'git'|No such file or directory: 'git'"),
     "git, to clone a requirement given as a git URL: testdock installs it in the build stage "
     "where the project's requirements name one; name git in [tool.testdock] build_packages where "
     "the URL comes from elsewhere"),
    (re.compile(r"pg_config executable not found|pg_config is required"),
     "PostgreSQL's pg_config: name libpq-dev in [tool.testdock] build_packages (libpq5 in system_packages)"),
    # maturin without a toolchain downloads one, which a build without internet cannot (pendulum)
    (re.compile(r"can't find Rust compiler|cargo:? not found|Cargo, the Rust package manager, is not"
                r"|Rust not found, installing into a temporary directory"),
     "a Rust toolchain: allow a version with a wheel for this Python and platform, or use a base "
     "image that has one (Debian's rustc is often older than what the build needs)"),
)


# the project itself failing to build: uv names it (`Failed to build `x @ file:///tmp/project``),
# pip says it was processing it
_PROJECT_BUILD_FAILED = re.compile(r"Failed to build `[\w.-]+ @ file:///(?:tmp/project|app)`")
_PROJECT_PROCESSING = ("Processing /tmp/project", "Obtaining file:///app", "Processing /app")
# the last exception a build backend raised: `flit_core.config.ConfigError: The [tool.flit...`
_RAISED = re.compile(r"^\s*((?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception)): (.+)$")
# a requirement that excludes the image's Python: uv's resolver ("Because the current Python
# version (3.11.2) does not satisfy Python>=3.12 and networkx==3.7 depends on ...") and pip's
_UV_PYTHON = re.compile(r"the current Python version \(([\d.]+)\) does not satisfy")
_UV_DEPENDS = re.compile(r"\b([A-Za-z0-9][\w.-]*)==[\w.+!-]+ depends on")
_PIP_PYTHON = re.compile(r"Package '([\w.-]+)' requires a different Python: ([\d.]+) not in '([^']+)'")


class PipWatch:
    """Fed a build's output line by line; remembers what pip was collecting, in each build step,
    when it failed."""

    def __init__(self) -> None:
        self._collecting: dict[str, tuple[str, bool]] = {}  # step -> (requirement, from source)
        self.failed: tuple[str, bool] | None = None  # (requirement, built from source)
        self.conflict: list[str] = []  # pip's "The conflict is caused by:" lines
        self._reading_conflict = False
        self.not_found: str | None = None  # a requirement no distribution on the index matches
        self.lacking: str | None = None  # what a build from source said it lacked
        self._project_steps: set[str] = set()  # steps that build the project itself (pip)
        self.project_failed = False
        self.raised: str | None = None  # the last exception a build backend raised
        self.python: str | None = None  # the image's Python, where a requirement excludes it
        self.python_excluded_by: str | None = None  # the distribution that does

    def feed(self, text: str) -> None:
        match = _BUILD_OUTPUT.match(text)
        step, body = (match.group(1), match.group(2)) if match else ("", text)
        if self.lacking is None:
            for pattern, lacks in _LACKS:
                if found := pattern.search(body):
                    self.lacking = lacks.format(next((group for group in found.groups() if group), ""))
                    break
        self._read_python_mismatch(body)
        if raised := _RAISED.match(body):
            self.raised = f"{raised.group(1)}: {raised.group(2).strip()}"
        if _PROJECT_BUILD_FAILED.search(body) or (
                step in self._project_steps and body.startswith(_UNNAMED_FAILURES)):
            self.project_failed = True
        if body.startswith(_PROJECT_PROCESSING):
            self._project_steps.add(step)
        if self._reading_conflict:
            if body.startswith("    ") and len(self.conflict) < 4:
                self.conflict.append(body.strip())
                return
            self._reading_conflict = bool(body.strip() == "" and not self.conflict)
        if body.startswith("The conflict is caused by:") and not self.conflict:
            self._reading_conflict = True
        elif body.startswith("ERROR: No matching distribution found for ") and self.not_found is None:
            self.not_found = body.removeprefix("ERROR: No matching distribution found for ").strip()
        elif body.startswith("Collecting "):
            self._collecting[step] = (body.split()[1], False)
        elif body.startswith(_PAST_COLLECTING):
            self._collecting.pop(step, None)
        elif body.startswith(("  Downloading ", "  Using cached ")) and step in self._collecting:
            self._collecting[step] = (self._collecting[step][0], bool(_SOURCE_ARCHIVE.search(body)))
        elif body.startswith(_UNNAMED_FAILURES) and step in self._collecting and self.failed is None:
            self.failed = self._collecting[step]

    def _read_python_mismatch(self, body: str) -> None:
        if found := _PIP_PYTHON.search(body):
            self.python_excluded_by = f"{found.group(1)} (requires-python {found.group(3)})"
            self.python = found.group(2)
        elif found := _UV_PYTHON.search(body):
            self.python = found.group(1)
        if self.python and self.python_excluded_by is None and (depends := _UV_DEPENDS.search(body)):
            self.python_excluded_by = depends.group(1)

    def explanation(self) -> str | None:
        """One line naming the requirement pip failed on, and what to do; None if not known."""
        if self.python is not None:
            by = self.python_excluded_by or "a requirement"
            return (f"{by} does not support the base image's Python {self.python}: set "
                    "[tool.testdock] base_image to an image with a Python it allows")
        pinned = ("; the pin comes from docker/constraints.txt (the project's lock file or -c files): "
                  "a version this index does not have (not yet, or no longer: a release its project "
                  "withdrew); update the lock file, or install from an index that has it")
        if self.conflict:
            from_lock = any("(constraint)" in line for line in self.conflict)
            return ("pip could not resolve the requirement set: " + "; ".join(self.conflict)
                    + (pinned if from_lock else ""))
        if self.not_found is not None:
            return f"pip found no distribution for {self.not_found} on the index"
        lacking = f"; the build lacked {self.lacking}" if self.lacking else ""
        if self.failed is None:
            # the project's own build (its extension modules), or a step pip does not name
            if self.lacking:
                return f"a build from source failed: it lacked {self.lacking}"
            if self.project_failed and self.raised:
                return (f"the project itself failed to build: {self.raised} (its build backend's "
                        "error: check its [build-system] requires; one without an upper bound may "
                        "have moved on since the project was written)")
            return None
        requirement, from_source = self.failed
        if from_source:
            return (f"pip failed on {requirement}, built from source (no wheel of it for this Python): "
                    "allow a version that has one, or name what it needs to compile in "
                    f"[tool.testdock] build_packages{lacking}")
        return f"pip failed on {requirement}{lacking}"
