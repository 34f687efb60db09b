"""Task (RunTask): creates the task Pods once, then follows them through ECS's life cycle.

ECS never restarts a stopped task, so Pods are created only for tasks that have no record yet;
their deterministic names make a repeated creation (after a crash) find the Task's own Pod instead
of duplicating it. A Pod of that name the Task does not control is a conflict, never adopted.
Status has one writer, `reconcile_task`, called from Task and Pod events, from the events of what
a waiting Task needs (its TaskDefinition's revisions, its Cluster), from wake-ups at moments no
event marks (a health check's grace, the stopped-task TTL) and from its Cluster's resync timer.
It writes only what changed: nothing at steady state.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError, Kube, OwnershipConflict
from ecs_operator.arns import cluster_arn, parse_task_definition_ref, task_arn
from ecs_operator.lifecycle.cluster_deletion import inactive_message, too_late
from ecs_operator.lifecycle.health import health_deadline
from ecs_operator.lifecycle.placement_failures import placement_failure_reasons
from ecs_operator.lifecycle.pods import parse_time, unschedulable_message
from ecs_operator.lifecycle.records import TaskRecord
from ecs_operator.lifecycle.task_state import STOPPED_BY_USER, new_record, observe, request_stop
from ecs_operator.lifecycle.task_summary import summarize_tasks
from ecs_operator.models import TaskSpec, problems_from_validation_error, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.ownership import CONFLICT_REASON, conflict, conflicts_text, controller_of
from ecs_operator.registry import UnknownTaskDefinition
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import summarize
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.task import task_pods as plan_task_pods

from .children import claim, key_of
from .common import kopf_callback, lock_for, now, owner_reference, problems_text, ready
from .lookups import access_of, cluster_instances, find_cluster, node_zone, resolve_revision
from .member_of import labels_in_use
from .namespaces import workload_policy
from .notices import log, notify
from .resources import CLUSTERS, CONTROLLER_REVISIONS, PODS, TASK_DEFINITIONS, TASKS
from .setup import REVISION_KIND_LABEL
from .wakeups import later

PENDING_GRACE = 5.0
"""Seconds a new Task waits silently for a Cluster or TaskDefinition that is not there yet: applied
in one manifest, they arrive in any order. After that the Task reports why it cannot start."""

RESYNC_SECONDS = 60.0
"""A Task no event has touched for this long is reconciled by its Cluster's timer (level-triggered repair)."""
RETRY_SECONDS = 5.0
"""When the API fails a request (timeout, 5xx), the Task is reconciled again after this long."""
FLUSH_SECONDS = 2.0
"""Status changes nobody waits for are persisted together within this long (see _write)."""

# Tasks that wait for (or were refused for want of) a Cluster or TaskDefinition: events of those retry them.
_waiting: set[tuple[str, str]] = set()
_waiting_guard = threading.Lock()
# When each Task was last reconciled (time.monotonic()): the resync skips the ones events keep current.
_reconciled_at: dict[tuple[str, str], float] = {}
_reconciled_generation: dict[tuple[str, str], int | None] = {}
# The status this process decided last per Task (uid, status without kopf's): the index lags behind it.
_written: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
# What was last persisted per Task: a flush patches only the difference.
_persisted: dict[tuple[str, str], dict[str, Any]] = {}
# Pods we created that the index has not seen yet: (namespace, Pod name) -> Pod. Without this, a Pod
# event of one task would make its siblings, created a moment ago, look deleted.
_unindexed: dict[tuple[str, str], dict[str, Any]] = {}
_unindexed_guard = threading.Lock()


@dataclass(frozen=True)
class Views:
    """The indexes a Task's reconcile reads: kopf keeps them current, so reading costs no request."""

    tasks: kopf.Index
    task_pods: kopf.Index
    revisions: kopf.Index
    task_definitions: kopf.Index
    registrations: kopf.Index
    clusters: kopf.Index
    cluster_nodes: kopf.Index
    nodes: kopf.Index
    node_pods: kopf.Index
    provider_access: kopf.Index
    member_of_deployments: kopf.Index
    member_of_daemon_sets: kopf.Index
    member_of_task_pods: kopf.Index

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Views:
        return cls(**{f.name: kwargs[f.name] for f in fields(cls)})


class Waiting(Exception):
    """What the Task needs may still arrive (applied together with it): retry soon, report nothing yet."""


class Refused(Exception):
    """The Task cannot start as it is: ECS's exception name and a message naming the field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@kopf.index(*TASKS)
@kopf_callback
def tasks(body: kopf.Body, name: str, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the Task."""
    return {(namespace, name): copy.deepcopy(dict(body))}


@kopf.on.event(*TASKS)
@kopf_callback
def task_changed(type: str, body: kopf.Body, name: str, namespace: str, memo: Any, **kwargs: Any) -> None:
    """Every change of a Task, and each Task once at start-up. Level-triggered event handlers, no
    timers: kopf then puts no finalizer and no bookkeeping annotation on Tasks (two writes per task
    saved, and deleting a Task never waits for the operator)."""
    key = (namespace, name)
    if type == "DELETED":
        _forget(key)
        return
    if _echo(key, body):
        return
    reconcile_task(copy.deepcopy(dict(body)), memo, Views.of(kwargs))


def _echo(key: tuple[str, str], body: kopf.Body) -> bool:
    """The event of our own status write: nothing in it that the last reconcile did not know."""
    return _reconciled_generation.get(key) == body.metadata.get("generation") and \
        _persisted.get(key) == _status_of(dict(body))


@kopf.on.event(*TASK_DEFINITIONS)
@kopf.on.event(*CONTROLLER_REVISIONS, labels={REVISION_KIND_LABEL: kopf.PRESENT})
@kopf.on.event(*CLUSTERS)
@kopf_callback
def launch_waiting(namespace: str, memo: Any, **kwargs: Any) -> None:
    """A revision registered, a TaskDefinition or Cluster changed: the Tasks waiting in that namespace try again."""
    views = Views.of(kwargs)
    with _waiting_guard:
        names = [name for ns, name in _waiting if ns == namespace]
    for name in names:
        _reconcile_by_name(memo, views, namespace, name)


@kopf.on.event(*PODS, labels={L.TASK: kopf.PRESENT})
@kopf_callback
def task_pod_changed(body: kopf.Body, name: str, namespace: str, memo: Any, **kwargs: Any) -> None:
    _forget_unindexed((namespace, name))  # from now on the index knows this Pod (or its deletion)
    owner = controller_of(body)
    if owner is not None and owner.get("kind") == "Task":
        _reconcile_by_name(memo, Views.of(kwargs), namespace, owner["name"])


def resync_tasks(namespace: str, names: list[str], memo: Any, views: Views) -> None:
    """Level-triggered repair, driven by each Cluster's timer: a Task not looked at for RESYNC_SECONDS
    is reconciled (nothing is written when nothing changed)."""
    stale = time.monotonic() - RESYNC_SECONDS
    for name in names:
        if _reconciled_at.get((namespace, name), 0.0) < stale:
            _reconcile_by_name(memo, views, namespace, name)


def reconcile_task(task_body: dict[str, Any], memo: Any, views: Views) -> None:
    """Launch the Task's Pods if it has none yet, else follow them; write status only when it changed.

    The API failing us (a timeout, a 5xx) is retried shortly: event handlers are not retried by kopf.
    """
    meta = task_body["metadata"]
    key = (meta["namespace"], meta["name"])
    try:
        with lock_for("Task", *key):
            _reconcile(task_body, memo, views)
    except ApiError as e:
        log(task_body, logging.WARNING, "Retrying", f"the API refused a request ({e}); trying again in {RETRY_SECONDS} s")
        later(("Task", *key, "retry"), RETRY_SECONDS, lambda: _reconcile_by_name(memo, views, *key))
    if views.tasks.get(key):  # not for a Task deleted meanwhile
        _reconciled_at[key] = time.monotonic()
        _reconciled_generation[key] = meta.get("generation")
    _wake_for_health(memo, views, task_body)


def _reconcile(task_body: dict[str, Any], memo: Any, views: Views) -> None:
    meta = task_body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    kube: Kube = memo.kube
    settings: Settings = memo.settings
    current = _current_status(task_body)
    records = [TaskRecord.model_validate(t) for t in current.get("tasks") or []]
    if (task_body.get("spec") or {}).get("desiredStatus") == "STOPPED":
        _set_waiting((namespace, name), False)
        _stop(kube, settings, task_body, current, records, views)
    elif records:  # launched before: follow the Pods, never launch again
        sync_task(kube, settings, task_body, _pods_by_name(views.task_pods, task_body), views.nodes)
    else:
        try:
            _launch(kube, settings, task_body, current, views)
        except Waiting:  # look again when the grace ends, then less and less often
            _set_waiting((namespace, name), True)
            age = _age(task_body)
            later(("Task", namespace, name, "launch"), max(PENDING_GRACE - age, 2.0, min(age / 10, 30.0)),
                  lambda: _reconcile_by_name(memo, views, namespace, name))
            return
        except Refused as e:
            _set_waiting((namespace, name), True)
            conditions = ready(current, task_body, False, e.reason, e.message)
            if conditions != current.get("conditions"):
                log(task_body, logging.WARNING, e.reason, e.message)
            _write(kube, task_body, current, {**current, "conditions": conditions})
            return
        _set_waiting((namespace, name), False)
    _expire_when_due(memo, views, task_body)


def _expire_when_due(memo: Any, views: Views, task_body: dict[str, Any]) -> None:
    """STOPPED tasks stay visible for stopped_task_ttl_seconds (ECS: at least an hour), then go: the
    Cluster's resync notices within RESYNC_SECONDS, a wake-up only serves a TTL shorter than that."""
    meta = task_body["metadata"]
    stopped_at = parse_time(_current_status(task_body).get("stoppedAt"))
    if stopped_at is None:
        return
    left = (stopped_at + timedelta(seconds=memo.settings.stopped_task_ttl_seconds) - now()).total_seconds()
    if left <= 0:
        memo.kube.delete("Task", meta["namespace"], meta["name"])
    elif left < RESYNC_SECONDS:
        later(("Task", meta["namespace"], meta["name"], "expire"), left + 0.5,
              lambda: _reconcile_by_name(memo, views, meta["namespace"], meta["name"]))


def _set_waiting(key: tuple[str, str], waiting: bool) -> None:
    with _waiting_guard:
        (_waiting.add if waiting else _waiting.discard)(key)


def _forget(key: tuple[str, str]) -> None:
    _set_waiting(key, False)
    _written.pop(key, None)
    _persisted.pop(key, None)
    _reconciled_at.pop(key, None)
    _reconciled_generation.pop(key, None)


def _reconcile_by_name(memo: Any, views: Views, namespace: str, name: str) -> None:
    task_body = next(iter(views.tasks.get((namespace, name), [])), None)
    if task_body is not None:
        reconcile_task(task_body, memo, views)


def _stop(kube: Kube, settings: Settings, task_body: dict[str, Any], current: dict[str, Any],
          records: list[TaskRecord], views: Views) -> None:
    """StopTask: each task goes DEACTIVATING until its Pod is gone; a Task that never launched just ends."""
    spec = task_body.get("spec") or {}
    reason = spec.get("reason") or STOPPED_BY_USER
    if records:
        stopping = [request_stop(r, "UserInitiated", reason, now()).to_json() for r in records]
        sync_task(kube, settings, task_body, _pods_by_name(views.task_pods, task_body), views.nodes,
                  base={**current, "tasks": stopping})
        return
    stamp = _stamp()
    _write(kube, task_body, current, {
        **current, "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "UserInitiated",
        "stoppedReason": reason, "stoppedAt": current.get("stoppedAt") or stamp,
    })


def _launch(kube: Kube, settings: Settings, task_body: dict[str, Any], current: dict[str, Any], views: Views) -> None:
    """RunTask: resolve the cluster and revision, plan the Pods, create them (the Task's own Pods from
    before a crash are kept; a name held by anything else refuses the launch before any is created)."""
    meta = task_body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    task = _task_spec(task_body)
    young = _age(task_body) < PENDING_GRACE
    cluster_name = task.cluster or "default"
    cluster = find_cluster(views.clusters, namespace, cluster_name)
    if cluster is None:
        if young:
            raise Waiting()
        raise Refused("ClusterNotFoundException",
                      f"cluster: Cluster not found: no Cluster named {cluster_name!r} in namespace {namespace}")
    if too_late(meta.get("creationTimestamp"), False, cluster["deleting"]):
        raise Refused("ClusterNotFoundException", inactive_message(cluster_name, namespace))
    revision = _revision(task.taskDefinition, namespace, views, settings, young)
    default_strategy = [CapacityProviderStrategyItem.model_validate(i)
                        for i in cluster["spec"].get("defaultCapacityProviderStrategy") or []]
    plan = plan_task_pods(
        task, name=name, namespace=namespace, revision=revision, cluster=cluster_name, settings=settings,
        cluster_default_strategy=default_strategy,
        instances=cluster_instances(namespace, cluster_name, views.cluster_nodes, views.nodes, views.node_pods),
        member_of_labels=labels_in_use(namespace, views.member_of_deployments, views.member_of_daemon_sets,
                                       views.member_of_task_pods),
        policy=workload_policy(kube, namespace, settings),
        provider_access=access_of(views.provider_access),
        owner=owner_reference(task_body),
    )
    if plan.problems:
        raise Refused("InvalidParameterException", problems_text(plan.problems))
    pods = _pods_by_name(views.task_pods, task_body)
    uids, conflicts = claim(kube, [*plan.pods, *plan.extra], {("Pod", n): p for n, p in pods.items()}, plan.origins)
    if conflicts:
        raise Refused(CONFLICT_REASON, conflicts_text(conflicts, "Task"))
    try:
        for obj in plan.extra:
            kube.apply(obj, uid=uids[key_of(obj)])
        launched = [_create_pod(kube, settings, task_body, pod, cluster_name, pods) for pod in plan.pods]
    except OwnershipConflict as e:  # taken between the look and the write: nothing written to it
        what = conflict(plan.origins.get((e.existing["kind"], e.existing["metadata"]["name"]), "metadata.name"), e.existing)
        raise Refused(CONFLICT_REASON, conflicts_text([what], "Task")) from None
    if plan.unsatisfiable:
        notify(task_body, type="Warning", reason="TaskPlacementFailed",
               message="no container instance met all of its requirements (placement constraints)")
    launch = {
        **current,
        "tasks": [r.to_json() for r in launched],
        "taskDefinition": revision.name,
        "taskDefinitionArn": revision.arn,
        "clusterArn": cluster_arn(settings, cluster_name),
        "clusterName": cluster_name,
        "group": plan.group,
        "startedBy": task.startedBy,
        "launchType": plan.pods[0]["metadata"]["labels"].get(L.LAUNCH_TYPE) if plan.pods else None,
        "fidelity": summarize(plan.report.entries(task.to_json())),
    }
    message = f"{len(launched)} task(s) of {revision.name} launched"
    launch["conditions"] = ready(current, task_body, True, "Launched", message)
    log(task_body, logging.INFO, "Launched", message)
    sync_task(kube, settings, task_body, pods, views.nodes, base={k: v for k, v in launch.items() if v is not None})


def _task_spec(task_body: dict[str, Any]) -> TaskSpec:
    try:
        task = TaskSpec.model_validate(dict(task_body.get("spec") or {}))
    except ValidationError as e:
        raise Refused("InvalidParameterException", problems_text(problems_from_validation_error(e))) from None
    problems = validate(task)
    if problems:
        raise Refused("InvalidParameterException", problems_text(problems))
    return task


def _revision(ref: str, namespace: str, views: Views, settings: Settings, young: bool) -> Revision:
    """The revision to run; Waiting while its TaskDefinition is still being registered (or, for a new
    Task, not there yet); Refused when the reference names nothing usable (ECS: ClientException)."""
    try:
        return resolve_revision(ref, namespace, views.revisions, views.task_definitions, settings)
    except UnknownTaskDefinition as e:
        try:
            family, _ = parse_task_definition_ref(ref)
        except ValueError:
            family = None
        registering = any(r["pending"] for r in views.registrations.get((namespace, family), []))
        if registering or (young and not views.task_definitions.get((namespace, family))):
            raise Waiting() from None
        raise Refused("ClientException", f"taskDefinition: {e}") from None


def _create_pod(kube: Kube, settings: Settings, task_body: dict[str, Any], pod: dict[str, Any], cluster: str,
                pods: dict[str, dict[str, Any]]) -> TaskRecord:
    """One task's Pod; the Task's own Pod of that name (a crash between creating and recording) is
    used, one the Task does not control raises OwnershipConflict (kube.create).

    The Pod is known as unindexed before the request, so its first watch event, however early,
    clears the entry (a Pod event means the index has the Pod, or its deletion, from then on).
    """
    key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
    record = new_record(key[1])
    with _unindexed_guard:
        _unindexed[key] = pod
    try:
        created, fresh = kube.create(pod)
    except OwnershipConflict:
        _forget_unindexed(key)
        raise
    except ApiError as e:
        _forget_unindexed(key)
        if e.temporary:
            raise
        # refused by admission (e.g. Pod Security): the task fails to start, as ECS reports it
        notify(task_body, type="Warning", reason="TaskFailedToStart", message=e.message)
        return record.model_copy(update={
            "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "TaskFailedToStart",
            "stoppedReason": f"CannotCreateContainerError: {e.message}", "stoppedAt": _stamp(),
        })
    with _unindexed_guard:
        if not fresh:  # ours from before: it existed, so the index has it
            _unindexed.pop(key, None)
        elif key in _unindexed:
            _unindexed[key] = created
    pods[key[1]] = created
    return record.model_copy(update={"taskArn": task_arn(settings, cluster, created["metadata"]["uid"].replace("-", ""))})


def _forget_unindexed(key: tuple[str, str]) -> None:
    with _unindexed_guard:
        _unindexed.pop(key, None)


def sync_task(kube: Kube, settings: Settings, task_body: dict[str, Any], pods: dict[str, dict[str, Any]],
              nodes: kopf.Index, base: dict[str, Any] | None = None) -> None:
    """Read each task's Pod, advance its record, stop what ECS would stop, write status if it changed.

    `base` is a status the caller has just decided (launched or stopping tasks) but not written yet.
    """
    namespace = task_body["metadata"]["namespace"]
    current = _current_status(task_body)
    base = base if base is not None else current
    records = [TaskRecord.model_validate(t) for t in base.get("tasks") or []]
    if not records:
        return
    moment = now()
    updated: list[TaskRecord] = []
    failures: list[dict[str, str]] = []
    for record in records:
        pod = pods.get(record.podName) or _unindexed.get((namespace, record.podName))
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        new = observe(pod, record, moment, node_zone(nodes, node))
        if pod is not None and new.desiredStatus == "STOPPED" and _running(pod):
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            kube.delete("Pod", namespace, record.podName, grace_seconds=grace, uid=pod["metadata"]["uid"])
        message = unschedulable_message(pod) if pod is not None and new.lastStatus == "PROVISIONING" else None
        if message:
            failures.append({"arn": new.taskArn or record.podName, "reason": ", ".join(placement_failure_reasons(message)),
                             "detail": message})
        _post_transition_events(task_body, current, record, new, message)
        updated.append(new)
    _write(kube, task_body, current,
           {**base, **summarize_tasks(updated), "tasks": [r.to_json() for r in updated], "failures": failures})


def _write(kube: Kube, task_body: dict[str, Any], current: dict[str, Any], status: dict[str, Any]) -> None:
    """Record the new status, and persist it: at once when a user waits for it (RUNNING, STOPPED, a
    stop requested, a placement failure, a health change, a refusal), else within FLUSH_SECONDS, so
    the steps a task passes in a moment (PROVISIONING, PENDING, ACTIVATING) cost one write, not one each."""
    if status == current:
        return
    meta = task_body["metadata"]
    key = (meta["namespace"], meta["name"])
    _written[key] = (meta["uid"], status)
    _persisted.setdefault(key, _status_of(task_body))
    if _urgent(current, status):
        _flush(kube, key)
    else:
        later(("Task", *key, "flush"), FLUSH_SECONDS, lambda: _flush_later(kube, key))


def _urgent(current: dict[str, Any], status: dict[str, Any]) -> bool:
    def reached(key: str, values: tuple[str, ...]) -> bool:
        return status.get(key) in values and status.get(key) != current.get(key)

    return reached("lastStatus", ("RUNNING", "STOPPED")) or reached("desiredStatus", ("STOPPED",)) \
        or reached("healthStatus", ("HEALTHY", "UNHEALTHY")) \
        or bool(status.get("failures")) and status.get("failures") != current.get("failures") \
        or not status.get("tasks")


def _flush_later(kube: Kube, key: tuple[str, str]) -> None:
    with lock_for("Task", *key):
        _flush(kube, key)


def _flush(kube: Kube, key: tuple[str, str]) -> None:
    """Merge-patch the fields that differ from what was last persisted (removed ones as null); if the
    API fails, try again shortly (the decided status is kept, so no reconcile would write it)."""
    written, persisted = _written.get(key), _persisted.get(key)
    if written is None or persisted is None:
        return
    status = written[1]
    changed = {k: status.get(k) for k in set(status) | set(persisted) if status.get(k) != persisted.get(k)}
    if not changed:
        return
    try:
        gone = kube.patch_status("Task", key[0], key[1], changed) is None
    except ApiError as e:
        logging.getLogger("ecs_operator").warning("Task %s/%s status not written (%s); trying again", *key, e)
        later(("Task", *key, "flush"), RETRY_SECONDS, lambda: _flush_later(kube, key))
        return
    if gone:
        _forget(key)
    else:
        _persisted[key] = status


def _wake_for_health(memo: Any, views: Views, task_body: dict[str, Any]) -> None:
    """A failing health check turns UNHEALTHY when its grace ends, a moment no Pod event marks."""
    meta = task_body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    moment = now()
    due = [d for d in (health_deadline(p, moment) for p in _pods_by_name(views.task_pods, task_body).values()) if d]
    if due:
        later(("Task", namespace, name, "health"), (min(due) - moment).total_seconds() + 0.5,
              lambda: _reconcile_by_name(memo, views, namespace, name))


def _post_transition_events(task_body: dict[str, Any], current: dict[str, Any], old: TaskRecord, new: TaskRecord,
                            unschedulable: str | None) -> None:
    task_id = (new.taskArn or new.podName).rsplit("/", 1)[-1]
    if new.lastStatus == "RUNNING" and old.lastStatus != "RUNNING":
        notify(task_body, type="Normal", reason="TaskRunning", message=f"task {task_id} is RUNNING on {new.containerInstance}")
    if new.stopped and not old.stopped:
        kind = "Normal" if new.stopCode in ("UserInitiated", None) else "Warning"
        notify(task_body, type=kind, reason="TaskStopped",
               message=f"task {task_id} STOPPED: {new.stopCode or ''} {new.stoppedReason or ''}".strip())
    if unschedulable:
        reasons = ", ".join(placement_failure_reasons(unschedulable))
        previous = next((f for f in current.get("failures") or [] if f.get("arn") == (new.taskArn or new.podName)), None)
        if previous is None or previous.get("detail") != unschedulable:
            notify(task_body, type="Warning", reason="TaskPlacementFailed",
                   message=f"task {task_id} waits in PROVISIONING: {reasons} ({unschedulable})")


def _running(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _current_status(task_body: dict[str, Any]) -> dict[str, Any]:
    """What this process decided last (persisted or about to be), else the object's status."""
    meta = task_body["metadata"]
    written = _written.get((meta["namespace"], meta["name"]))
    if written is not None and written[0] == meta["uid"]:
        return dict(written[1])
    return _status_of(task_body)


def _status_of(task_body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (task_body.get("status") or {}).items() if k != "kopf"}


def _pods_by_name(task_pods: kopf.Index, task_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Pods this Task controls (not those of an earlier Task of the same name), by name."""
    meta = task_body["metadata"]
    return {p["metadata"]["name"]: p for p in list(task_pods.get((meta["namespace"], meta["name"]), []))
            if (controller_of(p) or {}).get("uid") == meta["uid"]}


def _age(task_body: dict[str, Any]) -> float:
    created = parse_time(task_body["metadata"].get("creationTimestamp"))
    return (now() - created).total_seconds() if created else 0.0


def _stamp() -> str:
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")
