"""Placement constraints and strategies of a task or service as Pod scheduling (see ecs_operator.placement)."""

from __future__ import annotations

from collections.abc import Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from ecs_operator.models import Problem
from ecs_operator.models.common import PlacementConstraint, PlacementStrategy
from ecs_operator.models.task_definition import TaskDefinitionPlacementConstraint
from ecs_operator.placement.affinity import MAX_MAINTAINED_LABELS, member_of_affinity
from ecs_operator.placement.podspec import merge
from ecs_operator.placement.query import Expr, Instance, QuerySyntaxError, parse
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
    maintained: dict[str, str] = field(default_factory=dict)
    """Pod annotations: each operator-maintained node label the Pods require -> the expression that sets it."""
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
    namespace: str = "",
    labels_in_use: AbstractSet[str] = frozenset(),
    binpack_profiles: bool = False,
) -> Placement:
    """All memberOf expressions hold together (task definition's and the launch's), as in ECS.

    `labels_in_use` are the operator-maintained memberOf labels the namespace's workloads use now: the
    expressions may add labels only up to MAX_MAINTAINED_LABELS (see there why)."""
    if launch_type == "FARGATE":
        for i, _ in enumerate(constraints):
            report.unsupported(f"placementConstraints[{i}]", "Fargate places tasks itself: placement constraints do not apply")
        for i, _ in enumerate(strategies or []):
            report.unsupported(f"placementStrategy[{i}]", "Fargate places tasks itself: placement strategies do not apply")
        return Placement()
    placement = Placement()
    expressions = []
    sources: list[tuple[str, str | None]] = [(f"taskDefinition.placementConstraints[{i}]", c.expression)
                                             for i, c in enumerate(task_definition_constraints)]
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
        affinity = member_of_affinity([e for _, e in expressions], instances, own_group=group, namespace=namespace)
        over = _over_budget(expressions, set(affinity.maintained), labels_in_use, namespace)
        if over is not None:
            placement.problems.append(over)
            return placement
        placement.maintained = {key: str(expr) for key, expr in affinity.maintained.items()}
        target = "nodeAffinity (a node label the operator maintains) / podAffinity" if affinity.maintained \
            else "nodeAffinity / podAffinity"
        fragment = affinity.fragment()
        node = fragment.pod_spec.get("affinity", {}).pop("nodeAffinity", None)
        if node:
            placement.node_terms = node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        fragments.append(fragment)
        placement.unsatisfiable = affinity.unsatisfiable
        for path, _ in expressions:
            if not path.startswith("taskDefinition."):
                _record(report, f"{path}.expression", fragment.fidelity[0].verdict, target, affinity.note)
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


def _over_budget(expressions: list[tuple[str, Expr]], needed: set[str], in_use: AbstractSet[str],
                 namespace: str) -> Problem | None:
    """A Problem naming the first expression whose operator-maintained labels take the namespace past
    MAX_MAINTAINED_LABELS (the combination, when no single expression does), or None."""
    total = set(in_use) | needed
    if len(total) <= MAX_MAINTAINED_LABELS:
        return None
    seen, culprit = set(in_use), expressions[-1][0]
    for path, expr in expressions:
        seen |= set(member_of_affinity(expr, namespace=namespace).maintained)
        if len(seen) > MAX_MAINTAINED_LABELS:
            culprit = path
            break
    return Problem(f"{culprit}.expression", (
        f"the operator evaluates this expression itself and keeps the result as a node label; namespace "
        f"{namespace or '(none)'} would need {len(total)} such labels, more than the {MAX_MAINTAINED_LABELS} it may use "
        "(distinct expressions with =~, agentVersion, registeredAt, runningTasksCount, agentConnected or a task:group "
        "under an `or`): reuse an expression another service or task of the namespace uses, or write it with "
        "==, in, exists and the comparisons Kubernetes evaluates itself"))


def _record(report: FidelityReport, path: str, verdict: str, target: str, note: str) -> None:
    if verdict == "exact":
        report.exact(path, target, note)
    elif verdict == "approximated":
        report.approximated(path, target, note)
    else:
        report.unsupported(path, note)
