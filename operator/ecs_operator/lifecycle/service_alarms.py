"""Deployment alarms (`deploymentConfiguration.alarms`): whether a deployment's alarms fail it, and its bake.

Pure, the clock and the alarm states passed in. ECS watches the named CloudWatch alarms while a deployment is
IN_PROGRESS and, for a rolling deployment, for a bake time after it reached a steady state; an alarm in ALARM
then FAILS the deployment and, with `rollback`, returns the service to the last COMPLETED deployment by the
circuit breaker's path (lifecycle/service_deployments.py). Here an alarm is a Prometheus alert that Alertmanager
holds: alarm name = the alert's `alertname`, in ALARM while an active (not silenced, not inhibited) alert with
that name carries the service's namespace as its `namespace` label (adapters/alertmanager.py reads them;
docs/ecs-semantics.md §Deployment alarms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ecs_operator.models.service import DeploymentAlarms

from .conditions import condition
from .service_events import ServiceEvent

ALARM_BAKE_MINUTES = 5
"""A rolling deployment's alarm bake after its steady state. ECS derives it from the alarms' own configuration
(period and evaluation periods), which an Alertmanager alert does not carry (the rule's `for` stays in
Prometheus): a fixed five minutes (of --deployment-minute-seconds) instead."""
POLL_SECONDS = 5.0
"""How often a watched deployment's alarms are read while nothing else wakes its service."""
CONDITION = "DeploymentAlarms"
"""The Service condition that says whether its deployment alarms can be watched (absent without alarms)."""
FAILED_REASON = "ECS deployment alarms: alarm(s) in ALARM state: {names}."
ROLLBACK_REASON = "ECS deployment alarms: rolling back to deploymentId {id}."


@dataclass(frozen=True)
class AlarmReading:
    """The alarm states read now: the names in ALARM, or why none could be read."""

    firing: frozenset[str] = frozenset()
    problem: str | None = None
    """Alarms cannot be watched (no Alertmanager configured, or it did not answer): never a silent pass."""
    configured: bool = True
    """An alarm source is configured. Without one, deployments go on as without alarms (their member DISABLED),
    with the DeploymentAlarms condition False and a Warning saying so; with one that does not answer, a deployment
    cannot complete until its alarms are read."""


@dataclass(frozen=True)
class AlarmWatch:
    """A service's alarm configuration and what was read, for `advance` (lifecycle/service_deployments.py)."""

    alarms: DeploymentAlarms
    reading: AlarmReading
    bake_seconds: float
    """The bake after a steady state (ROLLING); 0 for BLUE_GREEN, LINEAR and CANARY, whose own bake (bakeTimeInMinutes)
    is part of the deployment and watched as such."""


@dataclass(frozen=True)
class AlarmVerdict:
    """What the alarms decide for the PRIMARY deployment at this observation."""

    member: dict[str, Any]
    """ECS's ServiceDeploymentAlarms for the deployment (status, alarmNames, triggeredAlarmNames)."""
    triggered: tuple[str, ...] = ()
    """Alarms in ALARM: the deployment fails now."""
    bake_started: str | None = None
    """When its bake began (kept in the deployment's record)."""
    hold: bool = False
    """A steady deployment stays IN_PROGRESS: its bake is not over (or the alarms cannot be read to end it)."""
    due: datetime | None = None
    """When the bake ends (look again then)."""


def watch_for(alarms: DeploymentAlarms | None, reading: AlarmReading, shifting: bool,
              minute_seconds: float) -> AlarmWatch | None:
    """The watch of an enabled alarm configuration with names; None when alarms are off (DISABLED)."""
    if alarms is None or not alarms.enable or not alarms.alarmNames:
        return None
    return AlarmWatch(alarms, reading, 0.0 if shifting else ALARM_BAKE_MINUTES * minute_seconds)


def verdict(watch: AlarmWatch, bake_started: str | None, steady: bool, now: datetime, stamp: str) -> AlarmVerdict:
    """The alarms' decision for an IN_PROGRESS deployment. `steady`: its tasks are all healthy and nothing else runs
    (it would complete without alarms); `bake_started`: when its bake began (None: not yet)."""
    names = list(watch.alarms.alarmNames)
    if not watch.reading.configured:
        return AlarmVerdict({"status": "DISABLED", "alarmNames": names})
    triggered = tuple(n for n in names if n in watch.reading.firing) if watch.reading.problem is None else ()
    if triggered:
        return AlarmVerdict({"status": "TRIGGERED", "alarmNames": names, "triggeredAlarmNames": list(triggered)}, triggered)
    member = {"status": "MONITORING", "alarmNames": names}
    if not steady:
        return AlarmVerdict(member)  # the bake starts again at the next steady state
    began = _parse(bake_started) or now
    started = bake_started or stamp
    end = began + timedelta(seconds=watch.bake_seconds)
    if now < end or watch.reading.problem is not None:  # completing needs a reading at the bake's end
        return AlarmVerdict(member, bake_started=started, hold=True, due=end if now < end else None)
    return AlarmVerdict({"status": "MONITORING_COMPLETE", "alarmNames": names}, bake_started=started)


def failed_message(service: str, deployment: str) -> str:
    """ECS's service event for a deployment its alarms failed (the circuit breaker's wording, with its cause)."""
    return f"(service {service}) (deployment {deployment}) deployment failed: alarm detected."


def alarm_condition(conditions: list[dict[str, Any]], service: Mapping[str, Any], watched: AlarmWatch | None,
                    now: datetime) -> tuple[list[dict[str, Any]], ServiceEvent | None]:
    """DeploymentAlarms False (with the Warning's message when that is new) while alarms are enabled but cannot be
    read; True while they can; no condition without alarms."""
    if watched is None:
        return [c for c in conditions if c.get("type") != CONDITION], None
    problem = watched.reading.problem
    names = ", ".join(watched.alarms.alarmNames)
    message = (f"deploymentConfiguration.alarms cannot be watched ({names}): {problem}" if problem
               else f"deploymentConfiguration.alarms watched in Alertmanager: {names}")
    out, event = condition(conditions, service, CONDITION, problem is None, "AlarmsNotWatched" if problem else "Watched",
                           message, now, "DeploymentAlarmsNotWatched", compare_reason=False)
    return out, None if event is None else ServiceEvent(event.message, "Warning", event.reason)


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
