"""CapacityProvider: ECS managed scaling of a node pool (target tracking on CapacityProviderReservation),
managed termination protection and managed draining.

A worker per provider evaluates on a fixed cadence and when its tasks wait for capacity (batched
for a second, as Karpenter batches pending pods). Everything is recomputed from what exists, so a
restart in the middle of a scale-out continues from the nodes already there.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from datetime import datetime, timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.adapters.nodepools import WARMING_UP_TAINT, backend_for
from ecs_operator.arns import capacity_provider_arn
from ecs_operator.instances import is_active, pod_reservation
from ecs_operator.lifecycle.pods import parse_time, unschedulable_message
from ecs_operator.models import CapacityProviderSpec, problems_from_validation_error, validate
from ecs_operator.models.capacity_provider import ManagedScaling
from ecs_operator.nodepool.instance_types import instance_type
from ecs_operator.scaling.managed_scaling import (
    SCALE_IN_AFTER_SECONDS,
    InstanceCapacity,
    PoolInstance,
    TaskRequest,
    bin_pack,
    choose_instances_to_remove,
    decide,
)

from .common import now, problems_text, ready
from .resources import CAPACITY_PROVIDERS, CLUSTERS, NODES, PODS, SERVICES

BATCH_SECONDS = 1.0
_wakeups: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}


@kopf.index(*NODES, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_nodes(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: copy.deepcopy(dict(body))}


@kopf.index(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_pods(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: copy.deepcopy(dict(body))}


@kopf.index(*CLUSTERS)
def provider_clusters(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, str]:
    """provider -> the clusters it is associated with (PutClusterCapacityProviders)."""
    cluster = spec.get("clusterName") or name
    return {p: cluster for p in spec.get("capacityProviders") or []}


@kopf.index(*SERVICES)
def provider_services(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, str]:
    """provider -> the services whose strategy uses it."""
    return {i["capacityProvider"]: f"{namespace}/{name}" for i in spec.get("capacityProviderStrategy") or []}


@kopf.on.event(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_pod_changed(labels: kopf.Labels, body: kopf.Body, **_: Any) -> None:
    """A task waiting for capacity wakes its provider's worker."""
    if not body.spec.get("nodeName"):
        entry = _wakeups.get(labels[L.CAPACITY_PROVIDER])
        if entry is not None:
            entry[0].call_soon_threadsafe(entry[1].set)


@kopf.daemon(*CAPACITY_PROVIDERS, cancellation_timeout=5)
async def provider_worker(name: str, stopped: kopf.DaemonStopped, memo: Any, **kwargs: Any) -> None:
    wakeup = asyncio.Event()
    label = L.group_label_value(name)
    _wakeups[label] = (asyncio.get_running_loop(), wakeup)
    try:
        while not stopped:
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=memo.settings.capacity_evaluation_seconds)
                await asyncio.sleep(BATCH_SECONDS)  # one decision for a burst of waiting tasks
            except asyncio.TimeoutError:
                pass
            wakeup.clear()
            if stopped:
                break
            context = contextvars.copy_context()
            await asyncio.get_running_loop().run_in_executor(None, lambda: context.run(evaluate, name=name, memo=memo, **kwargs))
    finally:
        _wakeups.pop(label, None)


def evaluate(*, name: str, body: kopf.Body, memo: Any, provider_nodes: kopf.Index, provider_pods: kopf.Index,
             provider_clusters: kopf.Index, **_: Any) -> None:
    kube: Kube = memo.kube
    provider = copy.deepcopy(dict(body))
    current = {k: v for k, v in (provider.get("status") or {}).items() if k != "kopf"}
    try:
        spec = CapacityProviderSpec.model_validate(provider.get("spec") or {})
    except ValidationError as e:
        return _write(kube, name, current, {**current, "conditions": ready(current, provider, False, "InvalidParameterException",
                                                                             problems_text(problems_from_validation_error(e)))})
    problems = validate(spec.model_copy(update={"name": spec.name or name}))
    if problems:
        return _write(kube, name, current, {**current, "conditions": ready(current, provider, False, "InvalidParameterException", problems_text(problems))})
    ecs_name = spec.name or name
    label = L.group_label_value(ecs_name)
    asg = spec.autoScalingGroupProvider
    ms = (asg.managedScaling if asg else None) or ManagedScaling()
    pool = spec.kubernetes.nodePool if spec.kubernetes else None
    moment = now()
    status: dict[str, Any] = {
        **current,
        "name": ecs_name,
        "capacityProviderArn": capacity_provider_arn(memo.settings, ecs_name),
        "status": "ACTIVE",
        "updateStatus": "UPDATE_COMPLETE" if current else "CREATE_COMPLETE",
    }
    if pool is None:
        status["conditions"] = ready(current, provider, True, "NoNodePool", "no spec.kubernetes.nodePool: nothing to scale")
        return _write(kube, name, current, status)

    clusters = list(provider_clusters.get(ecs_name, []))
    backend = backend_for(kube, ecs_name, pool, clusters[0] if clusters else None)
    nodes = list(provider_nodes.get(label, []))
    pods = [p for p in provider_pods.get(label, []) if is_active(p) and not p["metadata"].get("deletionTimestamp")]
    tasks = [p for p in pods if not _is_daemon(p)]
    capacity = InstanceCapacity.of(instance_type(pool.instanceType))
    requests = [_request(p) for p in tasks]
    packing = bin_pack(requests, capacity)
    needed = packing.instances
    size = backend.size(nodes)
    warmup = timedelta(seconds=300 if ms.instanceWarmupPeriod is None else ms.instanceWarmupPeriod)
    _end_warmup(kube, nodes, moment, warmup)
    removing = set(current.get("removing") or [])
    removing = _finish_removals(kube, backend, nodes, pods, removing)

    target = ms.targetCapacity or 100
    goal = -(-needed * 100 // target)
    below_since = parse_time(current.get("belowTargetSince")) if goal < size else None
    if goal < size and below_since is None:
        below_since = moment
    decision = decide(
        current_size=size - len(removing), needed=needed, managed_scaling=ms, min_size=pool.minSize, max_size=pool.maxSize,
        now=moment, launch_times=[t for t in (parse_time(n["metadata"].get("creationTimestamp")) for n in nodes) if t],
        below_target_since=below_since,
        scale_in_after=(spec.kubernetes.scaleInAfterSeconds if spec.kubernetes and spec.kubernetes.scaleInAfterSeconds is not None
                        else SCALE_IN_AFTER_SECONDS),
    )
    activity = None
    if decision.action == "scale-out":
        added = backend.grow(nodes, decision.desired_size - (size - len(removing)), moment)
        activity = f"scale-out to {decision.desired_size}: {decision.reason} (added {', '.join(added)})"
    elif decision.action == "scale-in":
        protection = (asg.managedTerminationProtection if asg else None) == "ENABLED"
        draining = (asg.managedDraining if asg else "ENABLED") != "DISABLED"
        candidates = [PoolInstance(n["metadata"]["name"], _tasks_on(n["metadata"]["name"], tasks))
                      for n in nodes if n["metadata"]["name"] not in removing]
        chosen = list(choose_instances_to_remove(candidates, (size - len(removing)) - decision.desired_size, protection))
        busy = [c for c in chosen if _tasks_on(c, tasks)]
        if draining and busy:
            drained = [n for n in busy if kube.patch("ContainerInstance", None, n, {"spec": {"status": "DRAINING"}})]
            removing |= set(drained)  # a node of no cluster has no ContainerInstance to drain: it just goes
            chosen = [c for c in chosen if c not in drained]
        if chosen:
            backend.remove(nodes, chosen)
        activity = f"scale-in to {decision.desired_size}: {decision.reason} (removing {', '.join(chosen + busy) or 'none: every instance runs tasks'})"
        below_since = None if chosen or busy else below_since
    if activity:
        kopf.event(provider, type="Normal", reason="ScalingActivity", message=activity[:1024])
        status["lastScalingActivity"] = {"time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "action": decision.action, "reason": activity}
    status.update({
        "capacityProviderReservation": round(decision.reservation),
        "instancesNeeded": needed,
        "instancesRunning": size,
        "currentSize": len(nodes),
        "desiredSize": decision.desired_size,
        "provisioningTasks": sum(1 for p in tasks if unschedulable_message(p)),
        "tasksTooLargeForInstanceType": len(packing.excluded),
        "belowTargetSince": below_since.strftime("%Y-%m-%dT%H:%M:%SZ") if below_since else None,
        "removing": sorted(removing) or None,
        "clusters": clusters,
        "decision": decision.reason,
    })
    status["conditions"] = ready(current, provider, True, "Active", decision.reason)
    _write(kube, name, current, status)


@kopf.on.delete(*CAPACITY_PROVIDERS)
def delete_provider(body: kopf.Body, name: str, spec: kopf.Spec, status: kopf.Status, memo: Any,
                    provider_services: kopf.Index, provider_clusters: kopf.Index, **_: Any) -> None:
    """ECS refuses to delete a provider that a service strategy uses or a cluster lists."""
    ecs_name = spec.get("name") or name
    users = [f"service {s}" for s in provider_services.get(ecs_name, [])] + [f"cluster {c}" for c in provider_clusters.get(ecs_name, [])]
    if users:
        message = f"The capacity provider is in use by {', '.join(users)}: remove it from them first"
        memo.kube.patch_status("CapacityProvider", None, name, {"conditions": ready(status, body, False, "ResourceInUseException", message)})
        raise kopf.TemporaryError(message, delay=10)


def _request(pod: dict[str, Any]) -> TaskRequest:
    r = pod_reservation(pod)
    return TaskRequest(cpu=r.cpu, memory=r.memory, gpu=r.gpu, name=pod["metadata"]["name"])


def _is_daemon(pod: dict[str, Any]) -> bool:
    return any(o.get("kind") == "DaemonSet" for o in pod["metadata"].get("ownerReferences") or [])


def _tasks_on(node: str, tasks: list[dict[str, Any]]) -> int:
    return sum(1 for p in tasks if (p.get("spec") or {}).get("nodeName") == node)


def _end_warmup(kube: Kube, nodes: list[dict[str, Any]], moment: datetime, warmup: timedelta) -> None:
    """A launched instance takes tasks once instanceWarmupPeriod has passed."""
    for node in nodes:
        taints = (node.get("spec") or {}).get("taints") or []
        started = parse_time(node["metadata"].get("creationTimestamp"))
        if any(t.get("key") == WARMING_UP_TAINT for t in taints) and started and moment - started >= warmup:
            kube.patch("Node", None, node["metadata"]["name"],
                       {"spec": {"taints": [t for t in taints if t.get("key") != WARMING_UP_TAINT]}})


def _finish_removals(kube: Kube, backend: Any, nodes: list[dict[str, Any]], pods: list[dict[str, Any]], removing: set[str]) -> set[str]:
    """Managed draining: a DRAINING node leaves once its service tasks have moved."""
    present = {n["metadata"]["name"] for n in nodes}
    done = [n for n in removing if n in present and not any(
        (p.get("spec") or {}).get("nodeName") == n and (p["metadata"].get("labels") or {}).get(L.SERVICE) for p in pods)]
    if done:
        backend.remove(nodes, done)
    return {n for n in removing if n in present and n not in done}


def _write(kube: Kube, name: str, current: dict[str, Any], status: dict[str, Any]) -> None:
    if status != current:
        kube.patch_status("CapacityProvider", None, name, {k: status.get(k) for k in set(status) | set(current)})
