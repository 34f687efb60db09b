"""What a Service's reconcile does, decided from what was observed: the core of handlers/services.py.

Pure: `plan_service(observed, now)` reads a ServiceObserved (the Service, its Pods and children, its
Cluster, the resolved revisions: everything the handler read before) and returns a ServiceDecision,
the typed actions the handler executes in order (stops, stop-request annotations to forget, drain
marks and evictions, children to apply and delete) and the one status write, with the Events to post
and when to look again. The ECS rules live here: which tasks stop and why (an essential container
exited, unhealthy past healthCheckGracePeriodSeconds, StopTask), the circuit breaker's failure count,
the service events and their severity.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ecs_operator import API_GROUP, labels as L
from ecs_operator.arns import task_arn
from ecs_operator.models import Problem, ServiceSpec, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.ownership import owner_reference
from ecs_operator.placement.query import Instance
from ecs_operator.registry import UnknownTaskDefinition
from ecs_operator.scaling.rolling import counts_as_healthy
from ecs_operator.settings import Settings
from ecs_operator.translate.gateway import Traffic, pods_by_slot, routes
from ecs_operator.translate.mesh import mesh_routes
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.policy import WorkloadPolicy
from ecs_operator.translate.service import SECOND_SLOT, desired_count_problems, service_objects
from ecs_operator.translate.service_connect import connect_namespace
from ecs_operator.translate.volumes import SharedClaim

from .cluster_deletion import inactive_message, too_late
from .placement_failures import unable_to_place_event
from .pods import health_settings, parse_time, pod_containers, unschedulable_message
from .records import TaskRecord
from .service_alarms import POLL_SECONDS, AlarmReading, alarm_condition, watch_for
from .service_deployments import Deployment, TaskView, add_events, advance, started_event, stopped_event, workload_target
from .service_draining import DrainPlan, Eviction, Mark, drain
from .service_events import ServiceEvent, normal, warning
from .service_hooks import HookActions, HookTarget, hook_actions, with_hooks
from .service_status import connect_condition, ready, service_status
from .service_strategy import Progress, other_slot, progress, shift_for, slot_of, traffic
from .service_tasks import HEALTH_CHECKS_FAILED, keep, scaling_stop, stop_requests, stopped_record
from .task_state import HOST_LOST_CODE, STOPPED_BY_USER, Stop, host_lost_reason, new_record, observe as observe_task, stop_for

Key = tuple[str, str]
"""(kind, name) of a child in the Service's namespace."""
PLACED_TASKS = "placedTasks"
"""Status field: ids of the tasks reported started and not yet reported stopped (the events' durable source)."""
APPLIED = f"{API_GROUP}/applied-hash"
"""Annotation on each child: the hash of what was last applied (no write while it still matches)."""
TRIGGERS = ("networkConfiguration", "loadBalancers", "serviceRegistries", "serviceConnectConfiguration",
            "volumeConfigurations", "platformVersion")
"""Settings whose change starts a new ECS deployment (with taskDefinition)."""
RETRY_SECONDS = 3
AGAIN_SECONDS = 1.0
"""How soon a rollout step that needs a second observation (a rollback just started) gets it."""
CONFLICT_RETRY_SECONDS = 10
"""A child name held by a foreign object is looked at again this often (it may be removed or renamed)."""


@dataclass(frozen=True)
class ServiceObserved:
    """Everything one reconcile of a Service reads, read before the decision."""

    service: dict[str, Any]
    spec: ServiceSpec | None
    """None when the spec does not parse (`invalid` says why)."""
    invalid: tuple[Problem, ...]
    current: dict[str, Any]
    """The status as last written (status.kopf left out)."""
    pods: tuple[dict[str, Any], ...]
    """The service's Pods, those being deleted included."""
    stopping: frozenset[str]
    """UIDs of Pods this process is deleting (not counted or stopped again)."""
    deployments: tuple[dict[str, Any], ...]
    daemon_sets: tuple[dict[str, Any], ...]
    owned: Mapping[Key, dict[str, Any]]
    """Every child the Service controls (workloads included)."""
    cluster: dict[str, Any] | None
    requested: Revision | str
    """spec.taskDefinition resolved as a new deployment takes it (str: why it names nothing usable)."""
    revisions: Mapping[str, Revision | str]
    """The task definitions the status's deployments run, resolved with INACTIVE ones allowed."""
    settings: Settings
    policy: WorkloadPolicy = WorkloadPolicy()
    instances: tuple[Instance, ...] = ()
    """The cluster's container instances (read only when a memberOf constraint needs them)."""
    daemon_instance_count: int = 0
    member_of_labels: frozenset[str] = frozenset()
    provider_access: Mapping[str, list[str]] = field(default_factory=dict)
    connect_hosts: list[dict[str, Any]] | None = None
    """The Service Connect names of the namespace now (for a new deployment's tasks)."""
    http_routes: bool = False
    """The cluster serves Gateway API HTTPRoutes (read only when a load balancer has an advancedConfiguration)."""
    draining: frozenset[str] = frozenset()
    """Nodes of the service's Pods whose ContainerInstance is DRAINING."""
    lost_nodes: frozenset[str] = frozenset()
    """Nodes of the service's Pods that are gone (the Node deleted): their host stopped/terminated."""
    stopped: tuple[dict[str, Any], ...] = ()
    """Pods that went since the last reconcile, as last seen (records for the tasks placed_tasks reports stopped)."""
    hook_targets: Mapping[str, HookTarget | str] = field(default_factory=dict)
    """Each AWS_LAMBDA lifecycle hook's hookTargetArn resolved (str: why it names nothing usable)."""
    hook_tasks: Mapping[str, dict[str, Any] | None] = field(default_factory=dict)
    """The running hooks' Tasks by name (None: not there)."""
    alarms: AlarmReading | None = None
    """deploymentConfiguration.alarms' states (None: not read, the deployment being settled)."""


@dataclass(frozen=True)
class PodStop:
    pod: dict[str, Any]
    stop: Stop
    lost: bool = False
    """Its host is gone: deleted at once (no kubelet to wait for), and no failure of the task."""


@dataclass(frozen=True)
class Placement:
    """The tasks to report started and stopped, derived from the Pods and the status's PLACED_TASKS."""

    started: tuple[str, ...]
    stopped: tuple[tuple[str, dict[str, Any] | None], ...]
    """Task ids gone since the last write, with the Pod as this process last saw it (None: gone unseen)."""
    known: tuple[str, ...]
    """PLACED_TASKS after this reconcile."""

    def stopped_by_reason(self) -> dict[str | None, list[str]]:
        """The scheduler's stops grouped as ECS words them: a task that failed on its own names its reason."""
        by_reason: dict[str | None, list[str]] = {}
        for tid, pod in self.stopped:
            stop = stop_for(pod) if pod is not None else None
            by_reason.setdefault(stop.reason if stop else None, []).append(tid)
        return by_reason

    def stopped_pods(self) -> list[dict[str, Any]]:
        """The gone tasks' Pods as last seen, for their stopped-task records (one gone unseen has none)."""
        return [pod for _, pod in self.stopped if pod is not None]


def placed_tasks(o: ServiceObserved, stops: list[PodStop]) -> Placement:
    """Which tasks to report started (placed, not yet reported) and stopped (reported, now gone), from
    durable state: the status's PLACED_TASKS is written with the events that report them, so a process
    killed at any moment leaves neither a lost nor a repeated event. Pod events only add the last look
    at a gone Pod (its stopped-task record). A status from before PLACED_TASKS adopts the tasks placed
    now without reporting them again."""
    present = {task_id(p): p for p in o.pods}
    created = str(o.service["metadata"].get("creationTimestamp", ""))
    placed = [task_id(p) for p in o.pods
              if (p.get("spec") or {}).get("nodeName") and not p["metadata"].get("deletionTimestamp")
              and p["metadata"]["uid"] not in o.stopping
              and str(p["metadata"].get("creationTimestamp", "")) >= created]  # not a deleted namesake's
    known: list[str] | None = o.current.get(PLACED_TASKS)
    if known is None:
        known = placed if o.current.get("deployments") else []
    seen = {task_id(p): p for p in o.stopped}
    started = tuple(t for t in placed if t not in known)
    stopped = tuple((t, seen.get(t)) for t in known if t not in present)
    failed = {task_id(s.pod) for s in stops}
    kept = tuple(t for t in [*known, *started] if t in present and t not in failed)
    return Placement(started, stopped, kept)


@dataclass(frozen=True)
class ServiceDecision:
    """The actions in the order the handler executes them, then one status write."""

    status: dict[str, Any]
    write: bool
    """Whether `status` differs from the current one."""
    events: tuple[ServiceEvent, ...] = ()
    stops: tuple[PodStop, ...] = ()
    forget: tuple[str, ...] = ()
    """Task ids whose StopTask annotation goes."""
    marks: tuple[Mark, ...] = ()
    evictions: tuple[Eviction, ...] = ()
    children: tuple[dict[str, Any], ...] = ()
    """Every planned child (the ownership check covers them all)."""
    apply: frozenset[Key] = frozenset()
    """The children that differ from what was last applied."""
    origins: Mapping[Key, str] = field(default_factory=dict)
    stale: tuple[tuple[str, str, str], ...] = ()
    """(kind, name, uid) of children the plan no longer has."""
    claims: tuple[SharedClaim, ...] = ()
    """The namespace's volume claims the Pods name, created when missing as the workloads are applied."""
    reported: bool = False
    """The gone Pods were looked at (the handler forgets them)."""
    requeue_after: float | None = None
    hooks: HookActions = HookActions()
    """Lifecycle hook Tasks to create and stop, ContinueServiceDeployment annotations to forget."""


@dataclass(frozen=True)
class Acted:
    """What the decision does whatever else it decides: the stops, and the StopTask annotations to forget."""

    stops: tuple[PodStop, ...]
    forget: tuple[str, ...]


def plan_service(observed: ServiceObserved, now: datetime) -> ServiceDecision:
    """The decision for one reconcile; refusals (invalid spec, no cluster, unknown task definition,
    plan problems) are decisions with a Ready=False condition."""
    o, svc, meta = observed, observed.spec, observed.service["metadata"]
    if svc is None:
        return refusal(o, "InvalidParameterException", _text(o.invalid), now)
    problems = validate(svc) + desired_count_problems(svc, o.settings.max_service_tasks)
    if problems:
        return refusal(o, "InvalidParameterException", _text(problems), now)
    cluster_name = svc.cluster or "default"
    if o.cluster is None:
        missing = f"Cluster not found: no Cluster named {cluster_name!r} in namespace {meta['namespace']}"
        return refusal(o, "ClusterNotFoundException", missing, now, RETRY_SECONDS)
    if too_late(meta.get("creationTimestamp"), bool(o.current.get("deployments")), o.cluster["deleting"]):
        return refusal(o, "ClusterNotFoundException", inactive_message(cluster_name, meta["namespace"]), now, RETRY_SECONDS)
    deployments = [Deployment.model_validate(d) for d in o.current.get("deployments") or []]
    force = (meta.get("annotations") or {}).get(L.FORCE_NEW_DEPLOYMENT)
    trigger = config_key(svc, svc.taskDefinition or "", force)
    primary = deployments[0] if deployments else None
    if primary is not None and o.current.get("deploymentTrigger") == trigger:
        # the spec asks for what it asked before: no new deployment, even if the family has a newer revision
        revision, spec_key = o.revisions[primary.taskDefinition], primary.rollbackOf or primary.configKey
    else:
        revision = o.requested
        spec_key = config_key(svc, revision.name, force) if isinstance(revision, Revision) else ""
    if isinstance(revision, str):
        return refusal(o, "TaskDefinitionNotFound", f"taskDefinition: {revision}", now, RETRY_SECONDS)

    ecs_name = svc.serviceName or meta["name"]
    live = [p for p in o.pods if not p["metadata"].get("deletionTimestamp")]
    requested = stop_requests(meta.get("annotations") or {})
    stops, pods = stop_tasks(live, o.stopping, svc.healthCheckGracePeriodSeconds or 0, requested, now, o.lost_nodes)
    present = {task_id(p) for p in o.pods}
    forget = tuple(t for t in requested if t not in present)  # StopTask of a task that is gone (or never was this service's)
    placement = placed_tasks(o, stops)
    events = ([normal(started_event(ecs_name, list(placement.started)))] if placement.started else []) + [
        (warning if reason else normal)(stopped_event(ecs_name, ids, reason))
        for reason, ids in placement.stopped_by_reason().items()
    ] + failure_events(ecs_name, stops)
    acted = Acted(tuple(stops), tuple(forget))

    daemon = svc.schedulingStrategy == "DAEMON"
    breaker = svc.deploymentConfiguration.deploymentCircuitBreaker if svc.deploymentConfiguration else None
    shift = None if daemon else shift_for(svc.deploymentConfiguration, o.settings.deployment_minute_seconds)
    watch = watch_for(svc.deploymentConfiguration.alarms if svc.deploymentConfiguration else None,
                      o.alarms or AlarmReading(), shift is not None, o.settings.deployment_minute_seconds)
    step = advance(
        service=ecs_name, service_uid=meta["uid"], previous=deployments,
        last_completed=(Deployment.model_validate(o.current["lastCompletedDeployment"])
                        if o.current.get("lastCompletedDeployment") else None),
        desired_count=daemon_counts(list(o.daemon_sets)) if daemon else (svc.desiredCount or 0),
        task_definition=revision.name, config_key=spec_key,
        tasks=[task_view(p, now) for p in pods], failed=failures_by_deployment(stops),
        breaker=breaker, threshold_configuration=breaker.thresholdConfiguration if breaker else None,
        now=now, min_running_seconds=o.settings.service_task_ready_seconds, alarm=watch,
        early=svc.deploymentConfiguration.earlySuccessCriteria if svc.deploymentConfiguration else None,
    )
    desired = step.deployments[0].desiredCount if daemon else (svc.desiredCount or 0)
    green_healthy = sum(1 for p in pods if deployment_id(p) == step.deployments[0].id
                        and healthy(p, now, o.settings.service_task_ready_seconds))
    shifting = progress(step, shift, green_healthy >= desired, now)
    hooked = None  # lifecycle hooks (lifecycle/service_hooks.py): may hold green, pause the schedule or roll back
    if shifting is not None and shift is not None and svc.deploymentConfiguration and svc.deploymentConfiguration.lifecycleHooks:
        hooked, shifting = with_hooks(o, svc, step, shift, shifting, green_healthy >= desired, cluster_name, ecs_name, now)
    target, cap = workload_target(step)
    stopped_tasks = keep(o.current.get("stoppedTasks") or [], [
        _stopped_record(s.pod, s.stop, now, o.settings, cluster_name)
        for s in [*stops, *(PodStop(p, scaling_stop(target.id)) for p in placement.stopped_pods())]
    ], now, o.settings.stopped_task_ttl_seconds)
    connect = connect_namespace(svc, ((o.cluster.get("spec") or {}).get("serviceConnectDefaults") or {}).get("namespace"))
    if target.taskDefinition != revision.name:  # a rollback, or back to the last completed revision
        revision = _revision(o.revisions[target.taskDefinition])
    if shifting is not None:  # blue and green side by side, traffic by the schedule (lifecycle/service_strategy.py)
        step.deployments[0] = shifting.primary
        slot = other_slot(slot_of(o.deployments, [digits(shifting.blue.id)]) if shifting.blue else "")
    else:  # one workload: a rolling update changes the one that runs now
        slot = slot_of(o.deployments, [digits(d.id) for d in [target, *([step.last_completed] if step.last_completed else []),
                                                             *step.deployments]])
    served = pods if shift is None else traffic(pods, {p["metadata"]["uid"]: deployment_id(p) for p in pods}, target.id, shifting)
    plan = service_objects(
        svc if cap is None and not (hooked and hooked.hold)
        else svc.model_copy(update={"desiredCount": 0 if hooked and hooked.hold else cap}),
        name=meta["name"], namespace=meta["namespace"], revision=revision, cluster=cluster_name, settings=o.settings,
        cluster_default_strategy=[CapacityProviderStrategyItem.model_validate(i)
                                  for i in o.cluster["spec"].get("defaultCapacityProviderStrategy") or []],
        instances=o.instances if member_of(svc, revision) else [],
        daemon_instance_count=o.daemon_instance_count,
        member_of_labels=o.member_of_labels,
        policy=o.policy,
        provider_access=o.provider_access,
        owner=owner_reference(o.service),
        template_labels={L.DEPLOYMENT: digits(target.id)},
        connect_namespace=connect or "",
        host_aliases=started_hosts([*(o.daemon_sets or o.deployments)], digits(target.id),
                                   o.connect_hosts if connect is not None else None),
        pods=served, slot=slot,
    )
    if plan.problems:
        return replace(refusal(o, "InvalidParameterException", _text(plan.problems), now),
                       stops=acted.stops, forget=acted.forget, reported=True)
    blue = [] if shifting is None or shifting.position.clean_up else blue_workloads(o, svc, shifting, cluster_name, connect)
    events += [warning(m) if m in step.warnings else normal(m) for m in step.messages]
    drained: DrainPlan = drain(svc, ecs_name, [*plan.workloads, *blue], pods, set(o.draining),
                               {w["metadata"]["name"]: w for w in o.deployments},
                               lambda pod: healthy(pod, now, o.settings.service_task_ready_seconds))
    events += drained.events
    workloads = drained.workloads
    running = [*o.deployments, *o.daemon_sets]
    if (shifting is None and plan.bounds is not None and plan.bounds.stuck
            and any(deployment_of(w) not in (None, digits(target.id)) for w in running)):
        events.append(warning(plan.bounds.stuck_event(ecs_name) or ""))
        workloads = [keep_template(w, o.owned.get(key_of(w))) for w in workloads]
    # blue/green load balancers: production and test HTTPRoutes weighted by the step (translate/gateway.py)
    now_serving = (Traffic(slot_of(o.deployments, [digits(shifting.blue.id)]), slot, shifting.position.percent)
               if shifting is not None and shifting.blue is not None else Traffic(slot))
    slots = pods_by_slot(pods, [*o.deployments, *workloads])
    lb = routes(svc, meta["name"], plan.services, slots, now_serving,
                second_slot=SECOND_SLOT, served=o.http_routes, report=plan.report)
    if lb.problems:
        return replace(refusal(o, "InvalidParameterException", _text(lb.problems), now),
                       stops=acted.stops, forget=acted.forget, reported=True)
    mesh = mesh_routes(svc, connect or "", plan.services, slots, now_serving, shifting_strategy=shift is not None,
                       second_slot=SECOND_SLOT, served=o.http_routes, report=plan.report)
    routed = {key_of(c): c for c in [*mesh.objects, *lb.objects]}  # a Service both name: one set of targets
    plan.origins.update({**mesh.origins, **lb.origins})
    children = [with_applied_hash(c) for c in [*workloads, *plan.services, *plan.extra, *routed.values()]]
    events += [warning(unable_to_place_event(ecs_name, m)) for m in filter(None, map(unschedulable_message, pods))]
    refused = launch_failures(list(o.deployments))
    events += [warning(f"(service {ecs_name}) failed to launch a task with (error {r}).") for r in refused]

    history, fresh = add_events(o.current.get("events") or [], [e.message for e in events], now)
    status = service_status(o.current, o.service, svc, step, desired, history, plan, revision, trigger, o.settings, cluster_name)
    primary = step.deployments[0]
    if refused:  # e.g. the namespace's Pod Security level: no task can start until the spec or namespace changes
        status["conditions"], notice = ready(o.current, o.service, False, "TaskLaunchFailed", "; ".join(refused), now)
    else:
        active = f"{primary.taskDefinition}: {primary.rolloutState}"
        status["conditions"], notice = ready(o.current, o.service, True, "Active", active, now)
    status["conditions"], connect_notice = connect_condition(status["conditions"], o.service, connect is not None,
                                                             plan.unserved, now)
    status["conditions"], alarm_notice = alarm_condition(status["conditions"], o.service, watch, now)
    status[PLACED_TASKS] = list(placement.known)
    status.pop("stoppedTasks", None)
    if stopped_tasks:
        status["stoppedTasks"] = stopped_tasks
    by_message = {e.message: e for e in reversed(events)}
    due = next_check(pods, svc.healthCheckGracePeriodSeconds or 0, o.settings.service_task_ready_seconds, now)
    if shifting is not None and shifting.position.due is not None:  # the next traffic step, the bake's end, a hook's timeout
        step_due = max(0.0, (shifting.position.due - now).total_seconds()) + 0.05
        due = step_due if due is None else min(due, step_due)
    if watch is not None and primary.rolloutState == "IN_PROGRESS" and primary.rollbackOf is None:
        # its alarms are polled (lifecycle/service_alarms.py), and its bake ends at step.alarm_due
        bake = (step.alarm_due - now).total_seconds() + 0.05 if step.alarm_due else POLL_SECONDS
        due = min(x for x in (due, POLL_SECONDS, max(0.0, bake)) if x is not None)
    return ServiceDecision(
        status=status, write=status != o.current,
        events=tuple([*(by_message[m] for m in fresh), *filter(None, (notice, connect_notice, alarm_notice))]),
        marks=tuple(drained.marks), evictions=tuple(drained.evictions),
        children=tuple(children), apply=frozenset(key_of(c) for c in children if changed(c, o.owned.get(key_of(c)))),
        origins=plan.origins, claims=tuple(plan.claims),
        stale=tuple((k, n, o.owned[(k, n)]["metadata"]["uid"]) for k, n in set(o.owned) - {key_of(c) for c in children}),
        requeue_after=min(due if due is not None else AGAIN_SECONDS, AGAIN_SECONDS) if step.again else due,
        stops=acted.stops, forget=acted.forget, reported=True,
        hooks=hook_actions(o, svc, hooked, step, cluster_name),
    )


def blue_workloads(o: ServiceObserved, svc: ServiceSpec, shifting: Progress, cluster_name: str,
                   connect: str | None) -> list[dict[str, Any]]:
    """Blue's workloads while green takes traffic: the templates they run now, at the service's desiredCount, in the
    slot they are in (lifecycle/service_strategy.py)."""
    assert shifting.blue is not None
    label = digits(shifting.blue.id)
    plan = service_objects(
        svc, name=o.service["metadata"]["name"], namespace=o.service["metadata"]["namespace"],
        revision=_revision(o.revisions[shifting.blue.taskDefinition]), cluster=cluster_name, settings=o.settings,
        cluster_default_strategy=[CapacityProviderStrategyItem.model_validate(i)
                                  for i in (o.cluster or {}).get("spec", {}).get("defaultCapacityProviderStrategy") or []],
        instances=o.instances, daemon_instance_count=o.daemon_instance_count, member_of_labels=o.member_of_labels,
        policy=o.policy, provider_access=o.provider_access, owner=owner_reference(o.service),
        template_labels={L.DEPLOYMENT: label}, connect_namespace=connect or "",
        host_aliases=started_hosts(list(o.deployments), label, o.connect_hosts if connect is not None else None),
        slot=slot_of(o.deployments, [label]),
    )
    return [keep_template(w, o.owned.get(key_of(w))) for w in plan.workloads]


def refusal(observed: ServiceObserved, reason: str, message: str, now: datetime, retry: float | None = None) -> ServiceDecision:
    """Ready=False (with a Warning Event when the reason or message is new); nothing else changes.
    `retry`: look again after that many seconds."""
    conditions, event = ready(observed.current, observed.service, False, reason, message, now)
    status = {**observed.current, "conditions": conditions}
    return ServiceDecision(status=status, write=status != observed.current, events=(event,) if event else (), requeue_after=retry)


def after_evictions(decision: ServiceDecision, current: Mapping[str, Any], late: list[ServiceEvent],
                    now: datetime) -> ServiceDecision:
    """The decision with the events that only the evictions' outcome tells (how many the PodDisruptionBudget let go)."""
    if not late:
        return decision
    history, fresh = add_events(decision.status.get("events") or [], [e.message for e in late], now)
    status = {**decision.status, "events": history}
    by_message = {e.message: e for e in late}
    return replace(decision, status=status, write=status != current, events=(*decision.events, *(by_message[m] for m in fresh)))


def stop_tasks(pods: list[dict[str, Any]], stopping: frozenset[str], grace: int, requested: Mapping[str, str],
               now: datetime, lost_nodes: frozenset[str] = frozenset()) -> tuple[list[PodStop], list[dict[str, Any]]]:
    """What ECS stops (its host gone, an essential container exited, the task cannot start, unhealthy past
    healthCheckGracePeriodSeconds) and what StopTask asked (`requested`: task id -> reason), and the
    tasks that stay. Pods already being stopped by this process are in neither."""
    stops: list[PodStop] = []
    remaining: list[dict[str, Any]] = []
    for pod in pods:
        if pod["metadata"]["uid"] in stopping:
            continue
        node = (pod.get("spec") or {}).get("nodeName")
        if node in lost_nodes:
            stops.append(PodStop(pod, Stop(HOST_LOST_CODE, host_lost_reason(node)), lost=True))
            continue
        stop = failure(pod, grace, now) or requested_stop(pod, requested)
        if stop is None:
            remaining.append(pod)
        else:
            stops.append(PodStop(pod, stop))
    return stops, remaining


def failure(pod: dict[str, Any], grace: int, now: datetime) -> Stop | None:
    """None to keep the task; otherwise why ECS stops it. An UNHEALTHY task is stopped only once
    healthCheckGracePeriodSeconds have passed since it started (docs/ecs-semantics.md §Health status)."""
    stop = stop_for(pod)
    if stop is not None:
        return stop
    record = observe_task(pod, new_record(pod["metadata"]["name"]), now)
    started = parse_time(record.startedAt)
    if record.healthStatus == "UNHEALTHY" and started is not None and (now - started).total_seconds() >= grace:
        return Stop("ServiceSchedulerInitiated", HEALTH_CHECKS_FAILED)
    return None


def requested_stop(pod: dict[str, Any], requested: Mapping[str, str]) -> Stop | None:
    reason = requested.get(task_id(pod))
    return None if reason is None else Stop("UserInitiated", reason or STOPPED_BY_USER)


def failures_by_deployment(stops: list[PodStop]) -> dict[str, int]:
    """Failed tasks per deployment, as the circuit breaker counts them: a user's stop is no failure
    (docs/ecs-semantics.md §Circuit breaker rollback)."""
    failed: defaultdict[str, int] = defaultdict(int)
    for s in stops:
        if s.stop.code != "UserInitiated" and not s.lost:
            failed[deployment_id(s.pod)] += 1
    return dict(failed)


def failure_events(ecs_name: str, stops: list[PodStop]) -> list[ServiceEvent]:
    """ECS's events for stopped tasks: each one failing its health checks, then the stops by reason (Warnings)."""
    messages = [f"(service {ecs_name}) (task {task_id(s.pod)}) failed container health checks."
                for s in stops if s.stop.reason == HEALTH_CHECKS_FAILED]
    by_reason: dict[str, list[str]] = {}
    for s in stops:
        by_reason.setdefault(s.stop.reason, []).append(task_id(s.pod))
    return [warning(m) for m in messages + [stopped_event(ecs_name, ids, reason) for reason, ids in by_reason.items()]]


def _stopped_record(pod: dict[str, Any], stop: Stop, now: datetime, settings: Settings, cluster_name: str) -> TaskRecord:
    annotations = pod["metadata"].get("annotations") or {}
    return stopped_record(pod, stop, now, task_arn=task_arn(settings, cluster_name, task_id(pod)),
                          started_by=deployment_id(pod), group=annotations.get(L.GROUP),
                          task_definition_arn=annotations.get(L.TASK_DEFINITION_ARN))


def task_id(pod: Mapping[str, Any]) -> str:
    return str(pod["metadata"]["uid"]).replace("-", "")


def deployment_id(pod: Mapping[str, Any]) -> str:
    """The ECS deployment that started the task (its startedBy)."""
    return f"ecs-svc/{(pod['metadata'].get('labels') or {}).get(L.DEPLOYMENT, '')}"


def next_check(pods: list[dict[str, Any]], grace: int, ready_seconds: int, now: datetime) -> float | None:
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
    future = [(d - now).total_seconds() for d in due if d > now]
    return min(future) + 1 if future else None  # +1: timestamps have whole seconds


def launch_failures(workloads: list[dict[str, Any]]) -> list[str]:
    """Why the API server refused the workloads' Pods (Pod Security Admission, a quota, ...), as the
    Deployment controller reports it (ReplicaFailure, copied from the ReplicaSet's FailedCreate)."""
    return [
        c.get("message") or c.get("reason") or "FailedCreate"
        for w in workloads
        for c in (w.get("status") or {}).get("conditions") or []
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"
    ]


def daemon_counts(daemon_sets: list[dict[str, Any]]) -> dict[str, int]:
    """A DAEMON service's desiredCount per deployment: the eligible container instances (the DaemonSet's
    nodes), known only once the DaemonSet controller counted them for the template that runs the
    deployment (docs/ecs-semantics.md §DAEMON services). Before that the count is 0 or another
    template's, which would complete a deployment before its tasks run."""
    counts: defaultdict[str, int] = defaultdict(int)
    for daemon_set in daemon_sets:
        status = daemon_set.get("status") or {}
        deployment = deployment_of(daemon_set)
        if deployment and status.get("observedGeneration", 0) >= daemon_set["metadata"].get("generation", 1):
            counts[f"ecs-svc/{deployment}"] += status.get("desiredNumberScheduled", 0)
    return dict(counts)


def task_view(pod: dict[str, Any], now: datetime) -> TaskView:
    record = observe_task(pod, new_record(pod["metadata"]["name"]), now)
    annotations = pod["metadata"].get("annotations") or {}
    essential = set(annotations.get(L.ESSENTIAL_CONTAINERS, "").split(","))
    return TaskView(
        task_id=pod["metadata"].get("uid", "").replace("-", ""),
        deployment=deployment_id(pod),
        last_status=record.lastStatus,
        health_status=record.healthStatus,
        essential_health_check=bool(essential & set(health_settings(pod))),
        running_since=parse_time(record.startedAt),
    )


def healthy(pod: dict[str, Any], now: datetime, ready_seconds: int) -> bool:
    """Whether the task counts toward minimumHealthyPercent (ECS's rule, as for deployments)."""
    view = task_view(pod, now)
    return counts_as_healthy(last_status=view.last_status, health_status=view.health_status,
                             essential_health_check=view.essential_health_check, running_since=view.running_since,
                             now=now, min_running_seconds=ready_seconds)


def digits(deployment: str) -> str:
    """The label value for a deployment: `ecs-svc/` is not allowed in a label."""
    return deployment.split("/")[-1]


def config_key(svc: ServiceSpec, revision: str, force: str | None) -> str:
    triggers = {k: v for k, v in svc.to_json().items() if k in TRIGGERS}
    if force:
        triggers[L.FORCE_NEW_DEPLOYMENT] = force
    return hashlib.sha256(json.dumps([revision, triggers], sort_keys=True).encode()).hexdigest()[:16]


def deployment_of(workload: Mapping[str, Any]) -> str | None:
    labels = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    deployment: str | None = labels.get(L.DEPLOYMENT)
    return deployment


def keep_template(desired: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """Stuck by minimumHealthyPercent/maximumPercent: ECS neither stops nor starts; keep what runs."""
    if live is not None:
        desired = copy.deepcopy(desired)
        desired["spec"]["template"] = copy.deepcopy(live["spec"]["template"])
        desired["spec"]["strategy"] = copy.deepcopy(live["spec"].get("strategy", desired["spec"].get("strategy")))
    return desired


def with_applied_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """The child with the hash of its content in APPLIED (a copy: the plan's object is left as it is)."""
    digest = hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]
    meta = obj["metadata"]
    return {**obj, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), APPLIED: digest}}}


def changed(obj: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether a server-side apply is due: what we apply differs from what we last applied there
    (`live`: the object as the owned index has it), or its replicas were changed by someone else."""
    applied = (live or {}).get("metadata", {}).get("annotations") or {}
    return live is None or applied.get(APPLIED) != obj["metadata"]["annotations"][APPLIED] or (
        (live.get("spec") or {}).get("replicas") != (obj.get("spec") or {}).get("replicas"))


def key_of(obj: Mapping[str, Any]) -> Key:
    return (obj["kind"], obj["metadata"]["name"])


def started_hosts(workloads: list[dict[str, Any]], deployment: str,
                  current: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The Service Connect names of deployment `deployment`'s tasks: those its workload started with, or the
    current ones for a new deployment. ECS gives a task the endpoints that existed when its deployment
    started; later ones need a new deployment (docs/ecs-semantics.md §Service Connect)."""
    for workload in workloads:
        template = (workload.get("spec") or {}).get("template") or {}
        if ((template.get("metadata") or {}).get("labels") or {}).get(L.DEPLOYMENT) == deployment:
            return copy.deepcopy((template.get("spec") or {}).get("hostAliases"))
    return current


def member_of(svc: ServiceSpec, revision: Revision) -> bool:
    """Whether placement needs the container instances (memberOf expressions are checked against
    them); building them reads every task of the cluster, so most reconciles skip it."""
    constraints = [*(svc.placementConstraints or []), *(revision.definition.placementConstraints or [])]
    return any(getattr(c, "type", None) == "memberOf" for c in constraints)


def _revision(resolved: Revision | str) -> Revision:
    """A revision the status names; one that names nothing usable any more fails the reconcile (retried at the resync)."""
    if isinstance(resolved, str):
        raise UnknownTaskDefinition(resolved)
    return resolved


def _text(problems: Iterable[Problem]) -> str:
    return "; ".join(str(p) for p in problems)
