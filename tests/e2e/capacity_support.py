"""What the capacity provider end-to-end tests share: manifests, the pool's nodes and tasks as the
cluster shows them, and a watch that records every change of the pool's nodes (so a bound that held
on every change held throughout).

Each test owns its provider (cluster-scoped, uniquely named) and an ECS cluster of its own name, so
no other test's tasks land on its nodes and its pool never touches the sandbox's nodes.
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_objects import API, KUBECTL, event_time, status, unique
from operator_fixtures import wait_for

from ecs_operator import API_GROUP
from ecs_operator import labels as L
from ecs_operator.nodepool.instance_types import build_node, instance_type

PROVIDER_LABEL = L.CAPACITY_PROVIDER


def capacity_provider(name: str, allowed: list[str], *, max_size: int = 10, min_size: int = 0, instance_type: str = "m5.large",
                      scale_in_after: int = 600, protection: str | None = None, draining: str | None = None,
                      backend: str = "kwok", scale_target: dict[str, Any] | None = None, **managed: Any) -> dict[str, Any]:
    """A CapacityProvider that the `allowed` namespaces (or namespace/cluster pairs) may use; `managed` are
    managedScaling fields (warm-up 0 unless given)."""
    asg: dict[str, Any] = {"managedScaling": {"status": "ENABLED", "instanceWarmupPeriod": 0, **managed}}
    if protection:
        asg["managedTerminationProtection"] = protection
    if draining:
        asg["managedDraining"] = draining
    pool: dict[str, Any] = {"backend": backend, "instanceType": instance_type, "minSize": min_size, "maxSize": max_size}
    if scale_target:
        pool["scaleTarget"] = scale_target
    return {"apiVersion": API, "kind": "CapacityProvider", "metadata": {"name": name},
            "spec": {"autoScalingGroupProvider": asg, "kubernetes": {"allowedNamespaces": allowed, "nodePool": pool,
                                                                     "scaleInAfterSeconds": scale_in_after}}}


def ecs_cluster(name: str, *providers: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"capacityProviders": list(providers)}
    if providers:
        spec["defaultCapacityProviderStrategy"] = [{"capacityProvider": providers[0], "weight": 1}]
    return {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": spec}


def sized_task_definition(family: str, cpu: int = 512, memory: int = 1536, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """One container reserving `cpu` units and `memory` MiB (what bin-packing counts)."""
    spec: dict[str, Any] = {"family": family, "containerDefinitions": [
        {"name": "app", "image": "nginx:1.29", "cpu": cpu, "memory": memory, "essential": True}]}
    if annotations:
        spec["kubernetes"] = {"podAnnotations": annotations}
    return {"apiVersion": API, "kind": "TaskDefinition", "metadata": {"name": family}, "spec": spec}


def ecs_service(name: str, cluster: str, task_definition: str, desired: int, *providers: str, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"cluster": cluster, "taskDefinition": task_definition, "desiredCount": desired, **extra}
    if providers:
        spec["capacityProviderStrategy"] = [{"capacityProvider": p, "weight": 1} for p in providers]
    return {"apiVersion": API, "kind": "Service", "metadata": {"name": name}, "spec": spec}


def apply_objects(sandbox: Any, namespace: str, *objects: dict[str, Any]) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def patch(sandbox: Any, resource: str, name: str, body: dict[str, Any], namespace: str | None = None) -> None:
    scope = ["-n", namespace] if namespace else []
    sandbox.kubectl("patch", resource, name, *scope, "--type=merge", "-p", json.dumps(body))


def provider_status(sandbox: Any, name: str) -> dict[str, Any]:
    return status(sandbox, f"capacityproviders.{API_GROUP}", name)


def pool_nodes(sandbox: Any, provider: str) -> list[dict[str, Any]]:
    return sandbox.kubectl_json("get", "nodes", "-l", f"{PROVIDER_LABEL}={provider}")["items"]


def pool_node_names(sandbox: Any, provider: str) -> list[str]:
    return sorted(n["metadata"]["name"] for n in pool_nodes(sandbox, provider))


def service_pods(sandbox: Any, namespace: str, service: str) -> list[dict[str, Any]]:
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", f"{L.SERVICE}={service}")["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def running_on(pods: list[dict[str, Any]]) -> dict[str, int]:
    """node -> Running tasks on it."""
    out: dict[str, int] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("phase") == "Running":
            out[pod["spec"]["nodeName"]] = out.get(pod["spec"]["nodeName"], 0) + 1
    return out


def service_running(sandbox: Any, namespace: str, service: str, count: int, waiting: int = 0) -> bool:
    """The ECS view (runningCount, pendingCount) and the Pods agree: `count` tasks RUNNING, `waiting` not placed."""
    state = status(sandbox, f"services.{API_GROUP}", service, namespace)
    pods = service_pods(sandbox, namespace, service)
    return (state.get("runningCount"), state.get("pendingCount")) == (count, waiting) and \
        sum(running_on(pods).values()) == count and len(pods) == count + waiting


def provider_events(sandbox: Any, provider: str) -> list[dict[str, Any]]:
    """Events about the cluster-scoped provider (in the default namespace, as Kubernetes wants), oldest first."""
    items = sandbox.kubectl_json("get", "events", "-A", "--field-selector",
                                 f"involvedObject.kind=CapacityProvider,involvedObject.name={provider}")["items"]
    return sorted(items, key=event_time)


def activities(sandbox: Any, provider: str) -> list[str]:
    return [e["message"] for e in provider_events(sandbox, provider) if e["reason"] in ("ScaleOut", "ScaleIn")]


def activities_seen(sandbox: Any, provider: str, count: int, prefix: str = "") -> list[str]:
    """The scaling activities (starting with `prefix`) once at least `count` were posted. Events are posted
    asynchronously: the nodes and tasks a decision made may be visible before its Event is."""
    def seen() -> list[str]:
        found = [a for a in activities(sandbox, provider) if a.startswith(prefix)]
        return found if len(found) >= count else []
    return wait_for(seen, 30, what=f"{count} scaling activities {prefix!r} of {provider}")


def ecs_formula(tasks: int, per_instance: int, target: int) -> int:
    """ceil(M * 100 / targetCapacity) with M = ceil(tasks / per_instance) (identical tasks bin-pack that way)."""
    return math.ceil(math.ceil(tasks / per_instance) * 100 / target)


@dataclass
class Watch:
    """Every change of some objects from now on (`kubectl get --watch`), with when it was seen, kept by a thread."""

    sandbox: Any
    args: tuple[str, ...]
    seen: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None

    @classmethod
    def nodes(cls, sandbox: Any, provider: str) -> Watch:
        return cls(sandbox, ("nodes", "-l", f"{PROVIDER_LABEL}={provider}")).start()

    @classmethod
    def pods(cls, sandbox: Any, namespace: str) -> Watch:
        return cls(sandbox, ("pods", "-n", namespace)).start()

    def start(self) -> Watch:
        self.process = subprocess.Popen([KUBECTL, "get", *self.args, "--watch", "--output-watch-events", "-o", "json"],
                                        env=self.sandbox.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        for line in self.process.stdout:
            buffer += line
            try:
                event, _ = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            buffer = ""
            self.seen.append((time.monotonic(), event["type"], event["object"]))

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def events(self, name: str | None = None) -> list[tuple[float, str, dict[str, Any]]]:
        return [e for e in list(self.seen) if name is None or e[2]["metadata"]["name"] == name]

    def most(self) -> int:
        """The largest number of the objects that existed at once."""
        alive: set[str] = set()
        peak = 0
        for _, kind, obj in self.events():
            (alive.discard if kind == "DELETED" else alive.add)(obj["metadata"]["name"])
            peak = max(peak, len(alive))
        return peak

    def deleted_at(self, name: str) -> float | None:
        return next((t for t, kind, _ in self.events(name) if kind == "DELETED"), None)


@pytest.fixture
def providers(sandbox: Any) -> Iterator[list[str]]:
    """Names for this test's CapacityProviders; they (and their kwok nodes) are deleted afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        sandbox.kubectl("delete", f"capacityproviders.{API_GROUP}", name, "--wait=false", "--ignore-not-found", check=False)
        sandbox.kubectl("delete", "nodes", "-l", f"{PROVIDER_LABEL}={name}", "--wait=false", check=False)


def new_provider(providers: list[str], prefix: str = "cp") -> str:
    name = unique(prefix)
    providers.append(name)
    return name


def wait_pool(sandbox: Any, provider: str, size: int, timeout: float = 90) -> list[str]:
    """The pool's node names once it has exactly `size` nodes."""
    found: list[list[str]] = []

    def check() -> bool:
        found[:] = [pool_node_names(sandbox, provider)]
        return len(found[0]) == size

    wait_for(check, timeout=timeout, what=f"pool {provider} at {size} nodes")
    return found[0]


NODE_GROUP_CRD = Path(__file__).parent / "fixtures" / "nodegroup-crd.yaml"
NODE_GROUPS = "nodegroups.pools.test.ecs.operator.dev"


@dataclass
class NodeGroupController:
    """Plays the node-pool controller behind a `scale` backend: the provider's Nodes follow the NodeGroup's
    replicas. When the count drops it deletes the nodes carrying the delete annotation first (as Cluster
    API's MachineSet does) and records every node it had to pick itself."""

    sandbox: Any
    namespace: str
    group: str
    provider: str
    annotation: str = "cluster.x-k8s.io/delete-machine"
    created: list[str] = field(default_factory=list)
    deleted_marked: list[str] = field(default_factory=list)
    deleted_unmarked: list[str] = field(default_factory=list)
    stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> NodeGroupController:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def replicas(self) -> int:
        group = self.sandbox.kubectl_json("get", NODE_GROUPS, self.group, "-n", self.namespace)
        return int(group["spec"].get("replicas") or 0)

    def _run(self) -> None:
        while not self.stopped.wait(0.3):  # a controller's resync, not a wait for a condition
            wanted, nodes = self.replicas(), pool_nodes(self.sandbox, self.provider)
            for _ in range(wanted - len(nodes)):
                name = f"{self.group}-{len(self.created)}"
                node = build_node(name, instance_type("m5.large"), "us-east-1a", labels={PROVIDER_LABEL: self.provider})
                self.sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
                self.created.append(name)
            excess = len(nodes) - wanted
            if excess > 0:
                marked = [n["metadata"]["name"] for n in nodes if self.annotation in (n["metadata"].get("annotations") or {})]
                others = sorted((n["metadata"]["name"] for n in nodes if n["metadata"]["name"] not in marked), reverse=True)
                self.deleted_marked += marked[:excess]
                self.deleted_unmarked += others[:max(0, excess - len(marked))]
                self.sandbox.kubectl("delete", "node", *(marked + others)[:excess], "--wait=false")
