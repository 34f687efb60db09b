"""placementStrategy and the distinctInstance constraint as Kubernetes scheduling terms.

distinctInstance is exact: required pod anti-affinity per node on the task group. Strategies are
approximated: ECS applies them in list order, each narrowing the candidates the previous one left,
then picks at random among the rest; Kubernetes' scheduler weighs all its scores together and is not
random. (Placement is an EC2/EXTERNAL matter: Fargate ignores it, and DAEMON services take none.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ecs_operator import labels
from ecs_operator.models.common import PlacementStrategy

from .podspec import HOSTNAME, Fidelity, PlacementFragment, is_label_key
from .scheduler_profiles import BINPACK_FIELDS, binpack_scheduler

DEFAULT_SERVICE_STRATEGY = (
    PlacementStrategy(type="spread", field="attribute:ecs.availability-zone"),
    PlacementStrategy(type="spread", field="instanceId"),
)
"""ECS's default for services: spread across zones, then across instances."""
DEFAULT_TASK_STRATEGY = (PlacementStrategy(type="random"),)
"""ECS's default for RunTask."""

_BEST_EFFORT = (
    "best effort like ECS, but weighed with the scheduler's other scores instead of narrowing the candidates "
    "in list order"
)


def distinct_instance(group: str) -> PlacementFragment:
    """distinctInstance: no two tasks of `group` (`service:web`, `family:nginx`) on one instance."""
    term = {"labelSelector": _group_selector(group), "topologyKey": HOSTNAME}
    pod_spec = {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}
    note = f"required pod anti-affinity on {group}'s tasks per node ({HOSTNAME})"
    return PlacementFragment(pod_spec, (Fidelity("distinctInstance", "exact", note),))


def placement_strategies(
    strategies: Sequence[PlacementStrategy] | None, group: str, *, service: bool, binpack_profiles: bool = False
) -> PlacementFragment:
    """The strategies of a service (`service=True`) or RunTask whose tasks form `group`; none given
    means ECS's default (DEFAULT_SERVICE_STRATEGY or DEFAULT_TASK_STRATEGY). `binpack_profiles`: the
    cluster's scheduler has the profiles of placement/scheduler_profiles.py."""
    suffix = "" if strategies else " (default)"
    spread: dict[str, dict[str, Any]] = {}  # one constraint per topology key: Kubernetes refuses duplicates
    preferred: list[dict[str, Any]] = []
    scheduler: str | None = None
    fidelity: list[Fidelity] = []
    for strategy in strategies or (DEFAULT_SERVICE_STRATEGY if service else DEFAULT_TASK_STRATEGY):
        item = f"{strategy.type}({strategy.field})" if strategy.field else str(strategy.type)
        if strategy.type == "random":
            note = "the default scheduler scores nodes (favouring the least allocated); it does not pick at random"
            fidelity.append(Fidelity(item + suffix, "approximated", note))
        elif strategy.type == "spread":
            key = _spread_key(strategy.field)
            if key is None:
                note = f"spread needs instanceId, host or attribute:<name> (a valid label key); got {strategy.field!r}"
                fidelity.append(Fidelity(item + suffix, "unsupported", note))
                continue
            if key in spread:
                note = f"repeats an earlier spread on {key}: nothing to add"
            else:
                spread[key] = _spread_constraint(key, group)
                note = f"topologySpreadConstraints on {key} (maxSkew 1, ScheduleAnyway): {_BEST_EFFORT}"
            fidelity.append(Fidelity(item + suffix, "approximated", note))
        elif strategy.type == "binpack" and binpack_profiles and strategy.field in BINPACK_FIELDS:
            if scheduler is None:
                scheduler = binpack_scheduler(strategy.field)
                note = (f"schedulerName {scheduler}: the node whose {strategy.field} is most allocated (requested / "
                        f"allocatable), which is ECS's least {strategy.field} left when the instances are of one size; "
                        "spread strategies decide before it wherever they are listed (ECS: in list order); ties are not "
                        "broken at random")
            else:
                note = f"a second binpack: the scheduler packs one resource, {scheduler} decides"
            fidelity.append(Fidelity(item + suffix, "approximated", note))
        elif strategy.type == "binpack":
            if not preferred:
                term = {"labelSelector": _group_selector(group), "topologyKey": HOSTNAME}
                preferred.append({"weight": 100, "podAffinityTerm": term})
            note = (
                f"preferred pod affinity to nodes already running {group}: packs the group's own tasks, while ECS "
                f"packs onto the instance with the least remaining {strategy.field} whatever runs there (the operator's "
                "--binpack-scheduler-profiles does that where the cluster's scheduler has its profiles)"
            )
            fidelity.append(Fidelity(item + suffix, "approximated", note))
        else:
            fidelity.append(
                Fidelity(item + suffix, "unsupported", "placementStrategy needs a type: random, spread or binpack")
            )

    pod_spec: dict[str, Any] = {}
    if spread:
        pod_spec["topologySpreadConstraints"] = list(spread.values())
    if preferred:
        pod_spec["affinity"] = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}
    if scheduler:
        pod_spec["schedulerName"] = scheduler
    return PlacementFragment(pod_spec, tuple(fidelity))


def _spread_key(field: str | None) -> str | None:
    """The node label a spread field buckets by: instanceId/host -> hostname, attribute:<name> -> its label."""
    if field in ("instanceId", "host"):
        return HOSTNAME
    if field and field.startswith("attribute:"):
        key = labels.attribute_label(field.removeprefix("attribute:"))
        return key if is_label_key(key) else None
    return None


def _spread_constraint(key: str, group: str) -> dict[str, Any]:
    """ECS spreads a service's tasks (or a task group's) evenly over the buckets: count the group's pods."""
    return {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": _group_selector(group),
    }


def _group_selector(group: str) -> dict[str, Any]:
    return {"matchLabels": {labels.GROUP: labels.group_label_value(group)}}
