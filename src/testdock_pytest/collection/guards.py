"""What makes an import statement safe against the module's absence: an except clause that
handles ImportError (or something broader). Standard library only: the collection image's stubs
use it, and testdock reads the project's tests with it."""

from __future__ import annotations

import ast

ABSENCE_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "Exception", "BaseException"})


def catches_absence(handler: ast.ExceptHandler) -> bool:
    """Whether the except clause handles a failed import (a bare `except:` does)."""
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any((t.id if isinstance(t, ast.Name) else getattr(t, "attr", "")) in ABSENCE_ERRORS
               for t in types)
