"""`testdock shard`: collect the suite in the execution image and split it as the plugin will
when each shard runs (same node ids, same history, same budget), to print the plan or the
node ids of one shard."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from testdock import engine
from testdock.errors import BadInput
from testdock.images.phases import memory_limit
from testdock.project.settings import load_settings
from testdock.run.collect import collect_in
from testdock.run.phase import HISTORY_DIR
from testdock.safepaths import write_atomically
from testdock.validation import check_tag
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.memory.history import current_format, merge_histories
from testdock_pytest.sizes import parse_size

PLAN_SECTION = "testdock shard plan"
_COLLECTED = re.compile(r"^\d+(/\d+)? tests? collected")


@dataclass
class ShardListing:
    plan: list[str]  # the plugin's plan table
    nodeids: list[str]  # the chosen shard's, or every test's when none was chosen
    image: str


def shard_workers(target: Path | Workspace) -> int:
    """Processes a shard's execution run uses: the execution phase's CPU limit, else 2."""
    cpus = (target.settings if isinstance(target, Workspace) else load_settings(target)).phases.execution.cpus
    return max(1, math.floor(cpus)) if cpus else 2


def plan_in_image(target: Path | Workspace, shards: int, index: int | None = None,
                  tag: str = "latest") -> ShardListing:
    if shards < 1:
        raise BadInput(f"--shards {shards}: the number of shards must be at least 1")
    if index is not None and not 0 <= index < shards:
        raise BadInput(f"--index {index} is out of range: with {shards} shards it is 0 to {shards - 1}")
    check_tag(tag)
    workspace = as_workspace(target)
    root, settings = workspace.root, workspace.settings
    image = workspace.image("execution", tag)
    client = engine.client()
    if engine.image_info(client, image) is None:
        raise BadInput(f"image {image} not found; run `testdock build --phase execution`")
    arguments = ["--testdock-shards", str(shards), "--testdock-shard-plan",
                 "--testdock-shard-workers", str(shard_workers(workspace))]
    if index is not None:
        arguments += ["--testdock-shard-index", str(index)]
    volumes = {}
    if (root / HISTORY_DIR).is_dir():
        volumes[str(root / HISTORY_DIR)] = {"bind": f"/app/{HISTORY_DIR}", "mode": "ro"}
    memory = parse_size(memory_limit("execution", settings))
    collection = collect_in(client, "execution", image, memory, arguments, volumes)
    if collection.exit_code not in (0, 5):  # 5: the chosen shard is empty
        tail = "\n".join(collection.output.splitlines()[-15:])
        raise BadInput(f"collecting the tests in {image} failed (exit {collection.exit_code}):\n{tail}")
    return ShardListing(plan_section(collection.output), collection.nodeids, image)


def plan_section(output: str) -> list[str]:
    lines: list[str] = []
    inside = False
    for line in output.splitlines():
        if line.startswith("=") and PLAN_SECTION in line:
            inside = True
        elif inside and (line.startswith("=") or line.startswith("TESTDOCK-COLLECT ")):
            break
        elif inside and not _COLLECTED.match(line):
            lines.append(line)
    return lines


def merge_history_files(output: Path, inputs: list[Path], ignore_missing: bool = False) -> int:
    """Merge shards' memory histories into `output`; the number of tests it then holds."""
    histories = []
    for path in inputs:
        if ignore_missing and not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"{path}: no such file") from None
        except (OSError, ValueError) as error:
            raise BadInput(f"{path} is not a memory history ({error})") from None
        if not isinstance(data, dict) or not isinstance(data.get("tests"), dict):
            raise BadInput(f"{path} is not a memory history (no 'tests' table)")
        histories.append(current_format(data))
    if not histories:
        raise BadInput("none of the histories exists; nothing to merge")
    merged = merge_histories(histories)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output, json.dumps(merged, indent=1, sort_keys=True))
    return len(merged["tests"])
