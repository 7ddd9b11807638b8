"""`testdock k8s job`: a Kubernetes Indexed Job whose pods run the execution phase's shards,
each with its memory request equal to its limit (the phase's budget), so that the scheduler
places pods where the memory really is and the plugin sizes its workers from the same limit."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testdock.errors import BadInput
from testdock.images.phases import USER_ID, memory_limit
from testdock.validation import check_registry, check_tag
from testdock.workspace import Workspace, as_workspace
from testdock_pytest.contract import HISTORY_ENV, HISTORY_FILE, RESULTS_DIR_ENV
from testdock_pytest.sizes import parse_size

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
HISTORY_CONFIGMAP_KEY = HISTORY_FILE


@dataclass(frozen=True)
class JobOptions:
    shards: int = 4
    tag: str = "latest"
    registry: str = ""
    parallelism: int | None = None
    results_claim: str | None = None  # a PersistentVolumeClaim for the shards' results
    namespace: str | None = None
    name: str | None = None


def _quantity(size: int) -> str:
    mebibytes = math.ceil(size / 2**20)
    return f"{mebibytes // 1024}Gi" if mebibytes % 1024 == 0 else f"{mebibytes}Mi"


def job_manifest(target: Path | Workspace, options: JobOptions) -> str:
    if options.shards < 1:
        raise BadInput(f"--shards {options.shards}: at least 1")
    check_tag(options.tag)
    if options.registry:
        check_registry(options.registry)
    workspace = as_workspace(target)
    settings, project, prefix = workspace.settings, workspace.project, workspace.prefix
    image = workspace.image("execution", options.tag, workspace.registry(options.registry or None))
    name = options.name or f"{prefix.rpartition('/')[2]}-tests"
    if not _NAME.fullmatch(name) or len(name) > 52:
        raise BadInput(f"job name {name!r} is not a Kubernetes name (lower-case letters, digits and '-', "
                       "at most 52 characters); pass --name")
    memory = _quantity(parse_size(memory_limit("execution", settings)))
    cpus = settings.phases.execution.cpus or 2
    config_map = f"{name}-history"
    results_volume: dict[str, Any] = (
        {"name": "results", "persistentVolumeClaim": {"claimName": options.results_claim}}
        if options.results_claim else {"name": "results", "emptyDir": {}})
    labels = {"app.kubernetes.io/name": "testdock", "app.kubernetes.io/instance": name,
              "app.kubernetes.io/component": "execution"}
    # the init container copies the history (a ConfigMap, optional) where the shard may update it;
    # without one, a stale copy from an earlier run is removed: every shard must split alike
    copy_history = ("import os, shutil; source = '/history/" + HISTORY_CONFIGMAP_KEY + "'; "
                    "target = os.environ['TESTDOCK_HISTORY']; "
                    "shutil.copy(source, target) if os.path.exists(source) else "
                    "os.path.exists(target) and os.remove(target)")
    environment = [
        {"name": "TESTDOCK_SHARD_INDEX", "valueFrom": {"fieldRef": {
            "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
        {"name": "TESTDOCK_SHARDS", "value": str(options.shards)},
        {"name": "TESTDOCK_SHARD_WORKERS", "value": str(max(1, math.floor(cpus)))},
        {"name": RESULTS_DIR_ENV, "value": "/app/test-results"},
        {"name": HISTORY_ENV, "value": f"/app/test-results/{HISTORY_FILE}"},
        {"name": "HOME", "value": "/tmp"},  # the root filesystem is read-only: caches under ~ go here
    ]
    mounts = [{"name": "results", "mountPath": "/app/test-results",
               "subPathExpr": "shard-$(TESTDOCK_SHARD_INDEX)"},
              {"name": "tmp", "mountPath": "/tmp"}]
    security = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]}}
    history_mount = {"name": "history", "mountPath": "/history", "readOnly": True}
    amount = {"memory": memory, "cpu": str(cpus)}
    resources = {"requests": amount, "limits": dict(amount)}
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    if options.namespace:
        metadata["namespace"] = options.namespace
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": options.shards,
            "parallelism": options.parallelism or options.shards,
            "backoffLimitPerIndex": 1,  # a shard whose pod dies (OOM, eviction) gets one more try
            # failed tests (pytest's exit codes 1 to 5) are a result, not a reason to run again
            "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {
                "containerName": "tests", "operator": "In", "values": [1, 2, 3, 4, 5]}}]},
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": USER_ID, "runAsGroup": USER_ID,
                                        "fsGroup": USER_ID},
                    "initContainers": [{
                        "name": "history", "image": image, "command": ["python", "-c", copy_history],
                        "env": environment,
                        "volumeMounts": [*mounts, history_mount],
                        "securityContext": security,
                        "resources": {"requests": {"memory": "64Mi", "cpu": "100m"},
                                      "limits": {"memory": "64Mi", "cpu": "100m"}}}],
                    "containers": [{
                        "name": "tests", "image": image, "env": environment, "volumeMounts": mounts,
                        "securityContext": security, "resources": resources}],
                    "volumes": [
                        results_volume,
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "history", "configMap": {"name": config_map, "optional": True}},
                    ],
                },
            },
        },
    }
    header = "\n".join(f"# {line}" if line else "#" for line in [
        f"testdock: the execution phase of {project.name} as {options.shards} shards, an Indexed Job.",
        f"Each pod runs shard $JOB_COMPLETION_INDEX of {options.shards} with {memory} of memory, requested",
        "and limited alike, so pods land where the memory is and the plugin sizes its workers from it.",
        "",
        "Before: push the image (testdock build --registry REGISTRY --push), and give the shards the",
        "memory history they balance on (optional; without it tests are spread by a hash):",
        f"  kubectl create configmap {config_map} "
        f"--from-file={HISTORY_CONFIGMAP_KEY}=.testdock/{HISTORY_CONFIGMAP_KEY}",
        "Run and wait:",
        f"  kubectl apply -f job.yaml && kubectl get job {name} --watch",
        "(a shard whose tests fail marks its index failed at once; the Job then ends Failed)",
        "Results: each shard writes junit.xml, memory.json and its updated history to",
        "test-results/shard-<index>/ on the 'results' volume"
        + (f" (the claim {options.results_claim});" if options.results_claim else
           " (an emptyDir: pass --results-claim NAME to keep them on a PersistentVolumeClaim);"),
        "merge the histories with `testdock history merge .testdock/memory-history.json",
        "shard-*/memory-history.json` and update the ConfigMap for the next run.",
    ])
    return header + "\n" + yaml.safe_dump(job, sort_keys=False, width=110)
