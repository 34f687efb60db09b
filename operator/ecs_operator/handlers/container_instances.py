"""ContainerInstance: one per Node of an ECS cluster, with ECS's resource accounting and DRAINING.

Event-driven: a change of the ContainerInstance, its Node or a task Pod on the node recomputes the
status from the indexes (bursts of Pod events on one node are coalesced into one look), and a slow
resync repairs anything missed. Status is written only when it changes: nothing at steady state.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, fields
from typing import Any

import kopf

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.adapters.kube import Kube, OwnershipConflict
from ecs_operator.arns import container_instance_arn
from ecs_operator.instances import (
    SHARED,
    agent_connected,
    attributes_of,
    cluster_key,
    ecs_resources,
    is_active,
    on_instance,
    registered_resources,
    remaining_resources,
)
from ecs_operator.lifecycle.task_state import pod_last_status
from ecs_operator.ownership import controller_of
from ecs_operator.settings import Settings
from ecs_operator.translate.service import DRAINING_LABEL

from .common import lock_for
from .notices import log, notify
from .resources import CONTAINER_INSTANCES, NODES, PODS
from .wakeups import later

CORDONED_BY_US = f"{API_GROUP}/cordoned-for-draining"
COALESCE_SECONDS = 1.0
"""Pod events on one node within this window lead to one recomputation (and at most one write)."""

# Last status written per ContainerInstance (uid, status): the index may lag behind our own writes.
_written: dict[str, tuple[str, dict[str, Any]]] = {}


@dataclass(frozen=True)
class Views:
    container_instances: kopf.Index
    nodes: kopf.Index
    node_pods: kopf.Index

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Views:
        return cls(**{f.name: kwargs[f.name] for f in fields(cls)})


@kopf.index(*CONTAINER_INSTANCES)
def container_instances(body: kopf.Body, name: str, uid: str, spec: kopf.Spec, status: kopf.Status,
                        **_: Any) -> dict[str, dict[str, Any]]:
    """node name -> its ContainerInstance: desired state (ACTIVE/DRAINING), reported status, and the
    UID of the Node that controls it (None: not one the operator registered; it is left alone)."""
    reported = {k: copy.deepcopy(v) for k, v in status.items() if k != "kopf"}
    ref = controller_of(body)
    node = ref["uid"] if ref is not None and ref.get("kind") == "Node" and ref.get("apiVersion") == "v1" else None
    return {name: {"uid": uid, "node": node, "desired": spec.get("status") or "ACTIVE", "status": reported}}


@kopf.on.event(*NODES)
def node_changed(type: str, body: kopf.Body, name: str, labels: kopf.Labels, memo: Any, **kwargs: Any) -> None:
    """A Node labelled for a cluster of a namespace (or shared) is a container instance; the labels removed,
    it is deregistered. The cluster label alone registers nothing: no task could select the node."""
    if type == "DELETED":
        return  # the ContainerInstance is owned by the Node: the garbage collector removes it
    views = Views.of(kwargs)
    key = cluster_key(dict(labels))
    entry = next(iter(views.container_instances.get(name, [])), None)
    instance = {"kind": "ContainerInstance", "metadata": {"name": name}}
    if entry is not None and entry["node"] != body.metadata.uid:
        log(instance, logging.WARNING, "ResourceConflict", f"the ContainerInstance {name} exists and is not controlled by "
            f"the Node {name} (uid {body.metadata.uid}): the operator neither registers nor changes it")
    elif key and entry is None:
        try:
            _, fresh = memo.kube.create({
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": "ContainerInstance",
                "metadata": {
                    "name": name,
                    "labels": {L.CLUSTER: key[1], L.MANAGED_BY: L.MANAGED_BY_VALUE},
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": body.metadata.uid,
                                         "controller": True}],
                },
                "spec": {},
            })
        except OwnershipConflict:
            return  # the index shows it in a moment: reported above then
        if fresh:
            log(instance, logging.INFO, "Registered",
                f"node {name} joins cluster {key[1]} of {'every namespace' if key[0] == SHARED else 'namespace ' + key[0]}")
    elif not key and entry is not None:
        if memo.kube.delete("ContainerInstance", None, name, uid=entry["uid"]):
            log(instance, logging.INFO, "Deregistered", f"node {name} left its cluster")
    elif entry is not None:  # labels (attributes) or readiness (agentConnected) may have changed
        later(("ContainerInstance", name), COALESCE_SECONDS, lambda: sync_instance(memo.kube, memo.settings, views, name))


@kopf.on.event(*PODS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
async def instance_pod_changed(spec: kopf.Spec, memo: Any, **kwargs: Any) -> None:
    """A task started, stopped or moved on a node: its remaining resources and counts change.
    Only schedules a look, so async: no thread hand-off for each Pod event."""
    node = spec.get("nodeName")
    views = Views.of(kwargs)
    if node and node in views.container_instances:
        later(("ContainerInstance", node), COALESCE_SECONDS, lambda: sync_instance(memo.kube, memo.settings, views, node))


@kopf.on.resume(*CONTAINER_INSTANCES)
@kopf.on.create(*CONTAINER_INSTANCES)
@kopf.on.update(*CONTAINER_INSTANCES, field="spec")
def instance_changed(body: kopf.Body, name: str, spec: kopf.Spec, status: kopf.Status, memo: Any, **kwargs: Any) -> None:
    """UpdateContainerInstancesState: DRAINING cordons the node and moves service tasks; ACTIVE undoes it."""
    desired = spec.get("status") or "ACTIVE"
    previous = status.get("status")
    sync_instance(memo.kube, memo.settings, Views.of(kwargs), name, desired=desired)
    if previous and previous != desired:
        what = "node cordoned, service tasks move to other instances, standalone tasks stay" if desired == "DRAINING" \
            else "node schedulable again"
        notify(body, type="Normal", reason=desired.capitalize(), message=f"container instance {name} is {desired}: {what}")


@kopf.timer(*CONTAINER_INSTANCES, id="resync_instance", interval=60, initial_delay=60, idle=30)
def resync_instance(name: str, spec: kopf.Spec, memo: Any, **kwargs: Any) -> None:
    """Level-triggered repair."""
    sync_instance(memo.kube, memo.settings, Views.of(kwargs), name, desired=spec.get("status") or "ACTIVE")


@kopf.on.event(*CONTAINER_INSTANCES)
def forget_instance(type: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        _written.pop(name, None)


def sync_instance(kube: Kube, settings: Settings, views: Views, name: str, desired: str | None = None) -> None:
    """ECS's view of the node, recomputed from the indexes; DRAINING enforced; written only on change.

    `desired` comes from the handler's own body when it has one (the index may not have its change yet).
    """
    entry = next(iter(views.container_instances.get(name, [])), None)
    node = next(iter(views.nodes.get(name, [])), None)
    if entry is None or node is None or entry["node"] != node["metadata"]["uid"]:
        return  # only the Node's own ContainerInstance drains it or reports on it
    desired = desired or entry["desired"]
    pods = list(views.node_pods.get(name, []))
    with lock_for("ContainerInstance", name):
        if desired == "DRAINING":
            _drain(kube, node, pods)
        else:
            _undrain(kube, node)
        wanted = instance_status(settings, node, pods, draining=desired == "DRAINING")
        written = _written.get(name)
        current = written[1] if written is not None and written[0] == entry["uid"] else entry["status"]
        if {k: current.get(k) for k in wanted} != wanted:
            _written[name] = (entry["uid"], {**current, **wanted})
            if kube.patch_status("ContainerInstance", None, name, wanted) is None:
                _written.pop(name, None)


def instance_status(settings: Settings, node: dict[str, Any], pods: list[dict[str, Any]], draining: bool) -> dict[str, Any]:
    """describe-container-instances' fields for this node and the task Pods bound to it."""
    name = node["metadata"]["name"]
    key = cluster_key(node["metadata"].get("labels") or {}) or ("", "")
    cluster = key[1]
    registered, remaining = registered_resources(node), remaining_resources(node, pods)
    states = [pod_last_status(p) for p in pods if is_active(p) and on_instance(p)]
    attributes = attributes_of(node)
    return {
        "clusterName": cluster,
        "clusterNamespace": None if key[0] == SHARED else key[0],
        "sharedInstance": key[0] == SHARED,
        "ec2InstanceId": name,
        "containerInstanceArn": container_instance_arn(settings, cluster, name),
        "status": "DRAINING" if draining else "ACTIVE",
        "agentConnected": agent_connected(node),
        "registeredResources": ecs_resources(registered),
        "remainingResources": ecs_resources(remaining),
        "remainingCpu": remaining.cpu,
        "remainingMemory": remaining.memory,
        "runningTasksCount": sum(1 for s in states if s != "STOPPED"),
        "pendingTasksCount": sum(1 for s in states if s in ("PROVISIONING", "PENDING")),
        "attributes": [{"name": k, **({"value": v} if v else {})} for k, v in sorted(attributes.items())],
        "instanceType": attributes.get("ecs.instance-type"),
        "availabilityZone": attributes.get("ecs.availability-zone"),
        "registeredAt": node["metadata"].get("creationTimestamp"),
    }


def _drain(kube: Kube, node: dict[str, Any], pods: list[dict[str, Any]]) -> None:
    """UpdateContainerInstancesState DRAINING: no new tasks (cordoned); REPLICA service tasks are
    replaced by their Service (the label wakes it: service_draining.py); DAEMON tasks leave (their
    affinity excludes draining nodes); standalone tasks stay, as in ECS (docs/ecs-semantics.md §Draining)."""
    meta = node["metadata"]
    if not (node.get("spec") or {}).get("unschedulable") or (meta.get("labels") or {}).get(DRAINING_LABEL) != "true":
        ours = {CORDONED_BY_US: "true"} if not (node.get("spec") or {}).get("unschedulable") else {}
        kube.patch("Node", None, meta["name"], {
            "metadata": {"labels": {DRAINING_LABEL: "true"}, "annotations": ours},
            "spec": {"unschedulable": True},
        })
    for pod in pods:
        pod_meta = pod["metadata"]
        daemon = (controller_of(pod) or {}).get("kind") == "DaemonSet"  # a DAEMON service's, not a standalone task's
        if daemon and (pod_meta.get("labels") or {}).get(L.SERVICE) and not pod_meta.get("deletionTimestamp") and is_active(pod):
            kube.evict(pod_meta["namespace"], pod_meta["name"], uid=pod_meta["uid"])


def _undrain(kube: Kube, node: dict[str, Any]) -> None:
    meta = node["metadata"]
    if (meta.get("labels") or {}).get(DRAINING_LABEL) != "true":
        return
    patch: dict[str, Any] = {"metadata": {"labels": {DRAINING_LABEL: None}, "annotations": {CORDONED_BY_US: None}}}
    if (meta.get("annotations") or {}).get(CORDONED_BY_US) == "true":
        patch["spec"] = {"unschedulable": False}
    kube.patch("Node", None, meta["name"], patch)
