"""Placement constraints and strategies of a task or service as Pod scheduling (see ecs_operator.placement)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ecs_operator.models import Problem
from ecs_operator.models.common import PlacementConstraint, PlacementStrategy
from ecs_operator.models.task_definition import TaskDefinitionPlacementConstraint
from ecs_operator.placement.affinity import member_of_affinity
from ecs_operator.placement.podspec import merge
from ecs_operator.placement.query import Instance, QuerySyntaxError, parse
from ecs_operator.placement.strategies import distinct_instance, placement_strategies

from .fidelity import FidelityReport
from .scheduling import NodeTerms


@dataclass
class Placement:
    pod_spec: dict[str, Any] = field(default_factory=dict)
    """affinity (pod affinity parts) and topologySpreadConstraints."""
    node_terms: NodeTerms | None = None
    """memberOf's required node terms, to AND with the launch type's."""
    unsatisfiable: bool = False
    """No container instance can take the task (ECS: "unable to place a task")."""
    problems: list[Problem] = field(default_factory=list)


def placement_for(
    *,
    task_definition_constraints: Sequence[TaskDefinitionPlacementConstraint],
    constraints: Sequence[PlacementConstraint],
    strategies: Sequence[PlacementStrategy] | None,
    group: str,
    service: bool,
    launch_type: str,
    instances: Sequence[Instance],
    report: FidelityReport,
    binpack_profiles: bool = False,
) -> Placement:
    """All memberOf expressions hold together (task definition's and the launch's), as in ECS."""
    if launch_type == "FARGATE":
        for i, _ in enumerate(constraints):
            report.unsupported(f"placementConstraints[{i}]", "Fargate places tasks itself: placement constraints do not apply")
        for i, _ in enumerate(strategies or []):
            report.unsupported(f"placementStrategy[{i}]", "Fargate places tasks itself: placement strategies do not apply")
        return Placement()
    placement = Placement()
    expressions = []
    sources: list[tuple[str, str | None]] = [(f"taskDefinition.placementConstraints[{i}]", c.expression) for i, c in enumerate(task_definition_constraints)]
    sources += [(f"placementConstraints[{i}]", c.expression) for i, c in enumerate(constraints) if c.type == "memberOf"]
    for path, expression in sources:
        try:
            expressions.append((path, parse(expression or "")))
        except QuerySyntaxError as e:
            placement.problems.append(Problem(f"{path}.expression", str(e)))
    if placement.problems:
        return placement

    fragments = []
    if expressions:
        affinity = member_of_affinity([e for _, e in expressions], instances, own_group=group)
        fragment = affinity.fragment()
        node = fragment.pod_spec.get("affinity", {}).pop("nodeAffinity", None)
        if node:
            placement.node_terms = node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        fragments.append(fragment)
        placement.unsatisfiable = affinity.unsatisfiable
        for path, _ in expressions:
            if not path.startswith("taskDefinition."):
                _record(report, f"{path}.expression", fragment.fidelity[0].verdict, "nodeAffinity / podAffinity", affinity.note)
    for i, c in enumerate(constraints):
        if c.type == "distinctInstance":
            fragment = distinct_instance(group)
            fragments.append(fragment)
            _record(report, f"placementConstraints[{i}].type", "exact", "podAntiAffinity", fragment.fidelity[0].note)
    strategy = placement_strategies(strategies, group, service=service, binpack_profiles=binpack_profiles)
    fragments.append(strategy)
    for i, f in enumerate(strategy.fidelity if strategies else ()):
        _record(report, f"placementStrategy[{i}].type", f.verdict, "topologySpreadConstraints / podAffinity", f.note)
    placement.pod_spec = merge(*fragments).pod_spec
    if not placement.pod_spec.get("affinity"):
        placement.pod_spec.pop("affinity", None)
    return placement


def _record(report: FidelityReport, path: str, verdict: str, target: str, note: str) -> None:
    if verdict == "exact":
        report.exact(path, target, note)
    elif verdict == "approximated":
        report.approximated(path, target, note)
    else:
        report.unsupported(path, note)
