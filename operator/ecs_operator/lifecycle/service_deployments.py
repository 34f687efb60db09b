"""An ECS service's deployments, as describe-services reports them, advanced from what its tasks do.

Pure: the caller passes the previous status, the tasks (Pods) as observed, and the clock. ECS
starts a new PRIMARY deployment when the task definition (or another deployment-triggering
setting) changes; older ones are ACTIVE until their tasks are gone. The circuit breaker fails a
deployment after enough failed tasks and, with rollback, returns the last COMPLETED deployment to
IN_PROGRESS, same id and tasks (docs/ecs-semantics.md §Circuit breaker rollback).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from ecs_operator.models.service import DeploymentCircuitBreaker, DeploymentEarlySuccessCriteria
from ecs_operator.scaling.rolling import circuit_breaker_threshold, counts_as_healthy

from .service_alarms import FAILED_REASON, ROLLBACK_REASON, AlarmWatch, failed_message, verdict

MAX_EVENTS = 100
EVENT_REPEAT_AFTER = timedelta(hours=6)  # ECS suppresses identical messages this long


class Deployment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    status: str = "PRIMARY"
    taskDefinition: str
    configKey: str
    """What the deployment runs (revision and deployment-triggering settings): a change starts a new one."""
    desiredCount: int = 0
    runningCount: int = 0
    pendingCount: int = 0
    failedTasks: int = 0
    rolloutState: str = "IN_PROGRESS"
    rolloutStateReason: str = ""
    createdAt: str = ""
    updatedAt: str = ""
    rollbackOf: str | None = None
    """The configKey of the failed deployment this one rolls back (the spec still asks for it)."""
    lifecycleStage: str | None = None
    """BLUE_GREEN, LINEAR, CANARY: ECS's lifecycle stage (lifecycle/service_strategy.py)."""
    productionTrafficPercent: float | None = None
    """BLUE_GREEN, LINEAR, CANARY: the share of production traffic on this deployment's tasks."""
    trafficShiftStartedAt: str | None = None
    """BLUE_GREEN, LINEAR, CANARY: when all its tasks were healthy and the traffic shift began (the schedule's start)."""
    hookRuns: list[dict[str, Any]] | None = None
    """BLUE_GREEN, LINEAR, CANARY: its lifecycle hooks' runs (lifecycle/service_hooks.py HookRun)."""
    alarms: dict[str, Any] | None = None
    """deploymentConfiguration.alarms: ECS's ServiceDeploymentAlarms for it (lifecycle/service_alarms.py)."""
    alarmBakeStartedAt: str | None = None
    """deploymentConfiguration.alarms, ROLLING: when it reached a steady state and its alarm bake began."""


@dataclass(frozen=True)
class TaskView:
    """A service task as the bookkeeping needs it."""

    task_id: str
    deployment: str
    last_status: str
    health_status: str
    essential_health_check: bool
    running_since: datetime | None


@dataclass
class Advance:
    deployments: list[Deployment]
    last_completed: Deployment | None
    """Kept apart from the list: a completed deployment leaves the list once replaced, but a rollback
    returns to it."""
    messages: list[str] = field(default_factory=list)
    """ECS service event messages that happened now (newest last)."""
    warnings: list[str] = field(default_factory=list)
    """Those of `messages` that report a failure (the circuit breaker tripped): Warning Events."""
    again: bool = False
    """Observe again soon: a rollback started now and completes at a later observation, never in the one
    that failed its predecessor (describe-services shows the FAILED deployment and the rollback IN_PROGRESS)."""
    alarm_due: datetime | None = None
    """When the PRIMARY deployment's alarm bake ends (lifecycle/service_alarms.py)."""


def millisecond_stamp(moment: datetime) -> str:
    """ECS's event and deployment times have milliseconds: a client that looks for the events after a
    deployment began (ecs-deploy: strictly later) must not lose those of its first second."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def deployment_id(service_uid: str, config_key: str, created: str) -> str:
    """`ecs-svc/` and 19 digits, stable for one deployment (ECS's id shape)."""
    digest = hashlib.sha256(f"{service_uid}/{config_key}/{created}".encode()).hexdigest()
    return f"ecs-svc/{int(digest, 16) % 10**19:019d}"


def advance(
    *,
    service: str,
    service_uid: str,
    previous: list[Deployment],
    last_completed: Deployment | None,
    desired_count: int | Mapping[str, int],
    task_definition: str,
    config_key: str,
    tasks: list[TaskView],
    failed: dict[str, int],
    breaker: DeploymentCircuitBreaker | None,
    threshold_configuration: Any,
    now: datetime,
    min_running_seconds: float,
    early: DeploymentEarlySuccessCriteria | None = None,
    alarm: AlarmWatch | None = None,
) -> Advance:
    """The deployments after this observation. `failed` counts tasks each deployment lost since the last call.

    `desired_count` is a REPLICA service's desiredCount; for a DAEMON service, the eligible container
    instances per deployment id, once counted for that deployment's tasks (docs/ecs-semantics.md §DAEMON
    services): a deployment not counted yet is not known to be complete, whatever runs. `early`: the
    early success criteria of a ROLLING deployment (docs/ecs-semantics.md §Early success criteria). `alarm`: the
    enabled deployment alarms and their states now (docs/ecs-semantics.md §Deployment alarms).
    """
    stamp = millisecond_stamp(now)
    out = Advance([d.model_copy() for d in previous], last_completed)
    primary = next((d for d in out.deployments if d.status == "PRIMARY"), None)

    rolling_back = primary is not None and primary.rollbackOf == config_key
    if primary is None or (primary.configKey != config_key and not rolling_back):
        primary = _start(out, service_uid, task_definition, config_key, stamp)

    for d in out.deployments:
        d.failedTasks += failed.get(d.id, 0)
        mine = [t for t in tasks if t.deployment == d.id]
        d.runningCount = sum(1 for t in mine if t.last_status == "RUNNING")
        d.pendingCount = sum(1 for t in mine if t.last_status in ("PROVISIONING", "PENDING", "ACTIVATING"))
        if d is not primary:
            d.desiredCount = d.runningCount + d.pendingCount
        d.updatedAt = stamp if failed.get(d.id) else d.updatedAt
    counted = _count(primary, desired_count)

    if primary.rolloutState == "IN_PROGRESS" and breaker is not None and breaker.enable:
        threshold = circuit_breaker_threshold(primary.desiredCount, threshold_configuration)
        if primary.failedTasks >= threshold:
            primary = _fail(out, service, primary, "ECS deployment circuit breaker: tasks failed to start.",
                            f"(service {service}) (deployment {primary.id}) deployment failed: tasks failed to start.",
                            breaker.rollback, "ECS deployment circuit breaker: rolling back to deploymentId {id}.", stamp)
            counted = _count(primary, desired_count)

    healthy = sum(
        1
        for t in tasks
        if t.deployment == primary.id
        and counts_as_healthy(
            last_status=t.last_status,
            health_status=t.health_status,
            essential_health_check=t.essential_health_check,
            running_since=t.running_since,
            now=now,
            min_running_seconds=min_running_seconds,
        )
    )
    others = [d for d in out.deployments if d is not primary and d.runningCount + d.pendingCount > 0]
    complete = counted is not None and healthy >= counted and not others and not out.again
    done = complete or _early_success(early, counted, healthy, others, out.again)
    if primary.rolloutState == "IN_PROGRESS" and alarm is not None and primary.rollbackOf is None:
        decided = verdict(alarm, primary.alarmBakeStartedAt, done, now, stamp)
        primary.alarms, primary.alarmBakeStartedAt, out.alarm_due = decided.member, decided.bake_started, decided.due
        if decided.triggered:
            primary = _fail(out, service, primary, FAILED_REASON.format(names=", ".join(decided.triggered)),
                            failed_message(service, primary.id), alarm.alarms.rollback, ROLLBACK_REASON, stamp)
            counted = _count(primary, desired_count)
            complete = done = False
        elif decided.hold:
            complete = done = False
    if primary.rolloutState == "IN_PROGRESS" and done:
        primary.rolloutState = "COMPLETED"
        primary.rolloutStateReason = f"ECS deployment {primary.id} completed."
        primary.updatedAt = stamp
        out.last_completed = primary.model_copy()
        out.messages.append(f"(service {service}) (deployment {primary.id}) deployment completed.")
    if primary.rolloutState == "COMPLETED" and complete:
        out.messages.append(f"(service {service}) has reached a steady state.")
    # fully replaced deployments leave the list (INACTIVE), as in describe-services; a FAILED one
    # stays until the deployment that replaced it (its rollback) completes
    out.deployments = [
        d for d in out.deployments
        if d is primary or d.runningCount + d.pendingCount > 0
        or (d.rolloutState == "FAILED" and primary.rolloutState != "COMPLETED")
    ]
    return out


def _early_success(early: DeploymentEarlySuccessCriteria | None, counted: int | None, healthy: int,
                   others: list[Deployment], again: bool) -> bool:
    """ECS completes the deployment once healthyPercent of desiredCount is healthy: with BLOCKING cleanup
    only when the previous tasks are gone too, with DEFERRED at once (they keep draining afterwards)."""
    if early is None or not early.enable or counted is None or again:
        return False
    needed = math.ceil(counted * (early.healthyPercent or 0) / 100)
    return healthy >= needed and (early.sourceServiceRevisionCleanup == "DEFERRED" or not others)


def _fail(out: Advance, service: str, primary: Deployment, reason: str, message: str, rollback: bool,
          rollback_reason: str, stamp: str) -> Deployment:
    """The PRIMARY deployment FAILED (circuit breaker or alarms) with ECS's reason and Warning event; with
    `rollback`, the last COMPLETED deployment is PRIMARY again (returned: the deployment that is PRIMARY now)."""
    primary.rolloutState, primary.rolloutStateReason, primary.updatedAt = "FAILED", reason, stamp
    out.messages.append(message)
    out.warnings.append(message)
    target = out.last_completed
    if rollback and target is not None and target.configKey != primary.configKey:
        primary = _return_to(out, target, primary.configKey, rollback_reason.format(id=target.id), stamp)
        out.messages.append(f"(service {service}) rolling back to deployment {target.id}.")
        out.again = True
    return primary


def _count(primary: Deployment, desired_count: int | Mapping[str, int]) -> int | None:
    """Sets the primary deployment's desiredCount and returns it; None, leaving the count as it was,
    while a DAEMON deployment's instances are not counted."""
    counted = desired_count if isinstance(desired_count, int) else desired_count.get(primary.id)
    if counted is not None:
        primary.desiredCount = counted
    return counted


def workload_target(step: Advance) -> tuple[Deployment, int | None]:
    """The deployment whose configuration the workloads run, and the most tasks they may run (None: desiredCount).

    A FAILED deployment (no rollback) launches no new tasks: the last COMPLETED deployment keeps
    running if it still has tasks; otherwise the failed one keeps the tasks it runs if its alarms failed
    it (they started; docs/ecs-semantics.md §Deployment alarms), none if the circuit breaker did.
    """
    primary = step.deployments[0]
    if primary.rolloutState != "FAILED":
        return primary, None
    previous = step.last_completed
    if previous is not None and any(d.id == previous.id for d in step.deployments[1:]):
        return next(d for d in step.deployments[1:] if d.id == previous.id), None
    alarmed = (primary.alarms or {}).get("status") == "TRIGGERED"
    return primary, primary.runningCount + primary.pendingCount if alarmed else 0


def fail(out: Advance, service: str, reason: str, now: datetime) -> None:
    """The PRIMARY deployment fails for `reason` (a lifecycle hook) and rolls back to the last COMPLETED one, as
    ECS does on a failed hook whatever the circuit breaker's rollback setting (docs/ecs-semantics.md
    §Deployment lifecycle hooks)."""
    stamp = millisecond_stamp(now)
    primary = out.deployments[0]
    primary.rolloutState, primary.rolloutStateReason, primary.updatedAt = "FAILED", reason, stamp
    out.messages.append(f"(service {service}) (deployment {primary.id}) deployment failed: {reason}.")
    out.warnings.append(out.messages[-1])
    target = out.last_completed
    if target is not None and target.configKey != primary.configKey:
        _return_to(out, target, primary.configKey,
                   f"ECS deployment lifecycle hook failed: rolling back to deploymentId {target.id}.", stamp)
        out.messages.append(f"(service {service}) rolling back to deployment {target.id}.")
        out.again = True


def _return_to(out: Advance, completed: Deployment, failed_key: str, reason: str, stamp: str) -> Deployment:
    """Rollback: the last COMPLETED deployment is PRIMARY and IN_PROGRESS again, with its id and the
    tasks it still has (a copy of it when none are left); the failed one stays ACTIVE, FAILED, until
    its tasks are stopped (docs/ecs-semantics.md §Circuit breaker rollback)."""
    _demote(out)
    back = next((d for d in out.deployments if d.id == completed.id), None)
    if back is None:
        back = completed.model_copy(update={"runningCount": 0, "pendingCount": 0})
    else:
        out.deployments.remove(back)
    back.status, back.rolloutState, back.rollbackOf = "PRIMARY", "IN_PROGRESS", failed_key
    back.rolloutStateReason = reason
    back.updatedAt = stamp
    out.deployments.insert(0, back)
    return back


def _demote(out: Advance) -> None:
    """The PRIMARY deployment turns ACTIVE: it only keeps (until they are replaced) the tasks it has."""
    for d in out.deployments:
        if d.status == "PRIMARY":
            d.status, d.desiredCount = "ACTIVE", d.runningCount + d.pendingCount


def _start(out: Advance, service_uid: str, task_definition: str, config_key: str, stamp: str) -> Deployment:
    _demote(out)
    new = Deployment(
        id=deployment_id(service_uid, config_key, stamp),
        taskDefinition=task_definition,
        configKey=config_key,
        createdAt=stamp,
        updatedAt=stamp,
    )
    new.rolloutStateReason = f"ECS deployment {new.id} in progress."
    out.deployments.insert(0, new)
    return new


def started_event(service: str, task_ids: list[str]) -> str:
    """ECS's message for the tasks one scheduling pass started."""
    return f"(service {service}) has started {len(task_ids)} tasks: " + " ".join(f"(task {t})" for t in task_ids) + "."


def stopped_event(service: str, task_ids: list[str], reason: str | None = None) -> str:
    """ECS's message for the tasks one scheduling pass stopped; tasks that failed name their
    stoppedReason (docs/ecs-semantics.md §Stopped service tasks)."""
    message = f"(service {service}) has stopped {len(task_ids)} running tasks: " + " ".join(f"(task {t})" for t in task_ids) + "."
    return f"{message} Reason: {reason}" if reason else message


def _is_change(message: str) -> bool:
    """Events that report something happening (tasks started or stopped, a deployment moving on),
    as opposed to ones that report a state (steady, unable to place, stuck), which ECS repeats only
    after a change."""
    return any(part in message for part in (") has started ", ") has stopped ", " (deployment ecs-svc/", " rolling back to "))


def add_events(events: list[dict[str, str]], messages: list[str], now: datetime) -> tuple[list[dict[str, str]], list[str]]:
    """ECS's events list (newest first, at most 100) and the messages that are new.

    A message identical to one since the last change is suppressed (ECS: "until the cause changes"),
    for at most six hours: a steady state is announced again after each change and every six hours.
    """
    stamp = millisecond_stamp(now)
    fresh: list[str] = []
    out = list(events)
    for message in messages:
        if _repeated(out, message, now):
            continue
        digest = hashlib.sha256(f"{message}/{stamp}/{len(out)}".encode()).hexdigest()[:32]
        out.insert(0, {"id": digest, "createdAt": stamp, "message": message})
        fresh.append(message)
    return out[:MAX_EVENTS], fresh


def _repeated(events: list[dict[str, str]], message: str, now: datetime) -> bool:
    for event in events:  # newest first
        if event["message"] == message:
            return now - _parse(event["createdAt"]) < EVENT_REPEAT_AFTER
        if _is_change(event["message"]):
            return False
    return False


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
