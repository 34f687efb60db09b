"""Cluster: ECS-style counters and status; deletion is held back while services or tasks remain."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn
from ecs_operator.lifecycle.task_state import pod_last_status

from .common import ready
from .lookups import instance_names
from .resources import CLUSTERS
from .tasks import Views as TaskViews, resync_tasks


@kopf.on.resume(*CLUSTERS)
@kopf.on.create(*CLUSTERS)
@kopf.on.update(*CLUSTERS, field="spec")
def cluster_changed(**kwargs: Any) -> None:
    cluster_status(**kwargs)


@kopf.timer(*CLUSTERS, interval=10)
def cluster_resync(**kwargs: Any) -> None:
    """Counters follow nodes, services and tasks: recomputed from the indexes, written only on change.
    The cluster's Tasks no event has touched for a while are reconciled too (Tasks have no timers)."""
    cluster_status(**kwargs)
    cluster = kwargs["spec"].get("clusterName") or kwargs["name"]
    names = [t["name"] for t in kwargs["cluster_tasks"].get((kwargs["namespace"], cluster), [])]
    resync_tasks(kwargs["namespace"], names, kwargs["memo"], TaskViews.of(kwargs))


def cluster_status(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                   cluster_nodes: kopf.Index, cluster_services: kopf.Index, cluster_pods: kopf.Index, **_: Any) -> None:
    cluster = spec.get("clusterName") or name
    instances = instance_names(namespace, cluster, cluster_nodes)
    services = [s for s in cluster_services.get((namespace, cluster), []) if s["status"] == "ACTIVE"]
    pods = cluster_pods.get((namespace, L.group_label_value(cluster)), [])
    states = [pod_last_status(p) for p in pods]
    deleting = bool(body.metadata.get("deletionTimestamp"))
    wanted: dict[str, Any] = {
        "clusterName": cluster,
        "clusterArn": cluster_arn(memo.settings, cluster),
        "status": "DEPROVISIONING" if deleting else "ACTIVE",
        "registeredContainerInstancesCount": len(instances),
        "runningTasksCount": states.count("RUNNING"),
        "pendingTasksCount": sum(states.count(s) for s in ("PROVISIONING", "PENDING", "ACTIVATING")),
        "activeServicesCount": len(services),
        "capacityProviders": list(spec.get("capacityProviders") or []),
        "defaultCapacityProviderStrategy": list(spec.get("defaultCapacityProviderStrategy") or []),
        "settings": list(spec.get("settings") or []),
    }
    if not deleting:  # while deletion is held back, its condition says why (delete_cluster)
        wanted["conditions"] = ready(status, body, True, "Active", f"cluster {cluster} is ACTIVE")
    if {k: status.get(k) for k in wanted} != wanted:
        memo.kube.patch_status("Cluster", namespace, name, wanted)


@kopf.on.delete(*CLUSTERS)
def delete_cluster(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                   cluster_services: kopf.Index, cluster_tasks: kopf.Index, **_: Any) -> None:
    """ECS refuses DeleteCluster while services or active tasks remain: so does the finalizer. Once it
    goes, its STOPPED tasks go with it (their TTL is kept by the cluster's resync)."""
    cluster = spec.get("clusterName") or name
    services = [s["name"] for s in cluster_services.get((namespace, cluster), [])]
    running = [t["name"] for t in cluster_tasks.get((namespace, cluster), []) if t["lastStatus"] not in (None, "STOPPED")]
    if services or running:
        reason = "ClusterContainsServicesException" if services else "ClusterContainsTasksException"
        what = f"services {_some(services)}" if services else f"tasks {_some(running)}"
        message = f"The Cluster cannot be deleted while {what} remain; delete them first"
        conditions = ready(status, body, False, reason, message)
        if status.get("status") != "DEPROVISIONING" or conditions != status.get("conditions"):
            memo.kube.patch_status("Cluster", namespace, name, {"status": "DEPROVISIONING", "conditions": conditions})
        raise kopf.TemporaryError(message, delay=10)
    for task in list(cluster_tasks.get((namespace, cluster), [])):  # its STOPPED tasks are not describable any more
        if task["lastStatus"] == "STOPPED":
            memo.kube.delete("Task", namespace, task["name"])



def _some(names: list[str], shown: int = 5) -> str:
    """A few names, and how many there are in all (a message stays readable with thousands of tasks)."""
    listed = ", ".join(sorted(names)[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"
