"""Service: Deployments (or a DaemonSet) and Kubernetes Services, with ECS's deployments,
circuit breaker, events and DeleteService draining.

One function, `reconcile_service`, computes everything from the spec, the indexes and the
previous status, applies only what differs, and writes status only when it changes; the spec
handlers, a resync timer and Pod/child events all call it.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import hashlib
import json
import threading
from collections import defaultdict
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import API_GROUP
from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.arns import cluster_arn, service_arn
from ecs_operator.lifecycle.pods import health_settings, parse_time, unschedulable_message
from ecs_operator.lifecycle.placement_failures import unable_to_place_event
from ecs_operator.lifecycle.service_deployments import Deployment, TaskView, add_events, advance
from ecs_operator.lifecycle.task_state import new_record, observe, stop_for
from ecs_operator.models import ServiceSpec, problems_from_validation_error, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.registry import UnknownTaskDefinition
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import summarize
from ecs_operator.translate.service import service_objects

from .common import lock_for, now, owner_reference, problems_text, ready
from .lookups import cluster_instances, find_cluster, resolve_revision
from .namespaces import allowed_features
from .resources import DAEMON_SETS, DEPLOYMENTS, PODS, SERVICES

DEPLOYMENT_LABEL = f"{API_GROUP}/deployment"
"""Pod label: the ECS deployment (ecs-svc/<digits>) a service task belongs to."""
APPLIED = f"{API_GROUP}/applied-hash"
"""Annotation on each child: the hash of what was last applied (no write while it still matches)."""
FORCE_DELETE = f"{API_GROUP}/force-delete"
"""Annotation "true" on a Service: delete it without draining its tasks first (DeleteService force)."""
TRIGGERS = ("networkConfiguration", "loadBalancers", "serviceRegistries", "serviceConnectConfiguration",
            "volumeConfigurations", "platformVersion")
"""Settings whose change starts a new ECS deployment (with taskDefinition)."""

RESYNC_SECONDS = 30

_written: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
# What Pod events saw since the service's last reconcile (consumed by it, under the service lock).
_failed: defaultdict[tuple[str, str], defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
_messages: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
_started: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
_wakeups: dict[tuple[str, str], tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_pending_guard = threading.Lock()


@kopf.index(*SERVICES)
def services(body: kopf.Body, name: str, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): copy.deepcopy(dict(body))}


@kopf.index(*DEPLOYMENTS, labels={L.SERVICE: kopf.PRESENT})
def service_deployments(body: kopf.Body, namespace: str, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[L.SERVICE]): copy.deepcopy(dict(body))}


@kopf.index(*DAEMON_SETS, labels={L.SERVICE: kopf.PRESENT})
def service_daemon_sets(body: kopf.Body, namespace: str, labels: kopf.Labels, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, labels[L.SERVICE]): copy.deepcopy(dict(body))}


MANAGED = {L.MANAGED_BY: L.MANAGED_BY_VALUE}


def _owned(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    owner = next((o["uid"] for o in body.metadata.get("ownerReferences") or [] if o.get("kind") == "Service"), None)
    return {(namespace, owner): {"kind": body["kind"], "metadata": dict(body.metadata)}} if owner else {}


owned_services = kopf.index("v1", "services", labels=MANAGED, id="owned_services")(_owned)
owned_budgets = kopf.index("policy", "v1", "poddisruptionbudgets", labels=MANAGED, id="owned_budgets")(_owned)
owned_policies = kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED, id="owned_policies")(_owned)


@kopf.on.resume(*SERVICES)
@kopf.on.create(*SERVICES)
@kopf.on.update(*SERVICES, field="spec")
def service_changed(body: kopf.Body, name: str, namespace: str, **kwargs: Any) -> None:
    reconcile_service(copy.deepcopy(dict(body)), **kwargs)


@kopf.daemon(*SERVICES, cancellation_timeout=5)
async def service_worker(name: str, namespace: str, stopped: kopf.DaemonStopped, services: kopf.Index, **kwargs: Any) -> None:
    """Reconciles when woken by Pod or workload events (a burst becomes one reconcile) and every
    RESYNC_SECONDS anyway: level-triggered repair of deleted children and missed events."""
    key = (namespace, name)
    wakeup = asyncio.Event()
    _wakeups[key] = (asyncio.get_running_loop(), wakeup)
    try:
        while not stopped:
            try:
                await asyncio.wait_for(wakeup.wait(), timeout=RESYNC_SECONDS)
            except asyncio.TimeoutError:
                pass
            wakeup.clear()
            service = next(iter(services.get(key, [])), None)
            if service is None or stopped:
                continue
            context = contextvars.copy_context()  # kopf.event() needs the handler's context in the thread
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: context.run(reconcile_service, service, services=services, **kwargs)
                )
            except kopf.TemporaryError:
                pass  # the spec handler reports it; the next wake-up retries
    finally:
        _wakeups.pop(key, None)


def wake(namespace: str, name: str) -> None:
    """Ask the service's worker to reconcile soon (from any thread)."""
    entry = _wakeups.get((namespace, name))
    if entry is not None:
        loop, event = entry
        loop.call_soon_threadsafe(event.set)


@kopf.on.event(*PODS, labels={L.SERVICE: kopf.PRESENT})
def service_pod_changed(type: str, body: kopf.Body, namespace: str, labels: kopf.Labels, memo: Any,
                        services: kopf.Index, **_: Any) -> None:
    """Stops what ECS would stop (essential exit, failed start, unhealthy past the grace period),
    then wakes the service's worker to account for it."""
    service = next(iter(services.get((namespace, _service_of(labels, services, namespace)), [])), None)
    if service is None:
        return
    key = (namespace, service["metadata"]["name"])
    task_id = body.metadata.uid.replace("-", "")
    name = (service.get("spec") or {}).get("serviceName") or key[1]
    if type == "ADDED":
        with _pending_guard:
            _started[key].append(task_id)
    if not body.metadata.get("deletionTimestamp") and type != "DELETED":
        reason = _stop_reason(dict(body), service, name, task_id)
        if reason is not None:
            grace = (body.spec or {}).get("terminationGracePeriodSeconds")
            if memo.kube.delete("Pod", namespace, body.metadata.name, grace_seconds=grace):
                with _pending_guard:
                    _failed[key][f"ecs-svc/{labels.get(DEPLOYMENT_LABEL, '')}"] += 1
                    _messages[key].append(reason)
    wake(*key)


@kopf.on.event(*DEPLOYMENTS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
@kopf.on.event(*DAEMON_SETS, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE})
def workload_changed(body: kopf.Body, namespace: str, **_: Any) -> None:
    """A deleted or edited workload is put back; rollout progress shows in the service status."""
    owner = next((o["name"] for o in body.metadata.get("ownerReferences") or [] if o.get("kind") == "Service"), None)
    if owner:
        wake(namespace, owner)


@kopf.on.delete(*SERVICES)
def delete_service(body: kopf.Body, name: str, namespace: str, spec: kopf.Spec, memo: Any,
                   service_pods: kopf.Index, service_deployments: kopf.Index, **_: Any) -> None:
    """DeleteService: scale to zero, DRAINING until the tasks are gone, then INACTIVE (children go with it)."""
    label = L.group_label_value(name)
    if (body.metadata.annotations or {}).get(FORCE_DELETE) == "true":
        return
    for workload in service_deployments.get((namespace, label), []):
        if (workload.get("spec") or {}).get("replicas"):
            memo.kube.patch("Deployment", namespace, workload["metadata"]["name"], {"spec": {"replicas": 0}})
    remaining = [p for p in service_pods.get((namespace, label), []) if not p["metadata"].get("deletionTimestamp")]
    daemon = spec.get("schedulingStrategy") == "DAEMON"
    if remaining and not daemon:
        memo.kube.patch_status("Service.ecs", namespace, name, {"status": "DRAINING", "desiredCount": 0})
        raise kopf.TemporaryError(f"draining: {len(remaining)} task(s) still running", delay=3)
    memo.kube.patch_status("Service.ecs", namespace, name, {"status": "INACTIVE", "desiredCount": 0, "runningCount": 0})
    _written.pop((namespace, name), None)


def reconcile_service(service: dict[str, Any], *, memo: Any, service_pods: kopf.Index, service_deployments: kopf.Index,
                      service_daemon_sets: kopf.Index, revisions: kopf.Index, task_definitions: kopf.Index,
                      clusters: kopf.Index, cluster_nodes: kopf.Index, nodes: kopf.Index, node_pods: kopf.Index,
                      owned_services: kopf.Index, owned_budgets: kopf.Index, owned_policies: kopf.Index,
                      **_: Any) -> None:
    kube: Kube = memo.kube
    settings: Settings = memo.settings
    meta = service["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if meta.get("deletionTimestamp"):
        return
    key = (namespace, name)
    with lock_for("Service", namespace, name):
        current = _current_status(service)
        status = dict(current)
        try:
            svc = ServiceSpec.model_validate(service.get("spec") or {})
        except ValidationError as e:
            return _refuse(kube, service, current, "InvalidParameterException", problems_text(problems_from_validation_error(e)))
        problems = validate(svc)
        with _pending_guard:
            failed, started, pending_messages = dict(_failed.pop(key, {})), _started.pop(key, []), _messages.pop(key, [])
        if problems:
            return _refuse(kube, service, current, "InvalidParameterException", problems_text(problems))
        ecs_name = svc.serviceName or name
        cluster_name = svc.cluster or "default"
        cluster = find_cluster(clusters, namespace, cluster_name)
        if cluster is None:
            return _refuse(kube, service, current, "ClusterNotFoundException",
                           f"Cluster not found: no Cluster named {cluster_name!r} in namespace {namespace}", retry=True)

        deployments = [Deployment.model_validate(d) for d in current.get("deployments") or []]
        primary = deployments[0] if deployments else None
        trigger = _config_key(svc, svc.taskDefinition or "")
        try:
            if primary is not None and current.get("deploymentTrigger") == trigger:
                # the spec asks for what it asked before: no new deployment, even if a newer revision exists
                spec_key = primary.rollbackOf or primary.configKey
                revision = resolve_revision(primary.taskDefinition, namespace, revisions, task_definitions, settings, allow_inactive=True)
            else:
                revision = resolve_revision(svc.taskDefinition or "", namespace, revisions, task_definitions, settings)
                spec_key = _config_key(svc, revision.name)
        except UnknownTaskDefinition as e:
            return _refuse(kube, service, current, "TaskDefinitionNotFound", f"taskDefinition: {e}", retry=True)

        label = L.group_label_value(name)
        pods = list(service_pods.get((namespace, label), []))
        moment = now()
        views = [_task_view(p, moment) for p in pods if not p["metadata"].get("deletionTimestamp")]
        daemon = svc.schedulingStrategy == "DAEMON"
        daemon_sets = list(service_daemon_sets.get((namespace, label), []))
        desired = ((daemon_sets[0].get("status") or {}).get("desiredNumberScheduled", 0) if daemon_sets else 0) if daemon else (svc.desiredCount or 0)
        step = advance(
            service=ecs_name, service_uid=meta["uid"], previous=deployments,
            last_completed=Deployment.model_validate(current["lastCompletedDeployment"]) if current.get("lastCompletedDeployment") else None,
            desired_count=desired, task_definition=revision.name,
            config_key=spec_key,
            tasks=views, failed=failed,
            breaker=svc.deploymentConfiguration.deploymentCircuitBreaker if svc.deploymentConfiguration else None,
            threshold_configuration=(svc.deploymentConfiguration.deploymentCircuitBreaker.thresholdConfiguration
                                     if svc.deploymentConfiguration and svc.deploymentConfiguration.deploymentCircuitBreaker else None),
            now=moment, min_running_seconds=settings.service_task_ready_seconds,
        )
        running_primary = step.deployments[0]
        if running_primary.taskDefinition != revision.name:  # a rollback: run the earlier revision
            revision = resolve_revision(running_primary.taskDefinition, namespace, revisions, task_definitions, settings, allow_inactive=True)

        default_strategy = [CapacityProviderStrategyItem.model_validate(i) for i in cluster["spec"].get("defaultCapacityProviderStrategy") or []]
        plan = service_objects(
            svc, name=name, namespace=namespace, revision=revision, cluster=cluster_name, settings=settings,
            cluster_default_strategy=default_strategy,
            instances=cluster_instances(cluster_name, cluster_nodes, nodes, node_pods),
            daemon_instance_count=len(list(cluster_nodes.get(cluster_name, []))),
            allowed_features=allowed_features(kube, namespace, settings),
            owner=owner_reference(service),
            template_labels={DEPLOYMENT_LABEL: running_primary.id.split("/")[-1]},
        )
        if plan.problems:
            return _refuse(kube, service, current, "InvalidParameterException", problems_text(plan.problems))
        messages = pending_messages + step.messages
        if started:
            messages.insert(0, f"(service {ecs_name}) has started {len(started)} tasks: " + " ".join(f"(task {t})" for t in started) + ".")
        live = {w["metadata"]["name"]: w for w in service_deployments.get((namespace, label), [])}
        live.update({w["metadata"]["name"]: w for w in daemon_sets})
        others = {
            (o["kind"], o["metadata"]["name"]): o
            for index in (owned_services, owned_budgets, owned_policies)
            for o in index.get((namespace, meta["uid"]), [])
        }
        if plan.bounds is not None and plan.bounds.stuck and any(
            _deployment_of(w) not in (None, running_primary.id.split("/")[-1]) for w in live.values()
        ):
            messages.append(plan.bounds.stuck_event(ecs_name) or "")
            plan.workloads = [_keep_template(w, live.get(w["metadata"]["name"])) for w in plan.workloads]
        if running_primary.rolloutState == "FAILED":
            for workload in plan.workloads:
                workload["spec"]["paused"] = True  # a FAILED deployment launches no new tasks
        for obj in plan.workloads:
            _apply_if_changed(kube, obj, live.get(obj["metadata"]["name"]))
        for obj in [*plan.services, *plan.extra]:
            _apply_if_changed(kube, obj, others.get((obj["kind"], obj["metadata"]["name"])))
        for stale in set(live) - {w["metadata"]["name"] for w in plan.workloads}:  # e.g. a provider left the strategy
            kube.delete(live[stale]["kind"], namespace, stale)
        for kind, stale in set(others) - {(o["kind"], o["metadata"]["name"]) for o in [*plan.services, *plan.extra]}:
            kube.delete(kind, namespace, stale)
        for pod in pods:
            placement = unschedulable_message(pod)
            if placement:
                messages.append(unable_to_place_event(ecs_name, placement))

        events, fresh = add_events(current.get("events") or [], messages, moment)
        for message in fresh:
            kopf.event(service, type="Warning" if "unable" in message or "failed" in message else "Normal",
                       reason="ServiceEvent", message=message)
        primary_now = step.deployments[0]
        status.update({
            "serviceName": ecs_name,
            "serviceArn": service_arn(settings, cluster_name, ecs_name),
            "clusterName": cluster_name,
            "clusterArn": cluster_arn(settings, cluster_name),
            "status": "ACTIVE",
            "schedulingStrategy": svc.schedulingStrategy or "REPLICA",
            "taskDefinition": primary_now.taskDefinition,
            "desiredCount": desired,
            "runningCount": sum(d.runningCount for d in step.deployments),
            "pendingCount": sum(d.pendingCount for d in step.deployments),
            "rolloutState": primary_now.rolloutState,
            "deployments": [d.model_dump(mode="json", exclude_none=True) for d in step.deployments],
            "lastCompletedDeployment": step.last_completed.model_dump(mode="json", exclude_none=True) if step.last_completed else None,
            "events": events,
            "selector": f"{L.SERVICE}={label}",
            "fidelity": {**summarize(plan.report.entries(svc.to_json())),
                         "taskDefinition": summarize(plan.template_report.entries(revision.definition.to_json()))["summary"]},
            "deploymentTrigger": trigger,
            "observedGeneration": meta.get("generation"),
        })
        status["conditions"] = ready(current, service, True, "Active", f"{primary_now.taskDefinition}: {primary_now.rolloutState}")
        _write(kube, service, current, status)


def _stop_reason(pod: dict[str, Any], service: dict[str, Any], name: str, task_id: str) -> str | None:
    """ECS's event for a service task it stops now, or None."""
    stop = stop_for(pod)
    if stop is not None:
        return f"(service {name}) has stopped 1 running tasks: (task {task_id}). Reason: {stop.reason}"
    record = observe(pod, new_record(pod["metadata"]["name"]), now())
    grace = (service.get("spec") or {}).get("healthCheckGracePeriodSeconds") or 0
    started = parse_time(record.startedAt)
    if record.healthStatus == "UNHEALTHY" and started is not None and (now() - started).total_seconds() >= grace:
        return f"(service {name}) (task {task_id}) failed container health checks."
    return None


def _task_view(pod: dict[str, Any], moment: Any) -> TaskView:
    record = observe(pod, new_record(pod["metadata"]["name"]), moment)
    annotations = pod["metadata"].get("annotations") or {}
    essential = set(annotations.get(L.ESSENTIAL_CONTAINERS, "").split(","))
    return TaskView(
        task_id=pod["metadata"].get("uid", "").replace("-", ""),
        deployment=f"ecs-svc/{(pod['metadata'].get('labels') or {}).get(DEPLOYMENT_LABEL, '')}",
        last_status=record.lastStatus,
        health_status=record.healthStatus,
        essential_health_check=bool(essential & set(health_settings(pod))),
        running_since=parse_time(record.startedAt),
    )


def _config_key(svc: ServiceSpec, revision: str) -> str:
    triggers = {k: v for k, v in svc.to_json().items() if k in TRIGGERS}
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


def _apply_if_changed(kube: Kube, obj: dict[str, Any], live: dict[str, Any] | None) -> None:
    """Server-side apply only when what we would apply differs from what we last applied there."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    obj["metadata"].setdefault("annotations", {})[APPLIED] = digest
    if live is not None and (live["metadata"].get("annotations") or {}).get(APPLIED) == digest and (
        (live.get("spec") or {}).get("replicas") == obj["spec"].get("replicas")
    ):
        return
    kube.apply(obj)


def _service_of(labels: kopf.Labels, services: kopf.Index, namespace: str) -> str:
    """The Service resource name a pod's service label stands for (the label may be a hashed form)."""
    value = labels.get(L.SERVICE, "")
    if (namespace, value) in services:
        return value
    return next((name for ns, name in services if ns == namespace and L.group_label_value(name) == value), value)


def _refuse(kube: Kube, service: dict[str, Any], current: dict[str, Any], reason: str, message: str, retry: bool = False) -> None:
    status = {**current, "conditions": ready(current, service, False, reason, message)}
    _write(kube, service, current, status)
    if retry:
        raise kopf.TemporaryError(message, delay=3)


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
