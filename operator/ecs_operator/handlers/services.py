"""Service: Deployments (or a DaemonSet) and Kubernetes Services, with ECS's deployments,
circuit breaker, events and DeleteService draining.

One function, `reconcile_service`, computes everything from the spec, the indexes and the
previous status, applies only what differs, and writes status only when it changes; a
per-Service worker (woken by spec, Pod and workload events, by time-based changes and every
RESYNC_SECONDS) calls it.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import hashlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError, Kube, OwnershipConflict
from ecs_operator.arns import cluster_arn, service_arn, task_arn
from ecs_operator.lifecycle.cluster_deletion import inactive_message, too_late
from ecs_operator.lifecycle.placement_failures import unable_to_place_event
from ecs_operator.lifecycle.pods import health_settings, parse_time, pod_containers, unschedulable_message
from ecs_operator.lifecycle.service_deployments import (
    Advance,
    Deployment,
    TaskView,
    add_events,
    advance,
    started_event,
    stopped_event,
    workload_target,
)
from ecs_operator.lifecycle.records import TaskRecord
from ecs_operator.lifecycle.service_tasks import HEALTH_CHECKS_FAILED, keep, scaling_stop, stop_requests, stopped_record
from ecs_operator.lifecycle.task_state import STOPPED_BY_USER, Stop, new_record, observe, stop_for
from ecs_operator.models import ServiceSpec, problems_from_validation_error, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.ownership import CONFLICT_REASON, Conflict, conflict, conflicts_text, controller_of
from ecs_operator.registry import UnknownTaskDefinition
from ecs_operator.scaling.rolling import counts_as_healthy
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import ignored_read_only, summarize
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import DRAINING_LABEL, ServicePlan, desired_count_problems, service_objects
from ecs_operator.translate.service_connect import connect_namespace

from .children import Key, claim, key_of
from .connect import cluster_connect_default, connect_condition, connect_hosts
from .common import lock_for, now, owner_reference, problems_text, ready
from .lookups import access_of, cluster_instances, find_cluster, instance_names, resolve_revision
from .member_of import labels_in_use
from .namespaces import workload_policy
from .resources import DAEMON_SETS, DEPLOYMENTS, NODES, PODS, SERVICES
from .service_draining import drain, draining_nodes

DEPLOYMENT_LABEL = L.DEPLOYMENT
"""Pod label: the ECS deployment (ecs-svc/<digits>) a service task belongs to."""
APPLIED = f"{API_GROUP}/applied-hash"
"""Annotation on each child: the hash of what was last applied (no write while it still matches)."""
FORCE_DELETE = f"{API_GROUP}/force-delete"
"""Annotation "true" on a Service: delete it without draining its tasks first (DeleteService force)."""
TRIGGERS = ("networkConfiguration", "loadBalancers", "serviceRegistries", "serviceConnectConfiguration",
            "volumeConfigurations", "platformVersion")
"""Settings whose change starts a new ECS deployment (with taskDefinition)."""

RESYNC_SECONDS = 30
RETRY_SECONDS = 3
AGAIN_SECONDS = 1.0
"""How soon a rollout step that needs a second observation (a rollback just started) gets it."""
CONFLICT_RETRY_SECONDS = 10
"""A child name held by a foreign object is looked at again this often (it may be removed or renamed)."""
COALESCE_QUIET = 0.5
COALESCE_MAX = 2.0
"""After a wake-up a worker waits until no event came for COALESCE_QUIET (at most COALESCE_MAX):
a burst of Pod events (a ReplicaSet creating several Pods, kwok or a kubelet starting them) is
one reconcile, one status write and one "has started N tasks" event, as in ECS."""

_written: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
# What Pod events saw since the service's last reconcile (consumed by it, under _pending_guard), by
# (namespace, service UID): a re-created Service of the same name never reports its predecessor's tasks.
_started: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
_stopped: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
"""The Pods the scheduler stopped, as last seen (their records are made at the reconcile)."""
_placed: set[str] = set()
"""Pods seen on a node: ECS reports a task started once it is placed, never one that waits for an
instance (docs/ecs-semantics.md, A task is started once it is placed), and reports each once."""
_stopping: set[str] = set()
"""Pods this process deletes as failed: a second look before the deletion shows must not count them
again, and their DELETED event is no stop of the scheduler's."""
_wakeups: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_generations: dict[tuple[str, str], tuple[int | None, str | None, tuple[str, ...]]] = {}
"""What last woke each Service's worker: its generation and force-new-deployment annotation."""
_draining_nodes: dict[str, bool] = {}
"""Nodes seen labelled DRAINING (a change of that wakes the services with tasks there)."""
_pending_guard = threading.Lock()
_deleter = ThreadPoolExecutor(max_workers=8, thread_name_prefix="service-stops")


@kopf.index(*SERVICES)
def services(body: kopf.Body, name: str, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): copy.deepcopy(dict(body))}


MANAGED = {L.MANAGED_BY: L.MANAGED_BY_VALUE}


def _controlling_service(body: kopf.Body) -> str | None:
    """The UID of the ECS Service that controls the object (not the core Service kind of the same name)."""
    ref = controller_of(body)
    return ref["uid"] if ref is not None and ref.get("kind") == "Service" and ref.get("apiVersion") == f"{API_GROUP}/{API_VERSION}" else None


@kopf.index(*DEPLOYMENTS, labels=MANAGED)
def service_deployments(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, ECS Service UID) -> the Deployments it controls: ownership, never a label, says whose."""
    owner = _controlling_service(body)
    return {(namespace, owner): copy.deepcopy(dict(body))} if owner else {}


@kopf.index(*DAEMON_SETS, labels=MANAGED)
def service_daemon_sets(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    owner = _controlling_service(body)
    return {(namespace, owner): copy.deepcopy(dict(body))} if owner else {}


def _owned(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    owner = _controlling_service(body)
    return {(namespace, owner): {"kind": body["kind"], "metadata": dict(body.metadata)}} if owner else {}


@kopf.index("v1", "services", labels=MANAGED, id="owned_services")
def owned_services(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """With the ClusterIP: the Service Connect names of the namespace's tasks point at it."""
    owned = _owned(body, namespace)
    for entry in owned.values():
        entry["spec"] = {"clusterIP": (body.get("spec") or {}).get("clusterIP")}
    return owned


@kopf.on.event("v1", "services", labels=MANAGED)
async def kubernetes_service_changed(body: kopf.Body, namespace: str, services: kopf.Index, **_: Any) -> None:
    """A Service of an ECS Service came, went or got its ClusterIP: the hostAliases of the namespace's
    Service Connect tasks may change (docs/ecs-semantics.md §Service Connect)."""
    if _controlling_service(body) is None:
        return
    for ns, name in list(services):
        ecs = next(iter(services.get((ns, name), [])), None)
        if ns == namespace and ecs is not None and ((ecs.get("spec") or {}).get("serviceConnectConfiguration") or {}).get("enabled"):
            wake(ns, name)


owned_budgets = kopf.index("policy", "v1", "poddisruptionbudgets", labels=MANAGED, id="owned_budgets")(_owned)
owned_policies = kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED, id="owned_policies")(_owned)
owned_endpoint_slices = kopf.index("discovery.k8s.io", "v1", "endpointslices", labels=MANAGED, id="owned_endpoint_slices")(_owned)


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
            except kopf.TemporaryError as e:
                delay = e.delay or RETRY_SECONDS  # the condition says why
                continue
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
    name = _service_of(labels, services, namespace)
    service = next(iter(services.get((namespace, name), [])), None)
    if service is None or _predecessors(body, service):
        return
    key = (namespace, service["metadata"]["uid"])
    uid = body.metadata.uid
    placed = bool(body.spec.get("nodeName"))
    with _pending_guard:
        if type == "DELETED":
            failed = uid in _stopping
            _stopping.discard(uid)
            was_placed = uid in _placed
            _placed.discard(uid)
            # a task that exited or failed to start stopped by itself: not a stop of the scheduler's
            if was_placed and not failed and stop_for(dict(body)) is None:
                _stopped[key].append(copy.deepcopy(dict(body)))
        elif placed and uid not in _placed:
            _placed.add(uid)
            if type is not None:  # None: the listing at start-up, tasks placed before this process
                _started[key].append(uid.replace("-", ""))
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
    if _controlling_service(body):
        wake(namespace, (controller_of(body) or {})["name"])


@kopf.on.delete(*SERVICES)
def delete_service(body: kopf.Body, name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, memo: Any,
                   service_pods: kopf.Index, service_deployments: kopf.Index, clusters: kopf.Index, **_: Any) -> None:
    """DeleteService: scale to zero, DRAINING until the tasks are gone, then INACTIVE (children go with it)."""
    label = L.group_label_value(name)
    with _pending_guard:  # a service being deleted reports no more tasks
        _started.pop((namespace, body.metadata.uid), None)
        _stopped.pop((namespace, body.metadata.uid), None)
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
    _written.pop((namespace, name), None)
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
    with lock_for("Service", meta["namespace"], meta["name"]):
        return _reconcile(service, SimpleNamespace(**kwargs))


def _reconcile(service: dict[str, Any], ix: Any) -> float | None:
    kube: Kube = ix.memo.kube
    settings: Settings = ix.memo.settings
    meta = service["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    current = _current_status(service)
    try:
        svc = ServiceSpec.model_validate(service.get("spec") or {})
    except ValidationError as e:
        return _refuse(kube, service, current, "InvalidParameterException", problems_text(problems_from_validation_error(e)))
    problems = validate(svc) + desired_count_problems(svc, settings.max_service_tasks)
    if problems:
        return _refuse(kube, service, current, "InvalidParameterException", problems_text(problems))
    ecs_name = svc.serviceName or name
    cluster_name = svc.cluster or "default"
    cluster = find_cluster(ix.clusters, namespace, cluster_name)
    if cluster is None:
        return _refuse(kube, service, current, "ClusterNotFoundException",
                       f"Cluster not found: no Cluster named {cluster_name!r} in namespace {namespace}", retry=True)
    if too_late(meta.get("creationTimestamp"), bool(current.get("deployments")), cluster["deleting"]):
        return _refuse(kube, service, current, "ClusterNotFoundException", inactive_message(cluster_name, namespace), retry=True)
    deployments = [Deployment.model_validate(d) for d in current.get("deployments") or []]
    force = (meta.get("annotations") or {}).get(L.FORCE_NEW_DEPLOYMENT)
    trigger = _config_key(svc, svc.taskDefinition or "", force)
    try:
        revision, spec_key = _requested(svc, deployments, current.get("deploymentTrigger") == trigger, namespace, ix, settings, force)
    except UnknownTaskDefinition as e:
        return _refuse(kube, service, current, "TaskDefinitionNotFound", f"taskDefinition: {e}", retry=True)

    label = L.group_label_value(name)
    moment = now()
    pods = [p for p in ix.service_pods.get((namespace, label), []) if not p["metadata"].get("deletionTimestamp")]
    requested = stop_requests(meta.get("annotations") or {})
    pods, failed, failures = _stop_failed_tasks(kube, pods, svc, moment, requested)
    _forget_stop_requests(kube, service, requested, ix.service_pods.get((namespace, label), []))
    with _pending_guard:
        key = (namespace, meta["uid"])
        started, stopped = _started.pop(key, []), _stopped.pop(key, [])
    messages = ([started_event(ecs_name, started)] if started else []) + (
        [stopped_event(ecs_name, [_task_id(p) for p in stopped])] if stopped else []) + _failure_events(ecs_name, failures)

    daemon = svc.schedulingStrategy == "DAEMON"
    daemon_sets = list(ix.service_daemon_sets.get((namespace, meta["uid"]), []))
    breaker = svc.deploymentConfiguration.deploymentCircuitBreaker if svc.deploymentConfiguration else None
    step = advance(
        service=ecs_name, service_uid=meta["uid"], previous=deployments,
        last_completed=Deployment.model_validate(current["lastCompletedDeployment"]) if current.get("lastCompletedDeployment") else None,
        desired_count=_daemon_counts(daemon_sets) if daemon else (svc.desiredCount or 0),
        task_definition=revision.name, config_key=spec_key,
        tasks=[_task_view(p, moment) for p in pods], failed=failed,
        breaker=breaker, threshold_configuration=breaker.thresholdConfiguration if breaker else None,
        now=moment, min_running_seconds=settings.service_task_ready_seconds,
    )
    desired = step.deployments[0].desiredCount if daemon else (svc.desiredCount or 0)
    target, launch = workload_target(step)
    stopped_tasks = keep(current.get("stoppedTasks") or [], [
        _stopped_record(pod, stop, moment, settings, cluster_name)
        for pod, stop in [*failures, *((p, scaling_stop(target.id)) for p in stopped)]
    ], moment, settings.stopped_task_ttl_seconds)
    connect = connect_namespace(svc, cluster_connect_default(cluster))
    if target.taskDefinition != revision.name:  # a rollback, or back to the last completed revision
        revision = resolve_revision(target.taskDefinition, namespace, ix.revisions, ix.task_definitions, settings, allow_inactive=True)
    plan = service_objects(
        svc if launch else svc.model_copy(update={"desiredCount": 0}),
        name=name, namespace=namespace, revision=revision, cluster=cluster_name, settings=settings,
        cluster_default_strategy=[CapacityProviderStrategyItem.model_validate(i)
                                  for i in cluster["spec"].get("defaultCapacityProviderStrategy") or []],
        instances=cluster_instances(namespace, cluster_name, ix.cluster_nodes, ix.nodes, ix.node_pods) if _member_of(svc, revision) else [],
        daemon_instance_count=len(instance_names(namespace, cluster_name, ix.cluster_nodes)),
        member_of_labels=labels_in_use(namespace, ix.member_of_deployments, ix.member_of_daemon_sets, ix.member_of_task_pods),
        policy=workload_policy(kube, namespace, settings),  # cached per namespace there
        provider_access=access_of(ix.provider_access),
        owner=owner_reference(service),
        template_labels={DEPLOYMENT_LABEL: _digits(target.id)},
        connect_namespace=connect or "",
        host_aliases=_started_hosts(daemon_sets or ix.service_deployments.get((namespace, meta["uid"]), []), _digits(target.id),
                                    lambda: connect_hosts(namespace, name, connect, ix) if connect is not None else None),
        pods=pods,
    )
    if plan.problems:
        return _refuse(kube, service, current, "InvalidParameterException", problems_text(plan.problems))
    messages += step.messages
    messages += drain(kube, svc, ecs_name, plan.workloads, pods, draining_nodes(ix.nodes, pods),
                      {w["metadata"]["name"]: w for w in ix.service_deployments.get((namespace, meta["uid"]), [])},
                      lambda pod: _healthy(pod, moment, settings.service_task_ready_seconds))
    try:
        messages += _apply_plan(kube, plan, service, ix, _digits(target.id), ecs_name)
    except Conflicts as e:
        return _refuse(kube, service, current, CONFLICT_REASON, conflicts_text(e.conflicts, "Service"),
                       retry=CONFLICT_RETRY_SECONDS)
    except ApiError as e:
        if e.temporary:
            raise kopf.TemporaryError(str(e), delay=3) from None
        return _refuse(kube, service, current, "KubernetesRefused", f"the API server refused a child object: {e}")
    messages += [unable_to_place_event(ecs_name, m) for m in filter(None, map(unschedulable_message, pods))]
    refusals = _launch_failures(ix.service_deployments.get((namespace, meta["uid"]), []))
    messages += [f"(service {ecs_name}) failed to launch a task with (error {r})." for r in refusals]

    events, fresh = add_events(current.get("events") or [], messages, moment)
    for message in fresh:
        kopf.event(service, type="Warning" if any(w in message for w in ("unable", "failed", ". Reason: ")) else "Normal",
                   reason="ServiceEvent", message=message)
    status = _status(current, service, svc, step, desired, events, plan, revision, trigger, settings, cluster_name, refusals)
    status["conditions"] = connect_condition(status["conditions"], service, connect is not None, plan.unserved)
    status.pop("stoppedTasks", None)
    if stopped_tasks:
        status["stoppedTasks"] = stopped_tasks
    _write(kube, service, current, status)
    due = _next_check(pods, svc.healthCheckGracePeriodSeconds or 0, settings.service_task_ready_seconds, moment)
    return min(due if due is not None else AGAIN_SECONDS, AGAIN_SECONDS) if step.again else due


def _started_hosts(workloads: Any, deployment: str, current: Callable[[], list[dict[str, Any]] | None]) -> list[dict[str, Any]] | None:
    """The Service Connect names of deployment `deployment`'s tasks: those its workload started with, or the
    current ones for a new deployment. ECS gives a task the endpoints that existed when its deployment
    started; later ones need a new deployment (docs/ecs-semantics.md §Service Connect)."""
    for workload in workloads:
        template = (workload.get("spec") or {}).get("template") or {}
        if ((template.get("metadata") or {}).get("labels") or {}).get(DEPLOYMENT_LABEL) == deployment:
            return copy.deepcopy((template.get("spec") or {}).get("hostAliases"))
    return current()


def _member_of(svc: ServiceSpec, revision: Revision) -> bool:
    """Whether placement needs the container instances (memberOf expressions are checked against
    them); building them reads every task of the cluster, so most reconciles skip it."""
    constraints = [*(svc.placementConstraints or []), *(revision.definition.placementConstraints or [])]
    return any(c.type == "memberOf" for c in constraints)


def _requested(svc: ServiceSpec, deployments: list[Deployment], unchanged: bool, namespace: str, ix: Any,
               settings: Settings, force: str | None) -> tuple[Revision, str]:
    """The revision the spec asks for and its deployment key. A spec that asks for what it asked
    before starts no new deployment, even if its family has a newer revision now (as UpdateService)."""
    primary = deployments[0] if deployments else None
    if primary is not None and unchanged:
        revision = resolve_revision(primary.taskDefinition, namespace, ix.revisions, ix.task_definitions, settings, allow_inactive=True)
        return revision, primary.rollbackOf or primary.configKey
    revision = resolve_revision(svc.taskDefinition or "", namespace, ix.revisions, ix.task_definitions, settings)
    return revision, _config_key(svc, revision.name, force)


def _stop_failed_tasks(kube: Kube, pods: list[dict[str, Any]], svc: ServiceSpec, moment: datetime, requested: dict[str, str]
                       ) -> tuple[list[dict[str, Any]], dict[str, int], list[tuple[dict[str, Any], Stop]]]:
    """Stops what ECS would stop (an essential container exited, the task cannot start, unhealthy
    past healthCheckGracePeriodSeconds) and what StopTask asked (`requested`: task id -> reason):
    the remaining pods, failed tasks per deployment (a user's stop is no failure), and the stopped
    pods with ECS's reason. Deletions run in parallel: a crash-looping service can leave many
    stopped tasks at once."""
    with _pending_guard:
        candidates = [p for p in pods if p["metadata"]["uid"] not in _stopping]
    grace = svc.healthCheckGracePeriodSeconds or 0
    reasons = {p["metadata"]["uid"]: _failure(p, grace, moment) or _requested_stop(p, requested) for p in candidates}
    doomed = [p for p in candidates if reasons[p["metadata"]["uid"]] is not None]

    def stop(pod: dict[str, Any]) -> bool:
        meta = pod["metadata"]
        with _pending_guard:  # before the deletion: its DELETED event may come before the call returns
            _stopping.add(meta["uid"])
        deleted = kube.delete("Pod", meta["namespace"], meta["name"], uid=meta["uid"],
                              grace_seconds=(pod.get("spec") or {}).get("terminationGracePeriodSeconds"))
        if not deleted:
            with _pending_guard:
                _stopping.discard(meta["uid"])
        return deleted

    failed: defaultdict[str, int] = defaultdict(int)
    stopped: list[tuple[dict[str, Any], Stop]] = []
    for pod, deleted in zip(doomed, _deleter.map(stop, doomed)):
        if deleted:
            why = reasons[pod["metadata"]["uid"]]
            if why is not None and why.code != "UserInitiated":
                failed[_deployment_id(pod)] += 1
            stopped.append((pod, why))  # type: ignore[arg-type]
    return [p for p in candidates if reasons[p["metadata"]["uid"]] is None], dict(failed), stopped


def _failure(pod: dict[str, Any], grace: int, moment: datetime) -> Stop | None:
    """None to keep the task; otherwise why ECS stops it."""
    stop = stop_for(pod)
    if stop is not None:
        return stop
    record = observe(pod, new_record(pod["metadata"]["name"]), moment)
    started = parse_time(record.startedAt)
    if record.healthStatus == "UNHEALTHY" and started is not None and (moment - started).total_seconds() >= grace:
        return Stop("ServiceSchedulerInitiated", HEALTH_CHECKS_FAILED)
    return None


def _requested_stop(pod: dict[str, Any], requested: dict[str, str]) -> Stop | None:
    reason = requested.get(_task_id(pod))
    return None if reason is None else Stop("UserInitiated", reason or STOPPED_BY_USER)


def _forget_stop_requests(kube: Kube, service: dict[str, Any], requested: dict[str, str], pods: list[dict[str, Any]]) -> None:
    """A StopTask annotation goes once its task is gone (stopped, or never one of this service's)."""
    present = {_task_id(p) for p in pods}
    done = [task_id for task_id in requested if task_id not in present]
    if done:
        meta = service["metadata"]
        kube.patch("Service.ecs", meta["namespace"], meta["name"],
                   {"metadata": {"annotations": {f"{L.STOP_TASK_PREFIX}{t}": None for t in done}}}, uid=meta["uid"])


def _failure_events(ecs_name: str, failures: list[tuple[dict[str, Any], Stop]]) -> list[str]:
    """ECS's events for failed tasks: each one failing its health checks, then the stops by reason."""
    messages = [f"(service {ecs_name}) (task {_task_id(p)}) failed container health checks."
                for p, stop in failures if stop.reason == HEALTH_CHECKS_FAILED]
    by_reason: dict[str, list[str]] = {}
    for pod, stop in failures:
        by_reason.setdefault(stop.reason, []).append(_task_id(pod))
    return messages + [stopped_event(ecs_name, ids, reason) for reason, ids in by_reason.items()]


def _stopped_record(pod: dict[str, Any], stop: Stop, moment: datetime, settings: Settings, cluster_name: str) -> TaskRecord:
    annotations = pod["metadata"].get("annotations") or {}
    return stopped_record(pod, stop, moment, task_arn=task_arn(settings, cluster_name, _task_id(pod)),
                          started_by=_deployment_id(pod), group=annotations.get(L.GROUP),
                          task_definition_arn=annotations.get(L.TASK_DEFINITION_ARN))


def _task_id(pod: dict[str, Any]) -> str:
    return pod["metadata"]["uid"].replace("-", "")


def _deployment_id(pod: dict[str, Any]) -> str:
    """The ECS deployment that started the task (its startedBy)."""
    return f"ecs-svc/{(pod['metadata'].get('labels') or {}).get(DEPLOYMENT_LABEL, '')}"


def _next_check(pods: list[dict[str, Any]], grace: int, ready_seconds: int, moment: datetime) -> float | None:
    """Seconds until the earliest time-based change of a task: counted healthy (RUNNING long
    enough), UNHEALTHY (health check retries used up) or past the grace period."""
    due: list[datetime] = []
    for pod in pods:
        checks = health_settings(pod)
        for c in pod_containers(pod):
            started = parse_time((c.running or {}).get("startedAt"))
            if started is None:
                continue
            due += [started + timedelta(seconds=ready_seconds), started + timedelta(seconds=grace)]
            if c.name in checks:
                s = checks[c.name]
                due.append(started + timedelta(seconds=s["startPeriod"] + s["interval"] * s["retries"]))
    future = [(d - moment).total_seconds() for d in due if d > moment]
    return min(future) + 1 if future else None  # +1: timestamps have whole seconds


class Conflicts(Exception):
    """Child names held by objects the Service does not control: nothing of the plan was written."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflicts_text(conflicts, "Service"))
        self.conflicts = conflicts


def _apply_plan(kube: Kube, plan: ServicePlan, service: dict[str, Any], ix: Any, running: str, ecs_name: str) -> list[str]:
    """Applies what differs, deletes what the plan no longer has, all only among the objects the
    Service controls (Conflicts, before any write, if a name is held by another); returns ECS's stuck
    event if minimumHealthyPercent/maximumPercent allow neither a start nor a stop."""
    meta = service["metadata"]
    namespace, owner = meta["namespace"], (meta["namespace"], meta["uid"])
    messages: list[str] = []
    workloads = [*ix.service_deployments.get(owner, []), *ix.service_daemon_sets.get(owner, [])]
    owned: dict[Key, dict[str, Any]] = {key_of(w): w for w in workloads}
    owned.update({key_of(o): o for index in (ix.owned_services, ix.owned_budgets, ix.owned_policies, ix.owned_endpoint_slices) for o in index.get(owner, [])})
    if plan.bounds is not None and plan.bounds.stuck and any(_deployment_of(w) not in (None, running) for w in workloads):
        messages.append(plan.bounds.stuck_event(ecs_name) or "")
        plan.workloads = [_keep_template(w, owned.get(key_of(w))) for w in plan.workloads]
    uids, conflicts = claim(kube, plan.children, owned, plan.origins)
    if conflicts:
        raise Conflicts(conflicts)
    for obj in plan.children:
        try:
            _apply_if_changed(kube, obj, owned.get(key_of(obj)), uids[key_of(obj)])
        except OwnershipConflict as e:  # taken between the look and the write: nothing written to it
            raise Conflicts([conflict(plan.origins.get(key_of(obj), "metadata.name"), e.existing)]) from None
    for kind, stale in set(owned) - {key_of(o) for o in plan.children}:  # e.g. a provider left the strategy
        kube.delete(kind, namespace, stale, uid=owned[(kind, stale)]["metadata"]["uid"])
    return messages


def _status(current: dict[str, Any], service: dict[str, Any], svc: ServiceSpec, step: Advance, desired: int,
            events: list[dict[str, str]], plan: ServicePlan, revision: Revision, trigger: str, settings: Settings,
            cluster_name: str, refusals: list[str]) -> dict[str, Any]:
    ecs_name = svc.serviceName or service["metadata"]["name"]
    primary = step.deployments[0]
    entries = plan.report.entries(svc.to_json())
    status = {
        **current,
        "serviceName": ecs_name,
        "serviceArn": service_arn(settings, cluster_name, ecs_name),
        "clusterName": cluster_name,
        "clusterArn": cluster_arn(settings, cluster_name),
        "status": "ACTIVE",
        "schedulingStrategy": svc.schedulingStrategy or "REPLICA",
        "taskDefinition": primary.taskDefinition,
        "desiredCount": desired,
        "runningCount": sum(d.runningCount for d in step.deployments),
        "pendingCount": sum(d.pendingCount for d in step.deployments),
        "rolloutState": primary.rolloutState,
        "deployments": [d.model_dump(mode="json", exclude_none=True) for d in step.deployments],
        "events": events,
        "selector": f"{L.SERVICE}={L.group_label_value(service['metadata']['name'])}",
        "fidelity": {**summarize(entries), "fields": [e.to_json() for e in entries if e.verdict != "exact"],
                     "taskDefinition": summarize(plan.template_report.entries(revision.definition.to_json()))["summary"],
                     **ignored_read_only(svc)},
        "deploymentTrigger": trigger,
        "observedGeneration": service["metadata"].get("generation"),
    }
    status.pop("lastCompletedDeployment", None)
    if step.last_completed is not None:
        status["lastCompletedDeployment"] = step.last_completed.model_dump(mode="json", exclude_none=True)
    if refusals:  # e.g. the namespace's Pod Security level: no task can start until the spec or namespace changes
        status["conditions"] = ready(current, service, False, "TaskLaunchFailed", "; ".join(refusals))
    else:
        status["conditions"] = ready(current, service, True, "Active", f"{primary.taskDefinition}: {primary.rolloutState}")
    return status


def _launch_failures(workloads: list[dict[str, Any]]) -> list[str]:
    """Why the API server refused the workloads' Pods (Pod Security Admission, a quota, ...), as the
    Deployment controller reports it (ReplicaFailure, copied from the ReplicaSet's FailedCreate)."""
    return [
        c.get("message") or c.get("reason") or "FailedCreate"
        for w in workloads
        for c in (w.get("status") or {}).get("conditions") or []
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"
    ]


def _daemon_counts(daemon_sets: list[dict[str, Any]]) -> dict[str, int]:
    """A DAEMON service's desiredCount per deployment: the eligible container instances (the DaemonSet's
    nodes), known only once the DaemonSet controller counted them for the template that runs the
    deployment (docs/ecs-semantics.md §DAEMON services). Before that the count is 0 or another
    template's, which would complete a deployment before its tasks run."""
    counts: defaultdict[str, int] = defaultdict(int)
    for daemon_set in daemon_sets:
        status = daemon_set.get("status") or {}
        deployment = _deployment_of(daemon_set)
        if deployment and status.get("observedGeneration", 0) >= daemon_set["metadata"].get("generation", 1):
            counts[f"ecs-svc/{deployment}"] += status.get("desiredNumberScheduled", 0)
    return dict(counts)


def _task_view(pod: dict[str, Any], moment: datetime) -> TaskView:
    record = observe(pod, new_record(pod["metadata"]["name"]), moment)
    annotations = pod["metadata"].get("annotations") or {}
    essential = set(annotations.get(L.ESSENTIAL_CONTAINERS, "").split(","))
    return TaskView(
        task_id=pod["metadata"].get("uid", "").replace("-", ""),
        deployment=_deployment_id(pod),
        last_status=record.lastStatus,
        health_status=record.healthStatus,
        essential_health_check=bool(essential & set(health_settings(pod))),
        running_since=parse_time(record.startedAt),
    )


def _healthy(pod: dict[str, Any], moment: datetime, ready_seconds: int) -> bool:
    """Whether the task counts toward minimumHealthyPercent (ECS's rule, as for deployments)."""
    view = _task_view(pod, moment)
    return counts_as_healthy(last_status=view.last_status, health_status=view.health_status,
                             essential_health_check=view.essential_health_check, running_since=view.running_since,
                             now=moment, min_running_seconds=ready_seconds)


def _digits(deployment_id: str) -> str:
    """The label value for a deployment: `ecs-svc/` is not allowed in a label."""
    return deployment_id.split("/")[-1]


def _config_key(svc: ServiceSpec, revision: str, force: str | None) -> str:
    triggers = {k: v for k, v in svc.to_json().items() if k in TRIGGERS}
    if force:
        triggers[L.FORCE_NEW_DEPLOYMENT] = force
    return hashlib.sha256(json.dumps([revision, triggers], sort_keys=True).encode()).hexdigest()[:16]


def _deployment_of(workload: dict[str, Any]) -> str | None:
    return (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels", {}).get(DEPLOYMENT_LABEL)


def _keep_template(desired: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """Stuck by minimumHealthyPercent/maximumPercent: ECS neither stops nor starts; keep what runs."""
    if live is not None:
        desired = copy.deepcopy(desired)
        desired["spec"]["template"] = copy.deepcopy(live["spec"]["template"])
        desired["spec"]["strategy"] = copy.deepcopy(live["spec"].get("strategy", desired["spec"].get("strategy")))
    return desired


def _apply_if_changed(kube: Kube, obj: dict[str, Any], live: dict[str, Any] | None, uid: str | None) -> None:
    """Server-side apply only when what we would apply differs from what we last applied there
    (`live`: the object as the owned index has it; `uid`: the object the write may go to)."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"].setdefault("annotations", {})[APPLIED] = digest
    if live is not None and (live["metadata"].get("annotations") or {}).get(APPLIED) == digest and (
        (live.get("spec") or {}).get("replicas") == (obj.get("spec") or {}).get("replicas")
    ):
        return
    kube.apply(obj, uid=uid)


def _service_of(labels: kopf.Labels, services: kopf.Index, namespace: str) -> str:
    """The Service resource name a pod's service label stands for (the label may be a hashed form)."""
    value = labels.get(L.SERVICE, "")
    if (namespace, value) in services:
        return value
    return next((name for ns, name in services if ns == namespace and L.group_label_value(name) == value), value)


def _refuse(kube: Kube, service: dict[str, Any], current: dict[str, Any], reason: str, message: str,
            retry: float | bool = False) -> None:
    """Ready=False (and a Warning Event when the reason or message is new); `retry`: look again after
    RETRY_SECONDS (True) or after that many seconds."""
    status = {**current, "conditions": ready(current, service, False, reason, message)}
    _write(kube, service, current, status)
    if retry:
        raise kopf.TemporaryError(message, delay=RETRY_SECONDS if retry is True else retry)


def _write(kube: Kube, service: dict[str, Any], current: dict[str, Any], status: dict[str, Any]) -> None:
    meta = service["metadata"]
    if status == current:
        return
    patch = {k: status.get(k) for k in set(status) | set(current)}
    if kube.patch_status("Service.ecs", meta["namespace"], meta["name"], patch) is not None:
        _written[(meta["namespace"], meta["name"])] = (meta["uid"], status)


def _current_status(service: dict[str, Any]) -> dict[str, Any]:
    meta = service["metadata"]
    written = _written.get((meta["namespace"], meta["name"]))
    if written is not None and written[0] == meta["uid"]:
        return dict(written[1])
    return {k: v for k, v in (service.get("status") or {}).items() if k != "kopf"}
