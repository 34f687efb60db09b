"""Capacity provider managed scaling (cluster auto scaling, docs/ecs-semantics.md §Managed scaling), with the clock injected.

    N = instances in the pool; M = instances needed for the provider's tasks (bin-packed, see instances_needed)
    CapacityProviderReservation = M / N * 100  (N = 0: 200 if M > 0, else 100)

The pool is driven toward ceil(M * 100 / targetCapacity) instances: scale-out in steps bounded by
minimumScalingStepSize/maximumScalingStepSize and paused while instances warm up
(instanceWarmupPeriod); scale-in only after the reservation stayed below target for 15 minutes, and
only of instances not needed. The pool's minSize/maxSize always hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ecs_operator.models.capacity_provider import ManagedScaling
from ecs_operator.nodepool.instance_types import InstanceType

SCALE_IN_AFTER_SECONDS = 900
"""ECS's scale-in alarm needs 15 consecutive one-minute datapoints below target."""


@dataclass(frozen=True)
class ScalingSettings:
    """managedScaling with ECS's defaults filled in, as DescribeCapacityProviders shows them
    (docs/ecs-semantics.md §Managed scaling): the one place those defaults live."""

    status: str
    targetCapacity: int
    minimumScalingStepSize: int
    maximumScalingStepSize: int
    instanceWarmupPeriod: int

    @classmethod
    def of(cls, ms: ManagedScaling | None) -> ScalingSettings:
        ms = ms or ManagedScaling()
        return cls(
            status=ms.status or "ENABLED",
            targetCapacity=ms.targetCapacity or 100,
            minimumScalingStepSize=ms.minimumScalingStepSize or 1,
            maximumScalingStepSize=ms.maximumScalingStepSize or 10000,
            instanceWarmupPeriod=300 if ms.instanceWarmupPeriod is None else ms.instanceWarmupPeriod,
        )

    @property
    def warmup(self) -> timedelta:
        return timedelta(seconds=self.instanceWarmupPeriod)

    def target_size(self, needed: int) -> int:
        """ceil(M * 100 / targetCapacity): the pool size target tracking drives toward."""
        return -(-needed * 100 // self.targetCapacity)


@dataclass(frozen=True)
class TaskRequest:
    """What one task reserves on an instance."""

    cpu: int = 0
    """CPU units (1024 = 1 vCPU)."""
    memory: int = 0
    """MiB."""
    gpu: int = 0
    name: str = ""
    """For reports (the task or pod name)."""


@dataclass(frozen=True)
class InstanceCapacity:
    """What one instance of the pool's type offers to tasks; each task also takes one pod slot."""

    cpu: int
    """CPU units."""
    memory: int
    """MiB."""
    gpu: int = 0
    pods: int = 110

    @classmethod
    def of(cls, instance_type: InstanceType) -> InstanceCapacity:
        return cls(
            cpu=instance_type.cpu * 1024,
            memory=instance_type.memory_mib,
            gpu=instance_type.gpus,
            pods=instance_type.max_pods,
        )

    def holds(self, task: TaskRequest) -> bool:
        """Whether the task fits an empty instance."""
        return self.pods >= 1 and task.cpu <= self.cpu and task.memory <= self.memory and task.gpu <= self.gpu


@dataclass(frozen=True)
class BinPacking:
    instances: int
    excluded: tuple[TaskRequest, ...]
    """Tasks no single instance can hold: ECS leaves them PROVISIONING and never scales for them."""


def bin_pack(tasks: Sequence[TaskRequest], capacity: InstanceCapacity) -> BinPacking:
    """How many instances hold `tasks`: first-fit decreasing by each task's largest share of an instance."""
    fitting = [t for t in tasks if capacity.holds(t)]
    excluded = tuple(t for t in tasks if not capacity.holds(t))

    free: list[list[int]] = []  # per instance: cpu, memory, gpu, pods left
    for task in sorted(fitting, key=lambda t: _share(t, capacity), reverse=True):
        need = (task.cpu, task.memory, task.gpu, 1)
        room = next((f for f in free if all(n <= r for n, r in zip(need, f, strict=True))), None)
        if room is None:
            room = [capacity.cpu, capacity.memory, capacity.gpu, capacity.pods]
            free.append(room)
        for k, n in enumerate(need):
            room[k] -= n
    return BinPacking(len(free), excluded)


def _share(task: TaskRequest, capacity: InstanceCapacity) -> float:
    """The task's largest share of an empty instance (the bin-packing order)."""
    pairs = ((task.cpu, capacity.cpu), (task.memory, capacity.memory), (task.gpu, capacity.gpu), (1, capacity.pods))
    return max(need / have for need, have in pairs if have)


@dataclass(frozen=True)
class InstanceRoom:
    """An instance of the pool as the estimate sees it."""

    free: InstanceCapacity
    """What the tasks already on it leave."""
    busy: bool
    """It runs non-daemon tasks."""
    settled: bool = True
    """Ready long enough for the scheduler to have tried the waiting tasks on it, so a task the scheduler
    refused does not fit it. Instances still warming up or not yet joined are not settled."""


@dataclass(frozen=True)
class WaitingTask:
    """A task not yet on an instance."""

    request: TaskRequest
    refused: bool
    """The scheduler found no instance for it (the task shows PROVISIONING)."""


def instances_needed(
    tasks: Sequence[TaskRequest], waiting: Sequence[WaitingTask], instances: Sequence[InstanceRoom], capacity: InstanceCapacity
) -> BinPacking:
    """M: the instances the provider's `tasks` (running and waiting) need, bin-packed onto the instance type
    as ECS estimates it. Bin-packing alone may say "enough" while a waiting task fits no actual instance
    (free room fragmented, or refused by the scheduler's constraints): then, as ECS's N + estimate for
    PROVISIONING tasks, M is at least the instances in use plus new ones for the tasks that fit nowhere.
    Instances warming up absorb the tasks waiting for them, so they never count twice."""
    packed = bin_pack(tasks, capacity)
    leftover, in_use = _place(waiting, instances, capacity)
    if not leftover:
        return packed
    return BinPacking(max(packed.instances, in_use + bin_pack(leftover, capacity).instances), packed.excluded)


def _place(waiting: Sequence[WaitingTask], instances: Sequence[InstanceRoom],
           capacity: InstanceCapacity) -> tuple[list[TaskRequest], int]:
    """First-fit decreasing of the waiting tasks into the instances' free room: (tasks that fit none,
    instances in use afterwards). A refused task is only tried on instances the scheduler has not seen."""
    rooms = [[i.free.cpu, i.free.memory, i.free.gpu, i.free.pods] for i in instances]
    busy = [i.busy for i in instances]
    leftover: list[TaskRequest] = []
    for task in sorted((w for w in waiting if capacity.holds(w.request)), key=lambda w: _share(w.request, capacity),
                       reverse=True):
        need = (task.request.cpu, task.request.memory, task.request.gpu, 1)
        k = next((k for k, i in enumerate(instances) if not (task.refused and i.settled)
                  and all(n <= r for n, r in zip(need, rooms[k], strict=True))), None)
        if k is None:
            leftover.append(task.request)
            continue
        rooms[k] = [r - n for r, n in zip(rooms[k], need, strict=True)]
        busy[k] = True
    return leftover, sum(busy)


def capacity_provider_reservation(M: int, N: int) -> float:
    """The CapacityProviderReservation metric, in percent."""
    if N == 0:
        return 200.0 if M > 0 else 100.0
    return M * 100 / N


Action = Literal["scale-out", "scale-in", "none"]


@dataclass(frozen=True)
class ScalingDecision:
    action: Action
    desired_size: int
    reason: str
    reservation: float
    """CapacityProviderReservation (percent) the decision was made on."""


def decide(
    *,
    current_size: int,
    needed: int,
    managed_scaling: ManagedScaling | None,
    min_size: int,
    max_size: int,
    now: datetime,
    launch_times: Sequence[datetime] = (),
    below_target_since: datetime | None = None,
    scale_in_after: float = SCALE_IN_AFTER_SECONDS,
) -> ScalingDecision:
    """The pool's desired size from N = `current_size` and M = `needed` (see instances_needed).

    `launch_times`: when the pool's instances were launched (those younger than instanceWarmupPeriod
    hold off further scale-out). `below_target_since`: when the reservation last went below
    targetCapacity (None if it is not below); scale-in waits `scale_in_after` seconds from then.
    """
    ms = ScalingSettings.of(managed_scaling)
    target, min_step, max_step, warmup = ms.targetCapacity, ms.minimumScalingStepSize, ms.maximumScalingStepSize, ms.warmup
    N, M = current_size, needed
    reservation = capacity_provider_reservation(M, N)
    metric = f"CapacityProviderReservation {_percent(reservation)}% (M={M}, N={N})"

    def decision(action: Action, size: int, reason: str) -> ScalingDecision:
        return ScalingDecision(action, size, reason, reservation)

    if ms.status == "DISABLED":
        return decision("none", N, "managedScaling is DISABLED")
    if not min_size <= N <= max_size:
        size = min(max(N, min_size), max_size)
        action: Action = "scale-out" if size > N else "scale-in"
        return decision(action, size, f"the pool has {N} instances, outside minSize..maxSize {min_size}..{max_size}")

    goal = ms.target_size(M)
    if goal > N:
        above = f"{metric} is above targetCapacity {target}%"
        if max_size <= N:
            return decision("none", N, f"{above}, but the pool is at maxSize {max_size}")
        warming = [t for t in launch_times if now - t < warmup]
        if warming:
            return decision(
                "none",
                N,
                f"{above}; waiting for {len(warming)} instance(s) to pass instanceWarmupPeriod "
                f"{int(warmup.total_seconds())} s",
            )
        estimate = goal - N
        step = min_step if estimate < min_step else min(max_step, estimate)
        size = min(N + step, max_size)
        return decision("scale-out", size, f"{above}: {N} -> {size} instances ({goal} wanted, step {step})")
    if goal < N:
        below = f"{metric} is below targetCapacity {target}%"
        floor = max(goal, min_size)
        if floor >= N:
            return decision("none", N, f"{below}, but the pool is at minSize {min_size}")
        since = below_target_since or now
        waited = (now - since).total_seconds()
        if waited < scale_in_after:  # the reason names the moment, not the seconds: no status change each round
            return decision("none", N, f"{below} since {since:%Y-%m-%dT%H:%M:%SZ}; scale-in after {int(scale_in_after)} s")
        return decision("scale-in", floor, f"{below} for {int(waited)} s: {N} -> {floor} instances")
    return decision("none", N, f"{metric}: {N} instances are what targetCapacity {target}% asks for")


def _percent(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class PoolInstance:
    name: str
    non_daemon_tasks: int
    """Tasks on the instance other than DAEMON services' (an instance with none is "empty")."""


def choose_instances_to_remove(
    instances: Sequence[PoolInstance], count: int, termination_protection: bool
) -> tuple[str, ...]:
    """Which instances go on scale-in: empty ones first, then those with the fewest tasks, by name on ties.
    With managedTerminationProtection ENABLED only empty instances may go (so maybe fewer than `count`)."""
    candidates = [i for i in instances if not termination_protection or i.non_daemon_tasks == 0]
    ranked = sorted(candidates, key=lambda i: (i.non_daemon_tasks, i.name))
    return tuple(i.name for i in ranked[: max(0, count)])
