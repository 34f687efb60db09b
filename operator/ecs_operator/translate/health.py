"""ECS healthCheck as a Kubernetes probe (with ECS's defaults)."""

from __future__ import annotations

from typing import Any

from ecs_operator.models.container import HealthCheck

INTERVAL, TIMEOUT, RETRIES, START_PERIOD = 30, 5, 3, 0


def probe_command(hc: HealthCheck) -> list[str]:
    """CMD runs its arguments; CMD-SHELL runs them through the container's shell."""
    if hc.command[0] == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(hc.command[1:])]
    return list(hc.command[1:])


def readiness_probe(hc: HealthCheck) -> dict[str, Any]:
    return {
        "exec": {"command": probe_command(hc)},
        "periodSeconds": hc.interval or INTERVAL,
        "timeoutSeconds": hc.timeout or TIMEOUT,
        "failureThreshold": hc.retries or RETRIES,
        "successThreshold": 1,
    }


def startup_probe(hc: HealthCheck, start_timeout: int | None) -> dict[str, Any]:
    """For a HEALTHY dependency: the dependents start once it passes; give up after startTimeout."""
    interval = hc.interval or INTERVAL
    window = (hc.startPeriod or START_PERIOD) + (start_timeout or 180)
    return {
        "exec": {"command": probe_command(hc)},
        "periodSeconds": interval,
        "timeoutSeconds": hc.timeout or TIMEOUT,
        "failureThreshold": max(hc.retries or RETRIES, -(-window // interval)),
    }


def health_settings(hc: HealthCheck) -> dict[str, int]:
    """What the operator needs to turn readiness into ECS healthStatus (kept on the Pod)."""
    return {
        "interval": hc.interval or INTERVAL,
        "retries": hc.retries or RETRIES,
        "startPeriod": hc.startPeriod or START_PERIOD,
    }
