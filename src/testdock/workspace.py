"""One command's view of a project, built once and passed down: its root, its `[tool.testdock]`
settings, what inspection found, and the names of its images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from testdock.images.render import image_prefix
from testdock.project.inspection import Project, inspect_project
from testdock.project.settings import Settings, load_settings
from testdock.validation import check_registry


def repository(prefix: str, phase: str, registry: str = "") -> str:
    """`[REGISTRY/]PREFIX-PHASE`, the repository of a phase's images."""
    return f"{registry.rstrip('/')}/{prefix}-{phase}" if registry else f"{prefix}-{phase}"


@dataclass(frozen=True)
class Workspace:
    root: Path
    settings: Settings
    project: Project

    @classmethod
    def load(cls, root: Path) -> Workspace:
        """Read the project in `root`: settings first (they may name the app), then inspection."""
        root = root.resolve()  # the SDK reads a relative source as a named volume
        settings = load_settings(root)
        return cls(root, settings, inspect_project(root, app_override=settings.backend.app))

    @property
    def prefix(self) -> str:
        """The images' name prefix: `[tool.testdock] project`, else the project's name."""
        return image_prefix(self.project, self.settings)

    def registry(self, override: str | None = None) -> str:
        """The registry a flag gave, else `[tool.testdock.build] registry` ("" for none); checked."""
        return check_registry(override if override is not None else self.settings.build.registry)

    def image(self, phase: str, tag: str, registry: str = "") -> str:
        """`[REGISTRY/]PREFIX-PHASE:TAG`."""
        return f"{repository(self.prefix, phase, registry)}:{tag}"


def as_workspace(target: Path | Workspace) -> Workspace:
    """The workspace a caller passed down, or one read from the folder it named."""
    return target if isinstance(target, Workspace) else Workspace.load(target)
