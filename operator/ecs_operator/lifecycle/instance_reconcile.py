"""A container instance's round as a pure plan: ECS's view of its Node (describe-container-instances'
fields) and what DRAINING or ACTIVE asks of the Node (docs/ecs-semantics.md §Draining).

DRAINING cordons the node (no new tasks); REPLICA service tasks are replaced by their Service (the
draining label wakes it); DAEMON tasks leave (their affinity excludes draining nodes, and they are
evicted); standalone tasks stay, as in ECS. ACTIVE undoes the cordon the operator made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecs_operator import API_GROUP, labels as L
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

CORDONED_BY_US = f"{API_GROUP}/cordoned-for-draining"
"""Node annotation: the operator cordoned the node for DRAINING (so ACTIVE uncordons it; a node an
administrator cordoned stays cordoned)."""


@dataclass(frozen=True)
class InstanceObserved:
    name: str
    desired: str
    """spec.status: ACTIVE or DRAINING."""
    status: dict[str, Any]
    """The ContainerInstance's current status."""
    node: dict[str, Any]
    """The Node that controls it."""
    pods: list[dict[str, Any]]
    """The task Pods bound to the node."""


@dataclass(frozen=True)
class PatchNode:
    patch: dict[str, Any]


@dataclass(frozen=True)
class Evict:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class InstanceEvent:
    reason: str
    message: str


@dataclass(frozen=True)
class InstancePlan:
    status: dict[str, Any]
    """The whole status to write (written only if it differs)."""
    actions: list[PatchNode | Evict] = field(default_factory=list)
    events: list[InstanceEvent] = field(default_factory=list)


def plan_instance(observed: InstanceObserved, settings: Settings) -> InstancePlan:
    draining = observed.desired == "DRAINING"
    actions = _drain(observed.node, observed.pods) if draining else _undrain(observed.node)
    wanted = instance_status(settings, observed.node, observed.pods, draining)
    previous = observed.status.get("status")
    events = []
    if previous and previous != observed.desired:
        what = "node cordoned, service tasks move to other instances, standalone tasks stay" if draining \
            else "node schedulable again"
        message = f"container instance {observed.name} is {observed.desired}: {what}"
        events.append(InstanceEvent(observed.desired.capitalize(), message))
    return InstancePlan({**observed.status, **wanted}, actions, events)


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


def _drain(node: dict[str, Any], pods: list[dict[str, Any]]) -> list[PatchNode | Evict]:
    meta = node["metadata"]
    cordoned = bool((node.get("spec") or {}).get("unschedulable"))
    actions: list[PatchNode | Evict] = []
    if not cordoned or (meta.get("labels") or {}).get(DRAINING_LABEL) != "true":
        ours = {} if cordoned else {CORDONED_BY_US: "true"}
        actions.append(PatchNode({"metadata": {"labels": {DRAINING_LABEL: "true"}, "annotations": ours},
                                  "spec": {"unschedulable": True}}))
    for pod in pods:
        pod_meta = pod["metadata"]
        daemon = (controller_of(pod) or {}).get("kind") == "DaemonSet"  # a DAEMON service's, not a standalone task's
        if daemon and (pod_meta.get("labels") or {}).get(L.SERVICE) and not pod_meta.get("deletionTimestamp") and is_active(pod):
            actions.append(Evict(pod_meta["namespace"], pod_meta["name"], pod_meta["uid"]))
    return actions


def _undrain(node: dict[str, Any]) -> list[PatchNode | Evict]:
    meta = node["metadata"]
    if (meta.get("labels") or {}).get(DRAINING_LABEL) != "true":
        return []
    patch: dict[str, Any] = {"metadata": {"labels": {DRAINING_LABEL: None}, "annotations": {CORDONED_BY_US: None}}}
    if (meta.get("annotations") or {}).get(CORDONED_BY_US) == "true":
        patch["spec"] = {"unschedulable": False}
    return [PatchNode(patch)]
