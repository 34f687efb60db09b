"""Task (RunTask): creates the task Pods once, then follows them through ECS's life cycle.

ECS never restarts a stopped task, so Pods are created only for tasks that have no record yet;
their deterministic names make a repeated creation (after a crash) adopt instead of duplicate.
Status has one writer: `sync_task`, called from the Task handlers and from Pod events.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.arns import cluster_arn, task_arn
from ecs_operator.lifecycle.placement_failures import placement_failure_reasons
from ecs_operator.lifecycle.pods import parse_time, unschedulable_message
from ecs_operator.lifecycle.records import TaskRecord
from ecs_operator.lifecycle.task_state import STOPPED_BY_USER, new_record, observe, request_stop
from ecs_operator.lifecycle.task_summary import summarize_tasks
from ecs_operator.models import TaskSpec, problems_from_validation_error, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.registry import UnknownTaskDefinition
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import summarize
from ecs_operator.translate.task import task_pods as plan_task_pods

from .common import lock_for, now, owner_reference, problems_text, ready
from .lookups import cluster_instances, find_cluster, node_zone, resolve_revision
from .namespaces import allowed_features
from .resources import PODS, TASKS

# Last status written per Task: the index may lag behind our own writes.
_written: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}


@kopf.index(*TASKS)
def tasks(body: kopf.Body, name: str, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the Task."""
    return {(namespace, name): copy.deepcopy(dict(body))}


@kopf.on.resume(*TASKS)
@kopf.on.create(*TASKS)
@kopf.on.update(*TASKS, field="spec")
def run_task(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, patch: kopf.Patch,
             memo: Any, task_pods: kopf.Index, revisions: kopf.Index, task_definitions: kopf.Index,
             clusters: kopf.Index, cluster_nodes: kopf.Index, nodes: kopf.Index, node_pods: kopf.Index, **_: Any) -> None:
    kube: Kube = memo.kube
    settings: Settings = memo.settings
    try:
        task = TaskSpec.model_validate(dict(spec))
    except ValidationError as e:
        patch.status["conditions"] = ready(status, body, False, "InvalidTask", problems_text(problems_from_validation_error(e)))
        return
    problems = validate(task)
    if problems:
        patch.status["conditions"] = ready(status, body, False, "InvalidTask", problems_text(problems))
        return
    task_body = copy.deepcopy(dict(body))
    pods = _pods_by_name(task_pods, namespace, name)
    with lock_for("Task", namespace, name):
        records = _records(task_body)
        if task.desiredStatus == "STOPPED":
            reason = task.reason or STOPPED_BY_USER
            stopping = [request_stop(r, "UserInitiated", reason, now()).to_json() for r in records]
            sync_task(kube, settings, task_body, pods, nodes, base={**_current_status(task_body), "tasks": stopping})
            return
        if records:  # launched before: follow the Pods, never launch again
            sync_task(kube, settings, task_body, pods, nodes)
            return

        cluster_name = task.cluster or "default"
        cluster = find_cluster(clusters, namespace, cluster_name)
        if cluster is None:
            patch.status["conditions"] = ready(status, body, False, "ClusterNotFoundException",
                                               f"Cluster not found: no Cluster named {cluster_name!r} in namespace {namespace}")
            raise kopf.TemporaryError(f"cluster {cluster_name} not found", delay=10)
        try:
            revision = resolve_revision(task.taskDefinition, namespace, revisions, task_definitions, settings)
        except UnknownTaskDefinition as e:
            patch.status["conditions"] = ready(status, body, False, "TaskDefinitionNotFound", f"taskDefinition: {e}")
            raise kopf.TemporaryError(str(e), delay=10)
        default_strategy = [CapacityProviderStrategyItem.model_validate(i)
                            for i in cluster["spec"].get("defaultCapacityProviderStrategy") or []]
        plan = plan_task_pods(
            task, name=name, namespace=namespace, revision=revision, cluster=cluster_name, settings=settings,
            cluster_default_strategy=default_strategy,
            instances=cluster_instances(cluster_name, cluster_nodes, nodes, node_pods),
            allowed_features=allowed_features(kube, namespace, settings),
            owner=owner_reference(body),
        )
        if plan.problems:
            patch.status["conditions"] = ready(status, body, False, "InvalidParameterException", problems_text(plan.problems))
            return
        for obj in plan.extra:
            kube.apply(obj)
        launched: list[TaskRecord] = []
        for pod in plan.pods:
            record = new_record(pod["metadata"]["name"])
            try:
                created, _ = kube.create(pod)
            except ApiError as e:
                if e.temporary:
                    raise kopf.TemporaryError(f"creating {pod['metadata']['name']}: {e}", delay=5)
                # refused by admission (e.g. Pod Security): the task fails to start, as ECS reports it
                record = record.model_copy(update={
                    "lastStatus": "STOPPED", "desiredStatus": "STOPPED", "stopCode": "TaskFailedToStart",
                    "stoppedReason": f"CannotCreateContainerError: {e.message}", "stoppedAt": _stamp(),
                })
                kopf.event(body, type="Warning", reason="TaskFailedToStart", message=e.message[:1024])
            else:
                record = record.model_copy(update={"taskArn": task_arn(settings, cluster_name, created["metadata"]["uid"].replace("-", ""))})
                pods[pod["metadata"]["name"]] = created
            launched.append(record)
        fidelity = summarize(plan.report.entries(task.to_json()))
        launch = {
            **_current_status(task_body),
            "tasks": [r.to_json() for r in launched],
            "taskDefinition": revision.name,
            "taskDefinitionArn": revision.arn,
            "clusterArn": cluster_arn(settings, cluster_name),
            "clusterName": cluster_name,
            "group": plan.group,
            "startedBy": task.startedBy,
            "launchType": plan.pods[0]["metadata"]["labels"].get(L.LAUNCH_TYPE) if plan.pods else None,
            "fidelity": fidelity,
        }
        if plan.unsatisfiable:
            kopf.event(body, type="Warning", reason="TaskPlacementFailed",
                       message="no container instance met all of its requirements (placement constraints)")
        patch.status["conditions"] = ready(status, body, True, "Launched", f"{len(launched)} task(s) of {revision.name} launched")
        sync_task(kube, settings, task_body, pods, nodes, base={k: v for k, v in launch.items() if v is not None})


@kopf.on.event(*PODS, labels={L.TASK: kopf.PRESENT})
def task_pod_changed(body: kopf.Body, namespace: str, memo: Any, task_pods: kopf.Index, tasks: kopf.Index,
                     nodes: kopf.Index, **_: Any) -> None:
    owner = next((o["name"] for o in body.metadata.get("ownerReferences") or [] if o.get("kind") == "Task"), None)
    task_body = next(iter(tasks.get((namespace, owner), [])), None) if owner else None
    if task_body is None:
        return
    with lock_for("Task", namespace, owner):
        sync_task(memo.kube, memo.settings, task_body, _pods_by_name(task_pods, namespace, owner), nodes)


@kopf.timer(*TASKS, interval=60, initial_delay=30, idle=30,
            when=lambda status, **_: bool(status.get("tasks")) and status.get("lastStatus") != "STOPPED")
def resync_task(body: kopf.Body, name: str, namespace: str, memo: Any, task_pods: kopf.Index, nodes: kopf.Index, **_: Any) -> None:
    """Level-triggered repair: a missed Pod event is caught here (no write when nothing changed)."""
    with lock_for("Task", namespace, name):
        sync_task(memo.kube, memo.settings, copy.deepcopy(dict(body)), _pods_by_name(task_pods, namespace, name), nodes)


@kopf.timer(*TASKS, interval=30, when=lambda status, **_: status.get("lastStatus") == "STOPPED")
def expire_task(name: str, namespace: str, status: kopf.Status, memo: Any, **_: Any) -> None:
    """STOPPED tasks stay visible for stopped_task_ttl_seconds (ECS: at least an hour), then go."""
    stopped = parse_time(status.get("stoppedAt"))
    if stopped is not None and now() - stopped > timedelta(seconds=memo.settings.stopped_task_ttl_seconds):
        memo.kube.delete("Task", namespace, name)


@kopf.on.event(*TASKS)
def forget_task(type: str, name: str, namespace: str, **_: Any) -> None:
    if type == "DELETED":
        _written.pop((namespace, name), None)


def sync_task(kube: Kube, settings: Settings, task_body: dict[str, Any], pods: dict[str, dict[str, Any]],
              nodes: kopf.Index, base: dict[str, Any] | None = None) -> None:
    """Read each task's Pod, advance its record, stop what ECS would stop, write status if it changed.

    `base` is a status the caller has just decided (launched or stopping tasks) but not written yet.
    """
    meta = task_body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    current = _current_status(task_body)
    base = base if base is not None else current
    records = [TaskRecord.model_validate(t) for t in base.get("tasks") or []]
    if not records:
        return
    moment = now()
    updated: list[TaskRecord] = []
    failures: list[dict[str, str]] = []
    for record in records:
        pod = pods.get(record.podName)
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        new = observe(pod, record, moment, node_zone(nodes, node))
        if pod is not None and new.desiredStatus == "STOPPED" and _running(pod):
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
            kube.delete("Pod", namespace, record.podName, grace_seconds=grace)
        message = unschedulable_message(pod) if pod is not None and new.lastStatus == "PROVISIONING" else None
        if message:
            failures.append({"arn": new.taskArn or record.podName, "reason": ", ".join(placement_failure_reasons(message)), "detail": message})
        _post_transition_events(task_body, record, new, message)
        updated.append(new)
    count = (task_body.get("spec") or {}).get("count") or 1
    status = {**base, **summarize_tasks(updated, count), "tasks": [r.to_json() for r in updated], "failures": failures}
    if status != current:
        _written[(namespace, name)] = (meta["uid"], status)
        patch = {k: status.get(k) for k in set(status) | set(current)}
        if kube.patch_status("Task", namespace, name, patch) is None:
            _written.pop((namespace, name), None)


def _post_transition_events(task_body: dict[str, Any], old: TaskRecord, new: TaskRecord, unschedulable: str | None) -> None:
    task_id = (new.taskArn or new.podName).rsplit("/", 1)[-1]
    if new.lastStatus == "RUNNING" and old.lastStatus != "RUNNING":
        kopf.event(task_body, type="Normal", reason="TaskRunning", message=f"task {task_id} is RUNNING on {new.containerInstance}")
    if new.stopped and not old.stopped:
        kind = "Normal" if new.stopCode in ("UserInitiated", None) else "Warning"
        kopf.event(task_body, type=kind, reason="TaskStopped", message=f"task {task_id} STOPPED: {new.stopCode or ''} {new.stoppedReason or ''}".strip())
    if unschedulable:
        reasons = ", ".join(placement_failure_reasons(unschedulable))
        previous = next((f for f in (task_body.get("status") or {}).get("failures") or [] if f.get("arn") == (new.taskArn or new.podName)), None)
        if previous is None or previous.get("detail") != unschedulable:
            kopf.event(task_body, type="Warning", reason="TaskPlacementFailed",
                       message=f"task {task_id} waits in PROVISIONING: {reasons} ({unschedulable})")


def _running(pod: dict[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _current_status(task_body: dict[str, Any]) -> dict[str, Any]:
    """Our last write if the index has not caught up with it yet, else the object's status (without kopf's)."""
    meta = task_body["metadata"]
    written = _written.get((meta["namespace"], meta["name"]))
    if written is not None and written[0] == meta["uid"]:
        return dict(written[1])
    return {k: v for k, v in (task_body.get("status") or {}).items() if k not in ("kopf", "conditions")}


def _records(task_body: dict[str, Any]) -> list[TaskRecord]:
    return [TaskRecord.model_validate(t) for t in _current_status(task_body).get("tasks") or []]


def _pods_by_name(task_pods: kopf.Index, namespace: str, task: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in task_pods.get((namespace, task), [])}


def _stamp() -> str:
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")
