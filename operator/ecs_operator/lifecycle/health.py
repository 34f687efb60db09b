"""ECS health status from Kubernetes readiness (docs/ecs-semantics.md §Health status)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from .pods import PodContainer, health_settings, parse_time, pod_containers
from .records import HealthStatus


def container_health(c: PodContainer, settings: dict[str, int] | None, now: datetime) -> HealthStatus:
    """HEALTHY while the probe passes; UNHEALTHY once it fails after startPeriod; UNKNOWN without a check.

    The kubelet flips readiness only after `retries` consecutive failures, so a not-ready container
    whose grace (startPeriod plus the first retries*interval) is over is UNHEALTHY, as ECS says.
    """
    if settings is None or not c.running:
        return "UNKNOWN"
    if c.status.get("ready"):
        return "HEALTHY"
    started = parse_time(c.running.get("startedAt"))
    if started is not None and (now - started).total_seconds() >= _grace(settings):
        return "UNHEALTHY"
    return "UNKNOWN"


def health_deadline(pod: dict[str, Any], now: datetime) -> datetime | None:
    """When a health-checked container that is running but not (yet) ready turns UNHEALTHY, if that is
    still ahead: no Pod event marks that moment, so the caller must look again then."""
    checks = health_settings(pod)
    due = []
    for c in pod_containers(pod):
        settings = checks.get(c.name)
        if settings is None or not c.running or c.status.get("ready"):
            continue
        started = parse_time(c.running.get("startedAt"))
        if started is not None:
            at = started + timedelta(seconds=_grace(settings))
            if at > now:
                due.append(at)
    return min(due, default=None)


def _grace(settings: dict[str, int]) -> int:
    return settings["startPeriod"] + settings["interval"] * settings["retries"]


def task_health(essential_health: Iterable[HealthStatus]) -> HealthStatus:
    """Essential containers only: any UNHEALTHY wins, then any UNKNOWN, else HEALTHY."""
    values = list(essential_health)
    if "UNHEALTHY" in values:
        return "UNHEALTHY"
    if "UNKNOWN" in values or not values:
        return "UNKNOWN"
    return "HEALTHY"
