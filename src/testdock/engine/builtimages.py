"""The record of the images testdock's builds produced, per engine: the final images and the
intermediate stages built alone (which BuildKit leaves untagged). Cleanup reads it to tell an
untagged image testdock left from one a user built FROM a testdock image, which inherits every
label. It lives in the user's state folder ($XDG_STATE_HOME/testdock), out of every container's
reach."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testdock.safepaths import write_atomically

if TYPE_CHECKING:
    import docker

_KEEP_SECONDS = 180 * 24 * 3600  # entries older than this are dropped (their images long gone)


def default_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "testdock" / "built-images.json"


def engine_id(client: docker.DockerClient) -> str:
    return str(client.info().get("ID") or os.environ.get("DOCKER_HOST", "default"))


class BuiltImages:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, dict[str, Any]]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_suffix(".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    data = {}
            except (OSError, ValueError):
                data = {}
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                write_atomically(self.path, json.dumps(data, indent=1, sort_keys=True))

    def add(self, client: docker.DockerClient, image_id: str, project: str, phase: str) -> None:
        now = time.time()
        with self._locked() as data:
            images = data.setdefault(engine_id(client), {})
            for known in [key for key, entry in images.items() if now - entry.get("at", 0) > _KEEP_SECONDS]:
                del images[known]
            images[image_id] = {"project": project, "phase": phase, "at": now}

    def contains(self, client: docker.DockerClient, image_id: str) -> bool:
        with self._locked() as data:
            return image_id in data.get(engine_id(client), {})

    def forget(self, client: docker.DockerClient, image_id: str) -> None:
        with self._locked() as data:
            data.get(engine_id(client), {}).pop(image_id, None)
