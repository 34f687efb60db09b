"""ECS health status from Kubernetes readiness (ecs-semantics.md 1.8 and 3.5)."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from .pods import PodContainer, parse_time
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
    grace = settings["startPeriod"] + settings["interval"] * settings["retries"]
    if started is not None and (now - started).total_seconds() >= grace:
        return "UNHEALTHY"
    return "UNKNOWN"


def task_health(essential_health: Iterable[HealthStatus]) -> HealthStatus:
    """Essential containers only: any UNHEALTHY wins, then any UNKNOWN, else HEALTHY."""
    values = list(essential_health)
    if "UNHEALTHY" in values:
        return "UNHEALTHY"
    if "UNKNOWN" in values or not values:
        return "UNKNOWN"
    return "HEALTHY"
