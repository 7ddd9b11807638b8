"""Find the ASGI/WSGI application object a backend image should serve."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ASGI_FACTORIES = {"FastAPI", "Starlette", "Quart", "Litestar", "Sanic", "get_asgi_application"}
WSGI_FACTORIES = {"Flask", "Bottle", "Falcon", "App", "get_wsgi_application"}
_PREFERRED_FILES = ("main.py", "app.py", "asgi.py", "wsgi.py", "server.py", "api.py")
# folders whose apps are not the project's: its tests', its documentation's (fastapi's tutorial
# apps in docs_src), its examples' and benchmarks'
_SKIPPED_DIRS = {"tests", "test", "doc", "docs", "docs_src", "documentation", "example", "examples",
                 "sample", "samples", "tutorial", "tutorials", "benchmarks", "node_modules", "build",
                 "dist", "migrations"}
_MAX_FILES = 3000
_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class AppRef:
    """An application object: `module:attribute`, served as ASGI or WSGI."""

    module: str
    attribute: str
    interface: str  # "asgi" or "wsgi"
    framework: str
    factory: bool = False  # a function that builds and returns the app (uvicorn's --factory)

    @property
    def target(self) -> str:
        return f"{self.module}:{self.attribute}"


def _factory_name(call: ast.expr) -> str | None:
    if not isinstance(call, ast.Call):
        return None
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _app_factories_in(tree: ast.Module, source: str) -> list[tuple[str, str]]:
    """(function, framework) for module-level functions that build an app and return it, the
    application-factory pattern: `def create_app(): app = Flask(__name__); ...; return app`."""
    found: list[tuple[str, str]] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.name.startswith("_"):
            continue
        built: dict[str, str] = {}
        returned: list[ast.expr] = []
        for inner in ast.walk(node):
            if isinstance(inner, ast.Assign):
                factory = _factory_name(inner.value)
                if factory in ASGI_FACTORIES | WSGI_FACTORIES:
                    built.update({t.id: str(factory) for t in inner.targets if isinstance(t, ast.Name)})
            elif isinstance(inner, ast.Return) and inner.value is not None:
                returned.append(inner.value)
        for value in returned:
            factory = _factory_name(value) if isinstance(value, ast.Call) else None
            if isinstance(value, ast.Name) and value.id in built:
                factory = built[value.id]
            generic = factory == "App" and "falcon" not in source  # Falcon's "App" only
            if factory in ASGI_FACTORIES | WSGI_FACTORIES and not generic:
                found.append((node.name, str(factory)))
                break
    return found


def _apps_in(source: str) -> list[tuple[str, str, bool]]:
    """(attribute, framework, is a factory) for module-level `name = Framework(...)` assignments,
    then module-level functions that build and return one."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[str, str, bool]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        factory = _factory_name(value)
        if factory not in ASGI_FACTORIES | WSGI_FACTORIES:
            continue
        # Falcon's and others' generic "App" only counts when imported from falcon.
        if factory == "App" and "falcon" not in source:
            continue
        found += [(t.id, factory, False) for t in targets if isinstance(t, ast.Name)]
    return found + [(name, factory, True) for name, factory in _app_factories_in(tree, source)]


def _module_name(path: Path, source_root: Path) -> str | None:
    parts = list(path.relative_to(source_root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


def _candidate_files(source_root: Path) -> list[Path]:
    files: list[Path] = []
    for path in source_root.rglob("*.py"):
        relative = path.relative_to(source_root).parts
        if any(p.startswith(".") or p in _SKIPPED_DIRS or "venv" in p for p in relative[:-1]):
            continue
        if relative[-1].startswith("test_") or relative[-1] in ("conftest.py", "setup.py"):
            continue
        files.append(path)
        if len(files) >= _MAX_FILES:
            break
    return files


def _rank(path: Path, source_root: Path, attribute: str, factory: bool) -> tuple[int, int, int, int, str]:
    depth = len(path.relative_to(source_root).parts)
    preferred = 0 if path.name in _PREFERRED_FILES else 1
    named_app = 0 if attribute in ("app", "application") else 1
    return (int(factory), named_app, preferred, depth, str(path))


def detect_app(source_roots: list[Path]) -> AppRef | None:
    """The most likely application object among the project's modules, or None."""
    candidates: list[tuple[tuple[int, int, int, int, str], AppRef]] = []
    for source_root in source_roots:
        for path in _candidate_files(source_root):
            try:
                if path.stat().st_size > _MAX_BYTES:
                    continue
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if not any(name in source for name in ASGI_FACTORIES | WSGI_FACTORIES):
                continue
            module = _module_name(path, source_root)
            if module is None:
                continue
            for attribute, framework, factory in _apps_in(source):
                interface = "asgi" if framework in ASGI_FACTORIES else "wsgi"
                reference = AppRef(module, attribute, interface, framework, factory)
                candidates.append((_rank(path, source_root, attribute, factory), reference))
    if not candidates:
        return None
    return min(candidates, key=lambda candidate: candidate[0])[1]
