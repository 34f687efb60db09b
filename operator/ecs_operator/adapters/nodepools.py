"""Node-pool backends behind capacity providers (Karpenter's provider interface, in small):
`kwok` creates and deletes simulated Nodes itself; `scale` sets the replicas of any object with a
scale subresource (a Cluster API MachineDeployment, a Karpenter static NodePool, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ecs_operator import API_GROUP
from ecs_operator import labels as L
from ecs_operator.models.capacity_provider import NodePool
from ecs_operator.nodepool.instance_types import ZONES, build_node, instance_type, private_ip_for

from .kube import Kube

WARMING_UP_TAINT = f"{API_GROUP}/warming-up"
"""A new kwok node takes no tasks until instanceWarmupPeriod has passed (an instance still booting)."""


class NodePoolBackend(Protocol):
    def size(self, nodes: list[dict[str, Any]]) -> int:
        """The pool's current size N (what the backend has been asked for, or the nodes that exist)."""

    def grow(self, nodes: list[dict[str, Any]], count: int, now: datetime) -> list[str]:
        """Add `count` instances; returns what was added (node names, or the new replica count)."""

    def remove(self, nodes: list[dict[str, Any]], names: list[str]) -> None:
        """Take these nodes out of the pool."""


class KwokPool:
    """Simulated Nodes, named `<provider>-<n>`, spread over the pool's zones."""

    def __init__(self, kube: Kube, provider: str, pool: NodePool, cluster: str | None) -> None:
        self.kube, self.provider, self.pool, self.cluster = kube, provider, pool, cluster

    def size(self, nodes: list[dict[str, Any]]) -> int:
        return len(nodes)

    def grow(self, nodes: list[dict[str, Any]], count: int, now: datetime) -> list[str]:
        used = {n["metadata"]["name"] for n in nodes}
        zones = self.pool.zones or list(ZONES)
        itype = instance_type(self.pool.instanceType)
        labels = {L.CAPACITY_PROVIDER: L.group_label_value(self.provider), **(self.pool.nodeLabels or {})}
        if self.cluster:
            labels[L.CLUSTER] = L.group_label_value(self.cluster)
        taints = [t.model_dump(exclude_none=True) for t in self.pool.taints or []]
        taints.append({"key": WARMING_UP_TAINT, "value": "true", "effect": "NoSchedule"})
        added: list[str] = []
        index = 0
        while len(added) < count:
            name = f"{self.provider.lower()}-{index}"
            if name not in used:
                zone = zones[(len(nodes) + len(added)) % len(zones)]
                node = build_node(name, itype, zone, labels=labels, taints=taints, internal_ip=private_ip_for(index))
                node["metadata"]["annotations"][f"{API_GROUP}/launched-at"] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
                self.kube.create(node)
                added.append(name)
            index += 1
        return added

    def remove(self, nodes: list[dict[str, Any]], names: list[str]) -> None:
        for name in names:
            self.kube.delete("Node", None, name)


class ScalePool:
    """Any object with a scale subresource; nodes chosen for removal are marked before the count drops."""

    def __init__(self, kube: Kube, pool: NodePool) -> None:
        assert pool.scaleTarget is not None  # the CRD's CEL rule and rules.py require it
        self.kube, self.target = kube, pool.scaleTarget
        self.resource = kube.discover(self.target.apiVersion, self.target.kind)

    def replicas(self) -> int:
        scale = self.kube.get_scale(self.resource, self.target.namespace, self.target.name)
        return int((scale.get("spec") or {}).get("replicas") or 0)

    def size(self, nodes: list[dict[str, Any]]) -> int:
        return max(len(nodes), self.replicas())

    def grow(self, nodes: list[dict[str, Any]], count: int, now: datetime) -> list[str]:
        replicas = self.replicas() + count
        self.kube.set_scale(self.resource, self.target.namespace, self.target.name, replicas)
        return [f"replicas={replicas}"]

    def remove(self, nodes: list[dict[str, Any]], names: list[str]) -> None:
        for name in names:
            self.kube.patch("Node", None, name, {"metadata": {"annotations": {self.target.deleteAnnotation: "yes"}}})
        replicas = max(0, self.replicas() - len(names))
        self.kube.set_scale(self.resource, self.target.namespace, self.target.name, replicas)


def backend_for(kube: Kube, provider: str, pool: NodePool, cluster: str | None) -> NodePoolBackend:
    return KwokPool(kube, provider, pool, cluster) if pool.backend == "kwok" else ScalePool(kube, pool)
