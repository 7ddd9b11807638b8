"""Naming the requirement a failed pip install in a build was on."""

from __future__ import annotations

from testdock.engine.pipfailure import PipWatch

# what BuildKit shows of a pip install failing on an old pandas, which has no wheel for this Python
SDIST_FAILURE = """\
#10 0.783 Collecting matplotlib!=3.0.0,>=2.0.2
#10 0.813   Downloading matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.whl (9.9 MB)
#10 3.547 Collecting coverage==5.5
#10 3.630   Downloading coverage-5.5.tar.gz (691 kB)
#10 6.075   Preparing metadata (pyproject.toml): finished with status 'done'
#10 6.580 Collecting pandas==1.3.0
#10 6.698   Downloading pandas-1.3.0.tar.gz (4.7 MB)
#10 7.304   Installing build dependencies: started
#10 29.23       Collecting numpy==1.19.3
#10 29.23         Downloading numpy-1.19.3.zip (7.3 MB)
#10 29.23         error: subprocess-exited-with-error
#10 29.16   Installing build dependencies: finished with status 'error'
#10 29.23 error: subprocess-exited-with-error
#10 29.23 \u00d7 pip subprocess to install build dependencies did not run successfully.
"""


def feed(text: str) -> PipWatch:
    watch = PipWatch()
    for line in text.splitlines():
        watch.feed(line)
    return watch


def test_the_top_level_requirement_built_from_source_is_named() -> None:
    watch = feed(SDIST_FAILURE)

    assert watch.failed == ("pandas==1.3.0", True)
    assert watch.explanation() == (
        "pip failed on pandas==1.3.0, built from source (no wheel of it for this Python): allow a "
        "version that has one, or name what it needs to compile in [tool.testdock] build_packages")


def test_a_wheel_that_fails_is_named_without_the_source_advice() -> None:
    watch = feed("#7 1.0 Collecting broken==1\n#7 1.1   Using cached broken-1-py3-none-any.whl\n"
                 "#7 2.0 error: metadata-generation-failed\n")

    assert watch.explanation() == "pip failed on broken==1"


def test_failures_pip_names_itself_or_unrelated_output_explain_nothing() -> None:
    named = feed("#7 1.0 Collecting ok==1\n#7 2.0 ERROR: Could not find a version that satisfies "
                 "the requirement nosuch==9\n")
    unrelated = feed("#5 0.1 error: subprocess-exited-with-error\n")  # before any Collecting

    assert named.explanation() is None and unrelated.explanation() is None


def test_the_projects_own_install_or_another_step_is_not_blamed_on_an_earlier_requirement() -> None:
    own_project = feed("#9 1.0 Collecting zipp>=3.1\n#9 1.1   Downloading zipp-3.2.tar.gz\n"
                       "#9 5.0 Successfully installed zipp-3.2\n#12 0.5 Processing /tmp/project\n"
                       "#12 0.9 error: metadata-generation-failed\n")
    other_step = feed("#9 1.0 Collecting zipp>=3.1\n#12 0.9 error: subprocess-exited-with-error\n")

    assert own_project.explanation() is None and other_step.explanation() is None


# a lock file pins certifi at a version the index in use does not have (yet)
CONFLICT = "\n".join([
    "#10 2.617 INFO: pip is looking at multiple versions of pyyaml to determine which version is compatible.",
    "#10 2.621 ERROR: Cannot install -r /tmp/requirements.txt (line 12) because these package versions "
    "have conflicting dependencies.",
    "#10 2.621 ",
    "#10 2.621 The conflict is caused by:",
    "#10 2.621     httpx 0.28.1 depends on certifi",
    "#10 2.621     The user requested (constraint) certifi==2026.10.19",
    "#10 2.621 ",
    "#10 2.621 To fix this you could try to:",
    "#10 2.621 1. loosen the range of package versions you've specified",
])


def test_a_resolution_conflict_is_explained_with_pips_own_cause_and_where_the_pin_comes_from() -> None:
    explanation = feed(CONFLICT).explanation()
    assert explanation is not None
    assert explanation.startswith("pip could not resolve the requirement set: httpx 0.28.1 depends on "
                                  "certifi; The user requested (constraint) certifi==2026.10.19; the pin "
                                  "comes from docker/constraints.txt")


def test_a_requirement_the_index_has_no_version_of_is_named() -> None:
    watch = feed("#9 1.2 ERROR: Could not find a version that satisfies the requirement nosuch==9\n"
                 "#9 1.2 ERROR: No matching distribution found for nosuch==9\n")
    assert watch.explanation() == "pip found no distribution for nosuch==9 on the index"


def test_a_library_meson_could_not_find_is_named_with_what_to_install() -> None:
    # shapely 2.2: its meson build looks GEOS up through pkg-config
    watch = feed("#17 8.6 Processing /tmp/project\n"
                 "#17 8.6       Run-time dependency geos found: NO (tried pkgconfig)\n"
                 "#17 8.6       ../meson.build:98:13: ERROR: Dependency lookup for geos with method "
                 "'pkg-config' failed: Pkg-config for machine host machine not found. Giving up.\n"
                 "#17 8.6 error: metadata-generation-failed\n")
    assert (watch.explanation() or "").startswith(
        "a build from source failed: it lacked the development files of geos (meson finds them with "
        "pkg-config): name the Debian package that has them (usually lib<name>-dev: libgeos-dev...)")


def test_what_a_build_from_source_lacked_is_said_with_what_to_install() -> None:
    # msgpack's own build in an image without a compiler: no requirement to name, the project's
    compiler = feed("#16 0.5 Processing /tmp/project\n#16 2.9   error: [Errno 2] No such file or "
                    "directory: 'x86_64-linux-gnu-gcc'\n#16 2.9 error: subprocess-exited-with-error\n")
    assert compiler.explanation() == ("a build from source failed: it lacked a C/C++ compiler: name gcc, "
                                      "g++ and libc6-dev in [tool.testdock] build_packages")
    header = feed(SDIST_FAILURE.replace("#10 29.23 error: subprocess", "#10 29.2 src/lxml/etree.c:96:10: "
                                        "fatal error: libxml/xmlversion.h: No such file or directory\n"
                                        "#10 29.23 error: subprocess"))
    assert (header.explanation() or "").endswith(
        "; the build lacked the C header libxml/xmlversion.h: name the Debian package that has it "
        "(usually lib<name>-dev) in [tool.testdock] build_packages")
    rust = feed("#9 3.0   error: can't find Rust compiler\n")
    assert "a Rust toolchain" in (rust.explanation() or "")
    # pendulum: maturin goes to download one, and the build's error is the download's
    maturin = feed("#16 1.4 error: Failed to build `pendulum @ file:///tmp/project`\n"
                   "#16 1.4          Rust not found, installing into a temporary directory\n"
                   "#16 2.2 httpx.ConnectError: [Errno -2] Name or service not known\n")
    assert (maturin.explanation() or "").startswith("a build from source failed: it lacked a Rust toolchain")
    assert "pg_config" in (feed("#9 1.0 Error: pg_config executable not found.\n").explanation() or "")


def test_development_packages_a_build_asks_for_are_named() -> None:
    # lxml's own build (setup.py's pre-flight check) and a meson/pkg-config one
    lxml = feed("#16 4.3 Processing /tmp/project\n#16 4.3       Error: Please make sure the libxml2 and "
                "libxslt development packages are installed.\n#16 4.3 error: subprocess-exited-with-error\n")
    assert lxml.explanation() == (
        "a build from source failed: it lacked the development packages of libxml2 and libxslt: name them "
        "in [tool.testdock] build_packages (Debian calls them lib<name>-dev: libxml2-dev, libxslt1-dev...)")
    pkgconfig = feed("#16 2.0   Package 'cairo', required by 'virtual:world', not found\n")
    assert (pkgconfig.explanation() or "").startswith(
        "a build from source failed: it lacked the development files of cairo (pkg-config)")
    assert "lib<name>-dev" in (pkgconfig.explanation() or "")
    meson = feed("#16 2.0   Package libffi was not found in the pkg-config search path.\n")
    assert "the development files of libffi" in (meson.explanation() or "")


def test_a_git_url_without_git_says_so() -> None:
    watch = feed("#9 16.44 Collecting pydantic-extra-types@ git+https://github.com/pydantic/x.git@main\n"
                 "#9 16.44 ERROR: Cannot find command 'git' - do you have 'git' installed and in your "
                 "PATH?\n")
    assert "git, to clone a requirement given as a git URL" in (watch.explanation() or "")


def test_the_projects_own_build_failing_says_what_its_backend_raised() -> None:
    """cloudpickle 3.1.0 requires flit_core unpinned; flit_core 4 refuses its [tool.flit.metadata]:
    uv's error names the project and the backend's exception says why."""
    uv = feed("#17 0.477 error: Failed to build `cloudpickle @ file:///tmp/project`\n"
              "#17 0.478   cause: The build backend returned an error\n"
              "#17 0.478            File \"/root/.cache/uv/x/flit_core/config.py\", line 91, in prep\n"
              "#17 0.478          flit_core.config.ConfigError: The [tool.flit.metadata] table is no "
              "longer supported. Switch to the standard [project] table or require flit_core<4\n")
    explained = uv.explanation()
    assert explained is not None and explained.startswith(
        "the project itself failed to build: flit_core.config.ConfigError: The [tool.flit.metadata] table")
    assert "[build-system] requires" in explained
    pip = feed("#12 0.5 Processing /tmp/project\n#12 0.8 ModuleNotFoundError: No module named 'numpy'\n"
               "#12 0.9 error: metadata-generation-failed\n")
    assert pip.explanation() == ("the project itself failed to build: ModuleNotFoundError: No module "
                                 "named 'numpy' (its build backend's error: check its [build-system] "
                                 "requires; one without an upper bound may have moved on since the "
                                 "project was written)")


def test_a_library_pillows_build_could_not_find_is_named() -> None:
    watch = feed("#17 2.571       The headers or library files could not be found for jpeg,\n"
                 "#17 2.571       a required dependency when compiling Pillow from source.\n")
    assert watch.explanation() == (
        "a build from source failed: it lacked the headers and library of jpeg: name the Debian "
        "package that has them (usually lib<name>-dev: libjpeg-dev, zlib1g-dev...) in "
        "[tool.testdock] build_packages, and the library in system_packages")


# uv resolving a project whose requires-python excludes the base image's Python (networkx 3.7)
UV_PYTHON_EXCLUDED = """\
#16 1.067 Using Python 3.11.2 environment at: /opt/venv
#16 1.905 error: No solution found when resolving dependencies
#16 1.906   cause: Because the current Python version (3.11.2) does not satisfy all of:
#16 1.906              Python>=3.12,<3.14.1
#16 1.906              Python>3.14.1
#16 1.906          and networkx==3.7 depends on one of:
#16 1.906              Python>=3.12,<3.14.1
#16 1.907          we can conclude that networkx==3.7 cannot be used.
"""


def test_a_requirement_excluding_the_images_python_is_named_with_the_setting_that_changes_it() -> None:
    assert feed(UV_PYTHON_EXCLUDED).explanation() == (
        "networkx does not support the base image's Python 3.11.2: set [tool.testdock] base_image "
        "to an image with a Python it allows")
    pip = feed("#9 2.1 ERROR: Package 'networkx' requires a different Python: 3.11.2 not in '>=3.12'")
    assert pip.explanation() == (
        "networkx (requires-python >=3.12) does not support the base image's Python 3.11.2: set "
        "[tool.testdock] base_image to an image with a Python it allows")
    assert feed(SDIST_FAILURE).python is None
