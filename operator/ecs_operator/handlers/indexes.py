"""In-memory indexes of what the handlers look up (kopf keeps them current from its watches).

Handlers read these instead of calling the API: a resync costs no requests.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import kopf

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.instances import cluster_key
from ecs_operator.ownership import controller_of
from ecs_operator.runtime.context import Context

from .common import kopf_callback
from .resources import CAPACITY_PROVIDERS, CLUSTERS, CONTROLLER_REVISIONS, NODES, PODS, SERVICES, TASK_DEFINITIONS, TASKS
from .setup import REVISION_KIND_LABEL

MANAGED = {L.MANAGED_BY: L.MANAGED_BY_VALUE}


def _controller(body: kopf.Body, api_version: str, *kinds: str) -> Mapping[str, Any] | None:
    """The object's controller ownerReference if it is of one of these kinds (ownership, not labels, says whose)."""
    ref = controller_of(body)
    return ref if ref is not None and ref.get("apiVersion") == api_version and ref.get("kind") in kinds else None


@kopf.index(*PODS, labels=MANAGED)
@kopf_callback
async def task_pods(body: kopf.Body, namespace: str, memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, Task name) -> the Pods an ECS Task controls (of any Task of that name: compare the UID)."""
    task = _controller(body, f"{API_GROUP}/{API_VERSION}", "Task")
    return {(namespace, task["name"]): memo.snapshots.of(body)} if task else {}


@kopf.index(*PODS, labels=MANAGED)
@kopf_callback
async def service_pods(body: kopf.Body, namespace: str, labels: kopf.Labels,
        memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, service label value) -> the service's Pods: those of a ReplicaSet or DaemonSet (a
    service's workloads), never a standalone task's Pod that carries the label."""
    service = labels.get(L.SERVICE)
    workload = _controller(body, "apps/v1", "ReplicaSet", "DaemonSet")
    return {(namespace, service): memo.snapshots.of(body)} if service and workload else {}


@kopf.index(*PODS, labels=MANAGED)
async def node_pods(body: kopf.Body, spec: kopf.Spec, memo: Context, **_: Any) -> dict[str, dict[str, Any]]:
    """node name -> the ECS tasks (Pods) bound to it."""
    node = spec.get("nodeName")
    return {node: memo.snapshots.of(body)} if node else {}


@kopf.index(*CONTROLLER_REVISIONS, labels={REVISION_KIND_LABEL: kopf.PRESENT})
@kopf_callback
async def revisions(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, family) -> registered revisions (immutable ControllerRevisions a TaskDefinition controls)."""
    if _controller(body, f"{API_GROUP}/{API_VERSION}", "TaskDefinition") is None:
        return {}
    data = body.get("data") or {}
    return {(namespace, data.get("family", "")): {"revision": body.get("revision"), "data": copy.deepcopy(dict(data))}}


@kopf.index(*TASK_DEFINITIONS)
@kopf_callback
async def task_definitions(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, family) -> the TaskDefinition that registers it and its deregistered revisions."""
    family = spec.get("family") or name
    kubernetes = spec.get("kubernetes") or {}
    # a deleted revision (DELETE_IN_PROGRESS) is refused to new tasks as an INACTIVE one is
    deregistered = {*(kubernetes.get("deregisteredRevisions") or []), *(kubernetes.get("deletedRevisions") or [])}
    return {(namespace, family): {"name": name, "deregistered": sorted(deregistered)}}


@kopf.index(*CLUSTERS)
@kopf_callback
async def clusters(name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, uid: str, meta: kopf.Meta,
             **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, clusterName) -> the Cluster; `deleting`: when its deletion was asked for (or None);
    `inactive`: its deleted services' deletion times (status.inactiveServices)."""
    inactive = {n: (r or {}).get("deletedAt") for n, r in (status.get("inactiveServices") or {}).items()}
    return {(namespace, spec.get("clusterName") or name): {"name": name, "uid": uid, "spec": copy.deepcopy(dict(spec)),
                                                          "deleting": meta.get("deletionTimestamp"), "inactive": inactive}}


@kopf.index(*SERVICES)
@kopf_callback
async def cluster_services(name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                     **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, cluster) -> the ECS services in it; `launched`: it has deployments (it joined the cluster)."""
    return {(namespace, spec.get("cluster") or "default"): {
        "name": name, "status": status.get("status", "ACTIVE"),
        "created": meta.get("creationTimestamp"), "launched": bool(status.get("deployments"))}}


@kopf.index(*TASKS)
@kopf_callback
async def cluster_tasks(name: str, namespace: str, spec: kopf.Spec, status: kopf.Status,
                  **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, cluster) -> the standalone tasks in it."""
    return {(namespace, spec.get("cluster") or "default"): {"name": name, "lastStatus": status.get("lastStatus")}}


@kopf.index(*NODES)
async def cluster_nodes(name: str, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], str]:
    """(namespace or SHARED, cluster label value) -> the container instances (Nodes) of that cluster."""
    key = cluster_key(dict(labels))
    return {key: name} if key else {}


@kopf.index(*CAPACITY_PROVIDERS)
async def provider_access(name: str, spec: kopf.Spec, **_: Any) -> dict[str, list[str]]:
    """ECS capacity provider name -> spec.kubernetes.allowedNamespaces (who may use it)."""
    return {spec.get("name") or name: list((spec.get("kubernetes") or {}).get("allowedNamespaces") or [])}


@kopf.index(*NODES)
async def nodes(name: str, body: kopf.Body, memo: Context, **_: Any) -> dict[str, dict[str, Any]]:
    """node name -> the Node."""
    return {name: memo.snapshots.of(body)}


@kopf.index(*PODS, labels=MANAGED)
@kopf_callback
async def cluster_pods(body: kopf.Body, namespace: str, labels: kopf.Labels,
        memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, cluster label value) -> the ECS tasks (Pods) of the cluster."""
    cluster = labels.get(L.CLUSTER)
    return {(namespace, cluster): memo.snapshots.of(body)} if cluster else {}
