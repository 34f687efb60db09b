"""Service: Deployments (or a DaemonSet) and Kubernetes Services, with ECS's deployments,
circuit breaker, events and DeleteService draining.

A per-Service worker (runtime/workers.py, started by the Service's first event; woken by spec, Pod
and workload events, by time-based changes and every RESYNC_SECONDS) reconciles it: `observe` reads
what the decision needs, `plan_service` (lifecycle/service_reconcile.py) decides, and `act` executes the
decision's actions in order, then writes the status once (only when it changes). DeleteService is
kopf's on.delete handler (behind its finalizer).

The worker is not a kopf daemon: kopf keeps a daemon's object whole (managedFields included) for it,
beside the daemon's own task and bookkeeping (at 150 Services: 43,000 fewer Python objects and 1,500
fewer coroutines without them).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ecs_operator import API_GROUP, labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.lifecycle.service_deletion import inactive_services_patch
from ecs_operator.lifecycle.service_reconcile import plan_service
from ecs_operator.ownership import controller_of
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence
from ecs_operator.settings import Settings
from ecs_operator.translate.service import DRAINING_LABEL

from .common import failed_round, kopf_callback, now
from .lookups import find_cluster
from .resources import DAEMON_SETS, DEPLOYMENTS, NODES, PODS, SERVICES, TASKS
from .service_act import STATUS_KIND, act
from .service_indexes import MANAGED, controlling_service
from .service_memory import ServiceMemory
from .service_observe import ServiceIndexes, observe

FORCE_DELETE = f"{API_GROUP}/force-delete"
"""Annotation "true" on a Service: delete it without draining its tasks first (DeleteService force)."""
KIND = "Service"
RESYNC_SECONDS = 30
CADENCE = Cadence(resync=RESYNC_SECONDS, batching=Batching(idle=0.5, max=2.0))
"""After a wake-up a worker waits until no event came for half a second (at most two): a burst of Pod
events (a ReplicaSet creating several Pods, kwok or a kubelet starting them) is one reconcile, one
status write and one "has started N tasks" event, as in ECS."""


@kopf.on.event("v1", "services", labels=MANAGED)
@kopf_callback
async def kubernetes_service_changed(body: kopf.Body, namespace: str, services: kopf.Index, memo: Context, **_: Any) -> None:
    """A Service of an ECS Service came, went or got its ClusterIP: the hostAliases of the namespace's
    Service Connect tasks may change (docs/ecs-semantics.md §Service Connect)."""
    if controlling_service(body) is None:
        return
    for ns, name in list(services):
        ecs: dict[str, Any] | None = next(iter(services.get((ns, name), [])), None)
        connect = ((ecs or {}).get("spec") or {}).get("serviceConnectConfiguration") or {}
        if ns == namespace and ecs is not None and connect.get("enabled"):
            memo.workers.wake(KIND, (ns, name))


@kopf.on.event(*SERVICES)
@kopf_callback
async def service_event(type: str, namespace: str, name: str, body: kopf.Body, memo: Context, logger: logging.Logger,
                        **kwargs: Any) -> None:
    """Every change of a Service, and each Service once at start-up: its worker starts (its first round at
    once). A new generation (a spec change), a new force-new-deployment annotation (UpdateService
    --force-new-deployment: no spec change) or stop-task annotation (StopTask) wakes it at once; the
    operator's own status writes do not.
    (No on.create/on.update handlers: they would cost kopf's annotation and progress writes.)"""
    key = (namespace, name)
    if type == "DELETED":
        memo.workers.stop(KIND, key)
        memo.state(ServiceMemory).forget_trigger(key)
        return
    annotations = body.metadata.annotations or {}
    generation = (body.metadata.get("generation"), annotations.get(L.FORCE_NEW_DEPLOYMENT),
                  tuple(sorted(k for k in annotations if k.startswith(L.STOP_TASK_PREFIX)))
                  + tuple(sorted(f"{k}={v}" for k, v in annotations.items() if k.startswith(L.CONTINUE_PREFIX))))
    triggered = memo.state(ServiceMemory).triggered(key, generation)
    if memo.workers.is_running(KIND, key):
        if triggered:
            memo.workers.wake(KIND, key, urgent=True)
        return
    indexes = ServiceIndexes.of(kwargs)
    services = indexes.services

    def failed(error: Exception) -> float | None:  # a worker never dies: the next round retries
        return failed_round(logger, f"reconciling service {namespace}/{name}", error)

    memo.workers.start(KIND, key, lambda: next(iter(services.get(key, [])), None),
                       lambda service: reconcile_service(service, memo, indexes), CADENCE, failed)


@kopf.on.event(*PODS, labels={L.SERVICE: kopf.PRESENT})
@kopf_callback
async def service_pod_changed(type: str, body: kopf.Body, namespace: str, labels: kopf.Labels, services: kopf.Index,
                              memo: Context, **_: Any) -> None:
    """Wakes the service's worker (which reports the tasks placed and gone: placed_tasks), keeping the
    last look at a Pod that went for its stopped-task record."""
    uid = body.metadata.uid
    # first: a Pod deleted with its Service (or a predecessor's) leaves nothing behind in memory
    memory = memo.state(ServiceMemory)
    failed = memory.pod_gone(uid) if type == "DELETED" else False
    name = _service_of(labels, services, namespace)
    service = next(iter(services.get((namespace, name), [])), None)
    if service is None or _predecessors(body, service):
        return
    key = (namespace, service["metadata"]["uid"])
    if type == "DELETED" and not failed:
        memory.stopped(key, dict(body))
    memo.workers.wake(KIND, (namespace, name))


def _predecessors(pod: kopf.Body, service: dict[str, Any]) -> bool:
    """A Pod created before the Service was belongs to a deleted Service of the same name (its
    garbage collection can end after the new one appears)."""
    return str(pod.metadata.get("creationTimestamp", "")) < str(service["metadata"].get("creationTimestamp", ""))


@kopf.on.event(*TASKS, labels={L.HOOK_DEPLOYMENT: kopf.PRESENT})
@kopf_callback
async def hook_task_changed(body: kopf.Body, namespace: str, memo: Context, **_: Any) -> None:
    """A lifecycle hook's Task changed (it stopped): its Service's deployment may move on (lifecycle/service_hooks.py)."""
    owner = controller_of(body)
    if owner is not None and owner.get("kind") == KIND:
        memo.workers.wake(KIND, (namespace, owner["name"]))


@kopf.on.event(*NODES)
@kopf_callback
async def node_draining_changed(type: str, name: str, labels: kopf.Labels, node_pods: kopf.Index, services: kopf.Index,
                                memo: Context, **_: Any) -> None:
    """A container instance turning DRAINING (or ACTIVE again) wakes the services with tasks on it:
    they move their own tasks (service_draining.py); one deleted wakes them too: their tasks there stop."""
    draining = type != "DELETED" and labels.get(DRAINING_LABEL) == "true"
    if not memo.state(ServiceMemory).draining_changed(name, draining) and type != "DELETED":
        return
    for pod in node_pods.get(name, []):
        pod_labels = pod["metadata"].get("labels") or {}
        if pod_labels.get(L.SERVICE):
            namespace = pod["metadata"]["namespace"]
            memo.workers.wake(KIND, (namespace, _service_of(pod_labels, services, namespace)))


@kopf.on.event(*DEPLOYMENTS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
@kopf.on.event(*DAEMON_SETS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
@kopf_callback
async def workload_changed(body: kopf.Body, namespace: str, memo: Context, **_: Any) -> None:
    """A deleted or edited workload is put back; rollout progress shows in the service status."""
    if controlling_service(body):
        memo.workers.wake(KIND, (namespace, (controller_of(body) or {})["name"]))


@kopf.on.delete(*SERVICES)
@kopf_callback
def delete_service(body: kopf.Body, name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, memo: Context,
                   service_pods: kopf.Index, service_deployments: kopf.Index, clusters: kopf.Index, **_: Any) -> None:
    """DeleteService: scale to zero, DRAINING until the tasks are gone, then INACTIVE (children go with it)."""
    label = L.group_label_value(name)
    memo.state(ServiceMemory).drop_pending((namespace, body.metadata.uid))
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
    memo.status(STATUS_KIND).forget(body)
    _keep_inactive(memo.kube, memo.settings, dict(body), clusters)


def _keep_inactive(kube: Kube, settings: Settings, service: dict[str, Any], clusters: kopf.Index) -> None:
    """The deleted service's INACTIVE record in its Cluster's status (lifecycle/service_deletion.py)."""
    cluster = find_cluster(clusters, service["metadata"]["namespace"], (service.get("spec") or {}).get("cluster") or "default")
    if cluster is not None:
        patch = inactive_services_patch(service, cluster.get("inactive") or {}, now(), settings.stopped_task_ttl_seconds)
        kube.patch_status("Cluster", service["metadata"]["namespace"], cluster["name"], patch)


def reconcile_service(service: dict[str, Any], memo: Context, indexes: ServiceIndexes) -> float | None:
    """Brings the service's children and status in line; returns the seconds until a time-based
    change is due (None: nothing is). A Service being deleted is delete_service's."""
    if service["metadata"].get("deletionTimestamp"):
        return None
    writer = memo.status(STATUS_KIND)
    observed = observe(service, indexes, memo, writer.current(service))
    moment = memo.clock()
    return act(memo, observed, plan_service(observed, moment), moment)


def _service_of(labels: kopf.Labels, services: kopf.Index, namespace: str) -> str:
    """The Service resource name a pod's service label stands for (the label may be a hashed form)."""
    value = labels.get(L.SERVICE, "")
    if (namespace, value) in services:
        return value
    return next((name for ns, name in services if ns == namespace and L.group_label_value(name) == value), value)
