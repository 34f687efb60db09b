"""One round of a Task (RunTask/StopTask), decided without I/O: from what the round saw (`TaskObserved`)
to what to do (`TaskPlan`): ordered actions (create the Pods, delete a Pod, Events, delete the expired
Task), the status to write once and how urgently, Waiting/Refused, and when to look again.

ECS never restarts a stopped task, so Pods are planned only for a Task that has no task records yet; once
the launch is done (`LaunchOutcome`: what the API answered), `plan_launched` records the tasks and
follows their Pods in the same round. A task record only ever moves forward (lifecycle/task_state.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.arns import cluster_arn, task_arn
from ecs_operator.models import TaskSpec, problems_from_validation_error, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.ownership import CONFLICT_REASON, Conflict, conflicts_text
from ecs_operator.placement.query import Instance
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import summarize
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.policy import WorkloadPolicy
from ecs_operator.translate.task import TaskPlan as Translation, task_pods

from .cluster_deletion import inactive_message, too_late
from .conditions import Notify, ready
from .health import health_deadline
from .placement_failures import placement_failure_reasons
from .pods import parse_time, unschedulable_message
from .records import TaskRecord
from .task_state import STOPPED_BY_USER, host_lost, new_record, observe, request_stop
from .task_summary import summarize_tasks

PENDING_GRACE = 5.0
"""Seconds a new Task waits silently for a Cluster or TaskDefinition that is not there yet: applied
in one manifest, they arrive in any order. After that the Task reports why it cannot start."""
HEALTH_MARGIN = 0.5
"""Seconds after a health check's grace (or the TTL) the Task is looked at again."""


# --- what a round sees ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskObserved:
    body: dict[str, Any]
    """The Task; its status is what this process decided last (the index may lag behind its writes)."""
    pods: dict[str, dict[str, Any]]
    """The Pods this Task controls (not an earlier Task's of the same name) by name, with those created
    but not indexed yet."""
    zones: dict[str, str | None]
    """Node name -> its zone, for the nodes of `pods`."""
    settings: Settings
    # What a launch needs (read only for a Task without task records):
    cluster: dict[str, Any] | None = None
    """The clusters index entry of the Task's cluster (None: no such Cluster)."""
    revision: Revision | None = None
    revision_error: str | None = None
    """Why the taskDefinition reference names nothing usable (ECS's wording)."""
    registering: bool = False
    """A TaskDefinition of the referenced family is registering a revision."""
    family_known: bool = False
    """A TaskDefinition registers the referenced family."""
    instances: tuple[Instance, ...] = ()
    member_of_labels: frozenset[str] = frozenset()
    policy: WorkloadPolicy = WorkloadPolicy()
    provider_access: dict[str, list[str]] = field(default_factory=dict)
    lost_nodes: frozenset[str] = frozenset()
    """Nodes of `pods` that are gone (the Node deleted): their tasks' host stopped/terminated."""


# --- what a round does ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """Create the Task's Pods and the objects they need (RunTask). Each name is claimed first: one held by
    an object the Task does not control refuses the whole launch before anything is written."""

    translation: Translation
    spec: TaskSpec
    revision: Revision
    cluster: str


@dataclass(frozen=True)
class DeletePod:
    name: str
    uid: str
    grace_seconds: int | None
    """The Pod's terminationGracePeriodSeconds (ECS's stopTimeout)."""


@dataclass(frozen=True)
class Log:
    """A line in the operator's log only."""

    warning: bool
    reason: str
    message: str


@dataclass(frozen=True)
class DeleteTask:
    """The STOPPED Task's time is up (stopped-task TTL)."""


Action = Launch | DeletePod | Notify | Log | DeleteTask


@dataclass(frozen=True)
class Waiting:
    """What the Task needs may still arrive (applied together with it): report nothing yet."""

    retry_after: float


@dataclass(frozen=True)
class Refused:
    """The Task cannot start as it is: ECS's exception name and a message naming the field."""

    reason: str
    message: str


@dataclass(frozen=True)
class TaskPlan:
    actions: tuple[Action, ...] = ()
    """In order."""
    status: dict[str, Any] | None = None
    """The whole status to write (None: it stays as it is)."""
    urgent: bool = False
    """Someone waits for this status: write it at once, not within the flush window."""
    verdict: Waiting | Refused | None = None
    requeue_after: float | None = None
    """Seconds until the Task must be looked at again although no event may mark it (None: at the resync)."""


@dataclass(frozen=True)
class PodCreated:
    pod: dict[str, Any]
    """As the API returned it (or the Task's own Pod of that name, from before a crash)."""


@dataclass(frozen=True)
class PodRefused:
    """Admission refused the Pod (e.g. Pod Security): the task fails to start, as ECS reports it."""

    name: str
    message: str


@dataclass(frozen=True)
class LaunchOutcome:
    pods: tuple[PodCreated | PodRefused, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    """Names held by objects the Task does not control: nothing was created."""


# --- the plan -------------------------------------------------------------------------------------


def plan_task(observed: TaskObserved, now: datetime) -> TaskPlan:
    """StopTask, following launched tasks, or the launch (a `Launch` action; `plan_launched` then)."""
    current = status_of(observed.body)
    spec = observed.body.get("spec") or {}
    records = [TaskRecord.model_validate(t) for t in current.get("tasks") or []]
    if spec.get("desiredStatus") == "STOPPED":
        reason = spec.get("reason") or STOPPED_BY_USER
        if records:
            stopping = [request_stop(r, "UserInitiated", reason, now).to_json() for r in records]
            return _follow(observed, current, {**current, "tasks": stopping}, (), now)
        return _finish(observed, current, {
            **current, "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "UserInitiated",
            "stoppedReason": reason, "stoppedAt": current.get("stoppedAt") or stamp(now)}, (), None, now)
    if records:  # launched before: follow the Pods, never launch again
        return _follow(observed, current, current, (), now)
    return _launch(observed, current, now)


def plan_launched(observed: TaskObserved, launch: Launch, outcome: LaunchOutcome, now: datetime) -> TaskPlan:
    """After the launch: the task records (taskArn from each Pod's UID), then the Pods followed as usual."""
    current = status_of(observed.body)
    if outcome.conflicts:
        return refuse(observed.body, current, CONFLICT_REASON, conflicts_text(list(outcome.conflicts), "Task"), now)
    pods, records, actions = dict(observed.pods), [], list[Action]()
    for result in outcome.pods:
        if isinstance(result, PodCreated):
            name = result.pod["metadata"]["name"]
            pods[name] = result.pod
            records.append(new_record(name, task_arn(observed.settings, launch.cluster,
                                                     result.pod["metadata"]["uid"].replace("-", ""))))
        else:
            actions.append(Notify("Warning", "TaskFailedToStart", result.message))
            records.append(new_record(result.name).model_copy(update={
                "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "TaskFailedToStart",
                "stoppedReason": f"CannotCreateContainerError: {result.message}", "stoppedAt": stamp(now)}))
    translation, revision = launch.translation, launch.revision
    if translation.unsatisfiable:
        actions.append(Notify("Warning", "TaskPlacementFailed",
                              "no container instance met all of its requirements (placement constraints)"))
    message = f"{len(records)} task(s) of {revision.name} launched"
    launched = {
        **current,
        "tasks": [r.to_json() for r in records],
        "taskDefinition": revision.name,
        "taskDefinitionArn": revision.arn,
        "clusterArn": cluster_arn(observed.settings, launch.cluster),
        "clusterName": launch.cluster,
        "group": translation.group,
        "startedBy": launch.spec.startedBy,
        "launchType": translation.pods[0]["metadata"]["labels"].get(L.LAUNCH_TYPE) if translation.pods else None,
        "fidelity": summarize(translation.report.entries(launch.spec.to_json())),
        "conditions": ready(current, observed.body, True, "Launched", message, now)[0],
    }
    actions.append(Log(False, "Launched", message))
    base = {k: v for k, v in launched.items() if v is not None}
    return _follow(replace(observed, pods=pods), current, base, tuple(actions), now)


def urgent(current: dict[str, Any], status: dict[str, Any]) -> bool:
    """Someone waits for it: RUNNING or STOPPED reached, a stop requested, a health change, a placement
    failure, a refusal (no tasks). The steps a task passes in a moment (PROVISIONING, PENDING, ACTIVATING)
    can wait for the flush window: they cost one write, not one each."""
    def reached(key: str, values: tuple[str, ...]) -> bool:
        return status.get(key) in values and status.get(key) != current.get(key)

    return reached("lastStatus", ("RUNNING", "STOPPED")) or reached("desiredStatus", ("STOPPED",)) \
        or reached("healthStatus", ("HEALTHY", "UNHEALTHY")) \
        or bool(status.get("failures")) and status.get("failures") != current.get("failures") \
        or not status.get("tasks")


def refuse(body: dict[str, Any], current: dict[str, Any], reason: str, message: str, now: datetime) -> TaskPlan:
    """Ready False with ECS's exception name (and a Warning Event when the reason or message is new)."""
    conditions, events = ready(current, body, False, reason, message, now)
    status = {**current, "conditions": conditions}
    return TaskPlan(events, *_write(current, status), verdict=Refused(reason, message))


def status_of(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_of(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": body.get("kind", "Task"), "name": meta["name"],
            "uid": meta["uid"]}


# --- the parts ------------------------------------------------------------------------------------


def _launch(observed: TaskObserved, current: dict[str, Any], now: datetime) -> TaskPlan:
    """RunTask: the cluster and revision, then the Pods planned (created by the `Launch` action)."""
    body = observed.body
    meta = body["metadata"]
    try:
        task = TaskSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as e:
        return _invalid(observed, current, problems_from_validation_error(e), now)
    problems = validate(task)
    if problems:
        return _invalid(observed, current, problems, now)
    age = _age(body, now)
    young = age < PENDING_GRACE
    waiting = Waiting(max(PENDING_GRACE - age, 2.0, min(age / 10, 30.0)))
    cluster_name = task.cluster or "default"
    cluster = observed.cluster
    if cluster is None:
        if young:
            return TaskPlan(verdict=waiting, requeue_after=waiting.retry_after)
        return refuse(body, current, "ClusterNotFoundException",
                      f"cluster: Cluster not found: no Cluster named {cluster_name!r} in namespace {meta['namespace']}", now)
    if too_late(meta.get("creationTimestamp"), False, cluster["deleting"]):
        return refuse(body, current, "ClusterNotFoundException", inactive_message(cluster_name, meta["namespace"]), now)
    revision = observed.revision
    if revision is None:
        if observed.registering or (young and not observed.family_known):
            return TaskPlan(verdict=waiting, requeue_after=waiting.retry_after)
        return refuse(body, current, "ClientException", f"taskDefinition: {observed.revision_error}", now)
    translation = task_pods(
        task, name=meta["name"], namespace=meta["namespace"], revision=revision, cluster=cluster_name,
        settings=observed.settings,
        cluster_default_strategy=[CapacityProviderStrategyItem.model_validate(i)
                                  for i in cluster["spec"].get("defaultCapacityProviderStrategy") or []],
        instances=observed.instances, member_of_labels=observed.member_of_labels, policy=observed.policy,
        provider_access=observed.provider_access, owner=owner_of(body))
    if translation.problems:
        return _invalid(observed, current, translation.problems, now)
    return TaskPlan((Launch(translation, task, revision, cluster_name),))


def _invalid(observed: TaskObserved, current: dict[str, Any], problems: list[Any], now: datetime) -> TaskPlan:
    return refuse(observed.body, current, "InvalidParameterException", "; ".join(str(p) for p in problems), now)


def _follow(observed: TaskObserved, current: dict[str, Any], base: dict[str, Any], actions: tuple[Action, ...],
            now: datetime) -> TaskPlan:
    """Each task's record advanced from its Pod; what ECS would stop is stopped (its Pod deleted)."""
    records = [TaskRecord.model_validate(t) for t in base.get("tasks") or []]
    updated: list[TaskRecord] = []
    failures: list[dict[str, Any]] = []
    steps: list[Action] = list(actions)
    for record in records:
        pod = observed.pods.get(record.podName)
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if pod is not None and node in observed.lost_nodes:
            new = host_lost(record, node, now)
            if not pod["metadata"].get("deletionTimestamp") or not record.stopped:
                steps.append(DeletePod(record.podName, pod["metadata"]["uid"], 0))  # no kubelet left to wait for
        else:
            new = observe(pod, record, now, observed.zones.get(node) if node else None)
            if pod is not None and new.desiredStatus == "STOPPED" and _running(pod):
                steps.append(DeletePod(record.podName, pod["metadata"]["uid"],
                                       (pod.get("spec") or {}).get("terminationGracePeriodSeconds")))
        message = unschedulable_message(pod) if pod is not None and new.lastStatus == "PROVISIONING" else None
        announce = False
        if message:
            arn = new.taskArn or record.podName
            causes = placement_failure_reasons(message)
            previous: dict[str, Any] = next((f for f in current.get("failures") or [] if f.get("arn") == arn), {})
            announced = list(previous.get("announced") or [])
            announce = any(c not in announced for c in causes)
            failures.append({"arn": arn, "reason": ", ".join(causes), "detail": message,
                             "announced": sorted({*announced, *causes})})
        steps += _transition_events(record, new, message if announce else None)
        updated.append(new)
    status = {**base, **summarize_tasks(updated), "tasks": [r.to_json() for r in updated], "failures": failures}
    deadlines = [d for d in (health_deadline(p, now) for p in observed.pods.values()) if d]
    health = (min(deadlines) - now).total_seconds() + HEALTH_MARGIN if deadlines else None
    return _finish(observed, current, status, tuple(steps), health, now)


def _finish(observed: TaskObserved, current: dict[str, Any], status: dict[str, Any], actions: tuple[Action, ...],
            requeue: float | None, now: datetime) -> TaskPlan:
    """STOPPED tasks stay visible for the stopped-task TTL (ECS: at least an hour), then the Task goes."""
    stopped_at = parse_time(status.get("stoppedAt"))
    if stopped_at is not None:
        left = (stopped_at + timedelta(seconds=observed.settings.stopped_task_ttl_seconds) - now).total_seconds()
        if left <= 0:
            return TaskPlan((*actions, DeleteTask()))
        requeue = min(requeue, left + HEALTH_MARGIN) if requeue is not None else left + HEALTH_MARGIN
    written, hurry = _write(current, status)
    return TaskPlan(actions, written, hurry, requeue_after=requeue)


def _write(current: dict[str, Any], status: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The status to write (None when nothing changed) and its urgency."""
    status = {k: v for k, v in status.items() if v is not None}
    if status == {k: v for k, v in current.items() if v is not None}:
        return None, False
    return status, urgent(current, status)


def _transition_events(old: TaskRecord, new: TaskRecord, unschedulable: str | None) -> list[Action]:
    """`unschedulable`: the scheduler's message when it names a cause not announced for this task yet
    (once per task per cause: its detail changes with every node that comes or goes)."""
    task_id = (new.taskArn or new.podName).rsplit("/", 1)[-1]
    events: list[Action] = []  # none for a task that starts as it should: its status says it (no write per task)
    if new.stopped and not old.stopped:
        events.append(Notify("Normal" if new.stopCode in ("UserInitiated", None) else "Warning", "TaskStopped",
                             f"task {task_id} STOPPED: {new.stopCode or ''} {new.stoppedReason or ''}".strip()))
    if unschedulable:
        reasons = ", ".join(placement_failure_reasons(unschedulable))
        events.append(Notify("Warning", "TaskPlacementFailed",
                             f"task {task_id} waits in PROVISIONING: {reasons} ({unschedulable})"))
    return events


def _running(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _age(body: dict[str, Any], now: datetime) -> float:
    created = parse_time(body["metadata"].get("creationTimestamp"))
    return (now - created).total_seconds() if created else 0.0
