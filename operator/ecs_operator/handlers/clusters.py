"""Cluster: ECS-style counters and status; deletion is held back while services or tasks remain
(docs/ecs-semantics.md §Deleting a cluster)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn
from ecs_operator.lifecycle.cluster_deletion import held_back, too_late
from ecs_operator.lifecycle.task_state import pod_last_status

from .common import condition, kopf_callback, ready
from .lookups import instance_names
from .resources import CLUSTERS

RESYNC_SECONDS = 10


@kopf.on.resume(*CLUSTERS)
@kopf.on.create(*CLUSTERS)
@kopf.on.update(*CLUSTERS, field="spec")
def cluster_changed(**kwargs: Any) -> None:
    cluster_status(**kwargs)


@kopf.timer(*CLUSTERS, interval=RESYNC_SECONDS)
def cluster_resync(**kwargs: Any) -> None:
    _resync(**kwargs)


@kopf.on.delete(*CLUSTERS)
@kopf_callback
def delete_cluster(spec: kopf.Spec, name: str, namespace: str, memo: Any, cluster_tasks: kopf.Index, **kwargs: Any) -> None:
    """ECS refuses DeleteCluster while services or active tasks remain: the finalizer holds the deletion
    back and retries. kopf stops a deleted object's timers, so each retry also does the resync's work:
    the cluster stays ACTIVE and counting. Once it goes, its STOPPED tasks go with it."""
    blocker = _resync(spec=spec, name=name, namespace=namespace, memo=memo, cluster_tasks=cluster_tasks, **kwargs)
    if blocker is not None:
        raise kopf.TemporaryError(blocker[1], delay=RESYNC_SECONDS)
    cluster = spec.get("clusterName") or name
    for task in list(cluster_tasks.get((namespace, cluster), [])):  # its STOPPED tasks are not describable any more
        if task["lastStatus"] == "STOPPED":
            memo.kube.delete("Task", namespace, task["name"])


def _resync(**kwargs: Any) -> tuple[str, str] | None:
    """Counters follow nodes, services and tasks: recomputed from the indexes, written only on change.
    (Each Task's own worker resyncs it: handlers/tasks.py.)"""
    return cluster_status(**kwargs)


def cluster_status(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                   cluster_nodes: kopf.Index, cluster_services: kopf.Index, cluster_tasks: kopf.Index,
                   cluster_pods: kopf.Index, **_: Any) -> tuple[str, str] | None:
    """Writes the status; returns what holds a requested deletion back (ECS's exception and message)."""
    cluster = spec.get("clusterName") or name
    deletion = body.metadata.get("deletionTimestamp")
    instances = instance_names(namespace, cluster, cluster_nodes)
    services = [s for s in cluster_services.get((namespace, cluster), [])
                if s["status"] != "INACTIVE" and not too_late(s["created"], s["launched"], deletion)]
    pods: Iterable[dict[str, Any]] = cluster_pods.get((namespace, L.group_label_value(cluster)), [])
    states = [pod_last_status(p) for p in pods]
    wanted: dict[str, Any] = {
        "clusterName": cluster,
        "clusterArn": cluster_arn(memo.settings, cluster),
        "status": "ACTIVE",
        "registeredContainerInstancesCount": len(instances),
        "runningTasksCount": states.count("RUNNING"),
        "pendingTasksCount": sum(states.count(s) for s in ("PROVISIONING", "PENDING", "ACTIVATING")),
        "activeServicesCount": sum(1 for s in services if s["status"] == "ACTIVE"),
        "capacityProviders": list(spec.get("capacityProviders") or []),
        "defaultCapacityProviderStrategy": list(spec.get("defaultCapacityProviderStrategy") or []),
        "settings": list(spec.get("settings") or []),
    }
    conditions = ready(status, body, True, "Active", f"cluster {cluster} is ACTIVE")
    blocker = None
    if deletion:
        active_tasks = [t["name"] for t in cluster_tasks.get((namespace, cluster), [])
                        if t["lastStatus"] not in (None, "STOPPED")]
        blocker = held_back([s["name"] for s in services], active_tasks)
        if blocker is not None:
            conditions = condition(conditions, body, "Deleted", False, *blocker)
    wanted["conditions"] = conditions
    if {k: status.get(k) for k in wanted} != wanted:
        memo.kube.patch_status("Cluster", namespace, name, wanted)
    return blocker
