"""Nodes as ECS container instances: attributes, registered and remaining resources (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecs_operator import labels as L
from ecs_operator.lifecycle.pods import parse_time
from ecs_operator.placement.query import Instance
from ecs_operator.quantity import parse_quantity

_LABEL_TO_ATTRIBUTE = {label: name for name, label in L.BUILTIN_ATTRIBUTES.items()}
SHARED = "*"
"""The namespace part of a shared instance's cluster key: it serves the cluster of that name in every namespace."""


def cluster_key(labels: dict[str, str]) -> tuple[str, str] | None:
    """(namespace, cluster label value) of the cluster a node is a container instance of, namespace SHARED
    for a shared instance; None when it serves no cluster: the cluster label alone names no namespace's
    cluster (docs/ecs-semantics.md §Clusters belong to a namespace)."""
    cluster = labels.get(L.CLUSTER)
    if not cluster:
        return None
    if labels.get(L.SHARED_INSTANCE) == "true":
        return (SHARED, cluster)
    namespace = labels.get(L.CLUSTER_NAMESPACE)
    return (namespace, cluster) if namespace else None


def registration_labels(namespace: str, cluster: str) -> dict[str, str]:
    """The labels that register a node with cluster `cluster` of `namespace` (what an ASG's user data does)."""
    return {L.CLUSTER: L.group_label_value(cluster), L.CLUSTER_NAMESPACE: namespace}


def attributes_of(node: dict[str, Any]) -> dict[str, str]:
    """ECS attributes from node labels: the built-in ones from well-known labels, custom ones from
    `attributes.ecs.operator.dev/<name>` labels."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    out: dict[str, str] = {}
    for key, value in labels.items():
        if key in _LABEL_TO_ATTRIBUTE:
            name = _LABEL_TO_ATTRIBUTE[key]
            out[name] = L.ARCH_TO_ECS.get(value, value) if name == "ecs.cpu-architecture" else value
        elif key.startswith(L.ATTRIBUTE_PREFIX):
            out[key[len(L.ATTRIBUTE_PREFIX):]] = value
    if labels.get(L.EXTERNAL) == "true":
        out["ecs.capability.external"] = ""
    return out


def ready_condition(node: dict[str, Any]) -> dict[str, Any]:
    """The Node's Ready condition ({} while it has none)."""
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})


def agent_connected(node: dict[str, Any]) -> bool:
    """The Node's Ready condition stands for the ECS agent's connection."""
    return ready_condition(node).get("status") == "True"


def _cpu_units(quantity: str) -> int:
    """A Kubernetes CPU quantity (`500m`, `2`, `1k`, `1e3`) in ECS CPU units (1024 per vCPU)."""
    return int(parse_quantity(quantity) * 1024)


def _memory_mib(quantity: str) -> int:
    """A Kubernetes memory quantity (`512Mi`, `1e9`, `1T`, `1Pi`, `1000k`) in MiB, rounded down."""
    return int(parse_quantity(quantity) / 1048576)


@dataclass(frozen=True)
class Resources:
    cpu: int
    memory: int
    gpu: int
    ports: frozenset[int]
    udp_ports: frozenset[int]


# The ECS agent reserves these TCP ports on every instance by default.
RESERVED_PORTS = frozenset({22, 2375, 2376, 51678, 51679})


def registered_resources(node: dict[str, Any]) -> Resources:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return Resources(
        cpu=_cpu_units(str(allocatable.get("cpu", "0"))),
        memory=_memory_mib(str(allocatable.get("memory", "0"))),
        gpu=int(allocatable.get("nvidia.com/gpu", 0)),
        ports=RESERVED_PORTS,
        udp_ports=frozenset(),
    )


def pod_reservation(pod: dict[str, Any]) -> Resources:
    """What a task reserves: Pod-level resources if set, else the sum of its containers' requests."""
    spec = pod.get("spec") or {}
    pod_level = (spec.get("resources") or {}).get("requests") or {}
    cpu = memory = gpu = 0
    if pod_level:
        cpu = _cpu_units(str(pod_level.get("cpu", "0")))
        memory = _memory_mib(str(pod_level.get("memory", "0")))
    containers = spec.get("containers") or []
    if not pod_level.get("cpu"):
        cpu = sum(_cpu_units(str(((c.get("resources") or {}).get("requests") or {}).get("cpu", "0"))) for c in containers)
    if not pod_level.get("memory"):
        memory = sum(
            _memory_mib(str(((c.get("resources") or {}).get("requests") or {}).get("memory")
                            or ((c.get("resources") or {}).get("limits") or {}).get("memory", "0")))
            for c in containers
        )
    gpu = sum(int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0)) for c in containers)
    tcp = {p["hostPort"] for c in containers for p in c.get("ports") or []
           if p.get("hostPort") and p.get("protocol", "TCP") == "TCP"}
    udp = {p["hostPort"] for c in containers for p in c.get("ports") or [] if p.get("hostPort") and p.get("protocol") == "UDP"}
    if spec.get("hostNetwork"):
        tcp |= {p["containerPort"] for c in containers for p in c.get("ports") or [] if p.get("protocol", "TCP") == "TCP"}
        udp |= {p["containerPort"] for c in containers for p in c.get("ports") or [] if p.get("protocol") == "UDP"}
    return Resources(cpu, memory, gpu, frozenset(tcp), frozenset(udp))


def is_active(pod: dict[str, Any]) -> bool:
    """A task that holds its reservation: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed")


def on_instance(pod: dict[str, Any]) -> bool:
    """A task ECS counts on its container instance: not a FARGATE one, which ECS counts in its cluster only,
    even where the node it runs on is a container instance too (docs/ecs-semantics.md §FARGATE runs on
    nodes an administrator sets aside)."""
    return ((pod.get("metadata") or {}).get("labels") or {}).get(L.LAUNCH_TYPE) != "FARGATE"


def remaining_resources(node: dict[str, Any], pods: Iterable[dict[str, Any]]) -> Resources:
    registered = registered_resources(node)
    active = [pod_reservation(p) for p in pods if is_active(p)]
    return Resources(
        cpu=registered.cpu - sum(r.cpu for r in active),
        memory=registered.memory - sum(r.memory for r in active),
        gpu=registered.gpu - sum(r.gpu for r in active),
        ports=registered.ports.union(*(r.ports for r in active)),
        udp_ports=registered.udp_ports.union(*(r.udp_ports for r in active)),
    )


def ecs_resources(r: Resources) -> list[dict[str, Any]]:
    """ECS's Resource shapes (name/type/value) as describe-container-instances returns them."""
    return [
        {"name": "CPU", "type": "INTEGER", "integerValue": r.cpu},
        {"name": "MEMORY", "type": "INTEGER", "integerValue": r.memory},
        {"name": "PORTS", "type": "STRINGSET", "stringSetValue": sorted(str(p) for p in r.ports)},
        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": sorted(str(p) for p in r.udp_ports)},
        {"name": "GPU", "type": "INTEGER", "integerValue": r.gpu},
    ]


def pod_group(pod: dict[str, Any]) -> str | None:
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(f"{L.API_GROUP}/group")


def instance_for_placement(node: dict[str, Any], pods: Iterable[dict[str, Any]]) -> Instance:
    """What the cluster query language sees of a node."""
    active = [p for p in pods if is_active(p) and on_instance(p)]
    meta = node.get("metadata") or {}
    return Instance(
        ec2InstanceId=meta.get("name", ""),
        attributes=attributes_of(node),
        agentConnected=agent_connected(node),
        registeredAt=parse_time(meta.get("creationTimestamp")) or datetime(1970, 1, 1, tzinfo=UTC),
        runningTasksCount=len(active),
        task_groups=frozenset(g for g in (pod_group(p) for p in active) if g),
    )
