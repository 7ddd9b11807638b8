"""The command line: parse, call one function of the core, print. Nothing else lives here."""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from testdock import __version__
from testdock.errors import TestdockError
from testdock.project.settings import PHASES

if TYPE_CHECKING:
    from testdock.workspace import Workspace

PATH_ARGUMENT = click.argument(
    "path", type=click.Path(path_type=Path), default=Path(), required=False)


class _Interrupts:
    """Ctrl-C (or a CI's SIGTERM) stops the command once: the first raises KeyboardInterrupt, and
    the clean-up it starts (containers, builds, partial results) is not itself interrupted by a
    second one, which only says that clean-up is under way."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: object) -> None:
        if self.stopping:
            sys.stderr.write("testdock: stopping; removing what this run started, keeping its results\n")
            return
        self.stopping = True
        raise KeyboardInterrupt


def _exit_interrupted(message: str) -> NoReturn:
    """Exit 130 after Ctrl-C. From here on Ctrl-C is ignored: at the interpreter's exit a Python
    handler gives way to the default action, and a late second Ctrl-C would kill the process."""
    click.echo(message, err=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(130)


class _Group(click.Group):
    """Turns testdock's errors into one line on stderr and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TestdockError as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"testdock: error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            _exit_interrupted("testdock: interrupted")
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit):
            raise
        except Exception as error:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"testdock: internal error: {type(error).__name__}: {error} "
                       "(run with --debug for the traceback, and please report it)", err=True)
            sys.exit(1)


PASSED_TO_PYTEST = "testdock.pytest_args"


class _PytestCommand(click.Command):
    """A command whose arguments after `--` all go to pytest: without this, Click would give the
    first of them (`run execution -- -k users`) to the optional PATH argument."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            args, ctx.meta[PASSED_TO_PYTEST] = args[:cut], tuple(args[cut + 1:])
        return super().parse_args(ctx, args)


def _pytest_arguments(path: Path, pytest_args: tuple[str, ...]) -> tuple[Path, tuple[str, ...]]:
    """PATH and pytest's arguments as the user meant them: those after `--`, and an option that
    landed in PATH (`run execution -k users`) given back to pytest."""
    after_dashes = click.get_current_context().meta.get(PASSED_TO_PYTEST, ())
    if str(path).startswith("-"):
        return Path(), (str(path), *pytest_args, *after_dashes)
    return path, (*pytest_args, *after_dashes)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="testdock")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """testdock: lean, specialized Docker test images for a Python project.

    \b
    Four images, each with one job (the names are the seed's):
      collection  pytest --collect-only, with pytest and the source only
      execution   the test suite, with runtime + test dependencies, xdist, coverage
      stress      the execution image plus profilers, benchmarks, load tools
      backend     the app under uvicorn, with a memory-aware health check

    Start with `testdock init` in your project's folder.
    """
    ctx.obj = {"debug": debug}
    # a CI cancelling a job sends SIGTERM: clean up (builds, containers) as for Ctrl-C
    interrupts = _Interrupts()
    signal.signal(signal.SIGINT, interrupts)
    signal.signal(signal.SIGTERM, interrupts)


@main.command()
@PATH_ARGUMENT
@click.option("--force", is_flag=True,
              help="Overwrite files that testdock did not write or that were edited since.")
@click.option("--diff", "show_diff", is_flag=True,
              help="Print what would change as a unified diff; write nothing.")
@click.option("--base-image", metavar="IMAGE", envvar="TESTDOCK_BASE_IMAGE", show_envvar=True,
              help="Image the test images build FROM (any image with python3); "
                   "default: python:<project's version>-slim. Saved in [tool.testdock].")
@click.option("--app", metavar="MODULE:ATTR",
              help="The ASGI/WSGI app the backend image serves, when detection picks wrong. "
                   "Saved in [tool.testdock.backend].")
def init(path: Path, force: bool, show_diff: bool, base_image: str | None, app: str | None) -> None:
    """Write the four test images' Dockerfiles and requirement sets into PATH (default: .).

    \b
    Writes docker/pytest.{collection,execution,stress}.Dockerfile, docker/backend.test.Dockerfile,
    the requirement set each installs (docker/*_requirements.txt, docker/test_requirements.txt),
    docker/healthcheck.py, testdock's pytest plugin as one wheel (docker/testdock_pytest-*.whl,
    which `testdock build` keeps current), a .dockerignore block and a [tool.testdock] table in
    pyproject.toml.
    Files you edited, or that testdock did not write, are never overwritten without --force.
    """
    from testdock.images import initialize

    options = initialize.InitOptions(force=force, base_image=base_image, app=app)
    project, planned, warnings = initialize.plan(path, options)
    if show_diff:
        click.echo(initialize.diff(planned), nl=False)
        for warning in warnings:
            click.echo(f"testdock: warning: {warning}", err=True)
        return
    written = initialize.apply(path, planned)
    placed = initialize.place_plugin(path)
    labels = {"create": "wrote", "update": "updated", "keep": "kept", "unchanged": "unchanged",
              "remove": "removed"}
    for action, relative in [*((item.action.value, item.path) for item in planned), *placed]:
        click.echo(f"  {labels[action]:<10} {relative}")
    for warning in warnings:
        click.echo(f"testdock: warning: {warning}", err=True)
    app_text = project.app.target if project.app else "none found (backend image runs pytest)"
    from testdock.images.basepython import describe
    from testdock.images.phases import pytest_ceiling

    settings = initialize.planned_settings(path, options)
    python, _ = describe(project, settings)
    click.echo(f"{project.name}: {python}, "
               f"{len(project.dependencies)} runtime + {len(project.test_dependencies)} test "
               f"dependencies, tests in {', '.join(project.test_paths)}, app {app_text}")
    if project.builds_extensions:
        from testdock.images.render import COMPILERS

        click.echo(f"{project.name} compiles extension modules of its own: {', '.join(COMPILERS)} "
                   "where it is built (name the libraries' headers it needs in [tool.testdock] "
                   "build_packages)")
    if project.program_packages:
        click.echo(f"{project.name}'s tests run programs: the images that run them install the Debian "
                   f"package(s) {', '.join(project.program_packages)}")
    ceiling = pytest_ceiling(project)
    if ceiling == "9" and project.py_path_hooks:
        click.echo(f"{project.name}'s {', '.join(project.py_path_hooks)} implement(s) pytest hooks with "
                   "py.path arguments (`path`), which pytest 9 removed: the images install pytest 8")
    if ceiling == "9" and project.marked_fixtures:
        click.echo(f"{project.name}'s {', '.join(project.marked_fixtures)} apply marks to fixtures, which "
                   "pytest 9 refuses (\"Marks cannot be applied to fixtures\"): the images install pytest 8")
    if ceiling == "9.1":
        readers = ", ".join(project.inicfg_readers)
        click.echo(f"{project.name}'s {readers} read(s) config.inicfg, which pytest 9.1 deprecates, and its "
                   "filterwarnings make that warning an error: the images install pytest 9.0")
    if project.warnings_fail:
        click.echo(f"{project.name}'s pytest settings make warnings errors: its tests run with "
                   "`-W ignore::pytest.PytestDeprecationWarning`, so that a pytest newer than the suite "
                   "does not fail it for how it uses pytest")
    changed = len(written) + sum(action != "unchanged" for action, _ in placed)
    click.echo(f"{changed} file(s) written." if changed else "Nothing to change.")


@main.command()
@PATH_ARGUMENT
@click.option("--json", "as_json", is_flag=True, help="Print the description as JSON.")
def inspect(path: Path, as_json: bool) -> None:
    """Show what testdock reads from the project in PATH: dependencies, Python, tests, app."""
    from testdock.workspace import Workspace

    project = Workspace.load(path).project  # as every other command sees it: the configured app too
    description = asdict(project)
    description["root"] = str(project.root)
    if as_json:
        click.echo(json.dumps(description, indent=2))
        return
    description["optional_requirements"] = [f"{requirement} ({where})"
                                            for requirement, where in project.optional_requirements]
    for key, value in description.items():
        if isinstance(value, list | tuple):
            value = ", ".join(str(v) for v in value) or "-"
        elif isinstance(value, dict):
            value = f"{value['module']}:{value['attribute']} ({value['framework']}, {value['interface']})"
        click.echo(f"{key:>18}: {value}")


def _parallel(value: str | None) -> int | Literal["auto"] | None:
    if value is None:
        return None
    if value == "auto":
        return "auto"
    if value.isdigit() and 1 <= int(value) <= 32:
        return int(value)
    raise click.BadParameter(f"{value!r} is neither a number from 1 to 32 nor 'auto'")


@main.command()
@PATH_ARGUMENT
@click.option("--phase", "phases", multiple=True, type=click.Choice(PHASES),
              help="Build only this phase's image; repeat for several. Default: all four.")
@click.option("--parallel", callback=lambda context, option, value: _parallel(value), metavar="N|auto",
              help="Images built at once: a number (1-32), or 'auto': builds start while their "
                   "memory, measured in recent builds, fits what the machine has available (one per "
                   "CPU, at least 3); a build killed for memory is retried alone, once. Default: "
                   "[tool.testdock.build] parallel (auto).")
@click.option("--tag", help="Image tag, given besides 'latest'. Default: the git short commit.")
@click.option("--registry", metavar="HOST[:PORT][/PREFIX]",
              help="Name images <registry>/<project>-<phase>. Default: [tool.testdock.build] registry.")
@click.option("--push", is_flag=True, help="Push every tag of every built image to the registry.")
@click.option("--no-cache", is_flag=True, help="Build every layer afresh.")
@click.option("--pull", is_flag=True, help="Pull a newer base image before building (off: no registry).")
@click.option("--cleanup", is_flag=True,
              help="Afterwards, remove older images of this project made by testdock (by label), "
                   "keeping the newest --keep per phase, and dangling build leftovers.")
@click.option("--keep", type=click.IntRange(0), help="Images per phase --cleanup keeps (default 3).")
@click.option("--test", "health", is_flag=True,
              help="Afterwards, run each image's health test in a memory-limited container.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--bake", is_flag=True,
              help="Build through `docker buildx bake` and docker/docker-bake.hcl (needs buildx).")
@click.option("--cache-from", metavar="TAG",
              help="Seed BuildKit's cache from the registry's images with this tag (pushed by an "
                   "earlier build, e.g. 'latest'); needs --registry.")
@click.option("--log", "log_path", type=click.Path(path_type=Path),
              help="Build log, relative to PATH. Default: logs/build_test_images.log.")
@click.option("--platform", "platform_text", metavar="OS/ARCH[,OS/ARCH...]",
              help="Build every image for each platform, one after the other (linux/amd64,linux/arm64); "
                   "each platform's images are tagged TAG-ARCH, the engine's own keeps the plain tags "
                   "too; with --push the plain tags become multi-platform images (manifest lists). "
                   "Another architecture builds under emulation (QEMU, binfmt_misc), several times "
                   "slower. Default: [tool.testdock.build] platforms, else the engine's.")
def build(path: Path, phases: tuple[str, ...], parallel: int | Literal["auto"] | None, tag: str | None,
          registry: str | None, push: bool, no_cache: bool, pull: bool, cleanup: bool,
          keep: int | None, health: bool, as_json: bool, bake: bool, cache_from: str | None,
          log_path: Path | None, platform_text: str | None) -> None:
    """Build the test images of the project in PATH with BuildKit, in dependency order.

    The stress image is built FROM the execution image, so it waits for it; the others start at
    once. A failing image does not stop the others; the command then exits 1. Ctrl-C stops
    every build and leaves no half-tagged image. Each build's full output goes to the log.
    """
    from rich.console import Console

    from testdock.engine import buildreport
    from testdock.engine.builds import BuildOptions, PlainListener, build_images
    from testdock.engine.platforms import parse_platforms
    from testdock.workspace import Workspace

    workspace = Workspace.load(path)  # read once for the build, its health tests and cleanup
    options = BuildOptions(phases or PHASES, tag, parallel, no_cache, pull, registry, push, log_path, bake,
                           cache_from, parse_platforms(platform_text) if platform_text is not None else ())
    console = Console(stderr=as_json)
    if not console.is_terminal:
        console = Console(stderr=as_json, width=140)
    try:
        if console.is_terminal and not as_json:
            from testdock.engine.buildprogress import LiveListener

            with LiveListener(list(phases or PHASES), console) as live:
                results = build_images(workspace, options, live)
        else:
            results = build_images(workspace, options, PlainListener(lambda text: click.echo(text, err=True)))
    except KeyboardInterrupt:
        _exit_interrupted("testdock: interrupted; builds stopped, no image half-tagged")
    checks = _health_checks(workspace, results) if health else {}
    built_tags = [tag for result in results for tag in result.tags]
    cleaned = _cleanup(workspace, keep, built_tags) if cleanup else None
    if as_json:
        click.echo(json.dumps(buildreport.as_json(results, checks, cleaned), indent=2))
    else:
        console.print(buildreport.as_table(results, checks))
        for line in buildreport.failures(results, checks):
            console.print(line, markup=False, highlight=False)
        if cleaned is not None:
            console.print(f"cleanup: removed {len(cleaned.removed)} image(s), kept {cleaned.kept}"
                          + "".join(f"\n  removed {item}" for item in cleaned.removed)
                          + "".join(f"\n  kept {item}" for item in cleaned.refused),
                          markup=False, highlight=False)
    if not all(result.ok for result in results) or not all(check.ok for check in checks.values()):
        sys.exit(1)


def _health_checks(workspace: Workspace, results: list[Any]) -> dict[str, Any]:
    from testdock import engine
    from testdock.engine.healthtests import health_test

    settings, project = workspace.settings, workspace.project
    client = engine.client()
    checks = {}
    for result in results:
        if result.ok:
            click.echo(f"[{result.phase}] health test ...", err=True)
            checks[result.image] = health_test(client, result.phase, result.image, project, settings)
    return checks


def _cleanup(workspace: Workspace, keep: int | None, protected: list[str]) -> Any:
    from testdock import engine
    from testdock.engine.cleanup import cleanup

    return cleanup(engine.client(), workspace.prefix, PHASES,
                   workspace.settings.build.keep if keep is None else keep, protected)


@main.command()
@PATH_ARGUMENT
@click.option("--compare", is_flag=True,
              help="Collect in the execution image too and list the node ids that differ.")
@click.option("--tag", default="latest", show_default=True, help="Image tag to use.")
def collect(path: Path, compare: bool, tag: str) -> None:
    """Collect the tests of PATH in the collection image, whose imports are stubbed.

    \b
    Prints how many tests were collected, which missing modules were stubbed, the collection
    errors, and the time and peak memory it took. With --compare, the execution image (the
    project's real dependencies) collects too, and the node ids only one of them found are
    listed: what the stubs cannot reproduce, such as parametrize lists computed from a stubbed
    library. Exits 1 when they differ or either collection fails.
    """
    from testdock.run.collect import collect as run_collect
    from testdock.run.collect import differences, stopped_before_collecting, unstable_tests
    from testdock.run.installhint import install_hint
    from testdock_pytest.sizes import format_size

    results = run_collect(path, tag, compare)
    for result in results:
        click.echo(f"{result.phase:<11} {len(result.nodeids):>6} tests  {result.seconds:6.2f}s  "
                   f"peak {format_size(result.peak_rss):>10}  exit {result.exit_code}  {result.image}")
        if result.stubbed:
            click.echo(f"            stubbed: {', '.join(result.stubbed)}")
        if result.left_missing:
            click.echo(f"            left missing (optional): {', '.join(result.left_missing)}")
        for error in dict.fromkeys(result.errors):  # once each, however often pytest named it
            click.echo(f"            collection error: {error}")
        if stopped := stopped_before_collecting(result):
            click.echo(f"            pytest stopped before collecting: {stopped}")
        for prediction in result.predicted:
            click.echo(f"            predicted difference: {prediction}")
        if result.from_real_run:
            click.echo(f"            {len(result.from_real_run)} unchanged file(s) listed with the ids of "
                       "the last real collection (.testdock/collected-ids.json), where the stand-ins "
                       "gave others")
        if result.unverifiable:
            click.echo(f"            {len(result.unverifiable)} file(s) not verifiable with stand-ins "
                       "(an error only they cause; left to the real run, not a failure):")
            for name, why in list(result.unverifiable.items())[:10]:
                click.echo(f"              {name}: {why}")
    ok = all(result.exit_code == 0 for result in results)
    if compare:
        _real_run_problems(results[1], path)
        unstable = unstable_tests(results[0])
        if unstable:
            click.echo(f"{len(unstable)} test(s) take ids that change from one collection to the next "
                       "(parametrized with the time or random values), left out of the comparison; "
                       "pytest-xdist stops on them, as its workers must collect alike: "
                       + ", ".join(unstable[:3]) + (", ..." if len(unstable) > 3 else ""))
        only_collection, only_execution = differences(results[0], results[1])
        # the tests of files only the stand-ins failed on: expected missing, left to the real run
        unverified = [nodeid for nodeid in only_execution
                      if nodeid.split("::")[0] in results[0].unverifiable]
        only_execution = [nodeid for nodeid in only_execution if nodeid not in set(unverified)]
        real = len(results[1].nodeids)
        if real:
            found = len(set(results[0].nodeids) & set(results[1].nodeids))
            click.echo(f"node ids found: {found} of the real run's {real} ({100 * found / real:.1f}%)"
                       + (f"; {len(unverified)} in files not verifiable with stand-ins, left to the "
                          "real run" if unverified else ""))
        for nodeid in only_collection:
            click.echo(f"  only in the collection image: {nodeid}")
        for nodeid in only_execution:
            click.echo(f"  only in the execution image:  {nodeid}")
        same = not only_collection and not only_execution
        if not results[0].nodeids and not results[1].nodeids:
            click.echo("no tests collected in either image: nothing to compare (are the tests in the "
                       "image? see [tool.pytest.ini_options] testpaths)")
            same = False
        else:
            click.echo("identical node ids" if same else
                       f"{len(only_collection) + len(only_execution)} node id(s) differ")
        for line in install_hint(path, results[0], results[1]):
            click.echo(f"hint: {line}")
        ok = ok and same
    sys.exit(0 if ok else 1)


def _real_run_problems(execution: Any, root: Path) -> None:
    """What the real run's own collection fails on comes first: no collection-image setting can
    fix it. A module no declared dependency provides is named, with the setting that adds it."""
    from testdock.run.collect import error_excerpt, missing_modules, missing_plugins
    from testdock.run.installhint import owner_by_name
    from testdock.run.missingmodules import local_hint, project_modules

    if not execution.errors and execution.exit_code in (0, 5):
        return
    click.echo(f"the execution image (the real run) itself fails to collect "
               f"{len(set(execution.errors)) or 'the'} file(s): the real run fails the same way, "
               "whatever the collection image does")
    for line in error_excerpt(execution):
        click.echo(f"  | {line}")
    missing = missing_modules(execution)
    own = project_modules(root, missing)
    for line in local_hint(own):
        click.echo(line.removeprefix("testdock: "))
    for module, files in sorted((module, files) for module, files in missing.items() if module not in own):
        click.echo(f"undeclared: {', '.join(files[:3])} import{'s' if len(files) == 1 else ''} "
                   f"{module!r}, which no declared dependency provides; add it to the project's test "
                   f"dependencies, or set [tool.testdock.phases.execution] extra_requirements = "
                   f"[\"{owner_by_name(module)}\"] (and the collection image stubs it)")
    for plugin, named in sorted(missing_plugins(execution).items()):
        click.echo(f"undeclared: the tests use the {named} of {plugin}, which the image lacks; add "
                   f"{plugin} to the project's test dependencies, or set [tool.testdock.phases.execution] "
                   f"extra_requirements = [\"{plugin}\"]")


def _shard(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, _, count = value.partition("/")
    if not (index.strip().isdigit() and count.strip().isdigit()) or int(count) < 1:
        raise click.BadParameter(f"{value!r} is not I/N, like 0/4 (shard 0 of 4)")
    if int(index) >= int(count):
        raise click.BadParameter(f"{value!r}: with {count} shards the index is 0 to {int(count) - 1}")
    return int(index), int(count)


@main.command(cls=_PytestCommand, context_settings={"ignore_unknown_options": True})
@click.argument("phase", type=click.Choice(PHASES))
@click.argument("path", type=click.Path(path_type=Path), default=Path(), required=False)
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--memory", metavar="SIZE",
              help="Container memory limit (swap included), e.g. 1g. Default: the phase's setting.")
@click.option("--tag", default="latest", show_default=True, help="Image tag to run.")
@click.option("--mount-source", is_flag=True,
              help="Mount the working tree (read-only) over the image's copy: edit, re-run, no rebuild.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="PORT",
              help="Serve Prometheus metrics on 127.0.0.1:PORT while the run lasts.")
@click.option("--no-monitor", is_flag=True, help="Do not sample memory (no memory.csv, no plot).")
@click.option("--local", is_flag=True,
              help="No Docker: run in a virtual environment made from the phase's requirement set "
                   "(.testdock/venvs/), monitored through the process tree.")
@click.option("--shard", metavar="I/N", callback=lambda ctx, param, value: _shard(value),
              help="Run shard I of N (I counted from 0), split on the memory history.")
@click.option("--registry", metavar="HOST[:PORT][/PREFIX]",
              help="Pull a missing image from this registry before building it "
                   "(default: [tool.testdock.build] registry).")
@click.option("--platform", metavar="OS/ARCH",
              help="Run the image built for this platform (TAG-ARCH, from `testdock build "
                   "--platform`), built first when missing; another architecture than the engine's "
                   "runs under emulation (QEMU, binfmt_misc). The execution and collection phases.")
def run(phase: str, path: Path, pytest_args: tuple[str, ...], memory: str | None, tag: str,
        mount_source: bool, metrics_port: int | None, no_monitor: bool, local: bool,
        shard: tuple[int, int] | None, registry: str | None, platform: str | None) -> None:
    """Run PHASE's image for the project in PATH; arguments after `--` go to pytest.

    \b
    The container gets the phase's memory limit (no swap), its CPU limit, a pids limit, drops all
    capabilities, runs as a non-root user with a tmpfs /tmp (a read-only root with the phase's
    read_only setting), and writes
    test-results/ and monitoring/ on the host as it goes. Memory is sampled from the container's
    cgroup (10+ Hz) into monitoring/memory.csv and monitoring/memory-profile.png; an OOM kill is
    explained with the test that was running. Exits with pytest's exit code; the image is built
    first when missing.
    """
    from testdock.run.phase import RunOptions, summary_lines
    from testdock.workspace import Workspace

    path, pytest_args = _pytest_arguments(path, pytest_args)
    if platform is not None:
        from testdock.engine.platforms import check_platform
        from testdock.errors import BadInput

        check_platform(platform)
        if local or phase in ("stress", "backend"):
            raise BadInput(f"--platform runs the execution and collection images, not "
                           f"{'--local' if local else phase}; leave it out there")
    workspace = Workspace.load(path)  # read once: bad settings stop the run before anything starts

    if shard is not None:
        from testdock.scale.shards import shard_workers

        pytest_args = ("--testdock-shards", str(shard[1]), "--testdock-shard-index", str(shard[0]),
                       "--testdock-shard-workers", str(shard_workers(workspace)), *pytest_args)
    options = RunOptions(pytest_args, tag, memory, mount_source, not no_monitor, metrics_port,
                         registry=registry, platform=platform)
    from testdock.run.lock import one_run_at_a_time

    try:
        with one_run_at_a_time(path, f"run {phase}", lambda text: click.echo(text, err=True)):
            result = _run_phase(phase, workspace, options, local)
    except KeyboardInterrupt:
        _exit_interrupted("testdock: interrupted; containers removed, results so far kept")
    for line in summary_lines(result):
        click.echo(line, err=True)
    if shard is not None and result.exit_code == 5:  # pytest's "no tests": the split left it empty
        click.echo(f"testdock: shard {shard[0]} of {shard[1]} has no tests; nothing to run", err=True)
        sys.exit(0)
    sys.exit(result.exit_code)


def _run_phase(phase: str, workspace: Workspace, options: Any, local: bool) -> Any:
    """One phase's run; stress and backend print their own summaries and exit."""
    from testdock.run.phase import run_phase, summary_lines

    if local:
        from testdock.run.local import run_local

        return run_local(workspace, phase, options, click.echo)
    if phase == "stress":
        from testdock.run import stress, stressreport

        summary = stress.run_stress(workspace, options, click.echo)
        for line in stressreport.summary_lines(summary):
            click.echo(line, err=True)
        sys.exit(summary.exit_code)
    if phase == "backend":
        from testdock.run import backend

        served = backend.run_backend(workspace, options, click.echo)
        for line in [*summary_lines(served.tests), *backend.summary_lines(served)]:
            click.echo(line, err=True)
        sys.exit(served.tests.exit_code or (1 if served.app_unhealthy else 0))
    return run_phase(workspace, phase, options, click.echo)


@main.command()
@PATH_ARGUMENT
@click.option("--shards", type=click.IntRange(1, 10_000), required=True, help="Number of shards.")
@click.option("--index", type=click.IntRange(0), help="Print the node ids of shard INDEX (from 0).")
@click.option("--plan", "plan_only", is_flag=True,
              help="Print only the plan (the default without --index).")
@click.option("--tag", default="latest", show_default=True, help="Execution image tag to collect in.")
def shard(path: Path, shards: int, index: int | None, plan_only: bool, tag: str) -> None:
    """Split the suite of PATH into shards and print the plan: tests, expected time and peak
    memory per shard.

    \b
    The tests are collected in the execution image and split as `testdock run execution
    --shard I/N` will split them: on the durations and memory growths of .testdock's history,
    with tests that share a module- or class-scoped fixture of the project, or an xdist_group,
    kept together; tests never measured are spread by a stable hash. With --index, the node ids
    of that shard go to stdout (the plan to stderr).
    """
    from testdock.scale.shards import plan_in_image

    listing = plan_in_image(path, shards, index, tag)
    listing_ids = index is not None and not plan_only
    for line in listing.plan:
        click.echo(line, err=listing_ids)
    if listing_ids:
        for nodeid in listing.nodeids:
            click.echo(nodeid)


@main.group()
def history() -> None:
    """The memory history (.testdock/memory-history.json) the scheduler and the shards use."""


@history.command("merge")
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--ignore-missing", is_flag=True,
              help="Skip INPUTS that do not exist (a shard that failed early); fail only if all are missing.")
def history_merge(output: Path, inputs: tuple[Path, ...], ignore_missing: bool) -> None:
    """Merge the histories of shards that ran the same suite into OUTPUT (each test keeps its
    latest measurements). OUTPUT may be one of the INPUTS."""
    from testdock.scale.shards import merge_history_files

    count = merge_history_files(output, list(inputs), ignore_missing)
    click.echo(f"testdock: {output}: {count} tests from {len(inputs)} histories", err=True)


@main.command()
@click.argument("platform", type=click.Choice(["github", "gitlab"]))
@PATH_ARGUMENT
@click.option("--shards", type=click.IntRange(1, 200), default=4, show_default=True,
              help="Execution jobs running in parallel, one shard each (GitLab allows 200).")
@click.option("--python", "python_version", default="3.12", show_default=True,
              help="Python the CI jobs install testdock with (the images have their own).")
@click.option("--install", default=f"pip install testdock=={__version__}", show_default=True,
              help="The shell command that installs testdock in a job: by default this very "
                   "version, from PyPI. E.g. 'pip install ./tools/testdock' (a path in the "
                   "repository), 'pip install --index-url https://pypi.example/simple "
                   "testdock==1.2' (your index), or a wheel's URL.")
@click.option("--schedule", default="17 3 * * 1", show_default=True,
              help="Cron schedule of the stress stage (GitHub; on GitLab, a pipeline schedule).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write (default: .github/workflows/testdock.yml or .gitlab-ci.yml at the "
                   "repository's root); '-' prints it.")
@click.option("--force", is_flag=True, help="Overwrite a file that was edited or not written by testdock.")
def ci(platform: str, path: Path, shards: int, python_version: str, install: str, schedule: str,
       output: Path | None, force: bool) -> None:
    """Write a CI pipeline for PLATFORM (github or gitlab) with the seed's four stages.

    \b
    build       the images, once, pushed to the platform's registry; the last pushed images
                seed BuildKit's cache
    collection  the tiny image collects the suite: import errors fail the pipeline in seconds
    execution   a matrix of --shards jobs, balanced on the memory history, which is merged
                after the shards and carried to the next pipeline in the CI cache
    backend     the app under uvicorn and its integration tests
    stress      on a schedule or on demand
    Test results and memory reports are uploaded as artifacts.
    """
    from testdock.project.inspection import inspect_project as inspect
    from testdock.scale import ci as pipelines

    inspect(path)  # a project must be there: one clear error rather than a pipeline for nothing
    root = pipelines.repository_root(path.resolve())
    relative = path.resolve().relative_to(root).as_posix() if path.resolve().is_relative_to(root) else "."
    options = pipelines.CiOptions(shards, python_version, install, schedule, relative or ".")
    text = pipelines.render(platform, options)
    if output is not None and str(output) == "-":
        click.echo(text, nl=False)
        return
    target = output or root / pipelines.DEFAULT_OUTPUT[platform]
    pipelines.write(target, text, force)
    click.echo(f"testdock: wrote {target}", err=True)


@main.group()
def k8s() -> None:
    """Kubernetes manifests for suites that outgrow one machine."""


@k8s.command("job")
@PATH_ARGUMENT
@click.option("--shards", type=click.IntRange(1, 10_000), default=4, show_default=True,
              help="Shards, one pod each (the Job's completions).")
@click.option("--tag", default="latest", show_default=True, help="Execution image tag.")
@click.option("--registry", metavar="HOST[:PORT][/PREFIX]",
              help="Where the cluster pulls the image from (default: [tool.testdock.build] registry).")
@click.option("--parallelism", type=click.IntRange(1), help="Pods at once (default: every shard).")
@click.option("--results-claim", metavar="PVC",
              help="PersistentVolumeClaim the shards write their results to (default: an emptyDir).")
@click.option("--namespace", help="The Job's namespace.")
@click.option("--name", help="The Job's name (default: PROJECT-tests).")
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write here, not to stdout ('-': stdout).")
def k8s_job(path: Path, shards: int, tag: str, registry: str | None, parallelism: int | None,
            results_claim: str | None, namespace: str | None, name: str | None, output: Path | None) -> None:
    """Print a Kubernetes Indexed Job running the execution phase's shards of PATH.

    Each pod runs one shard with a memory request equal to its limit (the execution phase's
    memory); its results and updated memory history land in test-results/shard-<index>/ on the
    results volume. The manifest's header says how to run it and collect the results.
    """
    from testdock.scale.k8s import JobOptions, job_manifest

    text = job_manifest(path, JobOptions(shards, tag, registry or "", parallelism, results_claim,
                                         namespace, name))
    if output is None or str(output) == "-":
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"testdock: wrote {output}", err=True)


@main.command()
@PATH_ARGUMENT
def report(path: Path) -> None:
    """Print the latest stress run's summary and where its HTML report is."""
    from testdock.errors import BadInput
    from testdock.run import stress, stressreport

    summary = stress.latest(path.resolve())
    if summary is None:
        raise BadInput(f"no stress run found in {path.resolve() / 'monitoring'}; "
                       "run `testdock run stress` first")
    for line in stressreport.summary_lines(summary):
        click.echo(line)
    click.echo(f"report: {path.resolve() / 'monitoring' / 'report.html'}")
