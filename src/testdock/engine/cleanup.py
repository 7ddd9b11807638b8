"""`testdock build --cleanup`: remove older images of this project that testdock built.

Labels alone do not say who built an image: one built FROM a testdock image inherits them. So
an image counts as testdock's through the tags testdock gives (`[REGISTRY/]PROJECT-PHASE:TAG`),
or, untagged, through the record of the images testdock's own builds produced (builtimages).
Removal takes away testdock's tags only, never by force: an image that also carries a tag of
someone else's keeps it (and stays), and one with a child image stays until the child goes."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import docker

from testdock import engine
from testdock.engine import builtimages
from testdock_pytest.contract import LABEL_MANAGED, LABEL_PHASE, LABEL_PROJECT


@dataclass
class CleanupReport:
    removed: list[str] = field(default_factory=list)  # "id (tags)"
    kept: int = 0
    refused: list[str] = field(default_factory=list)  # "id: why"


def _describe(image_id: str, tags: Sequence[str]) -> str:
    return f"{image_id.removeprefix('sha256:')[:12]} ({', '.join(tags) or 'untagged'})"


def testdock_tags(image: engine.ImageInfo, project: str, phase: str) -> list[str]:
    """The tags of `image` that testdock gives to the phase's images: [REGISTRY/]PROJECT-PHASE:TAG."""
    name = f"{project}-{phase}"
    return [tag for tag in image.tags
            if (repository := tag.rpartition(":")[0]) == name or repository.endswith(f"/{name}")]


def _in_use(client: docker.DockerClient, image_id: str) -> bool:
    return bool(client.containers.list(all=True, filters={"ancestor": image_id}))


def cleanup(client: docker.DockerClient, project: str, phases: Sequence[str], keep: int,
            protected: Collection[str] = ()) -> CleanupReport:
    """Keep the newest `keep` images per phase of `project`; take testdock's tags off older ones
    (an image left without tags is removed by the engine), and remove the untagged images that
    testdock's builds left (intermediate stages, images whose tags moved on). Images a container
    uses, and the tags in `protected` (this build's), are kept."""
    report = CleanupReport()
    for phase in phases:
        labelled = engine.images_with_labels(client, {LABEL_MANAGED: "true", LABEL_PROJECT: project,
                                                      LABEL_PHASE: phase})
        ours = [(image, tags) for image in labelled if (tags := testdock_tags(image, project, phase))]
        ours.sort(key=lambda pair: pair[0].created, reverse=True)
        report.kept += len(ours[:keep])
        for image, tags in ours[keep:]:
            removable = [tag for tag in tags if tag not in protected]
            if not removable:
                continue
            if _in_use(client, image.id):
                report.refused.append(f"{_describe(image.id, tags)}: a container uses it")
                continue
            failed = [why for tag in removable if (why := engine.remove_image(client, tag))]
            if failed:
                report.refused.append(f"{_describe(image.id, tags)}: {failed[0]}")
            else:
                report.removed.append(_describe(image.id, removable))
    built = builtimages.BuiltImages()
    for image in engine.dangling_with_labels(client, {LABEL_MANAGED: "true", LABEL_PROJECT: project}):
        if not built.contains(client, image.id):
            continue  # untagged, and not from a testdock build: someone's derived image
        if _in_use(client, image.id):
            report.refused.append(f"{_describe(image.id, ())}: a container uses it")
            continue
        why = engine.remove_image(client, image.id)
        if why:
            report.refused.append(f"{_describe(image.id, ())}: {why}")
        else:
            report.removed.append(_describe(image.id, ()))
            built.forget(client, image.id)
    return report
