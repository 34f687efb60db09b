"""ContainerInstance: one per Node of an ECS cluster, registered and deregistered with its Node's
labels; a worker per instance observes it, plans (lifecycle/instance_reconcile.py: ECS's resource
accounting and DRAINING) and acts. Status is written only when it changes: nothing at steady state.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, fields, replace
from typing import Any

import kopf

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.adapters.kube import ApiError, OwnershipConflict
from ecs_operator.instances import SHARED, cluster_key
from ecs_operator.lifecycle.instance_reconcile import Evict, InstanceObserved, PatchNode, plan_instance
from ecs_operator.ownership import controller_of
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence

from .common import failed_round
from .notices import log, notify
from .resources import CONTAINER_INSTANCES, NODES, PODS

KIND = "ContainerInstance"
RESYNC_SECONDS = 60.0
CADENCE = Cadence(resync=RESYNC_SECONDS, batching=Batching(idle=1.0, max=5.0))
"""Pod events on one node within a second lead to one recomputation (and at most one write)."""
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Views:
    container_instances: kopf.Index
    nodes: kopf.Index
    node_pods: kopf.Index

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Views:
        return cls(**{f.name: kwargs[f.name] for f in fields(cls)})


@kopf.index(*CONTAINER_INSTANCES)
async def container_instances(body: kopf.Body, name: str, uid: str, spec: kopf.Spec, status: kopf.Status,
                        **_: Any) -> dict[str, dict[str, Any]]:
    """node name -> its ContainerInstance: desired state (ACTIVE/DRAINING), reported status, and the
    UID of the Node that controls it (None: not one the operator registered; it is left alone)."""
    reported = {k: copy.deepcopy(v) for k, v in status.items() if k != "kopf"}
    ref = controller_of(body)
    node = ref["uid"] if ref is not None and ref.get("kind") == "Node" and ref.get("apiVersion") == "v1" else None
    return {name: {"uid": uid, "node": node, "desired": spec.get("status") or "ACTIVE", "status": reported}}


@kopf.on.event(*NODES)
def node_changed(type: str, body: kopf.Body, name: str, labels: kopf.Labels, memo: Context, **kwargs: Any) -> None:
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
        memo.workers.wake(KIND, name)


@kopf.on.event(*PODS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
async def instance_pod_changed(spec: kopf.Spec, memo: Context, **_: Any) -> None:
    """A task started, stopped or moved on a node: its remaining resources and counts change."""
    if node := spec.get("nodeName"):
        memo.workers.wake(KIND, node)


@kopf.on.event(*CONTAINER_INSTANCES)
async def instance_changed(type: str, name: str, spec: kopf.Spec, memo: Context, **_: Any) -> None:
    """UpdateContainerInstancesState (spec.status) wakes the instance's worker at once; the operator's
    own status writes change nothing it reads."""
    if type != "DELETED":
        memo.workers.wake(KIND, name)


@kopf.daemon(*CONTAINER_INSTANCES, cancellation_timeout=1)
async def instance_worker(name: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Context, **kwargs: Any) -> None:
    """Recomputes ECS's view of the node at once, when its Node, its tasks or its desired status change
    (a burst of Pod events is one look), and every RESYNC_SECONDS anyway; writes only what changed."""
    views = Views.of(kwargs)

    def failed(error: Exception) -> float | None:
        return failed_round(logger, f"container instance {name}: reconcile", error)

    await memo.workers.run(KIND, name, lambda: observe(name, body, views), lambda seen: act(memo, seen), stopped,
                           CADENCE, failed)


def observe(name: str, body: kopf.Body, views: Views) -> tuple[dict[str, Any], InstanceObserved] | None:
    """The instance, its Node and the node's task Pods at one moment; None unless the Node controls it
    (only the Node's own ContainerInstance drains it or reports on it)."""
    entry = next(iter(views.container_instances.get(name, [])), None)
    node = next(iter(views.nodes.get(name, [])), None)
    if entry is None or node is None or entry["node"] != node["metadata"]["uid"]:
        return None
    instance = copy.deepcopy(dict(body))
    desired = (instance.get("spec") or {}).get("status") or "ACTIVE"  # the body: the index may lag a change
    return instance, InstanceObserved(name, desired, {}, node, list(views.node_pods.get(name, [])))


def act(memo: Context, seen: tuple[dict[str, Any], InstanceObserved]) -> None:
    """The plan from the status as this process last wrote it, its Node changes and Events, one write."""
    instance, observed = seen
    writer = memo.status(KIND)
    plan = plan_instance(replace(observed, status=writer.current(instance)), memo.settings)
    for action in plan.actions:
        match action:
            case PatchNode(patch):
                memo.kube.patch("Node", None, observed.name, patch)
            case Evict(namespace, pod, uid):
                try:
                    memo.kube.evict(namespace, pod, uid=uid)
                except ApiError as e:  # e.g. RBAC: said once per round, the next round tries again
                    if e.temporary:
                        raise
                    logger.warning("container instance %s: draining could not evict task Pod %s/%s: %s",
                                   observed.name, namespace, pod, e)
    for event in plan.events:
        notify(memo, instance, type="Normal", reason=event.reason, message=event.message)
    writer.write(instance, plan.status)
