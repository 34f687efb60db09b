"""CapacityProvider: ECS managed scaling of a node pool (target tracking on CapacityProviderReservation),
managed termination protection and managed draining; Cluster association (PutClusterCapacityProviders).

A worker per provider evaluates on a fixed cadence and when its tasks wait for capacity or its
services ask for more, collecting the changes until none arrived for a second (at most ten, as
Karpenter batches pending pods); tasks a service wants count before their Pods exist, as ECS creates
them all at once: a burst of waiting tasks is one decision. Everything is recomputed from what exists (nodes, their annotations,
tasks, the scale target's replicas), so a restart in the middle of a scale-out or a drain continues
from there. Status is written only when it changes.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import API_GROUP
from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.adapters.nodepools import LEAVING, WARMED_UP_AT, WARMING_UP_TAINT, NodePoolBackend, backend_for
from ecs_operator.arns import capacity_provider_arn
from ecs_operator.instances import (
    agent_connected,
    is_active,
    pod_reservation,
    ready_condition,
    registration_labels,
    remaining_resources,
)
from ecs_operator.lifecycle.conditions import set_condition
from ecs_operator.lifecycle.pods import parse_time, unschedulable_message
from ecs_operator.models import CapacityProviderSpec, Problem, problems_from_validation_error, validate
from ecs_operator.models.capacity_provider import AutoScalingGroupProvider, ManagedScaling
from ecs_operator.nodepool.instance_types import INSTANCE_TYPES, instance_type
from ecs_operator.ownership import controlled_by
from ecs_operator.scaling.managed_scaling import (
    SCALE_IN_AFTER_SECONDS,
    BinPacking,
    InstanceCapacity,
    InstanceRoom,
    PoolInstance,
    ScalingDecision,
    TaskRequest,
    WaitingTask,
    choose_instances_to_remove,
    decide,
    instances_needed,
)
from ecs_operator.translate.provider_access import access_problems, allows

from .common import now, owner_reference, problems_text, ready
from .lookups import access_of
from .notices import notify
from .resources import CAPACITY_PROVIDERS, CLUSTERS, DEPLOYMENTS, NODES, PODS, SERVICES

logger = logging.getLogger(__name__)

BATCH_IDLE_SECONDS = 1.0
BATCH_MAX_SECONDS = 10.0
REGISTERED_AT = f"{API_GROUP}/registered-at"
"""Node annotation: when the operator registered the pool's node with its cluster (labelled it)."""
SETTLE_SECONDS = 20.0
"""After its warm-up a node counts as seen by the scheduler once this long has passed: until then tasks
the scheduler refused earlier still count on its room (no second scale-out for the same tasks). A node
change requeues unschedulable Pods, but a Pod retried often waits out kube-scheduler's backoff (at most
podMaxBackoffSeconds, 10 s) first: twice that leaves the scheduling itself 10 s on a loaded cluster."""
ASSOCIATION = "CapacityProviders"
"""Cluster condition: the capacity providers in spec are associated (PutClusterCapacityProviders)."""
IN_USE = "The specified capacity provider is in use and cannot be removed."
TRIED_NODES = re.compile(r"^0/(\d+) nodes are available")
"""kube-scheduler's Unschedulable message starts with how many nodes its last attempt considered."""
ROOM_REASONS = ("Insufficient ", "Too many pods", "didn't have free ports", "didn't match pod anti-affinity",
                "didn't match pod topology spread")
"""The scheduler's reasons that another instance of the pool could remove (room, ports, distinctInstance).
The others (node affinity/selector, taints, cordoned) name nodes that were not ready, not registered or
not for the task: such a verdict says nothing about the pool's instances that are ready now."""
_wakeups: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}


# --- indexes --------------------------------------------------------------------------------------


@kopf.index(*NODES, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_nodes(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: copy.deepcopy(dict(body))}


@kopf.index(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_pods(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: copy.deepcopy(dict(body))}


@kopf.index(*CLUSTERS)
def provider_clusters(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, str]:
    """provider -> the clusters that list it (PutClusterCapacityProviders), as namespace/cluster."""
    cluster = spec.get("clusterName") or name
    return {p: f"{namespace}/{cluster}" for p in spec.get("capacityProviders") or []}


@kopf.index(*SERVICES)
def provider_services(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, tuple[str, str, str]]:
    """provider -> the services whose strategy names it, as (namespace, service, cluster)."""
    return {i["capacityProvider"]: (namespace, name, spec.get("cluster") or "default") for i in spec.get("capacityProviderStrategy") or []}


@kopf.index(*SERVICES)
def cluster_strategies(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, cluster) -> each service with the providers its strategy names."""
    providers = [i["capacityProvider"] for i in spec.get("capacityProviderStrategy") or []]
    return {(namespace, spec.get("cluster") or "default"): {"service": name, "providers": providers}} if providers else {}


@kopf.index(*DEPLOYMENTS)
def provider_workloads(namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    """provider -> the service Deployments whose tasks it places: what they want, and the task template."""
    template = spec.get("template") or {}
    provider = ((template.get("metadata") or {}).get("labels") or {}).get(L.CAPACITY_PROVIDER)
    if not provider:
        return {}
    cluster = ((template.get("metadata") or {}).get("labels") or {}).get(L.CLUSTER, "")
    return {provider: {"namespace": namespace, "cluster": cluster,
                       "selector": dict((spec.get("selector") or {}).get("matchLabels") or {}),
                       "replicas": int(spec.get("replicas") or 0), "spec": copy.deepcopy(dict(template.get("spec") or {}))}}


# --- the worker -----------------------------------------------------------------------------------


@kopf.on.event(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_pod_changed(type: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> None:
    """A task waiting for capacity wakes its provider's worker."""
    if type != "DELETED" and not body.spec.get("nodeName") and not body.metadata.get("deletionTimestamp"):
        _wake(labels[L.CAPACITY_PROVIDER])


@kopf.on.event(*DEPLOYMENTS)
def provider_workload_changed(type: str, spec: kopf.Spec, **_: Any) -> None:
    """A service asking for more tasks wakes its provider's worker before the Pods even exist."""
    provider = (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).get(L.CAPACITY_PROVIDER)
    if provider and type != "DELETED":
        _wake(provider)


def _wake(provider_label: str) -> None:
    entry = _wakeups.get(provider_label)
    if entry is not None:
        entry[0].call_soon_threadsafe(entry[1].set)


@kopf.daemon(*CAPACITY_PROVIDERS, cancellation_timeout=5)
async def provider_worker(name: str, spec: kopf.Spec, stopped: kopf.DaemonStopped, memo: Any, **kwargs: Any) -> None:
    wakeup = asyncio.Event()
    label = L.group_label_value(spec.get("name") or name)
    _wakeups[label] = (asyncio.get_running_loop(), wakeup)
    interval: float = memo.settings.capacity_evaluation_seconds
    due: float | None = None
    try:
        while not stopped:
            await _next_round(wakeup, stopped, interval if due is None else max(0.0, min(interval, due)))
            if stopped:
                break
            due = None
            context = contextvars.copy_context()
            view = observe(name, spec, **kwargs)  # here, in the event loop: one moment's state, never torn
            try:
                due = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: context.run(evaluate, name=name, memo=memo, view=view))
            except ApiError as e:
                if e.temporary:
                    logger.warning("capacity provider %s: evaluation failed: %s", name, e)
                else:
                    context.run(_report_refusal, memo.kube, name, kwargs["body"], spec, e)
            except Exception:  # level-triggered: the next round repairs what this one left
                logger.exception("capacity provider %s: evaluation failed", name)
    finally:
        _wakeups.pop(label, None)


async def _next_round(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, interval: float) -> None:
    """The next evaluation: after `interval`, or once tasks waiting for capacity stopped arriving for
    BATCH_IDLE_SECONDS (at most BATCH_MAX_SECONDS after the first): one decision for a burst. A stop
    (the provider deleted, the operator exiting) ends the wait at once, so kopf never has to cancel
    the worker."""
    woken, halted = asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()
    if not wakeup.is_set() or stopped:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BATCH_MAX_SECONDS
    while not stopped and (left := deadline - loop.time()) > 0:
        wakeup.clear()
        try:
            await asyncio.wait_for(wakeup.wait(), timeout=min(BATCH_IDLE_SECONDS, left))
        except asyncio.TimeoutError:
            return
    wakeup.clear()


@dataclass(frozen=True)
class ProviderView:
    """What one round sees, copied from kopf's indexes at one moment. The round runs in a thread while
    kopf keeps updating the indexes: read live, the waiting tasks and the room they would take came from
    different moments (tasks counted as waiting were already in a node's room), which over-provisioned."""

    body: dict[str, Any]
    nodes: list[dict[str, Any]]
    """Nodes labelled for the provider."""
    pods: list[dict[str, Any]]
    """Pods labelled for the provider."""
    clusters: list[str]
    """namespace/cluster of the Clusters that list the provider."""
    workloads: list[dict[str, Any]]
    """provider_workloads entries."""
    node_pods: dict[str, list[dict[str, Any]]]
    """The ECS tasks on each of `nodes`."""
    instances: dict[str, list[dict[str, Any]]]
    """The ContainerInstance entries of each of `nodes`."""
    node_count: int
    """Nodes in the cluster (what a scheduler verdict's "0/N nodes" is compared with)."""


def observe(name: str, spec: kopf.Spec, *, body: kopf.Body, provider_nodes: kopf.Index, provider_pods: kopf.Index,
            provider_clusters: kopf.Index, provider_workloads: kopf.Index, node_pods: kopf.Index, nodes: kopf.Index,
            container_instances: kopf.Index, **_: Any) -> ProviderView:
    """The provider's state, copied without an await in between (kopf updates the indexes only between them)."""
    ecs_name = spec.get("name") or name
    label = L.group_label_value(ecs_name)
    pool_nodes = list(provider_nodes.get(label, []))
    names = [n["metadata"]["name"] for n in pool_nodes]
    return ProviderView(
        body=copy.deepcopy(dict(body)), nodes=pool_nodes, pods=list(provider_pods.get(label, [])),
        clusters=list(provider_clusters.get(ecs_name, [])), workloads=list(provider_workloads.get(label, [])),
        node_pods={n: list(node_pods.get(n, [])) for n in names},
        instances={n: list(container_instances.get(n, [])) for n in names}, node_count=len(nodes))


@dataclass
class Pool:
    """What one evaluation sees of the pool."""

    backend: NodePoolBackend
    nodes: list[dict[str, Any]]
    """Every Node labelled for the provider."""
    tasks: list[dict[str, Any]]
    """The provider's active non-daemon tasks."""
    node_pods: dict[str, list[dict[str, Any]]]

    @property
    def present(self) -> list[dict[str, Any]]:
        """Nodes that count in the pool's size."""
        return [n for n in self.nodes if not self.backend.gone(n)]

    @property
    def leaving(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.present if LEAVING in (n["metadata"].get("annotations") or {})]

    def tasks_on(self, node: str) -> int:
        return sum(1 for p in self.tasks if (p.get("spec") or {}).get("nodeName") == node)

    def service_tasks_on(self, node: str) -> bool:
        """Tasks managed draining must move before the node goes (DAEMON tasks just end with it)."""
        return any((p["metadata"].get("labels") or {}).get(L.SERVICE) and not _is_daemon(p) and is_active(p)
                   for p in self.node_pods.get(node, []))


def evaluate(*, name: str, memo: Any, view: ProviderView) -> float | None:
    """One round of managed scaling for the provider: status, and at most one scaling action. Returns
    the seconds until an instance's warm-up ends, when that comes before the next evaluation would."""
    kube: Kube = memo.kube
    provider = view.body
    current = {k: v for k, v in (provider.get("status") or {}).items() if k != "kopf"}
    spec = _parse(kube, name, provider, current)
    if spec is None:
        return None
    ecs_name = spec.name or name
    label = L.group_label_value(ecs_name)
    asg = spec.autoScalingGroupProvider or AutoScalingGroupProvider()
    status: dict[str, Any] = {
        **current,
        "name": ecs_name,
        "capacityProviderArn": capacity_provider_arn(memo.settings, ecs_name),
        "type": "EC2_AUTOSCALING",
        "status": "ACTIVE",
        "updateStatus": "CREATE_COMPLETE" if (provider["metadata"].get("generation") or 1) == 1 else "UPDATE_COMPLETE",
        "autoScalingGroupProvider": _described(asg),
    }
    pool_spec = spec.kubernetes.nodePool if spec.kubernetes else None
    if pool_spec is None:
        status["conditions"] = ready(current, provider, True, "NoNodePool", "no spec.kubernetes.nodePool: nothing to scale")
        _write(kube, name, current, status)
        return None

    allowed = spec.kubernetes.allowedNamespaces if spec.kubernetes else None
    # whoever the provider does not allow counts for nothing: no scaling, no nodes
    # (docs/ecs-semantics.md §Capacity providers belong to an administrator)
    pods = [p for p in view.pods if is_active(p) and not p["metadata"].get("deletionTimestamp")
            and allows(allowed, p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))]
    workloads = [w for w in view.workloads if allows(allowed, w["namespace"], w["cluster"])]
    clusters = _clusters(allowed, view.clusters, pods)
    unborn = _unborn(workloads, pods)
    owner = _needing(clusters, pods, [u for u, _ in unborn])
    try:
        backend = backend_for(kube, ecs_name, pool_spec, owner, owner_reference(provider))
    except ApiError as e:
        target = pool_spec.scaleTarget
        message = f"kubernetes.nodePool.scaleTarget: {target.kind if target else ''} {target.name if target else ''}: {e}"
        _write(kube, name, current, {**status, "conditions": ready(current, provider, False, "ScaleTargetUnavailable", message)})
        return None
    labelled = [n for n in view.nodes if not n["metadata"].get("deletionTimestamp")]
    foreign = sorted(n["metadata"]["name"] for n in labelled if not backend.member(n))
    if foreign and foreign != current.get("foreignNodes"):
        notify(provider, type="Warning", reason="ForeignNodes", message=(
            f"Node(s) {', '.join(foreign)} carry the label {L.CAPACITY_PROVIDER}={label} but were not launched by "
            f"this pool: left alone (never scaled in, drained or deleted)"))
    status.pop("foreignNodes", None)
    if foreign:
        status["foreignNodes"] = foreign
    pool = Pool(backend, [n for n in labelled if backend.member(n)], [p for p in pods if not _is_daemon(p)], view.node_pods)
    moment = now()
    ms = asg.managedScaling or ManagedScaling()
    warmup = timedelta(seconds=300 if ms.instanceWarmupPeriod is None else ms.instanceWarmupPeriod)
    _register(kube, pool, owner, moment)
    _end_warmup(kube, pool.nodes, moment, warmup)
    leaving, drained = _drain_leaving(kube, pool, view.instances)
    size = backend.size(pool.nodes) - len(leaving) - len(drained)
    capacity = InstanceCapacity.of(instance_type(pool_spec.instanceType))
    packing = _estimate(pool, [t for _, t in unborn], capacity, leaving, moment, view.node_count)
    goal = -(-packing.instances * 100 // (ms.targetCapacity or 100))
    below_since = (parse_time(current.get("belowTargetSince")) or moment) if goal < size else None
    decision = decide(
        current_size=size, needed=packing.instances, managed_scaling=ms, min_size=pool_spec.minSize, max_size=pool_spec.maxSize,
        now=moment, launch_times=_launch_times(pool, moment), below_target_since=below_since,
        scale_in_after=(spec.kubernetes.scaleInAfterSeconds if spec.kubernetes and spec.kubernetes.scaleInAfterSeconds is not None
                        else SCALE_IN_AFTER_SECONDS),
    )
    reason, activity = decision.reason, None
    if drained:
        activity = f"drained instance(s) {', '.join(drained)} left the pool: their service tasks moved"
    elif decision.action == "scale-out":
        added = backend.grow(pool.nodes, decision.desired_size + len(leaving), moment, int(warmup.total_seconds()))
        activity = f"scale-out to {decision.desired_size} instances: {decision.reason} (added {', '.join(added)})"
    elif decision.action == "scale-in":
        activity = _scale_in(kube, pool, asg, decision, size - decision.desired_size, leaving, view.instances)
        below_since = None if activity else below_since
        if activity is None:  # a constant reason: nothing to write while protection holds
            reason = (f"CapacityProviderReservation {round(decision.reservation)}% (M={packing.instances}, N={size}) is below "
                      f"targetCapacity {ms.targetCapacity or 100}%, but managed termination protection keeps the "
                      f"{size - decision.desired_size} instance(s) above it: they run tasks")
    if activity:
        action = "scale-in" if drained else decision.action
        notify(provider, type="Normal", reason="ScaleOut" if action == "scale-out" else "ScaleIn", message=activity)
        status["lastScalingActivity"] = {"time": _iso(moment), "action": action, "reason": activity}
    status.update({
        "capacityProviderReservation": round(decision.reservation),
        "instancesNeeded": packing.instances,
        "instancesRunning": size,
        "currentSize": len(pool.present),
        "desiredSize": decision.desired_size,
        "provisioningTasks": sum(1 for p in pool.tasks if unschedulable_message(p)),
        "tasksTooLargeForInstanceType": len(packing.excluded),
        "belowTargetSince": _iso(below_since) if below_since else None,
        "draining": sorted(leaving) or None,
        "clusters": [f"{n}/{c}" for n, c in clusters],
        "decision": reason,
        "conditions": ready(current, provider, True, "Active", reason),
    })
    _write(kube, name, current, status)
    return _warmup_due(pool.nodes, moment, warmup, launched=decision.action == "scale-out")


def _estimate(pool: Pool, unborn: list[TaskRequest], capacity: InstanceCapacity, leaving: list[str], moment: datetime,
              node_count: int) -> BinPacking:
    """M from the provider's tasks (those its services want but Kubernetes has not created yet included),
    the room of the instances there are, and the instances still joining."""
    waiting = [WaitingTask(_request(p), refused=_refused(p, node_count)) for p in pool.tasks if not p["spec"].get("nodeName")]
    waiting += [WaitingTask(t, refused=False) for t in unborn]
    rooms = _rooms(pool, leaving, moment) + [InstanceRoom(capacity, busy=False, settled=False)] * pool.backend.joining(pool.nodes)
    return instances_needed([_request(p) for p in pool.tasks] + unborn, waiting, rooms, capacity)


def _unborn(workloads: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[tuple[tuple[str, str], TaskRequest]]:
    """Tasks the provider's services want that have no Pod yet, with their (namespace, cluster): ECS creates
    a service's tasks at once (in PROVISIONING), the ReplicaSet controller in batches; counting them makes a
    burst one decision."""
    missing: list[tuple[tuple[str, str], TaskRequest]] = []
    for workload in workloads:
        selector = workload["selector"].items()
        have = sum(1 for p in pods if p["metadata"].get("namespace") == workload["namespace"]
                   and selector <= (p["metadata"].get("labels") or {}).items())
        request = _request({"metadata": {"name": ""}, "spec": workload["spec"]})
        missing += [((workload["namespace"], workload["cluster"]), request)] * max(0, workload["replicas"] - have)
    return missing


def _refused(pod: dict[str, Any], node_count: int) -> bool:
    """The scheduler found no room for the task among the nodes there are now. A verdict given before
    newer nodes existed ("0/3 nodes are available" with 5 nodes now) says nothing about them; nor does
    one without a room reason (ROOM_REASONS), given while the pool's nodes were not ready or registered."""
    message = unschedulable_message(pod)
    if message is None:
        return False
    tried = TRIED_NODES.match(message)
    if tried is None:
        return True
    verdict = message.split(" preemption:")[0]
    return int(tried.group(1)) >= node_count and any(reason in verdict for reason in ROOM_REASONS)


def _parse(kube: Kube, name: str, provider: dict[str, Any], current: dict[str, Any]) -> CapacityProviderSpec | None:
    """The spec, or None after a False Ready condition naming the fields at fault."""
    try:
        spec = CapacityProviderSpec.model_validate(provider.get("spec") or {})
    except ValidationError as e:
        problems = problems_from_validation_error(e)
    else:
        problems = validate(spec.model_copy(update={"name": spec.name or name})) + _instance_type_problems(spec)
        if not problems:
            return spec
    _write(kube, name, current, {**current, "conditions": ready(current, provider, False, "InvalidParameterException", problems_text(problems))})
    return None


def _instance_type_problems(spec: CapacityProviderSpec) -> list[Problem]:
    pool = spec.kubernetes.nodePool if spec.kubernetes else None
    if pool is None or pool.instanceType in INSTANCE_TYPES:
        return []
    return [Problem("kubernetes.nodePool.instanceType", f"unknown instance type {pool.instanceType!r}; known: {', '.join(INSTANCE_TYPES)}")]


def _described(asg: AutoScalingGroupProvider) -> dict[str, Any]:
    """autoScalingGroupProvider as DescribeCapacityProviders returns it: ECS's defaults filled in."""
    ms = asg.managedScaling or ManagedScaling()
    return {
        **({"autoScalingGroupArn": asg.autoScalingGroupArn} if asg.autoScalingGroupArn else {}),
        "managedScaling": {
            "status": ms.status or "ENABLED",
            "targetCapacity": ms.targetCapacity or 100,
            "minimumScalingStepSize": ms.minimumScalingStepSize or 1,
            "maximumScalingStepSize": ms.maximumScalingStepSize or 10000,
            "instanceWarmupPeriod": 300 if ms.instanceWarmupPeriod is None else ms.instanceWarmupPeriod,
        },
        "managedTerminationProtection": asg.managedTerminationProtection or "DISABLED",
        "managedDraining": asg.managedDraining or "ENABLED",
    }


def _clusters(allowed: list[str] | None, listing: list[str], pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The clusters the provider serves, as (namespace, cluster label value): those that list it and that it
    allows, and those whose (allowed) tasks still use it."""
    listed = {(n, L.group_label_value(c)) for n, c in (e.split("/", 1) for e in listing)
              if allows(allowed, n, c)}
    using = {(p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER)) for p in pods}
    return sorted(listed | {(n, c) for n, c in using if c})


def _needing(clusters: list[tuple[str, str]], pods: list[dict[str, Any]], unborn: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The cluster new nodes register with: the one with the most tasks waiting for capacity (placed Pods
    excluded, tasks its services want but have no Pod yet included), else the first the provider serves
    (docs/ecs-semantics.md §One cluster per instance, one cluster per managed provider)."""
    waiting = [(p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))
               for p in pods if not (p.get("spec") or {}).get("nodeName")] + unborn
    counts = Counter(key for key in waiting if key in clusters)
    if counts:
        return min(counts, key=lambda key: (-counts[key], key))
    return clusters[0] if clusters else None


def _register(kube: Kube, pool: Pool, owner: tuple[str, str] | None, moment: datetime) -> None:
    """The pool's nodes are container instances of the cluster that needed them (an ASG's user data
    registers them): a node without the cluster label gets it, with the cluster's namespace, and the time,
    since tasks can go there only from then on (docs/ecs-semantics.md §Registration before placement).
    A label already there is never changed."""
    if owner is None:
        return
    for node in pool.present:
        if L.CLUSTER not in (node["metadata"].get("labels") or {}):
            kube.patch("Node", None, node["metadata"]["name"], {"metadata": {
                "labels": registration_labels(*owner), "annotations": {REGISTERED_AT: _iso(moment)}}})


def _report_refusal(kube: Kube, name: str, body: kopf.Body, spec: kopf.Spec, error: ApiError) -> None:
    """A node-pool change the API server refused (typically RBAC: the chart grants Node writes only
    with the kwok backend enabled) is a condition and an Event, retried every round."""
    backend = ((spec.get("kubernetes") or {}).get("nodePool") or {}).get("backend")
    message = f"kubernetes.nodePool.backend {backend}: the API server refused a node-pool change: {error}"
    if error.status == 403:
        message += "; allow it in the chart's values (nodePools.kwok.enabled or nodePools.scaleTargets)"
    current = {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
    _write(kube, name, current, {**current, "conditions": ready(current, body, False, "NodePoolRefused", message)})


def _end_warmup(kube: Kube, nodes: list[dict[str, Any]], moment: datetime, warmup: timedelta) -> None:
    """A launched instance takes tasks once instanceWarmupPeriod has passed."""
    for node in nodes:
        taints = (node.get("spec") or {}).get("taints") or []
        started = parse_time(node["metadata"].get("creationTimestamp"))
        if any(t.get("key") == WARMING_UP_TAINT for t in taints) and started and moment - started >= warmup:
            kube.patch("Node", None, node["metadata"]["name"], {
                "metadata": {"annotations": {WARMED_UP_AT: _iso(moment)}},
                "spec": {"taints": [t for t in taints if t.get("key") != WARMING_UP_TAINT]},
            })


def _warmup_due(nodes: list[dict[str, Any]], moment: datetime, warmup: timedelta, launched: bool) -> float | None:
    """Seconds until the first warming instance (or one launched this round) passes instanceWarmupPeriod:
    it takes tasks then, not at the evaluation after."""
    ends = [started + warmup for node in nodes
            if any(t.get("key") == WARMING_UP_TAINT for t in (node.get("spec") or {}).get("taints") or [])
            and (started := parse_time(node["metadata"].get("creationTimestamp")))]
    if launched and warmup:
        ends.append(moment + warmup)
    return min((end - moment).total_seconds() for end in ends) if ends else None


def _rooms(pool: Pool, leaving: list[str], moment: datetime) -> list[InstanceRoom]:
    """The free room of the nodes that take tasks (not leaving, not cordoned)."""
    rooms = []
    for node in pool.present:
        meta = node["metadata"]
        if meta["name"] in leaving or (node.get("spec") or {}).get("unschedulable"):
            continue
        left = remaining_resources(node, pool.node_pods.get(meta["name"], []))
        slots = int(((node.get("status") or {}).get("allocatable") or {}).get("pods", 0)) - len(
            [p for p in pool.node_pods.get(meta["name"], []) if is_active(p)])
        rooms.append(InstanceRoom(InstanceCapacity(cpu=left.cpu, memory=left.memory, gpu=left.gpu, pods=slots),
                                  busy=pool.tasks_on(meta["name"]) > 0, settled=_settled(node, moment)))
    return rooms


def _settled(node: dict[str, Any], moment: datetime) -> bool:
    """Ready, registered and out of warm-up for SETTLE_SECONDS: the scheduler has tried the waiting tasks
    on it. (Until then a task it refused may still go there: no second scale-out for the same tasks.)"""
    if any(t.get("key") == WARMING_UP_TAINT for t in (node.get("spec") or {}).get("taints") or []):
        return False
    meta = node["metadata"]
    if L.CLUSTER not in (meta.get("labels") or {}) or not agent_connected(node):
        return False  # not registered or not Ready yet: no task could go there
    annotations = meta.get("annotations") or {}
    moments = [parse_time(annotations.get(WARMED_UP_AT)), parse_time(annotations.get(REGISTERED_AT)),
               parse_time(meta.get("creationTimestamp")), parse_time(ready_condition(node).get("lastTransitionTime"))]
    since = max((m for m in moments if m is not None), default=None)
    return since is None or (moment - since).total_seconds() >= SETTLE_SECONDS


def _launch_times(pool: Pool, moment: datetime) -> list[datetime]:
    """When the pool's instances launched; those asked for but not joined yet are launching now."""
    launched = [t for t in (parse_time(n["metadata"].get("creationTimestamp")) for n in pool.present) if t]
    return launched + [moment] * pool.backend.joining(pool.nodes)


def _drain_leaving(kube: Kube, pool: Pool, container_instances: dict[str, list[dict[str, Any]]]) -> tuple[list[str], list[str]]:
    """Managed draining: a node chosen for scale-in while it ran tasks stays DRAINING until its service
    tasks have moved, then leaves the pool. Returns (nodes still draining, nodes that left now)."""
    leaving = pool.leaving
    for name in leaving:
        instance = next(iter(container_instances.get(name, [])), None)
        if instance is not None and instance["desired"] != "DRAINING":
            kube.patch("ContainerInstance", None, name, {"spec": {"status": "DRAINING"}})
    done = [n for n in leaving if not pool.service_tasks_on(n)]
    if done:
        pool.backend.remove(pool.nodes, done, pool.backend.size(pool.nodes) - len(done))
    return [n for n in leaving if n not in done], done


def _scale_in(kube: Kube, pool: Pool, asg: AutoScalingGroupProvider, decision: ScalingDecision, count: int,
              leaving: list[str], container_instances: dict[str, list[dict[str, Any]]]) -> str | None:
    """Remove `count` instances by ECS's rules: empty ones first; with managed termination protection
    never one running tasks; with managed draining busy ones are drained before they go. Returns the
    activity, or None if protection keeps them all."""
    protection = asg.managedTerminationProtection == "ENABLED"
    draining = asg.managedDraining != "DISABLED"
    candidates = [PoolInstance(n, pool.tasks_on(n)) for n in (m["metadata"]["name"] for m in pool.present) if n not in leaving]
    chosen = list(choose_instances_to_remove(candidates, count, protection))
    if not chosen:
        return None
    busy = [c for c in chosen if pool.tasks_on(c)] if draining else []
    for name in busy:
        kube.patch("Node", None, name, {"metadata": {"annotations": {LEAVING: _iso(now())}}})
        if next(iter(container_instances.get(name, [])), None) is not None:
            kube.patch("ContainerInstance", None, name, {"spec": {"status": "DRAINING"}})
    empty = [c for c in chosen if c not in busy]
    if empty:
        pool.backend.remove(pool.nodes, empty, pool.backend.size(pool.nodes) - len(empty))
    parts = ([f"removed {', '.join(empty)}"] if empty else []) + ([f"draining {', '.join(busy)} first"] if busy else [])
    return f"scale-in to {decision.desired_size} instances: {decision.reason} ({'; '.join(parts)})"


# --- Cluster association (PutClusterCapacityProviders) --------------------------------------------


@kopf.timer(*CLUSTERS, id="capacity_provider_association", interval=5)
def cluster_association(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                        cluster_strategies: kopf.Index, cluster_pods: kopf.Index, provider_access: kopf.Index, **_: Any) -> None:
    """A provider that does not allow the cluster's namespace is refused: it never scales for the cluster
    (docs/ecs-semantics.md §Capacity providers belong to an administrator). ECS refuses to remove a provider
    from a cluster while a service strategy or a task uses it: the provider stays associated. The
    CapacityProviders condition says which and why."""
    cluster = spec.get("clusterName") or name
    listed = list(spec.get("capacityProviders") or [])
    access = access_of(provider_access)
    denied = access_problems(listed, "capacityProviders[{}]", access, namespace, cluster) + access_problems(
        [i.get("capacityProvider", "") for i in spec.get("defaultCapacityProviderStrategy") or []],
        "defaultCapacityProviderStrategy[{}].capacityProvider", access, namespace, cluster)
    users = _users_in_cluster(cluster_strategies.get((namespace, cluster), []), cluster_pods.get((namespace, L.group_label_value(cluster)), []))
    refused = {p: u for p, u in users.items() if p not in listed}
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == ASSOCIATION), None)
    if denied:
        wanted = ("False", "AccessDeniedException", problems_text(denied))
    elif refused:
        detail = "; ".join(f"{p} is used by {', '.join(u)}" for p, u in sorted(refused.items()))
        wanted = ("False", "ResourceInUseException", f"{IN_USE} {detail}")
    elif listed or previous:
        wanted = ("True", "Associated", f"capacity providers associated: {', '.join(listed) or 'none'}")
    else:
        return
    if previous and (previous["status"], previous["reason"], previous["message"]) == wanted:
        return
    if wanted[0] == "False":
        kopf.event(body, type="Warning", reason=wanted[1], message=wanted[2][:1024])
    conditions = set_condition(status.get("conditions"), ASSOCIATION, wanted[0] == "True", wanted[1], wanted[2],
                               body.metadata.get("generation"), now())
    memo.kube.patch_status("Cluster", namespace, name, {"conditions": conditions})


def _users_in_cluster(services: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, list[str]]:
    """provider -> what uses it in the cluster: services by strategy, tasks placed by it."""
    users: dict[str, list[str]] = {}
    for s in services:
        for p in s["providers"]:
            users.setdefault(p, []).append(f"service {s['service']}")
    counts: dict[str, int] = {}
    for pod in pods:
        provider = (pod["metadata"].get("labels") or {}).get(L.CAPACITY_PROVIDER)
        if provider and is_active(pod):
            counts[provider] = counts.get(provider, 0) + 1
    for provider, count in counts.items():
        users.setdefault(provider, []).append(f"{count} task(s)")
    return users


# --- deletion -------------------------------------------------------------------------------------


@kopf.on.delete(*CAPACITY_PROVIDERS)
def delete_provider(body: kopf.Body, name: str, spec: kopf.Spec, status: kopf.Status, memo: Any, provider_services: kopf.Index,
                    provider_clusters: kopf.Index, provider_pods: kopf.Index, provider_nodes: kopf.Index, **_: Any) -> None:
    """ECS refuses to delete a provider that a service strategy uses or a cluster lists (or whose tasks
    still run). A kwok pool's simulated nodes go with the provider; a scale target is left as it is."""
    ecs_name = spec.get("name") or name
    label = L.group_label_value(ecs_name)
    allowed = (spec.get("kubernetes") or {}).get("allowedNamespaces")
    # only those the provider allows can hold its deletion back: a tenant naming it cannot
    tasks = [p for p in provider_pods.get(label, []) if is_active(p)
             and allows(allowed, p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))]
    services = {f"{n}/{s}" for n, s, c in provider_services.get(ecs_name, []) if allows(allowed, n, c)}
    clusters = {c for c in provider_clusters.get(ecs_name, []) if allows(allowed, *c.split("/", 1))}
    users = ([f"service {s}" for s in sorted(services)] + [f"cluster {c}" for c in sorted(clusters)]
             + ([f"{len(tasks)} task(s)"] if tasks else []))
    if users:
        message = f"The capacity provider {ecs_name} is in use by {', '.join(users)}: remove it from them first"
        conditions = ready(status, body, False, "ResourceInUseException", message)
        if conditions != status.get("conditions"):
            memo.kube.patch_status("CapacityProvider", None, name, {"conditions": conditions})
        raise kopf.TemporaryError(message, delay=5)
    if ((spec.get("kubernetes") or {}).get("nodePool") or {}).get("backend") == "kwok":
        owner = owner_reference(body)
        for node in [n for n in provider_nodes.get(label, []) if controlled_by(n, owner)]:  # a copy: each deletion updates the index
            memo.kube.delete("Node", None, node["metadata"]["name"], uid=node["metadata"]["uid"])


# --- helpers --------------------------------------------------------------------------------------


def _request(pod: dict[str, Any]) -> TaskRequest:
    r = pod_reservation(pod)
    return TaskRequest(cpu=r.cpu, memory=r.memory, gpu=r.gpu, name=pod["metadata"]["name"])


def _is_daemon(pod: dict[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(kube: Kube, name: str, current: dict[str, Any], status: dict[str, Any]) -> None:
    if status != current:
        kube.patch_status("CapacityProvider", None, name, {k: status.get(k) for k in set(status) | set(current)})

