"""Cluster: describe-clusters' counters and status; its deletion is held back while services or tasks remain
(docs/ecs-semantics.md §Deleting a cluster).

A worker per Cluster (runtime/workers.py), started by its first event, observes the indexes, asks
`plan_cluster` (lifecycle/cluster_reconcile.py) and writes the status when it changed; the counters follow
nodes, services and tasks at each resync (RESYNC_SECONDS). The deletion handler runs the same plan.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.lifecycle.cluster_reconcile import ClusterObserved, ClusterPlan, plan_cluster
from ecs_operator.lifecycle.task_state import pod_last_status
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence

from .common import failed_round, kopf_callback
from .lookups import instance_names
from .notices import notify
from .resources import CLUSTERS
from .storage import release_volumes

logger = logging.getLogger("ecs_operator")

KIND = "Cluster"
RESYNC_SECONDS = 10
CADENCE = Cadence(resync=RESYNC_SECONDS, batching=Batching(idle=0.5, max=2.0))
INDEXES = ("cluster_objects", "cluster_nodes", "cluster_services", "cluster_tasks", "cluster_pods")


@kopf.index(*CLUSTERS)
@kopf_callback
async def cluster_objects(body: kopf.Body, name: str, namespace: str, memo: Context,
                          **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the Cluster."""
    return {(namespace, name): memo.snapshots.of(body)}


@kopf.on.event(*CLUSTERS)
@kopf_callback
async def cluster_changed(type: str, body: kopf.Body, name: str, namespace: str, memo: Context, **ix: Any) -> None:
    """Every change of a Cluster, and each one at start-up: its worker starts or is woken."""
    key = (namespace, name)
    if type == "DELETED":
        memo.workers.stop(KIND, key)
        memo.status(KIND).forget(body)
        return
    if memo.workers.is_running(KIND, key) and not _asked(body):
        return  # the operator's own status write: the counters follow at the resync
    indexes = {i: ix[i] for i in INDEXES}

    def failed(error: Exception) -> float | None:  # the next round retries
        return failed_round(logger, f"reconciling cluster {namespace}/{name}", error)

    memo.workers.start(KIND, key, lambda: observe(memo, key, indexes),
                       lambda seen: act(memo, seen, plan_cluster(seen, memo.clock())), CADENCE, failed)


def _asked(body: kopf.Body) -> bool:
    """A new generation (PutClusterCapacityProviders, UpdateClusterSettings) or a deletion not yet answered:
    the status does not show it yet."""
    conditions = {c.get("type"): c for c in (body.get("status") or {}).get("conditions") or []}
    ready = conditions.get("Ready") or {}
    deleting = body.metadata.get("deletionTimestamp") is not None and "Deleted" not in conditions
    return ready.get("observedGeneration") != body.metadata.get("generation") or deleting


@kopf.on.delete(*CLUSTERS)
@kopf_callback
def delete_cluster(name: str, namespace: str, uid: str, memo: Context, **ix: Any) -> None:
    """ECS refuses DeleteCluster while services or active tasks remain: the finalizer holds the deletion
    back and retries, the cluster ACTIVE and counting meanwhile. Once it goes, its STOPPED tasks go with it."""
    observed = observe(memo, (namespace, name), {i: ix[i] for i in INDEXES})
    if observed is not None:
        plan = plan_cluster(observed, memo.clock())
        act(memo, observed, plan)
        if plan.blocker is not None:
            raise kopf.TemporaryError(plan.blocker[1], delay=RESYNC_SECONDS)
        for task in plan.stopped_tasks:
            memo.kube.delete("Task", namespace, task)
    release_volumes(memo.kube, uid)  # the EFS volumes its claims were bound to (handlers/storage.py)


def observe(memo: Context, key: tuple[str, str], ix: dict[str, Any]) -> ClusterObserved | None:
    """The Cluster (its status as this process wrote it last) and what it counts, copied from the indexes."""
    body = next(iter(ix["cluster_objects"].get(key, [])), None)
    if body is None:
        return None
    namespace = key[0]
    cluster = (body.get("spec") or {}).get("clusterName") or key[1]
    pods = ix["cluster_pods"].get((namespace, L.group_label_value(cluster)), [])
    return ClusterObserved(
        body={**body, "status": memo.status(KIND).current(body)}, settings=memo.settings,
        instances=tuple(instance_names(namespace, cluster, ix["cluster_nodes"])),
        services=tuple(dict(s) for s in ix["cluster_services"].get((namespace, cluster), [])),
        task_states=tuple(pod_last_status(p) for p in pods),
        tasks=tuple(dict(t) for t in ix["cluster_tasks"].get((namespace, cluster), [])))


def act(memo: Context, observed: ClusterObserved, plan: ClusterPlan) -> None:
    """The plan's Events, then its status (written only when it changed)."""
    for event in plan.events:
        notify(memo, observed.body, type=event.type, reason=event.reason, message=event.message)
    memo.status(KIND).write(observed.body, plan.status)
