"""One ECS task's state, read off its Pod: lastStatus, desiredStatus, health, stop code and reason.

ECS never moves a task backwards through its states, so neither does this: the Pod tells how far
the task has come, the previous record what it already reported (and why it is stopping).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecs_operator import labels as L

from .health import container_health, task_health
from .pods import PodContainer, health_settings, parse_time, pod_containers
from .records import ORDER, ContainerRecord, LastStatus, StopCode, TaskRecord

ESSENTIAL_EXITED = "Essential container in task exited"
HOST_LOST_CODE: StopCode = "TerminationNotice"
"""ECS documents the reason for a task whose host stopped or terminated, not a code; of its stop codes,
TerminationNotice is the one for a task stopped because its host went away."""
STOPPED_BY_USER = "Task stopped by user"

_PULL_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_CREATE_ERRORS = {
    "CreateContainerConfigError": "ResourceInitializationError",
    "CreateContainerError": "CannotCreateContainerError",
    "RunContainerError": "CannotStartContainerError",
}


@dataclass(frozen=True)
class Stop:
    """The operator must stop the task (delete its Pod): ECS's reason for it."""

    code: StopCode
    reason: str


def stop_for(pod: dict[str, Any]) -> Stop | None:
    """Why ECS would stop this task now: an essential container exited, or the task cannot start."""
    containers = pod_containers(pod)
    for c in containers:
        if c.essential and c.exited_for_good:
            return Stop("EssentialContainerExited", ESSENTIAL_EXITED)
    for c in containers:
        waiting = c.waiting or {}
        reason = waiting.get("reason", "")
        message = waiting.get("message") or reason
        if reason in _PULL_ERRORS:
            return Stop("TaskFailedToStart", f"CannotPullContainerError: {message}")
        if reason in _CREATE_ERRORS:
            return Stop("TaskFailedToStart", f"{_CREATE_ERRORS[reason]}: {message}")
        if c.init and not c.sidecar and c.terminated and c.terminated.get("exitCode", 0) != 0:
            code = c.terminated.get("exitCode")
            return Stop("TaskFailedToStart",
                        f"Task failed to start: container {c.ecs_name} exited with code {code} before its dependents started")
    return None


def in_service(pod: dict[str, Any]) -> bool:
    """Whether ECS keeps this service task registered with its load balancers: RUNNING and not
    stopping, with every essential container up and passing its health check (the stand-in for the
    target group's check); non-essential containers never count, exited or failing
    (docs/ecs-semantics.md §Essential containers)."""
    if (pod.get("metadata") or {}).get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
        return False
    if stop_for(pod) is not None:
        return False
    essential = [c for c in pod_containers(pod) if c.essential]
    return bool(essential) and all(c.running and c.status.get("ready") for c in essential)


def observe(
    pod: dict[str, Any] | None,
    previous: TaskRecord,
    now: datetime,
    zone: str | None = None,
) -> TaskRecord:
    """The task's record after looking at its Pod (None: the Pod is gone)."""
    if previous.stopped:
        return previous
    stamp = _stamp(now)
    if pod is None:
        return _advance(
            previous,
            "STOPPED",
            desiredStatus="STOPPED",
            stopCode=previous.stopCode or "UserInitiated",
            stoppedReason=previous.stoppedReason or "Task stopped: its Pod was deleted",
            stoppingAt=previous.stoppingAt or stamp,
            stoppedAt=stamp,
            containers=[c.model_copy(update={"lastStatus": "STOPPED"}) for c in previous.containers],
        )

    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    containers = pod_containers(pod)
    checks = health_settings(pod)
    records = [_container_record(c, checks.get(c.name), now) for c in containers]
    main = [c for c in containers if not c.init]
    node = (pod.get("spec") or {}).get("nodeName")
    state = _state(pod, containers, stopping=previous.desiredStatus == "STOPPED")
    stoppedAt = (_latest_finish(containers) or stamp) if state == "STOPPED" else None

    essential_health = [r.healthStatus for c, r in zip(containers, records, strict=True) if c.essential]
    stop = stop_for(pod) if previous.desiredStatus == "RUNNING" else None
    updates: dict[str, Any] = {
        "containers": records,
        "healthStatus": task_health(essential_health),
        "createdAt": previous.createdAt or meta.get("creationTimestamp"),
        "containerInstance": node or previous.containerInstance,
        "availabilityZone": zone or previous.availabilityZone,
    }
    if ORDER.index(state) >= ORDER.index("RUNNING") and not previous.startedAt:
        updates["startedAt"] = _latest_start(main) or stamp
    if state in ("STOPPING", "DEPROVISIONING", "STOPPED") or stop is not None:
        updates["desiredStatus"] = "STOPPED"
        updates["stoppingAt"] = previous.stoppingAt or stamp
    if stop is not None and not previous.stopCode:
        updates["stopCode"], updates["stoppedReason"] = stop.code, stop.reason
        state = max(state, "DEACTIVATING", key=ORDER.index)
    if state == "STOPPED":
        updates["stoppedAt"] = stoppedAt or stamp
        if not (previous.stopCode or updates.get("stopCode")):
            updates["stopCode"], updates["stoppedReason"] = _final_stop(containers, status)
    return _advance(previous, state, **updates)


def pod_last_status(pod: dict[str, Any]) -> LastStatus:
    """The lastStatus of a task seen for the first time: what counters (cluster, instance) need,
    without building records."""
    return _state(pod, pod_containers(pod), stopping=False)


def _state(pod: dict[str, Any], containers: list[PodContainer], stopping: bool) -> LastStatus:
    """How far the Pod has come in ECS's life cycle (before the never-backwards rule)."""
    main = [c for c in containers if not c.init]
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return "STOPPED"
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "DEPROVISIONING" if all(c.terminated for c in main) else "STOPPING"
    if stopping:
        return "DEACTIVATING"
    if not (pod.get("spec") or {}).get("nodeName"):
        return "PROVISIONING"
    if not any(c.running or c.terminated for c in containers):
        return "PENDING"
    if all(c.running or (c.terminated and not c.essential) for c in main):
        return "RUNNING"
    return "ACTIVATING"


def host_lost(record: TaskRecord, node: str, now: datetime) -> TaskRecord:
    """The task's container instance is gone (its Node deleted): ECS stops the task at once, its containers
    with it, and names the host (docs/ecs-semantics.md §Container instance lost)."""
    if record.stopped:
        return record
    stamp = _stamp(now)
    return _advance(record, "STOPPED", desiredStatus="STOPPED", stopCode=HOST_LOST_CODE, stoppedReason=host_lost_reason(node),
                    stoppingAt=record.stoppingAt or stamp, stoppedAt=stamp, containerInstance=record.containerInstance or node,
                    containers=[c.model_copy(update={"lastStatus": "STOPPED"}) for c in record.containers])


def host_lost_reason(node: str) -> str:
    return f"Host EC2 (instance {node}) stopped/terminated"


def new_record(pod_name: str, task_arn: str | None = None) -> TaskRecord:
    return TaskRecord(podName=pod_name, taskArn=task_arn)


def request_stop(record: TaskRecord, code: StopCode, reason: str, now: datetime) -> TaskRecord:
    """StopTask (or the scheduler) decided to stop the task: DEACTIVATING until the Pod goes."""
    if record.desiredStatus == "STOPPED" or record.stopped:
        return record
    return _advance(
        record,
        max(record.lastStatus, "DEACTIVATING", key=ORDER.index),
        desiredStatus="STOPPED",
        stopCode=code,
        stoppedReason=reason,
        stoppingAt=_stamp(now),
    )


def _advance(previous: TaskRecord, state: LastStatus, **updates: Any) -> TaskRecord:
    """Never backwards; `version` counts changes of lastStatus, as ECS's does."""
    state = max(state, previous.lastStatus, key=ORDER.index)
    version = previous.version + (1 if state != previous.lastStatus else 0)
    return previous.model_copy(update={**updates, "lastStatus": state, "version": version})


def _container_record(c: PodContainer, checks: dict[str, int] | None, now: datetime) -> ContainerRecord:
    record = ContainerRecord(name=c.ecs_name, image=c.image, essential=c.essential)
    if c.running and not c.exited_for_good:
        return record.model_copy(update={"lastStatus": "RUNNING", "healthStatus": container_health(c, checks, now)})
    terminated = c.terminated or ((c.status.get("lastState") or {}).get("terminated") if c.exited_for_good else None)
    if terminated:
        wrapped = _wrapped_exit_code(terminated)
        return record.model_copy(update={
            "lastStatus": "STOPPED",
            "exitCode": terminated.get("exitCode") if wrapped is None else wrapped,
            "reason": None if wrapped is not None else _exit_reason(terminated),
        })
    waiting = c.waiting or {}
    if waiting.get("reason") in _PULL_ERRORS | set(_CREATE_ERRORS):
        return record.model_copy(update={"reason": f"{waiting.get('reason')}: {waiting.get('message', '')}".rstrip(": ")})
    return record


def _wrapped_exit_code(terminated: dict[str, Any]) -> int | None:
    """The real exit code a COMPLETE-only target's wrapper wrote (translate/dependencies.py:ignore_exit_code)."""
    message = (terminated.get("message") or "").strip()
    if terminated.get("exitCode") == 0 and message.startswith(L.EXIT_CODE_MESSAGE):
        code = message[len(L.EXIT_CODE_MESSAGE):]
        return int(code) if code.isdigit() else None
    return None


def _exit_reason(terminated: dict[str, Any]) -> str | None:
    if terminated.get("reason") == "OOMKilled":
        return "OutOfMemoryError: Container killed due to memory usage"
    message = terminated.get("message")
    reason = terminated.get("reason")
    if reason in (None, "Completed", "Error") and not message:
        return None
    return f"{reason}: {message}" if message else reason


def _final_stop(containers: list[PodContainer], status: dict[str, Any]) -> tuple[StopCode | None, str]:
    """All containers ended on their own (no essential one was running to be stopped)."""
    if status.get("reason"):  # evicted, node lost, ...
        return None, f"Task stopped: {status['reason']}: {status.get('message', '')}".rstrip(": ")
    if any(c.essential for c in containers):
        return "EssentialContainerExited", ESSENTIAL_EXITED
    return None, "Task stopped"


def _latest_start(containers: list[PodContainer]) -> str | None:
    starts: list[str] = [c.running["startedAt"] for c in containers if c.running and c.running.get("startedAt")]
    return max(starts) if starts else None


def _latest_finish(containers: list[PodContainer]) -> str | None:
    ends: list[str] = [c.terminated["finishedAt"] for c in containers if c.terminated and c.terminated.get("finishedAt")]
    return max(ends) if ends else None


def _stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = ["Stop", "host_lost", "host_lost_reason", "in_service", "observe", "new_record", "pod_last_status", "request_stop",
           "stop_for", "parse_time"]
