"""`testdock build --cleanup`: remove older images of this project that testdock made, by label.
An image without testdock's labels is never touched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import docker

from testdock import engine


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)  # "id (tags)"
    kept: int = 0
    refused: list[str] = field(default_factory=list)  # "id: why"


def _describe(image: engine.ImageInfo) -> str:
    return f"{image.id.removeprefix('sha256:')[:12]} ({', '.join(image.tags) or 'untagged'})"


def _in_use(client: docker.DockerClient, image_id: str) -> bool:
    return bool(client.containers.list(all=True, filters={"ancestor": image_id}))


def cleanup(client: docker.DockerClient, project: str, phases: Sequence[str], keep: int) -> CleanupReport:
    """Keep the newest `keep` images per phase of `project`; remove older ones and dangling
    leftovers that carry testdock's labels. Images a container still uses are kept."""
    report = CleanupReport()
    candidates: list[engine.ImageInfo] = []
    for phase in phases:
        images = engine.images_with_labels(client, {"io.testdock.managed": "true",
                                                    "io.testdock.project": project,
                                                    "io.testdock.phase": phase})
        images.sort(key=lambda image: image.created, reverse=True)
        report.kept += len(images[:keep])
        candidates += images[keep:]
    candidates += engine.dangling_with_labels(client, {"io.testdock.managed": "true",
                                                       "io.testdock.project": project})
    seen: set[str] = set()
    for image in candidates:
        if image.id in seen:
            continue
        seen.add(image.id)
        if image.labels.get("io.testdock.managed") != "true":  # belt and braces: never foreign
            continue
        if _in_use(client, image.id):
            report.refused.append(f"{_describe(image)}: a container uses it")
            continue
        why = engine.remove_image(client, image.id)
        if why:
            report.refused.append(f"{_describe(image)}: {why}")
        else:
            report.removed.append(_describe(image))
    return report
