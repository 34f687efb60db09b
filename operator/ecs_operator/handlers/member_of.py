"""Operator-maintained memberOf node labels: kept current on the container instances.

The labels a workload needs come from its Pod template's annotations (a Service's Deployment or
DaemonSet, a standalone Task's Pods); a label is set where its expression holds now and removed where
it does not or when no workload needs it any more. A change of a Node (its attributes, readiness),
of a task Pod on it (runningTasksCount, task:group) or of the workloads recomputes the labels, in one
worker per process (the runtime's) that batches them; a slow resync repairs anything missed
(docs/ecs-semantics.md §memberOf is evaluated at placement time). Only labels under
memberof.ecs.operator.dev/ are written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields
from typing import Any

import kopf

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.instances import is_active
from ecs_operator.member_of import Use, bounded, label_patch, uses_of, wanted
from ecs_operator.ownership import controller_of
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence

from .common import kopf_callback
from .resources import DAEMON_SETS, DEPLOYMENTS, NODES, PODS

KIND = "MemberOf"
RESYNC_SECONDS = 60
CADENCE = Cadence(resync=RESYNC_SECONDS, batching=Batching(idle=1.0, max=5.0))
"""Changes within a second lead to one round (and at most one write per Node)."""
MANAGED = {L.MANAGED_BY: L.MANAGED_BY_VALUE}
logger = logging.getLogger(__name__)


def _controlled_by(body: kopf.Body, kind: str) -> bool:
    ref = controller_of(body)
    return ref is not None and ref.get("apiVersion") == f"{API_GROUP}/{API_VERSION}" and ref.get("kind") == kind


async def _template_uses(body: kopf.Body, namespace: str, **_: Any) -> dict[str, tuple[Use, ...]]:
    """namespace -> the labels the Pod template of an ECS Service's workload asks for."""
    if not _controlled_by(body, "Service"):
        return {}
    meta = ((body.get("spec") or {}).get("template") or {}).get("metadata") or {}
    uses = uses_of(namespace, meta.get("labels") or {}, meta.get("annotations") or {})
    return {namespace: uses} if uses else {}


member_of_deployments = kopf.index(*DEPLOYMENTS, labels=MANAGED, id="member_of_deployments")(kopf_callback(_template_uses))
member_of_daemon_sets = kopf.index(*DAEMON_SETS, labels=MANAGED, id="member_of_daemon_sets")(kopf_callback(_template_uses))


@kopf.index(*PODS, labels=MANAGED)
@kopf_callback
async def member_of_task_pods(body: kopf.Body, namespace: str, **_: Any) -> dict[str, tuple[Use, ...]]:
    """namespace -> the labels a standalone Task's Pod asks for while it is not finished."""
    if not _controlled_by(body, "Task") or not is_active(dict(body)):
        return {}
    meta = body.metadata
    uses = uses_of(namespace, dict(meta.labels), dict(meta.annotations))
    return {namespace: uses} if uses else {}


@dataclass(frozen=True)
class Views:
    nodes: kopf.Index
    node_pods: kopf.Index
    member_of_deployments: kopf.Index
    member_of_daemon_sets: kopf.Index
    member_of_task_pods: kopf.Index

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Views:
        return cls(**{f.name: kwargs[f.name] for f in fields(cls)})

    def uses(self) -> list[Use]:
        """Every use, unbounded."""
        indexes = (self.member_of_deployments, self.member_of_daemon_sets, self.member_of_task_pods)
        return [u for index in indexes for entries in index.values() for uses in entries for u in uses]


def labels_in_use(namespace: str, *indexes: kopf.Index) -> AbstractSet[str]:
    """The operator-maintained labels the namespace's workloads use now (member_of_* indexes), for the
    per-namespace bound the translation checks."""
    return {u.label for index in indexes for uses in index.get(namespace, []) for u in uses}


class Pending:
    """The Nodes whose labels need a look since the worker's last round (None marked: every Node). One
    per process, in the runtime's Context."""

    def __init__(self) -> None:
        self._nodes: set[str] = set()
        self._everything = False
        self._guard = threading.Lock()

    def mark(self, node: str | None) -> None:
        with self._guard:
            if node is None:
                self._everything = True
            else:
                self._nodes.add(node)

    def take(self) -> tuple[frozenset[str], bool]:
        """The marked Nodes, and whether every Node is due (also when none is marked: the resync)."""
        with self._guard:
            nodes, everything = frozenset(self._nodes), self._everything or not self._nodes
            self._nodes.clear()
            self._everything = False
        return nodes, everything


def _look(memo: Context, views: Views, node: str | None) -> None:
    """Mark the Node (None: every Node) and wake the process's member-of worker (started on first use):
    changes within a second are one round, and it looks at every Node each RESYNC_SECONDS anyway."""
    memo.state(Pending).mark(node)

    def failed(error: Exception) -> None:
        logger.error("memberOf labels: a round failed", exc_info=error)

    memo.workers.start(KIND, "*", memo.state(Pending).take, lambda work: sync(memo.kube, views, *work), CADENCE, failed)


@kopf.on.event(*NODES)
async def member_of_node_changed(type: str, name: str, memo: Context, **kwargs: Any) -> None:
    """A Node joined or changed (attributes, readiness, registration): its labels are looked at (kopf
    lists every Node when the operator starts: the first one starts the worker)."""
    if type != "DELETED":
        _look(memo, Views.of(kwargs), name)


@kopf.on.event(*DEPLOYMENTS, labels=MANAGED)
@kopf.on.event(*DAEMON_SETS, labels=MANAGED)
async def member_of_workload_changed(body: kopf.Body, memo: Context, **kwargs: Any) -> None:
    """A Service's workload came, changed or went: the labels in use may have."""
    if _controlled_by(body, "Service"):
        _look(memo, Views.of(kwargs), None)


@kopf.on.event(*PODS, labels=MANAGED)
async def member_of_pod_changed(body: kopf.Body, spec: kopf.Spec, memo: Context, **kwargs: Any) -> None:
    """A Task's Pod may need labels; any task starting or stopping on a node changes what expressions
    about tasks say there."""
    views = Views.of(kwargs)
    if _controlled_by(body, "Task") and any(k.startswith(L.MEMBER_OF_PREFIX) for k in body.metadata.annotations):
        _look(memo, views, None)
    if node := spec.get("nodeName"):
        _look(memo, views, node)


def sync(kube: Kube, views: Views, nodes: frozenset[str], everything: bool) -> None:
    """Each Node's labels as the expressions in use say now (only the one worker writes them)."""
    uses = bounded(views.uses())
    for name in list(views.nodes) if everything else sorted(nodes):
        node = next(iter(views.nodes.get(name, [])), None)
        if node is None:
            continue
        patch = label_patch(node, wanted(node, views.node_pods.get(name, []), uses))
        if patch is not None:
            kube.patch("Node", None, name, patch, uid=node["metadata"]["uid"])
