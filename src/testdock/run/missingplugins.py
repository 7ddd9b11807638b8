"""When a run fails because the image lacks a pytest plugin the tests use (a project that keeps
its test requirements outside its metadata): pytest names the fixture, marker, ini option or
command-line option it does not know, and each of those names belongs to one widely used plugin.
Only names that a single plugin defines are listed: `client` or `snapshot` could be several."""

from __future__ import annotations

import re


def _by_name(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {name: plugin for plugin, names in table.items() for name in names}


FIXTURES = _by_name({
    "pytest-mock": ("mocker", "class_mocker", "module_mocker", "package_mocker", "session_mocker"),
    "pytest-django": ("db", "transactional_db", "django_db_setup", "admin_client", "admin_user",
                      "django_user_model", "django_username_field", "rf", "async_rf", "async_client",
                      "django_assert_num_queries", "django_assert_max_num_queries",
                      "django_capture_on_commit_callbacks", "mailoutbox"),
    "pytest-benchmark": ("benchmark",),
    "pytest-httpx": ("httpx_mock",),
    "pytest-httpserver": ("httpserver",),
    "requests-mock": ("requests_mock",),
    "pytest-freezer": ("freezer",),
    "pytest-datadir": ("datadir", "shared_datadir", "original_datadir"),
    "pytest-aiohttp": ("aiohttp_client", "aiohttp_server", "aiohttp_raw_server"),
    "pytest-regressions": ("data_regression", "file_regression", "num_regression",
                           "dataframe_regression", "image_regression"),
    "pytest-subprocess": ("fake_process",),
    "pytest-socket": ("socket_disabled", "socket_enabled"),
    "pytest-qt": ("qtbot", "qapp"),
    "pytest-xprocess": ("xprocess",),
    "pytest-trio": ("nursery", "autojump_clock"),
    "pytest-console-scripts": ("script_runner",),
    "time-machine": ("time_machine",),
    "anyio": ("anyio_backend",),
})

MARKERS = _by_name({
    "pytest-django": ("django_db", "urls", "ignore_template_errors"),
    "pytest-asyncio": ("asyncio",),
    "pytest-trio": ("trio",),
    "anyio": ("anyio",),
    "pytest-benchmark": ("benchmark",),
    "pytest-httpx": ("httpx_mock",),
    "pytest-freezer": ("freeze_time",),
    "pytest-recording": ("vcr", "block_network", "default_cassette"),
    "pytest-order": ("order",),
    "pytest-dependency": ("dependency",),
    "pytest-mpl": ("mpl_image_compare",),
    "pytest-repeat": ("repeat",),
    "pytest-socket": ("disable_socket", "enable_socket", "allow_hosts"),
    "pytest-remotedata": ("remote_data",),
    "pytest-forked": ("forked",),
})

INI_OPTIONS = _by_name({
    "pytest-asyncio": ("asyncio_mode", "asyncio_default_fixture_loop_scope",
                       "asyncio_default_test_loop_scope"),
    "pytest-django": ("DJANGO_SETTINGS_MODULE", "DJANGO_CONFIGURATION", "django_find_project",
                      "django_debug_mode", "FAIL_INVALID_TEMPLATE_VARS"),
    "pytest-env": ("env",),
    "pytest-dotenv": ("env_files", "env_override_existing_values"),
    "pytest-mock": ("mock_use_standalone_module", "mock_traceback_monkeypatch"),
    "pytest-qt": ("qt_api",),
    "pytest-trio": ("trio_mode", "trio_run"),
    "pytest-doctestplus": ("doctest_plus", "doctest_optionflags_plus", "doctest_rst"),
    "pytest-mpl": ("mpl-baseline-path", "mpl-results-path", "mpl-use-full-test-name"),
    "pytest-remotedata": ("remote_data_strict",),
})

OPTIONS = _by_name({
    "pytest-django": ("--reuse-db", "--create-db", "--nomigrations", "--no-migrations", "--ds",
                      "--dc", "--fail-on-template-vars", "--migrations"),
    "pytest-benchmark": ("--benchmark-disable", "--benchmark-skip", "--benchmark-only",
                         "--benchmark-autosave", "--benchmark-enable", "--benchmark-columns",
                         "--benchmark-sort", "--benchmark-min-rounds", "--benchmark-warmup"),
    "pytest-randomly": ("--randomly-seed", "--randomly-dont-reset-seed", "--randomly-dont-reorganize"),
    "pytest-doctestplus": ("--doctest-plus", "--doctest-rst", "--doctest-only"),
    "pytest-rerunfailures": ("--reruns", "--reruns-delay", "--only-rerun"),
    "pytest-html": ("--html", "--self-contained-html"),
    "pytest-mypy": ("--mypy",),
    "pytest-asyncio": ("--asyncio-mode",),
    "pytest-mpl": ("--mpl", "--mpl-baseline-path", "--mpl-generate-path"),
    "pytest-remotedata": ("--remote-data",),
    "pytest-socket": ("--disable-socket", "--allow-hosts", "--allow-unix-socket"),
    "pytest-recording": ("--record-mode", "--block-network"),
    "pytest-sugar": ("--old-summary",),
    "pytest-instafail": ("--instafail",),
    "pytest-json-report": ("--json-report", "--json-report-file"),
    "syrupy": ("--snapshot-update", "--snapshot-warn-unused"),
    "pytest-order": ("--order-scope",),
})

_DJANGO_UNCONFIGURED = "settings are not configured. You must either define the environment variable DJANGO"
_FIXTURE = re.compile(r"fixture '(\w+)' not found")
_MARKER = re.compile(r"'(\w+)' not found in `markers` configuration option|Unknown pytest\.mark\.(\w+)")
_INI = re.compile(r"Unknown config option: ([\w.-]+)")
_ARGUMENTS = re.compile(r"error: unrecognized arguments: (.+)$")


def plugins_named(line: str) -> dict[str, str]:
    """plugin distribution -> what of it this line of pytest's output says is unknown."""
    found: dict[str, str] = {}
    if "not found" not in line and "Unknown" not in line and "unrecognized" not in line \
            and _DJANGO_UNCONFIGURED not in line:
        return found  # every line of a run's output comes here: most say none of the four
    if _DJANGO_UNCONFIGURED in line:
        # Django test cases run by plain pytest (django-filter's, whose own runner is
        # runtests.py): pytest-django sets Django up, from DJANGO_SETTINGS_MODULE
        found["pytest-django"] = ("Django's settings (pytest-django sets Django up, with "
                                  "DJANGO_SETTINGS_MODULE)")
    for match in _FIXTURE.finditer(line):
        if match.group(1) in FIXTURES:
            found.setdefault(FIXTURES[match.group(1)], f"fixture {match.group(1)}")
    for match in _MARKER.finditer(line):
        marker = match.group(1) or match.group(2)
        if marker in MARKERS:
            found.setdefault(MARKERS[marker], f"marker {marker}")
    for match in _INI.finditer(line):
        if match.group(1) in INI_OPTIONS:
            found.setdefault(INI_OPTIONS[match.group(1)], f"ini option {match.group(1)}")
    if arguments := _ARGUMENTS.search(line):
        for argument in arguments.group(1).split():
            option = argument.partition("=")[0]
            if option in OPTIONS:
                found.setdefault(OPTIONS[option], f"option {option}")
    return found
