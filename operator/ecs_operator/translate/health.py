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
    """For a HEALTHY dependency started as a sidecar: the next containers start once it passes."""
    return {
        "exec": {"command": probe_command(hc)},
        "periodSeconds": hc.interval or INTERVAL,
        "timeoutSeconds": hc.timeout or TIMEOUT,
        "failureThreshold": _attempts(hc, start_timeout),
    }


def wait_until_healthy(hc: HealthCheck, start_timeout: int | None) -> dict[str, Any]:
    """For a HEALTHY dependency started as a regular container: a postStart hook re-running the
    health check, which holds the containers after it (the kubelet starts them once the hook
    returns); it fails, and the kubelet stops the container, after the startTimeout window."""
    script = (f'n=0; until "$@" >/dev/null 2>&1; do n=$((n+1)); '
              f'[ "$n" -ge {_attempts(hc, start_timeout)} ] && exit 1; sleep {hc.interval or INTERVAL}; done')
    return {"postStart": {"exec": {"command": ["/bin/sh", "-c", script, "healthy", *probe_command(hc)]}}}


def _attempts(hc: HealthCheck, start_timeout: int | None) -> int:
    """Checks within startPeriod + startTimeout (ECS's default wait: 3 minutes), at least `retries`."""
    interval = hc.interval or INTERVAL
    window = (hc.startPeriod or START_PERIOD) + (start_timeout or 180)
    return max(hc.retries or RETRIES, -(-window // interval))


def health_settings(hc: HealthCheck) -> dict[str, int]:
    """What the operator needs to turn readiness into ECS healthStatus (kept on the Pod)."""
    return {
        "interval": hc.interval or INTERVAL,
        "retries": hc.retries or RETRIES,
        "startPeriod": hc.startPeriod or START_PERIOD,
    }
