"""Capacity provider managed scaling: bin-packing M, CapacityProviderReservation, the scaling decision, and
which instances go on scale-in (docs/ecs-semantics.md §Managed scaling)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecs_operator.models.capacity_provider import ManagedScaling
from ecs_operator.nodepool.instance_types import instance_type
from ecs_operator.scaling.managed_scaling import (
    InstanceCapacity,
    InstanceRoom,
    PoolInstance,
    ScalingDecision,
    TaskRequest,
    bin_pack,
    capacity_provider_reservation,
    choose_instances_to_remove,
    decide,
    instances_needed,
    WaitingTask,
)

M5_XLARGE = InstanceCapacity.of(instance_type("m5.xlarge"))  # 4 vCPU, 16 GiB, 58 pods
NOW = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_instance_capacity_from_the_instance_type() -> None:
    assert M5_XLARGE == InstanceCapacity(cpu=4096, memory=16384, gpu=0, pods=58)
    assert InstanceCapacity.of(instance_type("g4dn.xlarge")).gpu == 1


# --- M by bin-packing -----------------------------------------------------------------------------


def test_ten_tasks_that_fit_four_per_instance_need_three() -> None:
    packing = bin_pack([TaskRequest(cpu=1024, memory=2048)] * 10, M5_XLARGE)
    assert (packing.instances, packing.excluded) == (3, ())


@pytest.mark.parametrize(
    ("tasks", "instances"),
    [
        ([], 0),
        ([TaskRequest(cpu=256, memory=8192)] * 5, 3),  # memory-bound: 2 per instance
        (
            [TaskRequest(cpu=2458), TaskRequest(cpu=2458), TaskRequest(cpu=1638), TaskRequest(cpu=1638)],
            2,
        ),  # .6 .6 .4 .4
        ([TaskRequest(cpu=1638), TaskRequest(cpu=2458), TaskRequest(cpu=1638), TaskRequest(cpu=2458)], 2),  # order-free
        ([TaskRequest(cpu=10)] * 59, 2),  # pod slots: 58 per instance
        ([TaskRequest(cpu=4096, memory=16384)] * 2, 2),  # exactly one instance each
    ],
)
def test_bin_pack(tasks: list[TaskRequest], instances: int) -> None:
    assert bin_pack(tasks, M5_XLARGE).instances == instances


def test_tasks_bigger_than_an_instance_are_excluded_and_reported() -> None:
    huge = TaskRequest(cpu=8192, memory=1024, name="huge")
    gpu = TaskRequest(cpu=512, gpu=1, name="needs-gpu")
    packing = bin_pack([TaskRequest(cpu=1024), huge, gpu], M5_XLARGE)
    assert (packing.instances, packing.excluded) == (1, (huge, gpu))
    assert bin_pack([gpu], InstanceCapacity.of(instance_type("g4dn.xlarge"))).instances == 1


M5_LARGE = InstanceCapacity.of(instance_type("m5.large"))  # 2 vCPU, 8 GiB, 29 pods
EMPTY = InstanceRoom(M5_LARGE, busy=False)
HALF = TaskRequest(cpu=1024, memory=1024)


def room(cpu: int, busy: bool = True, settled: bool = True) -> InstanceRoom:
    return InstanceRoom(InstanceCapacity(cpu=cpu, memory=8192, pods=20), busy=busy, settled=settled)


def test_instances_needed_from_zero_is_the_bin_packing() -> None:
    tasks = [TaskRequest(cpu=512, memory=1536)] * 10
    assert instances_needed(tasks, [WaitingTask(t, refused=True) for t in tasks], [], M5_LARGE).instances == 3


def test_tasks_waiting_for_instances_that_warm_up_need_no_more() -> None:
    """The restart and burst case: instances already launched absorb the tasks waiting for them."""
    tasks = [TaskRequest(cpu=512, memory=1536)] * 10
    waiting = [WaitingTask(t, refused=True) for t in tasks]
    warming = [InstanceRoom(M5_LARGE, busy=False, settled=False)] * 3
    assert instances_needed(tasks, waiting, warming, M5_LARGE).instances == 3
    assert instances_needed(tasks, waiting, warming[:1], M5_LARGE).instances == 3  # 4 fit it, 6 need 2 more


def test_fragmented_room_scales_out_where_bin_packing_alone_would_not() -> None:
    """Two instances half full: bin-packing says 2 suffice for a whole-instance task, but it fits neither."""
    whole = TaskRequest(cpu=2048, memory=1024)
    needed = instances_needed([HALF, HALF, whole], [WaitingTask(whole, refused=True)], [room(1024), room(1024)], M5_LARGE)
    assert bin_pack([HALF, HALF, whole], M5_LARGE).instances == 2
    assert needed.instances == 3


def test_a_task_the_scheduler_has_not_tried_yet_counts_on_free_room() -> None:
    assert instances_needed([HALF, HALF], [WaitingTask(HALF, refused=False)], [room(1024)], M5_LARGE).instances == 1
    # refused by the scheduler (a placement constraint, a port): that room does not count for it
    assert instances_needed([HALF, HALF], [WaitingTask(HALF, refused=True)], [room(1024)], M5_LARGE).instances == 2
    # ... unless the instance is still warming up: the scheduler has not seen it yet
    assert instances_needed([HALF, HALF], [WaitingTask(HALF, refused=True)], [room(1024, settled=False)], M5_LARGE).instances == 1


def test_instances_needed_keeps_the_bin_packing_floor_and_reports_tasks_too_large() -> None:
    huge = TaskRequest(cpu=8192, name="huge")
    needed = instances_needed([HALF] * 4 + [huge], [WaitingTask(huge, refused=True)], [EMPTY, EMPTY], M5_LARGE)
    assert (needed.instances, needed.excluded) == (2, (huge,))  # the huge task never triggers scaling


# --- CapacityProviderReservation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("M", "N", "reservation"), [(3, 0, 200.0), (0, 0, 100.0), (0, 4, 0.0), (2, 4, 50.0), (4, 4, 100.0), (6, 4, 150.0)]
)
def test_capacity_provider_reservation(M: int, N: int, reservation: float) -> None:
    assert capacity_provider_reservation(M, N) == reservation


# --- decide ---------------------------------------------------------------------------------------


def run(
    N: int,
    M: int,
    min_size: int = 0,
    max_size: int = 100,
    **managed: Any,
) -> ScalingDecision:
    return decide(
        current_size=N,
        needed=M,
        managed_scaling=ManagedScaling.model_validate(managed) if managed else None,
        min_size=min_size,
        max_size=max_size,
        now=NOW,
    )


def test_scale_out_from_zero_to_what_the_tasks_need() -> None:
    result = run(0, 3)
    assert (result.action, result.desired_size, result.reservation) == ("scale-out", 3, 200.0)
    assert result.reason == (
        "CapacityProviderReservation 200% (M=3, N=0) is above targetCapacity 100%: 0 -> 3 instances (3 wanted, step 3)"
    )


def test_target_capacity_50_doubles_the_instances() -> None:
    assert run(0, 3, targetCapacity=50).desired_size == 6
    assert run(0, 3, targetCapacity=50, maximumScalingStepSize=4).desired_size == 4  # subject to step sizes
    assert run(4, 3, targetCapacity=50).desired_size == 6


def test_target_capacity_90_keeps_headroom() -> None:
    assert run(9, 9, targetCapacity=90).desired_size == 10  # ceil(9 * 100 / 90)


def test_step_sizes() -> None:
    assert run(2, 3, minimumScalingStepSize=5).desired_size == 7  # estimate 1 < minimum 5: launch 5
    assert run(2, 30, maximumScalingStepSize=10).desired_size == 12  # estimate 28 capped at 10
    assert run(2, 9, minimumScalingStepSize=3, maximumScalingStepSize=10).desired_size == 9


def test_pool_limits() -> None:
    result = run(8, 30, max_size=10)
    assert (result.action, result.desired_size) == ("scale-out", 10)
    result = run(10, 30, max_size=10)
    assert (result.action, result.desired_size) == ("none", 10)
    assert result.reason.endswith("but the pool is at maxSize 10")
    assert run(0, 1, max_size=0).action == "none"  # MaxSize 0 never scales out
    result = run(1, 0, min_size=2)
    assert (result.action, result.desired_size) == ("scale-out", 2)
    assert result.reason == "the pool has 1 instances, outside minSize..maxSize 2..100"
    assert (run(12, 12, max_size=10).action, run(12, 12, max_size=10).desired_size) == ("scale-in", 10)


def test_warm_up_holds_further_scale_out() -> None:
    def with_launches(*ages: int) -> ScalingDecision:
        return decide(
            current_size=3,
            needed=6,
            managed_scaling=ManagedScaling(instanceWarmupPeriod=300),
            min_size=0,
            max_size=10,
            now=NOW,
            launch_times=[NOW - timedelta(seconds=a) for a in ages],
        )

    held = with_launches(1000, 299)
    assert (held.action, held.desired_size) == ("none", 3)
    assert held.reason.endswith("waiting for 1 instance(s) to pass instanceWarmupPeriod 300 s")
    assert with_launches(1000, 300).action == "scale-out"
    assert with_launches().desired_size == 6


def test_default_warm_up_is_300_seconds() -> None:
    result = decide(
        current_size=1, needed=2, managed_scaling=None, min_size=0, max_size=10, now=NOW,
        launch_times=[NOW - timedelta(seconds=299)],
    )  # fmt: skip
    assert result.action == "none"


def scale_in(N: int, M: int, below_for: int | None, min_size: int = 0, **managed: Any) -> ScalingDecision:
    return decide(
        current_size=N,
        needed=M,
        managed_scaling=ManagedScaling.model_validate(managed) if managed else None,
        min_size=min_size,
        max_size=100,
        now=NOW,
        below_target_since=None if below_for is None else NOW - timedelta(seconds=below_for),
    )


def test_scale_in_waits_15_minutes_below_target() -> None:
    waiting = scale_in(6, 2, below_for=899)
    assert (waiting.action, waiting.desired_size) == ("none", 6)
    assert waiting.reservation == pytest.approx(100 * 2 / 6)
    assert waiting.reason == (
        "CapacityProviderReservation 33.3% (M=2, N=6) is below targetCapacity 100% since 2024-01-01T11:45:01Z; "
        "scale-in after 900 s"
    )
    done = scale_in(6, 2, below_for=900)
    assert (done.action, done.desired_size) == ("scale-in", 2)
    assert scale_in(6, 2, below_for=None).action == "none"


def test_scale_in_keeps_what_is_needed_and_min_size() -> None:
    assert scale_in(10, 3, below_for=1000, targetCapacity=50).desired_size == 6
    assert scale_in(10, 3, below_for=1000, min_size=5).desired_size == 5
    at_min = scale_in(5, 0, below_for=1000, min_size=5)
    assert (at_min.action, at_min.reason.endswith("but the pool is at minSize 5")) == ("none", True)
    assert scale_in(4, 0, below_for=1000).desired_size == 0


def test_at_target_and_disabled() -> None:
    steady = run(3, 3)
    assert (steady.action, steady.desired_size) == ("none", 3)
    assert (
        steady.reason
        == "CapacityProviderReservation 100% (M=3, N=3): 3 instances are what targetCapacity 100% asks for"
    )
    assert run(0, 0).action == "none"
    assert run(3, 2, targetCapacity=70).action == "none"  # 66.7% < 70%, but ceil(2 * 100 / 70) = 3 already
    disabled = run(0, 5, status="DISABLED")
    assert (disabled.action, disabled.reason) == ("none", "managedScaling is DISABLED")


# --- choose_instances_to_remove -------------------------------------------------------------------

POOL = [
    PoolInstance("n-c", 2),
    PoolInstance("n-a", 0),
    PoolInstance("n-d", 1),
    PoolInstance("n-b", 0),
    PoolInstance("n-e", 1),
]


def test_remove_empty_first_then_fewest_tasks() -> None:
    assert choose_instances_to_remove(POOL, 4, termination_protection=False) == ("n-a", "n-b", "n-d", "n-e")
    assert choose_instances_to_remove(POOL, 1, termination_protection=False) == ("n-a",)
    assert choose_instances_to_remove(POOL, 0, termination_protection=False) == ()


def test_managed_termination_protection_only_removes_empty_instances() -> None:
    assert choose_instances_to_remove(POOL, 4, termination_protection=True) == ("n-a", "n-b")
    assert choose_instances_to_remove([PoolInstance("busy", 3)], 1, termination_protection=True) == ()
