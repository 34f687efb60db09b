"""Manifests and look-ups the operator's e2e tests share: ECS objects as a user writes them, their
status as the operator reports it, the Events it posts, and dedicated kwok nodes for tests that
must own their container instances (EXTERNAL, DRAINING, resource accounting)."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.instances import registration_labels
from ecs_operator.nodepool.instance_types import build_node, instance_type
from operator_fixtures import wait_for

API = f"{API_GROUP}/{API_VERSION}"
KUBECTL = str(Path(sys.executable).parent / "kubectl")


def unique(prefix: str) -> str:
    """A name no other test uses (nodes and ECS clusters of their own)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def cluster(name: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": spec}


def task_definition(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "TaskDefinition", "metadata": {"name": name},
            "spec": {"family": name, "containerDefinitions": list(containers), **spec}}


def task(name: str, task_definition: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Task", "metadata": {"name": name}, "spec": {"taskDefinition": task_definition, **spec}}


def container(name: str, image: str = "nginx:1.29", **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **fields}


def apply_all(sandbox: Any, namespace: str, *objects: dict[str, Any]) -> None:
    """One `kubectl apply` of all of them, as a user applies a manifest file."""
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def status(sandbox: Any, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    scope = ["-n", namespace] if namespace else []
    result = sandbox.kubectl("get", kind, name, *scope, "-o", "json", check=False)
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout).get("status") or {}


def wait_task(sandbox: Any, namespace: str, name: str, last_status: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(lambda: (s := status(sandbox, "task", name, namespace)).get("lastStatus") == last_status and s,
                    timeout=timeout, what=f"task {name} {last_status}")


def condition(obj_status: dict[str, Any], kind: str = "Ready") -> dict[str, Any]:
    return next((c for c in obj_status.get("conditions") or [] if c["type"] == kind), {})


def events(sandbox: Any, namespace: str, name: str | None = None, reason: str | None = None) -> list[dict[str, Any]]:
    """Events in the namespace (about `name`, with `reason`), oldest first."""
    selectors = [f"involvedObject.name={name}"] if name else []
    if reason:
        selectors.append(f"reason={reason}")
    args = ["get", "events", "-n", namespace, "-o", "json"] + (["--field-selector", ",".join(selectors)] if selectors else [])
    items = json.loads(sandbox.kubectl(*args).stdout)["items"]
    return sorted(items, key=event_time)


def event_time(event: dict[str, Any]) -> datetime:
    """When an Event was posted, as precisely as it says: eventTime has microseconds, lastTimestamp
    whole seconds (two Events of one second would otherwise come in any order)."""
    text = event.get("eventTime") or event.get("lastTimestamp") or event["metadata"]["creationTimestamp"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def events_seen(sandbox: Any, namespace: str, name: str | None = None, reason: str | None = None,
                count: int = 1, timeout: float = 30) -> list[dict[str, Any]]:
    """`events(...)` once at least `count` are there. The operator posts Events asynchronously, so the
    state an Event describes can be visible before the Event is; callers then assert the exact list."""
    def seen() -> list[dict[str, Any]]:
        found = events(sandbox, namespace, name, reason)
        return found if len(found) >= count else []
    return wait_for(seen, timeout, what=f"{count} Event(s) {reason or ''} about {name or namespace}")


def pods(sandbox: Any, namespace: str, task_name: str | None = None) -> list[dict[str, Any]]:
    selector = ["-l", f"{API_GROUP}/task={task_name}"] if task_name else []
    return sandbox.kubectl_json("get", "pods", "-n", namespace, *selector)["items"]


def resources(instance_status: dict[str, Any], which: str) -> dict[str, Any]:
    """registeredResources / remainingResources as {CPU: 4096, MEMORY: 16384, PORTS: [...], ...}."""
    out = {}
    for r in instance_status.get(which) or []:
        out[r["name"]] = r.get("integerValue", r.get("stringSetValue"))
    return out


@contextmanager
def kwok_nodes(sandbox: Any, names: list[str], cluster_name: str, namespace: str, type_name: str = "m5.large",
               zones: tuple[str, ...] = ("us-east-1a",), labels: dict[str, str] | None = None) -> Iterator[list[str]]:
    """Container instances of their own: kwok nodes registered with ECS cluster `cluster_name` of `namespace`,
    deleted afterwards."""
    try:
        for index, name in enumerate(names):
            node = build_node(name, instance_type(type_name), zones[index % len(zones)],
                              labels={**registration_labels(namespace, cluster_name), **(labels or {})})
            sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
        wait_for(lambda: all(_node_ready(sandbox, n) for n in names), timeout=60, what=f"nodes {names} Ready")
        yield names
    finally:
        sandbox.kubectl("delete", "node", *names, "--wait=false", check=False)


def _node_ready(sandbox: Any, name: str) -> bool:
    node = sandbox.kubectl_json("get", "node", name)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"].get("conditions") or [])


def watch(sandbox: Any, resource: str, namespace: str | None = None) -> subprocess.Popen[str]:
    """`kubectl get --watch-only` of one object or kind: one line per change seen from now on."""
    scope = ["-n", namespace] if namespace else []
    return subprocess.Popen([KUBECTL, "get", resource, *scope, "--watch-only", "--output-watch-events", "-o", "name"],
                            env=sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The first line the process prints, waiting at most `timeout` seconds."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline().strip() if ready else ""


def changes_during(sandbox: Any, seconds: float, *resources: tuple[str, str | None]) -> list[str]:
    """Every change of these objects ((resource, namespace) pairs) during a window of `seconds`."""
    watches = [watch(sandbox, resource, namespace) for resource, namespace in resources]
    time.sleep(seconds)  # the window under observation, not a wait for a condition
    seen: list[str] = []
    for process in watches:
        process.kill()
        seen += process.communicate()[0].split("\n")
    return [line for line in seen if line.strip()]
