"""Service: Deployments (or a DaemonSet) and Kubernetes Services, with ECS's deployments,
circuit breaker, events and DeleteService draining.

A per-Service worker (woken by spec, Pod and workload events, by time-based changes and every
RESYNC_SECONDS) reconciles it: `observe` reads what the decision needs, `plan_service`
(lifecycle/service_reconcile.py) decides, and `act` executes the decision's actions in order, then
writes the status once (only when it changes).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import kopf

from ecs_operator import API_GROUP
from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.lifecycle.pods import parse_time
from ecs_operator.lifecycle.service_reconcile import plan_service
from ecs_operator.lifecycle.task_state import stop_for
from ecs_operator.ownership import controller_of
from ecs_operator.settings import Settings
from ecs_operator.translate.service import DRAINING_LABEL

from . import service_memory as memory
from .common import lock_for, now
from .lookups import find_cluster
from .resources import DAEMON_SETS, DEPLOYMENTS, NODES, PODS, SERVICES
from .service_act import act
from .service_indexes import MANAGED, controlling_service
from .service_observe import observe

FORCE_DELETE = f"{API_GROUP}/force-delete"
"""Annotation "true" on a Service: delete it without draining its tasks first (DeleteService force)."""
RESYNC_SECONDS = 30
COALESCE_QUIET = 0.5
COALESCE_MAX = 2.0
"""After a wake-up a worker waits until no event came for COALESCE_QUIET (at most COALESCE_MAX):
a burst of Pod events (a ReplicaSet creating several Pods, kwok or a kubelet starting them) is
one reconcile, one status write and one "has started N tasks" event, as in ECS."""

_wakeups: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_generations: dict[tuple[str, str], tuple[int | None, str | None, tuple[str, ...]]] = {}
"""What last woke each Service's worker: its generation and force-new-deployment annotation."""
_draining_nodes: dict[str, bool] = {}
"""Nodes seen labelled DRAINING (a change of that wakes the services with tasks there)."""


@kopf.on.event("v1", "services", labels=MANAGED)
async def kubernetes_service_changed(body: kopf.Body, namespace: str, services: kopf.Index, **_: Any) -> None:
    """A Service of an ECS Service came, went or got its ClusterIP: the hostAliases of the namespace's
    Service Connect tasks may change (docs/ecs-semantics.md §Service Connect)."""
    if controlling_service(body) is None:
        return
    for ns, name in list(services):
        ecs = next(iter(services.get((ns, name), [])), None)
        if ns == namespace and ecs is not None and ((ecs.get("spec") or {}).get("serviceConnectConfiguration") or {}).get("enabled"):
            wake(ns, name)


@kopf.on.event(*SERVICES)
async def service_event(namespace: str, name: str, body: kopf.Body, **_: Any) -> None:
    """A new generation (a spec change), a new force-new-deployment annotation (UpdateService
    --force-new-deployment: no spec change) or stop-task annotation (StopTask) wakes the worker; the
    operator's own status writes do not.
    (No on.create/on.update handlers: they would cost kopf's annotation and progress writes.)"""
    annotations = body.metadata.annotations or {}
    generation = (body.metadata.get("generation"), annotations.get(L.FORCE_NEW_DEPLOYMENT),
                  tuple(sorted(k for k in annotations if k.startswith(L.STOP_TASK_PREFIX))))
    if _generations.get((namespace, name)) != generation:
        _generations[(namespace, name)] = generation
        wake(namespace, name)


# cancelled at once when stopping (it only waits or runs a reconcile): without a timeout kopf would
# re-check a stopping daemon only every cancellation_polling (60 s) and hold the deletion that long
@kopf.daemon(*SERVICES, cancellation_timeout=1)
async def service_worker(name: str, namespace: str, stopped: kopf.DaemonStopped, services: kopf.Index,
                         logger: logging.Logger, **kwargs: Any) -> None:
    """The one place a Service is reconciled: at once when it appears (or the operator starts),
    then when woken by spec, Pod or workload events (a burst becomes one reconcile), when a
    time-based change is due (a task turning healthy, a health-check grace period ending) and
    every RESYNC_SECONDS anyway: level-triggered repair of deleted children and missed events."""
    key = (namespace, name)
    loop = asyncio.get_running_loop()
    wakeup = asyncio.Event()
    _wakeups[key] = (loop, wakeup)
    delay: float = 0
    try:
        while not stopped:
            if delay and await _woken(wakeup, delay):
                await _settle(wakeup)
            wakeup.clear()
            delay = RESYNC_SECONDS
            service = next(iter(services.get(key, [])), None)
            if service is None or stopped:
                continue
            context = contextvars.copy_context()  # kopf.event() needs the handler's context in the thread
            try:
                due = await loop.run_in_executor(
                    None, lambda: context.run(reconcile_service, service, services=services, logger=logger, **kwargs)
                )
            except Exception:  # noqa: BLE001  (a worker never dies: the next resync retries)
                logger.exception("reconciling service %s/%s failed", namespace, name)
                continue
            if due is not None:
                delay = min(delay, due)
    finally:
        _wakeups.pop(key, None)
        _generations.pop(key, None)


async def _woken(wakeup: asyncio.Event, timeout: float) -> bool:
    """Wait for a wake-up (True) or the timeout (False)."""
    try:
        await asyncio.wait_for(wakeup.wait(), timeout=timeout)
        return True
    except asyncio.TimeoutError:
        return False


async def _settle(wakeup: asyncio.Event) -> None:
    """Let a burst of events end: until none came for COALESCE_QUIET, at most COALESCE_MAX."""
    deadline = asyncio.get_running_loop().time() + COALESCE_MAX
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        wakeup.clear()
        if not await _woken(wakeup, min(COALESCE_QUIET, left)):
            return


def wake(namespace: str, name: str) -> None:
    """Ask the service's worker to reconcile soon (from any thread)."""
    entry = _wakeups.get((namespace, name))
    if entry is not None:
        loop, event = entry
        loop.call_soon_threadsafe(event.set)


@kopf.on.event(*PODS, labels={L.SERVICE: kopf.PRESENT})
async def service_pod_changed(type: str, body: kopf.Body, namespace: str, labels: kopf.Labels, services: kopf.Index, **_: Any) -> None:
    """Notes the tasks the scheduler started (placed on an instance) and stopped, reported together
    at the next reconcile, and wakes the service's worker."""
    uid = body.metadata.uid
    # first: a Pod deleted with its Service (or a predecessor's) leaves nothing behind in memory
    failed, was_placed = memory.pod_gone(uid) if type == "DELETED" else (False, False)
    name = _service_of(labels, services, namespace)
    service = next(iter(services.get((namespace, name), [])), None)
    if service is None or _predecessors(body, service):
        return
    key = (namespace, service["metadata"]["uid"])
    if type == "DELETED":
        # a task that exited or failed to start stopped by itself: not a stop of the scheduler's
        if was_placed and not failed and stop_for(dict(body)) is None:
            memory.stopped(key, dict(body))
    elif body.spec.get("nodeName"):
        memory.placed(key, uid, report=type is not None)  # None: the listing at start-up, tasks placed before this process
    wake(namespace, name)


def _predecessors(pod: kopf.Body, service: dict[str, Any]) -> bool:
    """A Pod created before the Service was belongs to a deleted Service of the same name (its
    garbage collection can end after the new one appears)."""
    return str(pod.metadata.get("creationTimestamp", "")) < str(service["metadata"].get("creationTimestamp", ""))


@kopf.on.event(*NODES)
async def node_draining_changed(type: str, name: str, labels: kopf.Labels, node_pods: kopf.Index, services: kopf.Index,
                                **_: Any) -> None:
    """A container instance turning DRAINING (or ACTIVE again) wakes the services with tasks on it:
    they move their own tasks (service_draining.py)."""
    draining = type != "DELETED" and labels.get(DRAINING_LABEL) == "true"
    if _draining_nodes.get(name, False) == draining:
        return
    if draining:
        _draining_nodes[name] = True
    else:
        _draining_nodes.pop(name, None)
    for pod in node_pods.get(name, []):
        pod_labels = pod["metadata"].get("labels") or {}
        if pod_labels.get(L.SERVICE):
            namespace = pod["metadata"]["namespace"]
            wake(namespace, _service_of(pod_labels, services, namespace))


@kopf.on.event(*DEPLOYMENTS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
@kopf.on.event(*DAEMON_SETS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
async def workload_changed(body: kopf.Body, namespace: str, **_: Any) -> None:
    """A deleted or edited workload is put back; rollout progress shows in the service status."""
    if controlling_service(body):
        wake(namespace, (controller_of(body) or {})["name"])


@kopf.on.delete(*SERVICES)
def delete_service(body: kopf.Body, name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, memo: Any,
                   service_pods: kopf.Index, service_deployments: kopf.Index, clusters: kopf.Index, **_: Any) -> None:
    """DeleteService: scale to zero, DRAINING until the tasks are gone, then INACTIVE (children go with it)."""
    label = L.group_label_value(name)
    memory.drop_pending((namespace, body.metadata.uid))
    if (body.metadata.annotations or {}).get(FORCE_DELETE) == "true":
        _keep_inactive(memo.kube, memo.settings, dict(body), clusters)
        return
    for workload in service_deployments.get((namespace, body.metadata.uid), []):
        if (workload.get("spec") or {}).get("replicas"):
            meta = workload["metadata"]
            memo.kube.patch("Deployment", namespace, meta["name"], {"spec": {"replicas": 0}}, uid=meta["uid"])
    remaining = [p for p in service_pods.get((namespace, label), []) if not p["metadata"].get("deletionTimestamp")]
    daemon = spec.get("schedulingStrategy") == "DAEMON"
    if remaining and not daemon:
        if status.get("status") != "DRAINING":
            memo.kube.patch_status("Service.ecs", namespace, name, {"status": "DRAINING", "desiredCount": 0})
        raise kopf.TemporaryError(f"draining: {len(remaining)} task(s) still running", delay=2)
    memo.kube.patch_status("Service.ecs", namespace, name, {"status": "INACTIVE", "desiredCount": 0, "runningCount": 0})
    memory.forget_written(namespace, name)
    _keep_inactive(memo.kube, memo.settings, dict(body), clusters)


def _keep_inactive(kube: Kube, settings: Settings, service: dict[str, Any], clusters: kopf.Index) -> None:
    """The deleted service stays describable as INACTIVE (describe-services, the services_inactive waiter)
    for the stopped-task TTL: a record in its Cluster's `status.inactiveServices`, keyed by its name so
    that concurrent deletions merge (docs/ecs-semantics.md §Deleted services)."""
    meta, spec, status = service["metadata"], service.get("spec") or {}, service.get("status") or {}
    cluster = find_cluster(clusters, meta["namespace"], spec.get("cluster") or "default")
    if cluster is None:
        return
    moment = now()
    oldest = moment - timedelta(seconds=settings.stopped_task_ttl_seconds)
    expired = {n: None for n, at in (cluster.get("inactive") or {}).items() if (parse_time(at) or moment) < oldest}
    record = {"spec": {k: v for k, v in spec.items() if k != "kubernetes"}, "createdAt": meta.get("creationTimestamp"),
              "deletedAt": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "taskDefinition": status.get("taskDefinition"),
              "events": (status.get("events") or [])[:10]}
    kube.patch_status("Cluster", meta["namespace"], cluster["name"],
                      {"inactiveServices": {**expired, spec.get("serviceName") or meta["name"]: record}})


def reconcile_service(service: dict[str, Any], **kwargs: Any) -> float | None:
    """Brings the service's children and status in line; returns the seconds until a time-based
    change is due (None: nothing is)."""
    meta = service["metadata"]
    if meta.get("deletionTimestamp"):
        return None
    ix = SimpleNamespace(**kwargs)
    with lock_for("Service", meta["namespace"], meta["name"]):
        observed = observe(service, ix, ix.memo.kube, ix.memo.settings)
        moment = now()
        return act(ix.memo.kube, observed, plan_service(observed, moment), moment)


def _service_of(labels: kopf.Labels, services: kopf.Index, namespace: str) -> str:
    """The Service resource name a pod's service label stands for (the label may be a hashed form)."""
    value = labels.get(L.SERVICE, "")
    if (namespace, value) in services:
        return value
    return next((name for ns, name in services if ns == namespace and L.group_label_value(name) == value), value)
