"""The module names a requirement's distribution is imported by (testdock_pytest.collection.importnames has
the table; the collection image uses it too)."""

from __future__ import annotations

from collections.abc import Iterable

from testdock.project.requirements import names
from testdock_pytest.collection.importnames import module_names


def import_names(requirements: Iterable[str]) -> list[str]:
    """Sorted top-level module names the requirements' distributions are likely imported by."""
    return sorted({module for name in names(requirements) for module in module_names(name)})
