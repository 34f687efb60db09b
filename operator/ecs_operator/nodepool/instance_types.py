"""EC2 instance types and the kwok Node objects that stand in for them.

A simulated node looks like an EKS worker of that instance type (well-known labels, capacity, max
pods from the instance's ENI limits), so scheduling, topology spread and the operator's capacity
accounting behave as on AWS. The `kwok.x-k8s.io/node: fake` annotation hands the node to kwok,
which marks it Ready, renews its Lease and moves the pods bound to it through their life cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
GPU_RESOURCE = "nvidia.com/gpu"
# EKS's default root volume; the same on every type keeps ephemeral-storage requests predictable.
EPHEMERAL_STORAGE = "20Gi"


@dataclass(frozen=True)
class InstanceType:
    """The parts of an EC2 instance type that matter to a scheduler."""

    name: str
    cpu: int
    """vCPUs."""
    memory_mib: int
    max_pods: int
    """EKS's ENI-based pod limit for the type (the VPC CNI default, no prefix delegation)."""
    arch: str = "amd64"
    gpus: int = 0

    def capacity(self) -> dict[str, str]:
        """The Node's `status.capacity` (and allocatable: nothing is reserved on a fake node)."""
        resources = {
            "cpu": str(self.cpu),
            "memory": f"{self.memory_mib}Mi",
            "pods": str(self.max_pods),
            "ephemeral-storage": EPHEMERAL_STORAGE,
        }
        if self.gpus:
            resources[GPU_RESOURCE] = str(self.gpus)
        return resources


INSTANCE_TYPES: dict[str, InstanceType] = {
    t.name: t
    for t in (
        InstanceType("t3.medium", cpu=2, memory_mib=4096, max_pods=17),
        InstanceType("c5.large", cpu=2, memory_mib=4096, max_pods=29),
        InstanceType("m5.large", cpu=2, memory_mib=8192, max_pods=29),
        InstanceType("r5.large", cpu=2, memory_mib=16384, max_pods=29),
        InstanceType("m6g.large", cpu=2, memory_mib=8192, max_pods=29, arch="arm64"),
        InstanceType("c5.xlarge", cpu=4, memory_mib=8192, max_pods=58),
        InstanceType("m5.xlarge", cpu=4, memory_mib=16384, max_pods=58),
        InstanceType("m5.2xlarge", cpu=8, memory_mib=32768, max_pods=58),
        InstanceType("g4dn.xlarge", cpu=4, memory_mib=16384, max_pods=29, gpus=1),
    )
}
DEFAULT_INSTANCE_TYPE = "m5.xlarge"


def instance_type(name: str) -> InstanceType:
    """The named type, or a ValueError listing the known ones."""
    try:
        return INSTANCE_TYPES[name]
    except KeyError:
        raise ValueError(f"unknown instance type {name!r}; known: {', '.join(INSTANCE_TYPES)}") from None


def zone_for(index: int) -> str:
    """Zones round-robin, so N nodes spread over a, b, c as an auto scaling group would."""
    return ZONES[index % len(ZONES)]


def private_ip_for(index: int) -> str:
    """A private address for the index-th node, in its zone's subnet (10.0.0.0/20, 10.0.16.0/20, ...)."""
    zone, slot = index % len(ZONES), index // len(ZONES) + 10
    return f"10.0.{16 * zone + slot // 256}.{slot % 256}"


def build_node(
    name: str,
    instance_type: InstanceType,
    zone: str,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    internal_ip: str | None = None,
) -> dict[str, Any]:
    """A Node manifest for kwok to manage. `labels` are added to (and may override) the well-known ones;
    `internal_ip` becomes its InternalIP address (and pods' hostIP), as a VPC address would."""
    capacity = instance_type.capacity()
    node: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: "fake"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": instance_type.arch,
                "node.kubernetes.io/instance-type": instance_type.name,
                "topology.kubernetes.io/region": REGION,
                "topology.kubernetes.io/zone": zone,
                **(labels or {}),
            },
        },
        "spec": {"providerID": f"kwok://{name}", "taints": list(taints or [])},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "nodeInfo": {"architecture": instance_type.arch, "operatingSystem": "linux"},
        },
    }
    if internal_ip:
        node["status"]["addresses"] = [{"type": "InternalIP", "address": internal_ip},
                                       {"type": "Hostname", "address": name}]
    return node
