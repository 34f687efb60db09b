"""A Cluster's round: its describe-clusters counters and, while its deletion is asked for, what holds it back
(docs/ecs-semantics.md §Deleting a cluster). Pure: the handler observes the indexes and acts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecs_operator.arns import cluster_arn
from ecs_operator.settings import Settings

from .cluster_deletion import held_back, too_late
from .conditions import Notify, condition, ready

PENDING_STATES = ("PROVISIONING", "PENDING", "ACTIVATING")


@dataclass(frozen=True)
class ClusterObserved:
    body: dict[str, Any]
    """The Cluster, its status as this process wrote it last."""
    settings: Settings
    instances: tuple[str, ...]
    """Its container instances (Nodes), its own and the shared ones."""
    services: tuple[dict[str, Any], ...]
    """The cluster_services index entries: name, status, created, launched."""
    task_states: tuple[str, ...]
    """The lastStatus of each of its tasks' Pods (service and standalone)."""
    tasks: tuple[dict[str, Any], ...]
    """The cluster_tasks index entries (standalone Task objects): name, lastStatus."""


@dataclass(frozen=True)
class ClusterPlan:
    status: dict[str, Any]
    events: tuple[Notify, ...]
    blocker: tuple[str, str] | None
    """ECS's exception and message for what holds a requested deletion back (None: nothing does)."""
    stopped_tasks: tuple[str, ...]
    """Its STOPPED Task objects: they go with a deleted cluster (they are not describable any more)."""


def plan_cluster(observed: ClusterObserved, now: datetime) -> ClusterPlan:
    body = observed.body
    meta, spec = body["metadata"], body.get("spec") or {}
    current = body.get("status") or {}
    cluster = spec.get("clusterName") or meta["name"]
    deletion = meta.get("deletionTimestamp")
    services = [s for s in observed.services
                if s["status"] != "INACTIVE" and not too_late(s["created"], s["launched"], deletion)]
    states = list(observed.task_states)
    conditions, events = ready(current, body, True, "Active", f"cluster {cluster} is ACTIVE", now)
    blocker = None
    if deletion:
        active = [t["name"] for t in observed.tasks if t["lastStatus"] not in (None, "STOPPED")]
        blocker = held_back([s["name"] for s in services], active)
        if blocker is not None:
            conditions, event = condition(conditions, body, "Deleted", False, *blocker, now)
            events = (*events, event) if event else events
    status = {
        **current,
        "clusterName": cluster,
        "clusterArn": cluster_arn(observed.settings, cluster),
        "status": "ACTIVE",
        "registeredContainerInstancesCount": len(observed.instances),
        "runningTasksCount": states.count("RUNNING"),
        "pendingTasksCount": sum(states.count(s) for s in PENDING_STATES),
        "activeServicesCount": sum(1 for s in services if s["status"] == "ACTIVE"),
        "capacityProviders": list(spec.get("capacityProviders") or []),
        "defaultCapacityProviderStrategy": list(spec.get("defaultCapacityProviderStrategy") or []),
        "settings": list(spec.get("settings") or []),
        "conditions": conditions,
    }
    stopped = tuple(t["name"] for t in observed.tasks if t["lastStatus"] == "STOPPED") if deletion and not blocker else ()
    return ClusterPlan(status, events, blocker, stopped)
