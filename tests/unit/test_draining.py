"""Service tasks on DRAINING container instances: replace first within maximumPercent, stop first within
minimumHealthyPercent, or stuck (docs/ecs-semantics.md §Draining)."""

from __future__ import annotations

import pytest
from ecs_operator.models.service import DeploymentConfiguration
from ecs_operator.scaling.draining import DrainStep, drain_step
from ecs_operator.scaling.rolling import DeploymentBounds, deployment_bounds


def bounds(desired: int, minimum: int | None = None, maximum: int | None = None) -> DeploymentBounds:
    return deployment_bounds(desired, DeploymentConfiguration(minimumHealthyPercent=minimum, maximumPercent=maximum))


def test_at_ecs_defaults_the_replacement_starts_first_and_the_task_stops_once_it_is_healthy() -> None:
    b = bounds(2)  # 100 / 200
    assert drain_step(b, draining=1, elsewhere=1, healthy_elsewhere=1, marked=False) == DrainStep(3, batch=1)
    assert drain_step(b, draining=1, elsewhere=2, healthy_elsewhere=1, marked=True) == DrainStep(3, batch=1)  # not healthy yet
    assert drain_step(b, draining=1, elsewhere=2, healthy_elsewhere=2, marked=False) == DrainStep(3, batch=1)  # not marked yet
    assert drain_step(b, draining=1, elsewhere=2, healthy_elsewhere=2, marked=True) == DrainStep(2)  # scale back: it stops
    assert drain_step(b, draining=0, elsewhere=2, healthy_elsewhere=2, marked=True) == DrainStep(2)


def test_maximum_percent_sets_the_batch_and_batches_follow_each_other() -> None:
    b = bounds(4, 100, 150)  # 2 above desiredCount
    assert drain_step(b, draining=4, elsewhere=0, healthy_elsewhere=0, marked=True) == DrainStep(6, batch=2)
    assert drain_step(b, draining=4, elsewhere=2, healthy_elsewhere=2, marked=True) == DrainStep(4)  # first batch replaced
    # the ReplicaSet stopped 2 of the 4: the next batch starts
    assert drain_step(b, draining=2, elsewhere=2, healthy_elsewhere=2, marked=True) == DrainStep(6, batch=2)
    assert drain_step(b, draining=2, elsewhere=4, healthy_elsewhere=4, marked=True) == DrainStep(4)


@pytest.mark.parametrize(("minimum", "maximum", "step"), [
    (50, 100, DrainStep(4, evict=True)),  # stop first, the PDB keeps 2
    (50, 200, DrainStep(4, evict=True)),  # stopping first needs no room for the replacement
    (0, 100, DrainStep(4, evict=True)),
    (100, 100, DrainStep(4, stuck=True)),  # ECS cannot replace: the instance stays DRAINING
])
def test_below_100_percent_tasks_stop_first_and_at_100_100_not_at_all(minimum: int, maximum: int, step: DrainStep) -> None:
    assert drain_step(bounds(4, minimum, maximum), draining=1, elsewhere=3, healthy_elsewhere=3, marked=False) == step


def test_a_service_scaled_to_zero_has_nothing_to_replace() -> None:
    assert drain_step(bounds(0), draining=1, elsewhere=0, healthy_elsewhere=0, marked=False) == DrainStep(0)
