"""Rolling deployment bounds, the circuit breaker threshold and the healthy-task rule (docs/ecs-semantics.md §Rolling deployments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ecs_operator.models.service import DeploymentConfiguration, ThresholdConfiguration
from ecs_operator.scaling.rolling import circuit_breaker_threshold, counts_as_healthy, deployment_bounds


def config(minimum: int | None, maximum: int | None) -> DeploymentConfiguration:
    return DeploymentConfiguration(minimumHealthyPercent=minimum, maximumPercent=maximum)


@pytest.mark.parametrize(
    ("desired", "minimum", "maximum", "min_healthy", "max_tasks", "surge", "unavailable", "stuck"),
    [
        (4, 50, 200, 2, 8, 4, 2, False),  # may stop 2 old first; may start 4 new before stopping old
        (4, 100, 200, 4, 8, 4, 0, False),  # start new, stop old only once the new are healthy
        (2, 75, 100, 2, 2, 0, 0, True),  # cannot stop and cannot start
        (3, 100, 125, 3, 3, 0, 0, True),  # floor(3.75) = 3
        (1, 100, 200, 1, 2, 1, 0, False),  # start 1 new, then stop the old one
        (1, 0, 100, 0, 1, 0, 1, False),  # stop the old one first, then start the new
    ],
)
def test_reference_worked_examples(
    desired: int,
    minimum: int,
    maximum: int,
    min_healthy: int,
    max_tasks: int,
    surge: int,
    unavailable: int,
    stuck: bool,
) -> None:
    bounds = deployment_bounds(desired, config(minimum, maximum))
    assert (bounds.min_healthy, bounds.max_tasks) == (min_healthy, max_tasks)
    assert (bounds.maxSurge, bounds.maxUnavailable, bounds.stuck) == (surge, unavailable, stuck)


def test_stuck_event_is_ecs_text() -> None:
    assert deployment_bounds(2, config(75, 100)).stuck_event("web") == (
        "(service web) was unable to stop or start tasks during a deployment because of the service deployment "
        "configuration. Update the minimumHealthyPercent or maximumPercent value and try again."
    )
    assert deployment_bounds(4, config(50, 200)).stuck_event("web") is None


def test_defaults_replica_and_daemon() -> None:
    replica = deployment_bounds(4)
    assert (replica.minimumHealthyPercent, replica.maximumPercent) == (100, 200)
    assert (replica.maxSurge, replica.maxUnavailable) == (4, 0)
    daemon = deployment_bounds(3, None, "DAEMON")
    assert (daemon.minimumHealthyPercent, daemon.maximumPercent) == (0, 100)
    assert (daemon.min_healthy, daemon.max_tasks, daemon.maxSurge, daemon.maxUnavailable) == (0, 3, 0, 3)
    partial = deployment_bounds(4, config(50, None))
    assert (partial.minimumHealthyPercent, partial.maximumPercent) == (50, 200)


def test_rounding_is_ceil_for_healthy_and_floor_for_maximum() -> None:
    bounds = deployment_bounds(3, config(50, 150))  # 1.5 -> 2 healthy, 4.5 -> 4 tasks
    assert (bounds.min_healthy, bounds.max_tasks, bounds.maxSurge, bounds.maxUnavailable) == (2, 4, 1, 1)
    bounds = deployment_bounds(3, config(1, 101))  # 0.03 -> 1 healthy, 3.03 -> 3 tasks
    assert (bounds.min_healthy, bounds.max_tasks, bounds.stuck) == (1, 3, False)


def test_desired_zero_has_nothing_to_roll() -> None:
    bounds = deployment_bounds(0)
    assert (bounds.min_healthy, bounds.max_tasks, bounds.maxSurge, bounds.maxUnavailable) == (0, 0, 0, 0)
    assert not bounds.stuck


def test_maximum_below_100_percent_gives_no_surge() -> None:
    bounds = deployment_bounds(4, config(0, 50))
    assert (bounds.max_tasks, bounds.maxSurge, bounds.maxUnavailable, bounds.stuck) == (2, 0, 4, False)
    assert deployment_bounds(4, config(100, 50)).stuck


def test_negative_desired_count_is_refused() -> None:
    with pytest.raises(ValueError, match="desiredCount"):
        deployment_bounds(-1)


@pytest.mark.parametrize(
    ("desired", "threshold"), [(1, 3), (10, 5), (25, 13), (400, 200), (800, 200), (0, 3), (6, 3), (7, 4)]
)
def test_circuit_breaker_default_threshold(desired: int, threshold: int) -> None:
    assert circuit_breaker_threshold(desired) == threshold
    assert circuit_breaker_threshold(desired, ThresholdConfiguration(type="BOUNDED_PERCENT", value=50)) == threshold


@pytest.mark.parametrize(
    ("kind", "value", "desired", "threshold"),
    [
        ("COUNT", 7, 100, 7),
        ("COUNT", 1, 1000, 1),
        ("BOUNDED_PERCENT", 10, 10, 3),  # 1 -> clamped up to 3
        ("BOUNDED_PERCENT", 100, 800, 200),  # clamped down to 200
        ("UNBOUNDED_PERCENT", 10, 10, 1),
        ("UNBOUNDED_PERCENT", 100, 800, 800),
        ("UNBOUNDED_PERCENT", 15, 10, 2),  # 1.5 rounds up
    ],
)
def test_circuit_breaker_threshold_configuration(kind: str, value: int, desired: int, threshold: int) -> None:
    assert (
        circuit_breaker_threshold(desired, ThresholdConfiguration.model_validate({"type": kind, "value": value}))
        == threshold
    )


NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("last_status", "health", "checked", "running_for", "target", "healthy"),
    [
        ("RUNNING", "UNKNOWN", False, 40, None, True),  # no health check: 40 s of RUNNING
        ("RUNNING", "UNKNOWN", False, 39, None, False),
        ("RUNNING", "UNKNOWN", False, None, None, False),
        ("RUNNING", "HEALTHY", True, 1, None, True),  # health check: HEALTHY at once
        ("RUNNING", "UNKNOWN", True, 600, None, False),
        ("RUNNING", "UNHEALTHY", True, 600, None, False),
        ("PENDING", "HEALTHY", True, 600, None, False),
        ("RUNNING", "UNKNOWN", False, 1, True, True),  # behind a load balancer: the target's health
        ("RUNNING", "UNKNOWN", False, 600, False, False),
        ("RUNNING", "UNKNOWN", True, 600, True, False),  # ... and HEALTHY too when there is a check
        ("RUNNING", "HEALTHY", True, 600, True, True),
    ],
)
def test_counts_as_healthy(
    last_status: str, health: str, checked: bool, running_for: int | None, target: bool | None, healthy: bool
) -> None:
    since = None if running_for is None else NOW - timedelta(seconds=running_for)
    assert (
        counts_as_healthy(
            last_status=last_status,
            health_status=health,
            essential_health_check=checked,
            running_since=since,
            now=NOW,
            target_healthy=target,
        )
        is healthy
    )


def test_the_40_seconds_are_a_parameter() -> None:
    since = NOW - timedelta(seconds=10)
    kwargs = {
        "last_status": "RUNNING",
        "health_status": "UNKNOWN",
        "essential_health_check": False,
        "running_since": since,
        "now": NOW,
    }
    assert not counts_as_healthy(**kwargs)  # type: ignore[arg-type]
    assert counts_as_healthy(**kwargs, min_running_seconds=10)  # type: ignore[arg-type]
