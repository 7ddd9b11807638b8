"""The collection image's verdict on a file that failed to collect: a real error (the real run
fails on it too: a syntax error, an import that does not resolve, a broken definition) fails the
stage; an error that only the stand-ins cause (one flowed through the project's code or a
dependency's and was rejected) does not: the file is reported as not verifiable here, skipped, and
left to the real run. Zero false alarms first; every real error still caught."""

from __future__ import annotations

import ast
import functools
import inspect
import linecache
import re
import types
from collections.abc import Generator, Iterable
from typing import Any

import pluggy
import pytest

from testdock_pytest.collection import stubs

REAL_ERRORS = (SyntaxError, ImportError)  # what no stand-in causes: ImportError covers missing modules
STAND_IN_MARKS = ("<stub ", "'Stub'", "StubModule", "StubBase")  # how a stand-in shows in a message


def _is_stand_in(value: Any) -> bool:
    try:
        return (isinstance(value, (stubs.Stub, stubs.StubBase, stubs.StubModule))
                or (isinstance(value, type) and issubclass(value, stubs.StubBase)))
    except Exception:  # an object whose isinstance check itself fails is nothing of ours
        return False


def _holds_stand_in(value: Any) -> bool:
    """The value is a stand-in, or a container, an object or a class holding one directly."""
    if _is_stand_in(value):
        return True
    try:
        if isinstance(value, dict):
            members: Iterable[Any] = [*list(value.keys())[:50], *list(value.values())[:50]]
        elif isinstance(value, (list, tuple, set, frozenset)):
            members = list(value)[:50]
        elif hasattr(value, "__dict__") and not isinstance(value, (types.ModuleType, types.FunctionType)):
            members = list(vars(value).values())[:50]
        else:
            return False
        return any(_is_stand_in(member) for member in members)
    except Exception:
        return False


@functools.lru_cache(maxsize=256)
def _statements(filename: str) -> tuple[tuple[int, int, frozenset[str]], ...]:
    """Each statement of a source file: (first line, last line, the names it reads)."""
    try:
        tree = ast.parse("".join(linecache.getlines(filename)))
    except (SyntaxError, ValueError):
        return ()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            # a class statement fails on its header (its bases, keywords, decorators): a base a
            # stand-in made (`class Sampler(Mixin, BaseEstimator)`) is what it read
            header = [*node.bases, *(keyword.value for keyword in node.keywords), *node.decorator_list]
            names = frozenset(name.id for part in header for name in ast.walk(part)
                              if isinstance(name, ast.Name))
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            found.append((first, node.body[0].lineno - 1 if node.body else node.lineno, names))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            # a function statement runs its decorators and defaults when the module does: a
            # parametrize list computed from a stand-in (`zip(np.roll(cases, 1), ...)`) fails there
            header = [*node.decorator_list, *node.args.defaults,
                      *(default for default in node.args.kw_defaults if default is not None)]
            if header:
                names = frozenset(name.id for part in header for name in ast.walk(part)
                                  if isinstance(name, ast.Name))
                first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
                last = max(part.end_lineno or part.lineno for part in header)
                found.append((first, last, names))
        elif isinstance(node, ast.stmt):
            names = frozenset(name.id for name in ast.walk(node) if isinstance(name, ast.Name))
            found.append((node.lineno, node.end_lineno or node.lineno, names))
    return tuple(found)


def _statement_uses_stand_in(frame: types.FrameType, line: int) -> bool:
    """Whether the statement the frame failed in reads a name bound to a stand-in: a value the
    stand-ins made may have been turned into a number or a string that the code then rejected
    (`date.fromordinal(pd.Timestamp(...).toordinal())`)."""
    enclosing = [(last - first, names) for first, last, names in _statements(frame.f_code.co_filename)
                 if first <= line <= last]
    if not enclosing:
        return False
    names = min(enclosing, key=lambda item: item[0])[1]  # the innermost statement
    scopes = (frame.f_locals, frame.f_globals)
    return any(_holds_stand_in(scope[name]) for name in names for scope in scopes if name in scope)


def _judged(error: BaseException) -> BaseException:
    """The error to judge: a conftest's failure by its cause."""
    cause = getattr(error, "cause", None)
    if type(error).__name__ == "ConftestImportFailure" and isinstance(cause, BaseException):
        return cause
    return error


def absence_caused(error: BaseException) -> list[str]:
    """The declared dependencies, not installed here, whose absence the error came from: installed
    code that found one missing failed, or took a way the real run does not take (starlette,
    without fastapi's httpx2, warns that httpx is deprecated, which `filterwarnings = error` makes
    a collection error of every test file using its TestClient). Seen in the error's chain (an
    import of one of them failed) or named by a warning raised as an error."""
    finder = stubs.installed()
    missing = finder.declared_missing if finder is not None else set()
    if not missing:
        return []
    error = _judged(error)
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError) and (current.name or "").partition(".")[0] in missing:
            return [(current.name or "").partition(".")[0]]
        current = current.__cause__ or current.__context__
    if isinstance(error, Warning):
        return sorted(name for name in missing if re.search(rf"\b{re.escape(name)}\b", str(error)))
    return []


def stand_in_caused(error: BaseException) -> list[str]:
    """The stubbed modules whose stand-ins the error came from (empty: a real error). A stand-in
    in the message, in the error's arguments, or in the locals of a frame the error went through,
    or the error raised by the stand-ins' own code. A conftest's failure is judged by its cause."""
    error = _judged(error)
    if isinstance(error, REAL_ERRORS):
        return []
    finder = stubs.installed()
    if finder is None or not (finder.stubbed or finder.always):
        return []
    text = str(error)
    involved = (any(mark in text for mark in STAND_IN_MARKS)
                or any(_holds_stand_in(arg) for arg in error.args))
    traceback = error.__traceback__
    while traceback is not None and not involved:
        frame = traceback.tb_frame
        # a function's locals only: a module's or a class body's namespace holds every stand-in
        # it imported, whatever failed there
        involved = frame.f_code.co_filename == stubs.__file__ or (
            bool(frame.f_code.co_flags & inspect.CO_OPTIMIZED)
            and any(_holds_stand_in(value) for value in list(frame.f_locals.values())[:200])
        ) or _statement_uses_stand_in(frame, traceback.tb_lineno)
        traceback = traceback.tb_next
    if not involved:
        return []
    return sorted(set(finder.stubbed) | finder.always)


class Verdict:
    """Collection errors caused by stand-ins become skips that say so; real errors stay errors."""

    def __init__(self) -> None:
        self.unverifiable: dict[str, str] = {}  # node id -> why

    @pytest.hookimpl(hookwrapper=True)
    def pytest_make_collect_report(self, collector: pytest.Collector
                                   ) -> Generator[None, pluggy.Result[pytest.CollectReport], None]:
        judged: dict[int, tuple[list[str], bool]] = {}

        def judge(error: BaseException) -> tuple[list[str], bool]:
            """(the modules the error came from, whether by their absence); ([], _): a real error."""
            if id(error) not in judged:
                absent = absence_caused(error)
                judged[id(error)] = (absent, True) if absent else (stand_in_caused(error), False)
            return judged[id(error)]

        # pytest describes a failed collection before this wrapper sees it: for an error the
        # report says nothing of, skip the traceback's description, which parses every source
        # file it goes through (fastapi's 134 files failing in its 4,000-line modules: 20 of
        # the collection's 34 s)
        describe = collector.repr_failure

        def repr_failure(excinfo: pytest.ExceptionInfo[BaseException], *args: Any, **kwargs: Any) -> Any:
            return "not verifiable" if judge(excinfo.value)[0] else describe(excinfo, *args, **kwargs)

        collector.repr_failure = repr_failure  # type: ignore[method-assign]
        try:
            outcome = yield
        finally:
            del collector.repr_failure
        report = outcome.get_result()
        call = getattr(report, "call", None)  # pytest keeps the CallInfo on the report for a while
        excinfo = getattr(call, "excinfo", None)
        if not report.failed or excinfo is None:
            return
        modules, absent = judge(excinfo.value)
        if not modules:
            return
        message = str(excinfo.value).splitlines()[0][:200] if str(excinfo.value) else ""
        named = f"{', '.join(modules[:5])}{', ...' if len(modules) > 5 else ''}"
        what = f"without {named} (declared, not installed here)" if absent else f"with stand-ins for {named}"
        reason = f"not verifiable {what}: {excinfo.typename}: {message}; the real run collects it"
        self.unverifiable[report.nodeid or "."] = reason
        # where in the file it failed (0-based, as pytest keeps it), else its first line
        line = next((entry.lineno for entry in reversed(excinfo.traceback)
                     if str(entry.path) == str(collector.path)), 0)
        location = (str(collector.path), line, reason)
        skipped = pytest.CollectReport(report.nodeid, "skipped", location, [], sections=report.sections)
        skipped.call = call  # type: ignore[attr-defined]
        outcome.force_result(skipped)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        # nothing collected because nothing was verifiable here (a conftest over every test that
        # only the stand-ins break): not the suite's failure; the real run decides
        if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and self.unverifiable:
            session.exitstatus = pytest.ExitCode.OK


def register(config: pytest.Config) -> Verdict | None:
    """In a run with stubs (the collection image): separate what only the stand-ins cause."""
    if stubs.installed() is None:
        return None
    verdict = Verdict()
    config.pluginmanager.register(verdict, "testdock-verdict")
    return verdict
