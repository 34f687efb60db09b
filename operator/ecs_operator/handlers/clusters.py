"""Cluster: ECS-style counters and status; deletion is held back while services or tasks remain."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn
from ecs_operator.lifecycle.task_state import new_record, observe

from .common import now, ready
from .resources import CLUSTERS


@kopf.on.resume(*CLUSTERS)
@kopf.on.create(*CLUSTERS)
@kopf.on.update(*CLUSTERS, field="spec")
def cluster_changed(**kwargs: Any) -> None:
    cluster_status(**kwargs)


@kopf.timer(*CLUSTERS, interval=10)
def cluster_resync(**kwargs: Any) -> None:
    """Counters follow nodes, services and tasks: recomputed from the indexes, written only on change."""
    cluster_status(**kwargs)


def cluster_status(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                   cluster_nodes: kopf.Index, cluster_services: kopf.Index, cluster_pods: kopf.Index, **_: Any) -> None:
    cluster = spec.get("clusterName") or name
    instances = list(cluster_nodes.get(cluster, []))
    services = [s for s in cluster_services.get((namespace, cluster), []) if s["status"] == "ACTIVE"]
    moment = now()
    pods = cluster_pods.get((namespace, L.group_label_value(cluster)), [])
    states = [observe(p, new_record(p["metadata"]["name"]), moment).lastStatus for p in pods]
    wanted: dict[str, Any] = {
        "clusterName": cluster,
        "clusterArn": cluster_arn(memo.settings, cluster),
        "status": "ACTIVE",
        "registeredContainerInstancesCount": len(instances),
        "runningTasksCount": states.count("RUNNING"),
        "pendingTasksCount": sum(states.count(s) for s in ("PROVISIONING", "PENDING", "ACTIVATING")),
        "activeServicesCount": len(services),
        "capacityProviders": list(spec.get("capacityProviders") or []),
        "defaultCapacityProviderStrategy": list(spec.get("defaultCapacityProviderStrategy") or []),
        "settings": list(spec.get("settings") or []),
    }
    current = {k: status.get(k) for k in wanted}
    if current != wanted or not status.get("conditions"):
        conditions = ready(status, body, True, "Active", f"cluster {cluster} is ACTIVE")
        memo.kube.patch_status("Cluster", namespace, name, {**wanted, "conditions": conditions})


@kopf.on.delete(*CLUSTERS)
def delete_cluster(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                   cluster_services: kopf.Index, cluster_tasks: kopf.Index, **_: Any) -> None:
    """ECS refuses DeleteCluster while services or active tasks remain: so does the finalizer."""
    cluster = spec.get("clusterName") or name
    services = [s["name"] for s in cluster_services.get((namespace, cluster), [])]
    running = [t["name"] for t in cluster_tasks.get((namespace, cluster), []) if t["lastStatus"] not in (None, "STOPPED")]
    if services or running:
        reason = "ClusterContainsServicesException" if services else "ClusterContainsTasksException"
        what = f"services {', '.join(services)}" if services else f"tasks {', '.join(running)}"
        message = f"The Cluster cannot be deleted while {what} remain; delete them first"
        memo.kube.patch_status("Cluster", namespace, name, {
            "status": "DEPROVISIONING", "conditions": ready(status, body, False, reason, message)})
        raise kopf.TemporaryError(message, delay=10)

