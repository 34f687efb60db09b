"""Service tasks on DRAINING container instances, by ECS's rule (docs/ecs-semantics.md §Draining):
replacements start first, within maximumPercent, and the tasks on the draining instances stop once
the replacements are healthy; when maximumPercent leaves no room, tasks stop first, within
minimumHealthyPercent; when both are 100 nothing can move and the instance stays DRAINING.

Pure: one step for one workload from what exists now (level-triggered: the same state gives the
same step, so a restart in the middle neither loses nor repeats a replacement).
"""

from __future__ import annotations

from dataclasses import dataclass

from .rolling import DeploymentBounds

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
"""Pod annotation the ReplicaSet reads when it scales down: the lowest cost goes first."""
DRAINING_COST = "-2147483648"
"""The lowest cost there is: a task on a DRAINING instance is the one a scale-down stops."""

STUCK_MESSAGE = (
    "(service {service}) was unable to replace {count} tasks on DRAINING container instance(s) {instances}: "
    "deploymentConfiguration minimumHealthyPercent {minimum} and maximumPercent {maximum} allow neither starting a "
    "replacement first nor stopping a task first. Update the minimumHealthyPercent or maximumPercent value."
)
REPLACING_MESSAGE = (
    "(service {service}) is replacing {count} tasks on DRAINING container instance(s) {instances}: "
    "{batch} replacement(s) start first (maximumPercent {maximum}), then those tasks stop."
)


@dataclass(frozen=True)
class DrainStep:
    replicas: int
    """The workload's replicas now: its desired count, plus the replacements of this batch while they start."""
    batch: int = 0
    """Replacements starting before their tasks stop (0: none now)."""
    evict: bool = False
    """No room above desiredCount: stop the draining tasks first (the PodDisruptionBudget keeps minimumHealthyPercent)."""
    stuck: bool = False
    """minimumHealthyPercent and maximumPercent allow neither."""


def drain_step(bounds: DeploymentBounds, draining: int, elsewhere: int, healthy_elsewhere: int, marked: bool) -> DrainStep:
    """The step for a workload of `bounds.desiredCount` tasks, `draining` of them on DRAINING instances.

    `elsewhere`: its other tasks (starting or running), `healthy_elsewhere`: those counted healthy;
    `marked`: every draining task carries DRAINING_COST, so that scaling back to desiredCount stops
    exactly them (the ReplicaSet removes not-ready tasks before any cost is looked at: scale back
    only when every task elsewhere is healthy).
    """
    replicas = bounds.desiredCount
    if draining == 0 or replicas == 0:
        return DrainStep(replicas)
    if bounds.maxSurge == 0:
        return DrainStep(replicas, evict=bounds.maxUnavailable > 0, stuck=bounds.maxUnavailable == 0)
    batch = min(draining, bounds.maxSurge)
    replaced = marked and healthy_elsewhere == elsewhere and elsewhere >= replicas + batch - draining
    return DrainStep(replicas) if replaced else DrainStep(replicas + batch, batch=batch)
