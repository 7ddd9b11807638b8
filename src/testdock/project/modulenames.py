"""The module names a requirement's distribution is imported by (testdock_pytest.collection.importnames has
the table; the collection image uses it too)."""

from __future__ import annotations

from collections.abc import Iterable

from testdock.project.requirements import names
from testdock_pytest.collection.importnames import module_names


def import_names(requirements: Iterable[str]) -> list[str]:
    """Sorted top-level module names the requirements' distributions are likely imported by."""
    return sorted({module for name in names(requirements) for module in module_names(name)})


def exact_versions(requirements: Iterable[str]) -> dict[str, str]:
    """The version each requirement pinned exactly (`pydantic-core==2.50.5`) names, by its
    canonical distribution name and by each top-level module it is likely imported by; a name
    pinned to two versions (a lock's forks per Python) is left out."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    found: dict[str, set[str]] = {}
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        pins = [spec.version for spec in requirement.specifier if spec.operator in ("==", "===")
                and "*" not in spec.version]
        if len(pins) != 1:
            continue
        for key in (canonicalize_name(requirement.name), *module_names(requirement.name)):
            found.setdefault(key, set()).add(pins[0])
    return {key: next(iter(versions)) for key, versions in sorted(found.items()) if len(versions) == 1}
