"""Node-pool backends behind capacity providers (Karpenter's provider interface, in small):
`kwok` creates and deletes simulated Nodes itself; `scale` sets the replicas of any object with a
scale subresource (a Cluster API MachineDeployment, a Karpenter static NodePool, ...).

Sizes are absolute (what the pool should have), never increments: repeating a step after a crash
asks for the same thing again.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ecs_operator import labels as L
from ecs_operator.instances import registration_labels
from ecs_operator.models.capacity_provider import NodePool
from ecs_operator.nodepool.instance_types import ZONES, build_node, instance_type, private_ip_for
from ecs_operator.ownership import controlled_by
from ecs_operator.scaling.pool import PoolFacts

from .kube import Kube, OwnershipConflict

logger = logging.getLogger("ecs_operator")

class NodePoolBackend(Protocol):
    def size(self, nodes: list[dict[str, Any]]) -> int:
        """The pool's size: the instances it has or has been asked for."""

    def joining(self, nodes: list[dict[str, Any]]) -> int:
        """Instances asked for whose Nodes do not exist yet."""

    def gone(self, node: dict[str, Any]) -> bool:
        """The node is already on its way out of the pool (no longer counted in its size)."""

    def member(self, node: dict[str, Any]) -> bool:
        """The node labelled for the provider belongs to the pool (only members are scaled, drained, removed)."""

    def grow(self, nodes: list[dict[str, Any]], size: int, now: datetime, warmup_seconds: int,
             cluster: tuple[str, str] | None) -> list[str]:
        """Grow the pool to `size`, new nodes registering with `cluster` (namespace, cluster) where the
        backend launches them itself; returns what was added (node names, or the new replica count)."""

    def remove(self, nodes: list[dict[str, Any]], names: list[str], size: int) -> None:
        """Take these nodes out; the pool's size becomes `size`."""


JOIN_GRACE = timedelta(seconds=60)
"""How long a Node this process created counts as joining while the Node index does not show it yet."""


class LaunchedNodes:
    """By provider, the Nodes this process created and the index has not shown yet (its watch lags the
    create): they count as joining, so a round right after a scale-out neither launches them again nor
    misses them. One per process (the handler keeps it in the runtime's Context)."""

    def __init__(self) -> None:
        self._by_provider: dict[str, dict[str, datetime]] = {}
        self._guard = threading.Lock()

    def unseen(self, provider: str, seen: set[str]) -> set[str]:
        """Those not in `seen` and launched less than JOIN_GRACE ago (the others are forgotten)."""
        oldest = datetime.now(UTC) - JOIN_GRACE
        with self._guard:
            mine = self._by_provider.setdefault(provider, {})
            for name in [n for n, at in mine.items() if n in seen or at < oldest]:
                del mine[name]
            return set(mine)

    def add(self, provider: str, name: str) -> None:
        with self._guard:
            self._by_provider.setdefault(provider, {})[name] = datetime.now(UTC)


class KwokPool:
    """Simulated Nodes, named `<provider>-<n>`, spread over the pool's zones. Each is launched with a
    controller ownerReference to the CapacityProvider (`owner`): only those are ever removed; a Node
    the pool did not launch (labelled for the provider by someone else) is left alone."""

    def __init__(self, kube: Kube, provider: str, pool: NodePool, owner: dict[str, Any], launched: LaunchedNodes) -> None:
        self.kube, self.provider, self.pool, self.owner, self.launched = kube, provider, pool, owner, launched

    def size(self, nodes: list[dict[str, Any]]) -> int:
        return len(nodes) + self.joining(nodes)

    def joining(self, nodes: list[dict[str, Any]]) -> int:
        return len(self._unseen(nodes))

    def _unseen(self, nodes: list[dict[str, Any]]) -> set[str]:
        return self.launched.unseen(self.provider, {n["metadata"]["name"] for n in nodes})

    def gone(self, node: dict[str, Any]) -> bool:
        return False

    def member(self, node: dict[str, Any]) -> bool:
        """Only the Nodes the pool launched: one labelled for the provider by someone else is left alone."""
        return controlled_by(node, self.owner)

    def grow(self, nodes: list[dict[str, Any]], size: int, now: datetime, warmup_seconds: int,
             cluster: tuple[str, str] | None) -> list[str]:
        unseen = self._unseen(nodes)
        used = {n["metadata"]["name"] for n in nodes} | unseen
        zones = self.pool.zones or list(ZONES)
        itype = instance_type(self.pool.instanceType)
        labels = {L.CAPACITY_PROVIDER: L.group_label_value(self.provider), **(self.pool.nodeLabels or {})}
        if cluster:
            labels.update(registration_labels(*cluster))
        taints = [t.model_dump(exclude_none=True) for t in self.pool.taints or []]
        if warmup_seconds > 0:
            taints.append({"key": L.WARMING_UP_TAINT, "value": "true", "effect": "NoSchedule"})
        added: list[str] = []
        index = 0
        while len(nodes) + len(unseen) + len(added) < size:
            name = f"{self.provider.lower().replace('_', '-')}-{index}"
            if name not in used:
                zone = zones[(len(nodes) + len(unseen) + len(added)) % len(zones)]
                node = build_node(name, itype, zone, labels=labels, taints=taints, internal_ip=private_ip_for(index))
                node["metadata"]["annotations"][L.LAUNCHED_AT] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
                node["metadata"]["ownerReferences"] = [{**self.owner, "controller": True}]
                try:
                    self.kube.create(node)
                    added.append(name)
                    self.launched.add(self.provider, name)
                except OwnershipConflict:  # a Node of that name the pool did not launch: the next name
                    logger.warning("CapacityProvider %s: Node %s exists and was not launched by its pool; "
                                   "left alone, launching another name", self.provider, name)
            index += 1
        return added

    def remove(self, nodes: list[dict[str, Any]], names: list[str], size: int) -> None:
        """Deletes the named Nodes the pool launched (that very Node: a UID precondition)."""
        by_name = {n["metadata"]["name"]: n for n in nodes}
        for name in names:
            node = by_name.get(name)
            if node is not None and self.member(node):
                self.kube.delete("Node", None, name, uid=node["metadata"]["uid"])


class ScalePool:
    """Any object with a scale subresource; nodes chosen for removal are marked before the count drops."""

    def __init__(self, kube: Kube, pool: NodePool) -> None:
        assert pool.scaleTarget is not None  # the CRD's CEL rule and rules.py require it
        self.kube, self.target = kube, pool.scaleTarget
        self.resource = kube.discover(self.target.apiVersion, self.target.kind)
        scale = kube.get_scale(self.resource, self.target.namespace, self.target.name)
        self.replicas = int((scale.get("spec") or {}).get("replicas") or 0)

    def size(self, nodes: list[dict[str, Any]]) -> int:
        return self.replicas

    def joining(self, nodes: list[dict[str, Any]]) -> int:
        return max(0, self.replicas - len(nodes))

    def gone(self, node: dict[str, Any]) -> bool:
        return self.target.deleteAnnotation in (node["metadata"].get("annotations") or {})

    def member(self, node: dict[str, Any]) -> bool:
        """The scale target's controller launches the Nodes and labels them for the provider."""
        return True

    def grow(self, nodes: list[dict[str, Any]], size: int, now: datetime, warmup_seconds: int,
             cluster: tuple[str, str] | None) -> list[str]:
        self._set(size)
        return [f"replicas={size}"]

    def remove(self, nodes: list[dict[str, Any]], names: list[str], size: int) -> None:
        """The delete annotation first (the node-pool controller removes marked machines first when the count drops)."""
        for name in names:
            self.kube.patch("Node", None, name,
                            {"metadata": {"annotations": {self.target.deleteAnnotation: "yes", L.LEAVING: None}}})
        self._set(size)

    def _set(self, replicas: int) -> None:
        self.kube.set_scale(self.resource, self.target.namespace, self.target.name, replicas)
        self.replicas = replicas


def backend_for(kube: Kube, provider: str, pool: NodePool, owner: dict[str, Any], launched: LaunchedNodes) -> NodePoolBackend:
    """`owner`: the CapacityProvider's ownerReference (a kwok pool's Nodes are controlled by it)."""
    return KwokPool(kube, provider, pool, owner, launched) if pool.backend == "kwok" else ScalePool(kube, pool)


def pool_facts(backend: NodePoolBackend, labelled: list[dict[str, Any]]) -> PoolFacts:
    """What the backend says of the Nodes labelled for the provider (those being deleted excluded)."""
    members = [n for n in labelled if not n["metadata"].get("deletionTimestamp") and backend.member(n)]
    return PoolFacts(members=members, gone=frozenset(n["metadata"]["name"] for n in members if backend.gone(n)),
                     size=backend.size(members), joining=backend.joining(members))
