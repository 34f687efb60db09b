"""Launch types and capacity providers: which nodes a task may run on (ECS "where", not "how")."""

from __future__ import annotations

from dataclasses import dataclass

from ecs_operator import labels as L
from ecs_operator.models import Problem, RegisterTaskDefinition
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.models.rules import compatibilities, compatibility_findings
from ecs_operator.settings import Settings

from .scheduling import NodeTerms, and_terms

FARGATE_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


@dataclass(frozen=True)
class Target:
    """Where a group of tasks runs: a launch type, possibly through a capacity provider."""

    launch_type: str
    capacity_provider: str | None = None


def target_for_provider(name: str) -> Target:
    return Target("FARGATE", name) if name in FARGATE_PROVIDERS else Target("EC2", name)


def launch_choice(
    launch_type: str | None,
    strategy: list[CapacityProviderStrategyItem] | None,
    cluster_default: list[CapacityProviderStrategyItem] | None,
) -> Target | list[CapacityProviderStrategyItem]:
    """launchType, else the given strategy, else the cluster's default strategy, else EC2 (ECS's fallback)."""
    if launch_type:
        return Target(launch_type)
    if strategy:
        return list(strategy)
    if cluster_default:
        return list(cluster_default)
    return Target("EC2")


@dataclass(frozen=True)
class Scheduling:
    node_selector: dict[str, str]
    node_terms: NodeTerms | None
    labels: dict[str, str]


def cluster_terms(namespace: str) -> NodeTerms:
    """The cluster's own instances: labelled for its namespace, or shared by an administrator across
    namespaces (the cluster name itself is in the node selector): docs/ecs-semantics.md §Clusters belong to a namespace."""
    return [{"matchExpressions": [{"key": L.CLUSTER_NAMESPACE, "operator": "In", "values": [namespace]}]},
            {"matchExpressions": [{"key": L.SHARED_INSTANCE, "operator": "In", "values": ["true"]}]}]


def scheduling_for(target: Target, cluster: str, namespace: str, settings: Settings) -> Scheduling:
    labels = {L.LAUNCH_TYPE: target.launch_type, L.CLUSTER: L.group_label_value(cluster)}
    if target.capacity_provider:
        labels[L.CAPACITY_PROVIDER] = L.group_label_value(target.capacity_provider)
    if target.capacity_provider == "FARGATE":
        return Scheduling(dict(settings.fargate_node_selector), None, labels)
    if target.capacity_provider == "FARGATE_SPOT":
        return Scheduling(dict(settings.fargate_spot_node_selector), None, labels)
    member = {L.CLUSTER: L.group_label_value(cluster)}
    if target.capacity_provider:
        # the provider's nodes, once registered with this cluster: ECS places a task only on a registered
        # container instance, so a node the pool just added waits for its cluster labels
        # (docs/ecs-semantics.md §Registration before placement)
        return Scheduling({L.CAPACITY_PROVIDER: L.group_label_value(target.capacity_provider), **member},
                          cluster_terms(namespace), labels)
    if target.launch_type == "FARGATE":
        return Scheduling(dict(settings.fargate_node_selector), None, labels)
    if target.launch_type == "EXTERNAL":
        return Scheduling({**member, L.EXTERNAL: "true"}, cluster_terms(namespace), labels)
    not_external: NodeTerms = [{"matchExpressions": [{"key": L.EXTERNAL, "operator": "NotIn", "values": ["true"]}]}]
    return Scheduling(member, and_terms(cluster_terms(namespace), not_external), labels)


def compatibility_problems(td: RegisterTaskDefinition, target: Target, task_definition: str) -> list[Problem]:
    """Why this revision cannot be launched on `target` (ECS checks again at launch), at `taskDefinition.<field>`.

    FARGATE needs the definition registered for it (docs/ecs-semantics.md §Compatibilities)."""
    if target.launch_type == "FARGATE" and "FARGATE" not in compatibilities(td):
        return [Problem("taskDefinition.requiresCompatibilities",
                        f"Task definition does not support launch_type FARGATE. ({task_definition} does not list "
                        "FARGATE in requiresCompatibilities)")]
    return [
        Problem(f"taskDefinition.{path}",
                f"task definition {task_definition} is not compatible with launch type {target.launch_type}: {message}")
        for path, message in compatibility_findings(td, target.launch_type)
    ]

