"""One round of a capacity provider's managed scaling, decided without I/O (docs/ecs-semantics.md §Managed
scaling): from what the round saw (`PoolObserved`) to what to do (`PoolPlan`): ordered actions on Nodes,
ContainerInstances and the node pool, Events, the status to write once, and when to look again.

Everything is recomputed from what exists (nodes, their annotations, tasks, the pool's size), so a restart
in the middle of a scale-out or a drain continues from there.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.arns import capacity_provider_arn
from ecs_operator.instances import (
    agent_connected,
    is_active,
    pod_reservation,
    ready_condition,
    registration_labels,
    remaining_resources,
)
from ecs_operator.lifecycle.conditions import Notify, ready
from ecs_operator.lifecycle.pods import parse_time, unschedulable_message
from ecs_operator.models import CapacityProviderSpec, Problem, problems_from_validation_error, validate
from ecs_operator.models.capacity_provider import AutoScalingGroupProvider
from ecs_operator.nodepool.instance_types import INSTANCE_TYPES, instance_type
from ecs_operator.scaling.managed_scaling import (
    SCALE_IN_AFTER_SECONDS,
    BinPacking,
    InstanceCapacity,
    InstanceRoom,
    PoolInstance,
    ScalingDecision,
    ScalingSettings,
    TaskRequest,
    WaitingTask,
    choose_instances_to_remove,
    decide,
    instances_needed,
)
from ecs_operator.settings import Settings
from ecs_operator.translate.provider_access import allows

SETTLE_SECONDS = 20.0
"""After its warm-up a node counts as seen by the scheduler once this long has passed: until then tasks
the scheduler refused earlier still count on its room (no second scale-out for the same tasks). A node
change requeues unschedulable Pods, but a Pod retried often waits out kube-scheduler's backoff (at most
podMaxBackoffSeconds, 10 s) first: twice that leaves the scheduling itself 10 s on a loaded cluster."""
TRIED_NODES = re.compile(r"^0/(\d+) nodes are available")
"""kube-scheduler's Unschedulable message starts with how many nodes its last attempt considered."""
ROOM_REASONS = ("Insufficient ", "Too many pods", "didn't have free ports", "didn't match pod anti-affinity",
                "didn't match pod topology spread")
"""The scheduler's reasons that another instance of the pool could remove (room, ports, distinctInstance).
The others (node affinity/selector, taints, cordoned) name nodes that were not ready, not registered or
not for the task: such a verdict says nothing about the pool's instances that are ready now."""


# --- what a round sees ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolView:
    """The provider's state copied from kopf's indexes at one moment. The round runs in a thread while
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
    """provider_workloads entries: namespace, cluster, selector, replicas, Pod spec."""
    node_pods: dict[str, list[dict[str, Any]]]
    """The ECS tasks on each of `nodes`."""
    instances: dict[str, list[dict[str, Any]]]
    """The ContainerInstance entries of each of `nodes`."""
    node_count: int
    """Nodes in the cluster (what a scheduler verdict's "0/N nodes" is compared with)."""


@dataclass(frozen=True)
class PoolFacts:
    """What the node-pool backend says about the labelled nodes."""

    members: list[dict[str, Any]]
    """The nodes the pool launched (a node labelled by someone else is never scaled, drained or removed)."""
    gone: frozenset[str]
    """Members already on their way out (no longer counted in the size)."""
    size: int
    """The instances the pool has or has been asked for."""
    joining: int
    """Instances asked for whose Nodes do not exist yet."""


@dataclass(frozen=True)
class PoolObserved:
    name: str
    """metadata.name of the CapacityProvider."""
    view: PoolView
    spec: CapacityProviderSpec | None
    """None: `problems` says why."""
    problems: list[Problem]
    facts: PoolFacts | None
    """None: no node pool, or its backend is unavailable (`backend_error`)."""
    backend_error: str | None
    settings: Settings


def parse(name: str, body: dict[str, Any]) -> tuple[CapacityProviderSpec | None, list[Problem]]:
    """The spec, or the problems naming the ECS fields at fault."""
    try:
        spec = CapacityProviderSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        return None, problems_from_validation_error(e)
    problems = validate(spec.model_copy(update={"name": spec.name or name})) + _instance_type_problems(spec)
    return (None, problems) if problems else (spec, [])


def allowed_namespaces(spec: CapacityProviderSpec) -> list[str] | None:
    return spec.kubernetes.allowedNamespaces if spec.kubernetes else None


def served_pods(spec: CapacityProviderSpec, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The provider's active tasks from namespaces it allows: whoever it does not allow counts for nothing,
    no scaling, no nodes (docs/ecs-semantics.md §Capacity providers belong to an administrator)."""
    allowed = allowed_namespaces(spec)
    return [p for p in pods if is_active(p) and not p["metadata"].get("deletionTimestamp")
            and allows(allowed, p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))]


# --- what a round does ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Register:
    """Label the node as a container instance of `cluster` (namespace, cluster label value)."""

    node: str
    cluster: tuple[str, str]


@dataclass(frozen=True)
class EndWarmup:
    """Take the warming-up taint off: the instance takes tasks from now on."""

    node: str
    taints: list[dict[str, Any]]
    """The node's taints without the warming-up one."""


@dataclass(frozen=True)
class DrainInstance:
    """Set the node's ContainerInstance to DRAINING."""

    node: str


@dataclass(frozen=True)
class MarkLeaving:
    """Managed draining: the node goes once its service tasks have moved."""

    node: str


@dataclass(frozen=True)
class RemoveNodes:
    names: list[str]
    size: int
    """The pool's size afterwards."""


@dataclass(frozen=True)
class Grow:
    """Grow the pool to `size`; new nodes register with `cluster`."""

    size: int
    cluster: tuple[str, str] | None
    warmup_seconds: int


Action = Register | EndWarmup | DrainInstance | MarkLeaving | RemoveNodes | Grow | Notify


@dataclass(frozen=True)
class Activity:
    """The round's scaling activity (an Event and status.lastScalingActivity). After a Grow, the backend's
    account of what it added completes the text."""

    action: str
    text: str


@dataclass(frozen=True)
class PoolPlan:
    status: dict[str, Any]
    """The whole status to write (written only if it differs from the current one)."""
    actions: list[Action] = field(default_factory=list)
    """In order."""
    activity: Activity | None = None
    requeue_after: float | None = None
    """Seconds until an instance's warm-up ends, when that is due (None: the regular cadence)."""


def current_status(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}


def refusal(body: dict[str, Any], reason: str, message: str, now: datetime) -> PoolPlan:
    """The provider stays as it is; its Ready condition (and an Event) say why."""
    current = current_status(body)
    conditions, events = ready(current, body, False, reason, message, now)
    return PoolPlan({**current, "conditions": conditions}, list(events))


def plan_pool(observed: PoolObserved, now: datetime) -> PoolPlan:
    """Status, and at most one scaling action (a drained instance leaving counts as one)."""
    body = observed.view.body
    spec = observed.spec
    if spec is None:
        return refusal(body, "InvalidParameterException", "; ".join(str(p) for p in observed.problems), now)
    current = current_status(body)
    ecs_name = spec.name or observed.name
    asg = spec.autoScalingGroupProvider or AutoScalingGroupProvider()
    ms = ScalingSettings.of(asg.managedScaling)
    status: dict[str, Any] = {
        **current,
        "name": ecs_name,
        "capacityProviderArn": capacity_provider_arn(observed.settings, ecs_name),
        "type": "EC2_AUTOSCALING",
        "status": "ACTIVE",
        "updateStatus": "CREATE_COMPLETE" if (body["metadata"].get("generation") or 1) == 1 else "UPDATE_COMPLETE",
        "autoScalingGroupProvider": described(asg),
    }
    pool_spec = spec.kubernetes.nodePool if spec.kubernetes else None
    if pool_spec is None:
        conditions, events = ready(current, body, True, "NoNodePool", "no spec.kubernetes.nodePool: nothing to scale", now)
        return PoolPlan({**status, "conditions": conditions}, list(events))
    if observed.facts is None:
        target = pool_spec.scaleTarget
        named = f"{target.kind} {target.name}" if target else ""
        message = f"kubernetes.nodePool.scaleTarget: {named}: {observed.backend_error}"
        conditions, events = ready(current, body, False, "ScaleTargetUnavailable", message, now)
        return PoolPlan({**status, "conditions": conditions}, list(events))

    view, facts = observed.view, observed.facts
    allowed = allowed_namespaces(spec)
    pods = served_pods(spec, view.pods)
    workloads = [w for w in view.workloads if allows(allowed, w["namespace"], w["cluster"])]
    clusters = served_clusters(allowed, view.clusters, pods)
    unborn = unborn_tasks(workloads, pods)
    owner = needing(clusters, pods, [u for u, _ in unborn])
    actions: list[Action] = []

    label = L.group_label_value(ecs_name)
    member_names = {n["metadata"]["name"] for n in facts.members}
    foreign = sorted(n["metadata"]["name"] for n in view.nodes
                     if not n["metadata"].get("deletionTimestamp") and n["metadata"]["name"] not in member_names)
    if foreign and foreign != current.get("foreignNodes"):
        actions.append(Notify("Warning", "ForeignNodes", (
            f"Node(s) {', '.join(foreign)} carry the label {L.CAPACITY_PROVIDER}={label} but were not launched by "
            f"this pool: left alone (never scaled in, drained or deleted)")))
    status.pop("foreignNodes", None)
    if foreign:
        status["foreignNodes"] = foreign

    pool = Pool(facts, [p for p in pods if not is_daemon(p)], view.node_pods)
    if owner is not None:
        actions += [Register(n["metadata"]["name"], owner) for n in pool.present
                    if L.CLUSTER not in (n["metadata"].get("labels") or {})]
    actions += [EndWarmup(n["metadata"]["name"], [t for t in taints_of(n) if t.get("key") != L.WARMING_UP_TAINT])
                for n in facts.members if warming_up(n) and _launched(n, now) + ms.warmup <= now]

    # managed draining: a node chosen for scale-in while it ran tasks stays DRAINING until its service
    # tasks have moved, then leaves the pool
    leaving = pool.leaving
    actions += [DrainInstance(n) for n in leaving if (i := next(iter(view.instances.get(n, [])), None)) is not None
                and i["desired"] != "DRAINING"]
    drained = [n for n in leaving if not pool.service_tasks_on(n)]
    leaving = [n for n in leaving if n not in drained]
    if drained:
        actions.append(RemoveNodes(drained, facts.size - len(drained)))

    size = facts.size - len(leaving) - len(drained)
    capacity = InstanceCapacity.of(instance_type(pool_spec.instanceType))
    packing = estimate(pool, [t for _, t in unborn], capacity, leaving, now, view.node_count)
    below_since = (parse_time(current.get("belowTargetSince")) or now) if ms.target_size(packing.instances) < size else None
    decision = decide(
        current_size=size, needed=packing.instances, managed_scaling=asg.managedScaling, min_size=pool_spec.minSize,
        max_size=pool_spec.maxSize, now=now, launch_times=launch_times(pool, now), below_target_since=below_since,
        scale_in_after=(spec.kubernetes.scaleInAfterSeconds if spec.kubernetes and spec.kubernetes.scaleInAfterSeconds is not None
                        else SCALE_IN_AFTER_SECONDS),
    )
    reason, activity = decision.reason, None
    if drained:
        activity = Activity("scale-in", f"drained instance(s) {', '.join(drained)} left the pool: their service tasks moved")
    elif decision.action == "scale-out":
        actions.append(Grow(decision.desired_size + len(leaving), owner, ms.instanceWarmupPeriod))
        activity = Activity("scale-out", f"scale-out to {decision.desired_size} instances: {decision.reason}")
    elif decision.action == "scale-in":
        removal = scale_in(pool, asg, decision, size - decision.desired_size, leaving, view.instances)
        if removal is None:  # a constant reason: nothing to write while protection holds
            reason = (f"CapacityProviderReservation {round(decision.reservation)}% (M={packing.instances}, N={size}) is below "
                      f"targetCapacity {ms.targetCapacity}%, but managed termination protection keeps the "
                      f"{size - decision.desired_size} instance(s) above it: they run tasks")
        else:
            activity, removing = removal
            actions += removing
            below_since = None
    conditions, events = ready(current, body, True, "Active", reason, now)
    status.update({
        "capacityProviderReservation": round(decision.reservation),
        "instancesNeeded": packing.instances,
        "instancesRunning": size,
        "currentSize": len(pool.present),
        "desiredSize": decision.desired_size,
        "provisioningTasks": sum(1 for p in pool.tasks if unschedulable_message(p)),
        "tasksTooLargeForInstanceType": len(packing.excluded),
        "belowTargetSince": iso(below_since) if below_since else None,
        "draining": sorted(leaving) or None,
        "clusters": [f"{n}/{c}" for n, c in clusters],
        "decision": reason,
        "conditions": conditions,
    })
    return PoolPlan(status, [*actions, *events], activity,
                    warmup_due(facts.members, now, ms, launched=decision.action == "scale-out"))


# --- the pool and its instances -------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """What one evaluation sees of the pool."""

    facts: PoolFacts
    tasks: list[dict[str, Any]]
    """The provider's active non-daemon tasks."""
    node_pods: dict[str, list[dict[str, Any]]]

    @property
    def present(self) -> list[dict[str, Any]]:
        """Nodes that count in the pool's size."""
        return [n for n in self.facts.members if n["metadata"]["name"] not in self.facts.gone]

    @property
    def leaving(self) -> list[str]:
        return [n["metadata"]["name"] for n in self.present if L.LEAVING in (n["metadata"].get("annotations") or {})]

    def tasks_on(self, node: str) -> int:
        return sum(1 for p in self.tasks if (p.get("spec") or {}).get("nodeName") == node)

    def service_tasks_on(self, node: str) -> bool:
        """Tasks managed draining must move before the node goes (DAEMON tasks just end with it)."""
        return any((p["metadata"].get("labels") or {}).get(L.SERVICE) and not is_daemon(p) and is_active(p)
                   for p in self.node_pods.get(node, []))


def scale_in(pool: Pool, asg: AutoScalingGroupProvider, decision: ScalingDecision, count: int, leaving: list[str],
             container_instances: dict[str, list[dict[str, Any]]]) -> tuple[Activity, list[Action]] | None:
    """Remove `count` instances by ECS's rules: empty ones first; with managed termination protection
    never one running tasks; with managed draining busy ones are drained before they go. None if
    protection keeps them all."""
    protection = asg.managedTerminationProtection == "ENABLED"
    draining = asg.managedDraining != "DISABLED"
    candidates = [PoolInstance(n, pool.tasks_on(n)) for n in (m["metadata"]["name"] for m in pool.present) if n not in leaving]
    chosen = list(choose_instances_to_remove(candidates, count, protection))
    if not chosen:
        return None
    busy = [c for c in chosen if pool.tasks_on(c)] if draining else []
    actions: list[Action] = []
    for name in busy:
        actions.append(MarkLeaving(name))
        if container_instances.get(name):
            actions.append(DrainInstance(name))
    empty = [c for c in chosen if c not in busy]
    if empty:
        actions.append(RemoveNodes(empty, pool.facts.size - len(empty)))
    parts = ([f"removed {', '.join(empty)}"] if empty else []) + ([f"draining {', '.join(busy)} first"] if busy else [])
    return Activity("scale-in", f"scale-in to {decision.desired_size} instances: {decision.reason} ({'; '.join(parts)})"), actions


def estimate(pool: Pool, unborn: list[TaskRequest], capacity: InstanceCapacity, leaving: list[str], now: datetime,
             node_count: int) -> BinPacking:
    """M from the provider's tasks (those its services want but Kubernetes has not created yet included),
    the room of the instances there are, and the instances still joining."""
    waiting = [WaitingTask(request(p), refused=refused(p, node_count)) for p in pool.tasks if not p["spec"].get("nodeName")]
    waiting += [WaitingTask(t, refused=False) for t in unborn]
    rooms = _rooms(pool, leaving, now) + [InstanceRoom(capacity, busy=False, settled=False)] * pool.facts.joining
    return instances_needed([request(p) for p in pool.tasks] + unborn, waiting, rooms, capacity)


def unborn_tasks(workloads: list[dict[str, Any]], pods: list[dict[str, Any]]) -> list[tuple[tuple[str, str], TaskRequest]]:
    """Tasks the provider's services want that have no Pod yet, with their (namespace, cluster): ECS creates
    a service's tasks at once (in PROVISIONING), the ReplicaSet controller in batches; counting them makes a
    burst one decision."""
    missing: list[tuple[tuple[str, str], TaskRequest]] = []
    for workload in workloads:
        selector = workload["selector"].items()
        have = sum(1 for p in pods if p["metadata"].get("namespace") == workload["namespace"]
                   and selector <= (p["metadata"].get("labels") or {}).items())
        task = request({"metadata": {"name": ""}, "spec": workload["spec"]})
        missing += [((workload["namespace"], workload["cluster"]), task)] * max(0, workload["replicas"] - have)
    return missing


def refused(pod: dict[str, Any], node_count: int) -> bool:
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


def served_clusters(allowed: list[str] | None, listing: list[str], pods: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The clusters the provider serves, as (namespace, cluster label value): those that list it and that it
    allows, and those whose (allowed) tasks still use it."""
    listed = {(n, L.group_label_value(c)) for n, c in (e.split("/", 1) for e in listing) if allows(allowed, n, c)}
    using = {(p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER)) for p in pods}
    return sorted(listed | {(n, c) for n, c in using if c})


def needing(clusters: list[tuple[str, str]], pods: list[dict[str, Any]], unborn: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The cluster new nodes register with: the one with the most tasks waiting for capacity (placed Pods
    excluded, tasks its services want but have no Pod yet included), else the first the provider serves
    (docs/ecs-semantics.md §One cluster per instance, one cluster per managed provider)."""
    waiting = [(p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))
               for p in pods if not (p.get("spec") or {}).get("nodeName")] + unborn
    counts = Counter(key for key in waiting if key in clusters)
    if counts:
        return min(counts, key=lambda key: (-counts[key], key))
    return clusters[0] if clusters else None


def described(asg: AutoScalingGroupProvider) -> dict[str, Any]:
    """autoScalingGroupProvider as DescribeCapacityProviders returns it: ECS's defaults filled in."""
    ms = ScalingSettings.of(asg.managedScaling)
    return {
        **({"autoScalingGroupArn": asg.autoScalingGroupArn} if asg.autoScalingGroupArn else {}),
        "managedScaling": {
            "status": ms.status,
            "targetCapacity": ms.targetCapacity,
            "minimumScalingStepSize": ms.minimumScalingStepSize,
            "maximumScalingStepSize": ms.maximumScalingStepSize,
            "instanceWarmupPeriod": ms.instanceWarmupPeriod,
        },
        "managedTerminationProtection": asg.managedTerminationProtection or "DISABLED",
        "managedDraining": asg.managedDraining or "ENABLED",
    }


def registration(node_cluster: tuple[str, str], now: datetime) -> dict[str, Any]:
    """The Node patch that makes it a container instance of the cluster (an ASG's user data registers
    instances): the cluster label with its namespace, and the time, since tasks can go there only from
    then on (docs/ecs-semantics.md §Registration before placement). A label already there is never changed."""
    return {"metadata": {"labels": registration_labels(*node_cluster), "annotations": {L.REGISTERED_AT: iso(now)}}}


def warming_up(node: dict[str, Any]) -> bool:
    return any(t.get("key") == L.WARMING_UP_TAINT for t in taints_of(node))


def taints_of(node: dict[str, Any]) -> list[dict[str, Any]]:
    return list((node.get("spec") or {}).get("taints") or [])


def _launched(node: dict[str, Any], now: datetime) -> datetime:
    return parse_time(node["metadata"].get("creationTimestamp")) or now


def warmup_due(nodes: list[dict[str, Any]], now: datetime, ms: ScalingSettings, launched: bool) -> float | None:
    """Seconds until the first warming instance (or one launched this round) passes instanceWarmupPeriod:
    it takes tasks then, not at the evaluation after."""
    ends = [_launched(node, now) + ms.warmup for node in nodes if warming_up(node)]
    if launched and ms.instanceWarmupPeriod:
        ends.append(now + ms.warmup)
    return min((end - now).total_seconds() for end in ends) if ends else None


def _rooms(pool: Pool, leaving: list[str], now: datetime) -> list[InstanceRoom]:
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
                                  busy=pool.tasks_on(meta["name"]) > 0, settled=settled(node, now)))
    return rooms


def settled(node: dict[str, Any], now: datetime) -> bool:
    """Ready, registered and out of warm-up for SETTLE_SECONDS: the scheduler has tried the waiting tasks
    on it. (Until then a task it refused may still go there: no second scale-out for the same tasks.)"""
    if warming_up(node):
        return False
    meta = node["metadata"]
    if L.CLUSTER not in (meta.get("labels") or {}) or not agent_connected(node):
        return False  # not registered or not Ready yet: no task could go there
    annotations = meta.get("annotations") or {}
    moments = [parse_time(annotations.get(L.WARMED_UP_AT)), parse_time(annotations.get(L.REGISTERED_AT)),
               parse_time(meta.get("creationTimestamp")), parse_time(ready_condition(node).get("lastTransitionTime"))]
    since = max((m for m in moments if m is not None), default=None)
    return since is None or (now - since).total_seconds() >= SETTLE_SECONDS


def launch_times(pool: Pool, now: datetime) -> list[datetime]:
    """When the pool's instances launched; those asked for but not joined yet are launching now."""
    launched = [t for t in (parse_time(n["metadata"].get("creationTimestamp")) for n in pool.present) if t]
    return launched + [now] * pool.facts.joining


def request(pod: dict[str, Any]) -> TaskRequest:
    r = pod_reservation(pod)
    return TaskRequest(cpu=r.cpu, memory=r.memory, gpu=r.gpu, name=pod["metadata"]["name"])


def is_daemon(pod: dict[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _instance_type_problems(spec: CapacityProviderSpec) -> list[Problem]:
    pool = spec.kubernetes.nodePool if spec.kubernetes else None
    if pool is None or pool.instanceType in INSTANCE_TYPES:
        return []
    known = ", ".join(INSTANCE_TYPES)
    return [Problem("kubernetes.nodePool.instanceType", f"unknown instance type {pool.instanceType!r}; known: {known}")]
