"""Service tasks on DRAINING container instances, by ECS's rule (docs/ecs-semantics.md §Draining):
below minimumHealthyPercent 100 tasks stop first, as far as it allows (their replacements need no
room above desiredCount); at 100 replacements start first, within maximumPercent, and the tasks on
the draining instances stop once the replacements are healthy; when maximumPercent is 100 too
nothing can move and the instance stays DRAINING.

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
STOPPING_MESSAGE = (
    "(service {service}) is stopping {count} tasks on DRAINING container instance(s) {instances} first "
    "(minimumHealthyPercent {minimum}); their replacements start on other instances."
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
    """Stop the draining tasks first (the PodDisruptionBudget keeps minimumHealthyPercent)."""
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
    if not replaces_first(bounds):
        return DrainStep(replicas, evict=bounds.maxUnavailable > 0, stuck=bounds.maxUnavailable == 0)
    batch = min(draining, bounds.maxSurge)
    replaced = marked and healthy_elsewhere == elsewhere and elsewhere >= replicas + batch - draining
    return DrainStep(replicas) if replaced else DrainStep(replicas + batch, batch=batch)


def replaces_first(bounds: DeploymentBounds) -> bool:
    """Whether draining starts replacements before stopping tasks: only when minimumHealthyPercent
    allows no stop first and maximumPercent leaves room."""
    return bounds.maxUnavailable == 0 and bounds.maxSurge > 0
