"""The pytest entry point of testdock's plugin (registered through its `pytest11` entry point)."""

from __future__ import annotations

import importlib.util
import weakref
from collections.abc import Generator
from typing import Any

import pytest

from testdock_pytest import progress
from testdock_pytest.collection import listing, realids, stubs, verdict
from testdock_pytest.memory import pertest as memory
from testdock_pytest.sharding import selection as shards

HAS_XDIST = importlib.util.find_spec("xdist") is not None  # asked before any stub is in place
if HAS_XDIST:
    from testdock_pytest.parallel import alone
    from testdock_pytest.parallel.hooks import (  # noqa: F401  (hooks, found by name)
        allow_worker_restarts,
        hash_seed_line,
        pytest_handlecrashitem,
        pytest_xdist_auto_num_workers,
        pytest_xdist_make_scheduler,
        quiet_xdist_config_warnings,
        recovery_summary,
        register_controller_hooks,
        same_hash_seed_for_workers,
        workers_choice,
    )
    from testdock_pytest.parallel.xdist_internals import add_dist_choice, is_xdist

# in the collection image the stubs must be in place before any conftest imports a dependency
stubs.install_from_environment()

# each pytest session's parser (pytester runs several in one process), until xdist's options exist
_parsers: weakref.WeakKeyDictionary[pytest.PytestPluginManager, pytest.Parser] = weakref.WeakKeyDictionary()


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    memory.add_options(parser)
    shards.add_options(parser)
    group = parser.getgroup("testdock")
    group.addoption("--testdock-margin", metavar="PERCENT",
                    help="Headroom --dist memory keeps under the budget (default 10%%).")
    parser.addini("testdock_margin", "Like --testdock-margin.", default="10%")
    group.addoption("--max-worker-rss", metavar="SIZE",
                    help="--dist memory replaces a worker whose own memory between tests (what it "
                         "allocated; the libraries it shares with the others apart) exceeds SIZE "
                         "(default: when what it keeps leaves no room for the next test).")
    parser.addini("max_worker_rss", "Like --max-worker-rss.", default="")
    group.addoption("--testdock-stubs", action="store_true", default=False,
                    help="Let imports of modules that are not installed succeed with permissive "
                         "stand-ins, to collect tests without the project's dependencies.")
    group.addoption("--testdock-stub", action="append", default=[], metavar="MODULE",
                    help="Stub this module even when it is installed (repeatable).")
    if HAS_XDIST:
        group.addoption("--no-testdock-recheck", action="store_true", default=False,
                        help="Do not run a run's few failures again alone, at the end of a run with "
                             "workers, to name the tests that fail only beside others.")
        if any(is_xdist(plugin) for plugin in pluginmanager.get_plugins()):
            add_dist_choice(parser)  # xdist was registered first
        else:
            _parsers[pluginmanager] = parser


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser,
                                  args: list[str]) -> Generator[None, object, object]:
    namespace = early_config.known_args_namespace
    if getattr(namespace, "testdock_stubs", False) or getattr(namespace, "testdock_stub", []):
        stubs.install(getattr(namespace, "testdock_stub", []) or [])
    try:
        return (yield)
    except Exception as error:
        # a conftest that only the stand-ins break (pytest's ConftestImportFailure, with its cause)
        # is not the end of the run: collection imports it again, where the verdict reports its
        # folder as not verifiable with stand-ins, as it does a test module
        cause = getattr(error, "cause", None)
        if type(error).__name__ != "ConftestImportFailure" or not isinstance(cause, BaseException) \
                or not verdict.stand_in_caused(cause):
            raise
        return None


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    finder = stubs.installed()
    if finder is None:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        values = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("argvalues")
        source = stubs.stubbed_parameters(values)
        if source is not None:
            finder.predicted.append(f"{metafunc.definition.nodeid}: parametrized from {source}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [workers_choice(config), hash_seed_line(config)] if HAS_XDIST else []
    if stubs.installed() is not None:
        lines.append("testdock: imports of modules that are not installed are stubbed")
    return [line for line in lines if line]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if HAS_XDIST:
        recovery_summary(terminalreporter, config)
    finder = stubs.installed()
    if finder is None:
        return
    terminalreporter.section("testdock stubs")
    if finder.stubbed:
        terminalreporter.line(f"stubbed {len(finder.stubbed)} module(s) that are not installed: "
                              + ", ".join(sorted(finder.stubbed)))
    else:
        terminalreporter.line("no module needed a stub")
    if finder.left_missing:
        terminalreporter.line("left missing, as optional (imported under try/except ImportError, or probed) "
                              "and not a declared dependency: " + ", ".join(sorted(finder.left_missing)))
    for prediction in finder.predicted:
        terminalreporter.line(f"node ids will differ from the real collection: {prediction}")
    checked = config.pluginmanager.get_plugin("testdock-verdict")
    unverifiable = dict(getattr(checked, "unverifiable", {}))
    if unverifiable:
        # what a CI collection stage passed without checking: said, not hidden in skip lines
        terminalreporter.line(f"not verifiable with stand-ins, left to the real run: {len(unverifiable)} "
                              "file(s) (an error only the stand-ins cause; not a failure)")
        for name, reason in list(unverifiable.items())[:10]:
            terminalreporter.line(f"  {name}: {reason.split(': ', 1)[-1][:160]}")
        if len(unverifiable) > 10:
            terminalreporter.line(f"  ... and {len(unverifiable) - 10} more")


def pytest_plugin_registered(plugin: Any, manager: pytest.PytestPluginManager) -> None:
    # pluggy has replayed pytest_addoption for the new plugin by now: xdist's options exist
    if HAS_XDIST and is_xdist(plugin) and manager in _parsers:
        add_dist_choice(_parsers.pop(manager))


# before xdist's own, which warns at configuration (and the workers' hash seed is best set early)
@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if HAS_XDIST:
        quiet_xdist_config_warnings(config)
        same_hash_seed_for_workers(config)
        allow_worker_restarts(config)
        register_controller_hooks(config)
        alone.register(config)
    progress.register(config)
    memory.register(config)
    shards.register(config)
    verdict.register(config)
    realids.register(config, stubbed=stubs.installed() is not None)
    listing.register(config)
