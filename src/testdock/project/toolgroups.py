"""Test dependencies that project managers keep in their own tables: Hatch's environments and
PDM's development groups. Read as the tools read them, as named groups of requirement strings."""

from __future__ import annotations

from typing import Any

from testdock.project.pyproject import table

# Hatch's own test environment (`hatch test`), and its default one, which every other inherits
_HATCH_TEST_ENV = "hatch-test"
_HATCH_DEFAULT_ENV = "default"


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _hatch_env(envs: dict[str, Any], name: str, project: str,
               seen: frozenset[str] = frozenset()) -> list[str]:
    """An environment's requirements: its dependencies, extra dependencies and features (the
    project's extras, as `project[feature]`), after those of the environment it inherits from."""
    env = envs.get(name)
    if not isinstance(env, dict) or name in seen:
        return []
    template = env.get("template", _HATCH_DEFAULT_ENV if name != _HATCH_DEFAULT_ENV else None)
    inherited = (_hatch_env(envs, template, project, seen | {name})
                 if isinstance(template, str) and template else [])
    features = [f"{project}[{feature}]" for feature in _strings(env.get("features"))] if project else []
    return [*inherited, *_strings(env.get("dependencies")), *_strings(env.get("extra-dependencies")),
            *features]


def hatch_groups(data: dict[str, Any]) -> dict[str, list[str]]:
    """Hatch's environments as groups: `hatch-test` counts as the test group, `default` as the
    development one (where the project has no env of those names)."""
    envs = table(data, "tool", "hatch", "envs")
    project = str(table(data, "project").get("name", ""))
    groups: dict[str, list[str]] = {}
    for name in envs:
        key = {_HATCH_TEST_ENV: "test", _HATCH_DEFAULT_ENV: "dev"}.get(name, name)
        if key in groups and key != name:
            continue  # an env the project named `test` itself comes first
        groups[key] = _hatch_env(envs, name, project)
    return {key: requirements for key, requirements in groups.items() if requirements}


def pdm_groups(data: dict[str, Any]) -> dict[str, list[str]]:
    """PDM's development groups, without its editable references to the project itself."""
    return {name: [entry for entry in _strings(value) if not entry.startswith("-e")]
            for name, value in table(data, "tool", "pdm", "dev-dependencies").items()
            if _strings(value)}
