"""Rolling deployments: the bounds deploymentConfiguration's minimumHealthyPercent and maximumPercent
set, the deployment circuit breaker threshold, and which tasks count as healthy (docs/ecs-semantics.md §Rolling deployments).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ecs_operator.models.service import DeploymentConfiguration, ThresholdConfiguration

DEFAULT_PERCENTS: dict[str, tuple[int, int]] = {"REPLICA": (100, 200), "DAEMON": (0, 100)}
"""(minimumHealthyPercent, maximumPercent) when unset. CODE_DEPLOY/EXTERNAL controllers use REPLICA's while instances drain."""

STUCK_EVENT = (
    "(service {service}) was unable to stop or start tasks during a deployment because of the service "
    "deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
)


@dataclass(frozen=True)
class DeploymentBounds:
    """ECS's bounds for one deployment step, and the same as Kubernetes rolling-update integers.

    maxSurge and maxUnavailable are integers, never percentages: Kubernetes rounds a percentage
    maxSurge up and maxUnavailable down, the opposite of ECS's floor/ceil here.
    """

    desiredCount: int
    minimumHealthyPercent: int
    maximumPercent: int
    min_healthy: int
    """ceil(desiredCount * minimumHealthyPercent / 100): healthy RUNNING tasks to keep."""
    max_tasks: int
    """floor(desiredCount * maximumPercent / 100): tasks allowed in PENDING or RUNNING."""
    maxSurge: int
    """max_tasks - desiredCount (0 when maximumPercent < 100)."""
    maxUnavailable: int
    """desiredCount - min_healthy."""
    stuck: bool
    """Neither a stop nor a start is possible (Kubernetes refuses maxSurge = maxUnavailable = 0 too).
    desiredCount 0 is not stuck: there is nothing to roll, every old task may stop."""

    def stuck_event(self, service_name: str) -> str | None:
        """ECS's service event for a stuck deployment, or None when it can proceed."""
        return STUCK_EVENT.format(service=service_name) if self.stuck else None


def deployment_bounds(
    desired_count: int,
    deployment_configuration: DeploymentConfiguration | None = None,
    scheduling_strategy: Literal["REPLICA", "DAEMON"] = "REPLICA",
) -> DeploymentBounds:
    """The bounds of a REPLICA service, or of a DAEMON service whose desiredCount is its eligible instances."""
    if desired_count < 0:
        raise ValueError(f"desiredCount must be >= 0; got {desired_count}")
    default_min, default_max = DEFAULT_PERCENTS[scheduling_strategy]
    config = deployment_configuration or DeploymentConfiguration()
    minimum = default_min if config.minimumHealthyPercent is None else config.minimumHealthyPercent
    maximum = default_max if config.maximumPercent is None else config.maximumPercent
    min_healthy = -(-desired_count * minimum // 100)  # ceil, in integers
    max_tasks = desired_count * maximum // 100
    surge = max(0, max_tasks - desired_count)
    unavailable = max(0, desired_count - min_healthy)
    return DeploymentBounds(
        desiredCount=desired_count,
        minimumHealthyPercent=minimum,
        maximumPercent=maximum,
        min_healthy=min_healthy,
        max_tasks=max_tasks,
        maxSurge=surge,
        maxUnavailable=unavailable,
        stuck=desired_count > 0 and surge == 0 and unavailable == 0,
    )


def circuit_breaker_threshold(desired_count: int, threshold_configuration: ThresholdConfiguration | None = None) -> int:
    """Failed tasks after which deploymentCircuitBreaker fails the deployment.

    Default (BOUNDED_PERCENT 50): min(200, max(3, ceil(0.5 * desiredCount))), so 1 -> 3, 10 -> 5, 25 -> 13,
    400 -> 200. COUNT is the value itself; UNBOUNDED_PERCENT is the percentage without the 3..200 clamp.
    """
    kind, value = (
        ("BOUNDED_PERCENT", 50)
        if threshold_configuration is None
        else (
            threshold_configuration.type,
            threshold_configuration.value,
        )
    )
    if kind == "COUNT":
        return value
    threshold = -(-desired_count * value // 100)
    return min(200, max(3, threshold)) if kind == "BOUNDED_PERCENT" else threshold


def counts_as_healthy(
    *,
    last_status: str,
    health_status: str,
    essential_health_check: bool,
    running_since: datetime | None,
    now: datetime,
    target_healthy: bool | None = None,
    min_running_seconds: float = 40,
) -> bool:
    """Whether a task counts toward min_healthy.

    It must be `lastStatus` RUNNING, and: with a health check on an essential container, `healthStatus`
    HEALTHY; without one, RUNNING for `min_running_seconds` (ECS: 40 s). Behind a load balancer
    (`target_healthy` not None) the target must be healthy instead of the 40 s wait.
    """
    if last_status != "RUNNING":
        return False
    if essential_health_check and health_status != "HEALTHY":
        return False
    if target_healthy is not None:
        return target_healthy
    if essential_health_check:
        return True
    return running_since is not None and now - running_since >= timedelta(seconds=min_running_seconds)
