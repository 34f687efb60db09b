"""ContainerInstance: one per Node of an ECS cluster, with ECS's resource accounting and DRAINING."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.arns import container_instance_arn
from ecs_operator.instances import (
    agent_connected,
    attributes_of,
    ecs_resources,
    is_active,
    registered_resources,
    remaining_resources,
)
from ecs_operator.lifecycle.task_state import new_record, observe
from ecs_operator.translate.service import DRAINING_LABEL

from .common import now
from .resources import CONTAINER_INSTANCES, NODES

CORDONED_BY_US = f"{API_GROUP}/cordoned-for-draining"


@kopf.index(*CONTAINER_INSTANCES)
def container_instances(name: str, spec: kopf.Spec, **_: Any) -> dict[str, str]:
    """node name -> the desired state of its ContainerInstance."""
    return {name: spec.get("status") or "ACTIVE"}


@kopf.on.event(*NODES)
def node_changed(type: str, body: kopf.Body, name: str, labels: kopf.Labels, memo: Any,
                 container_instances: kopf.Index, **_: Any) -> None:
    """A labelled Node is a container instance; the label removed, it is deregistered."""
    if type == "DELETED":
        return  # the ContainerInstance is owned by the Node: the garbage collector removes it
    cluster = labels.get(L.CLUSTER)
    known = name in container_instances
    if cluster and not known:
        memo.kube.create({
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "ContainerInstance",
            "metadata": {
                "name": name,
                "labels": {L.CLUSTER: cluster, L.MANAGED_BY: L.MANAGED_BY_VALUE},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": name, "uid": body.metadata.uid}],
            },
            "spec": {},
        })
    elif not cluster and known:
        memo.kube.delete("ContainerInstance", None, name)


@kopf.timer(*CONTAINER_INSTANCES, interval=5)
def instance_status(name: str, spec: kopf.Spec, status: kopf.Status, memo: Any, nodes: kopf.Index,
                    node_pods: kopf.Index, **_: Any) -> None:
    """ECS's view of the node, recomputed from the indexes and written only when it changes."""
    kube: Kube = memo.kube
    node = next(iter(nodes.get(name, [])), None)
    if node is None:
        return
    pods = list(node_pods.get(name, []))
    draining = spec.get("status") == "DRAINING"
    if draining:
        _drain(kube, node, pods)
    else:
        _undrain(kube, node)
    labels = node["metadata"].get("labels") or {}
    cluster = labels.get(L.CLUSTER, "")
    registered, remaining = registered_resources(node), remaining_resources(node, pods)
    moment = now()
    states = [observe(p, new_record(p["metadata"]["name"]), moment).lastStatus for p in pods if is_active(p)]
    attributes = attributes_of(node)
    wanted = {
        "clusterName": cluster,
        "ec2InstanceId": name,
        "containerInstanceArn": container_instance_arn(memo.settings, cluster, name),
        "status": "DRAINING" if draining else "ACTIVE",
        "agentConnected": agent_connected(node),
        "registeredResources": ecs_resources(registered),
        "remainingResources": ecs_resources(remaining),
        "remainingCpu": remaining.cpu,
        "remainingMemory": remaining.memory,
        "runningTasksCount": sum(1 for s in states if s not in ("STOPPED",)),
        "pendingTasksCount": sum(1 for s in states if s in ("PROVISIONING", "PENDING")),
        "attributes": [{"name": k, **({"value": v} if v else {})} for k, v in sorted(attributes.items())],
        "instanceType": attributes.get("ecs.instance-type"),
        "availabilityZone": attributes.get("ecs.availability-zone"),
        "registeredAt": node["metadata"].get("creationTimestamp"),
    }
    if {k: status.get(k) for k in wanted} != wanted:
        kube.patch_status("ContainerInstance", None, name, wanted)


def _drain(kube: Kube, node: dict[str, Any], pods: list[dict[str, Any]]) -> None:
    """UpdateContainerInstancesState DRAINING: no new tasks; service tasks move (PDBs keep
    minimumHealthyPercent); DAEMON tasks leave (their affinity excludes draining nodes);
    standalone tasks stay, as in ECS."""
    meta = node["metadata"]
    if not (node.get("spec") or {}).get("unschedulable") or (meta.get("labels") or {}).get(DRAINING_LABEL) != "true":
        ours = {CORDONED_BY_US: "true"} if not (node.get("spec") or {}).get("unschedulable") else {}
        kube.patch("Node", None, meta["name"], {
            "metadata": {"labels": {DRAINING_LABEL: "true"}, "annotations": ours},
            "spec": {"unschedulable": True},
        })
    for pod in pods:
        pod_meta = pod["metadata"]
        if (pod_meta.get("labels") or {}).get(L.SERVICE) and not pod_meta.get("deletionTimestamp") and is_active(pod):
            kube.evict(pod_meta["namespace"], pod_meta["name"])


def _undrain(kube: Kube, node: dict[str, Any]) -> None:
    meta = node["metadata"]
    if (meta.get("labels") or {}).get(DRAINING_LABEL) != "true":
        return
    patch: dict[str, Any] = {"metadata": {"labels": {DRAINING_LABEL: None}, "annotations": {CORDONED_BY_US: None}}}
    if (meta.get("annotations") or {}).get(CORDONED_BY_US) == "true":
        patch["spec"] = {"unschedulable": False}
    kube.patch("Node", None, meta["name"], patch)
