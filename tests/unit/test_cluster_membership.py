"""Clusters belong to a namespace and capacity providers to an administrator (docs/ecs-semantics.md): which
nodes a cluster's tasks select, which nodes count as its instances, who may use a provider."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_operator import labels as L
from ecs_operator.instances import SHARED, cluster_key, registration_labels
from ecs_operator.models import CapacityProviderSpec
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.settings import Settings
from ecs_operator.translate.launch import Target, scheduling_for
from ecs_operator.translate.provider_access import allows, launch_access_problems

SETTINGS = Settings()


def matches(terms: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """nodeSelectorTerms as the scheduler reads them (In and NotIn): any term whose expressions all hold."""
    def holds(e: dict[str, Any]) -> bool:
        return bool((labels.get(e["key"]) in e["values"]) == (e["operator"] == "In"))
    return any(all(holds(e) for e in term["matchExpressions"]) for term in terms)


def node_labels(**extra: str) -> dict[str, str]:
    return {L.CLUSTER: "default", **extra}


def selects(target: Target, namespace: str, labels: dict[str, str]) -> bool:
    """Whether a Pod of cluster `default` in `namespace` may run on a node with these labels."""
    scheduling = scheduling_for(target, "default", namespace, SETTINGS)
    selector_ok = scheduling.node_selector.items() <= labels.items()
    return selector_ok and (scheduling.node_terms is None or matches(scheduling.node_terms, labels))


@pytest.mark.parametrize("target", [Target("EC2"), Target("EC2", "pool"), Target("EXTERNAL")], ids=str)
def test_a_cluster_selects_its_own_namespace_s_instances_and_shared_ones(target: Target) -> None:
    extra = {L.CAPACITY_PROVIDER: "pool"} if target.capacity_provider else {L.EXTERNAL: "true"} if target.launch_type == "EXTERNAL" else {}
    own = node_labels(**{L.CLUSTER_NAMESPACE: "team-a"}, **extra)
    other = node_labels(**{L.CLUSTER_NAMESPACE: "team-b"}, **extra)
    shared = node_labels(**{L.SHARED_INSTANCE: "true"}, **extra)
    unassigned = node_labels(**extra)  # the cluster label alone: no namespace's cluster
    assert [selects(target, "team-a", n) for n in (own, other, shared, unassigned)] == [True, False, True, False]


def test_fargate_defaults_to_the_nodes_an_administrator_labelled() -> None:
    assert scheduling_for(Target("FARGATE"), "default", "team-a", SETTINGS).node_selector == {L.FARGATE: "true"}
    assert scheduling_for(Target("FARGATE", "FARGATE"), "default", "team-a", SETTINGS).node_selector == {L.FARGATE: "true"}
    anywhere = Settings(fargate_node_selector={})  # the administrator's explicit "any node"
    assert scheduling_for(Target("FARGATE"), "default", "team-a", anywhere).node_selector == {}


def test_a_node_is_an_instance_of_one_namespace_s_cluster_or_shared() -> None:
    assert cluster_key(node_labels(**{L.CLUSTER_NAMESPACE: "team-a"})) == ("team-a", "default")
    assert cluster_key(node_labels(**{L.CLUSTER_NAMESPACE: "team-a", L.SHARED_INSTANCE: "true"})) == (SHARED, "default")
    assert cluster_key(node_labels()) is None
    assert cluster_key({L.CLUSTER_NAMESPACE: "team-a"}) is None
    assert cluster_key(registration_labels("team-a", "web")) == ("team-a", "web")


def test_a_provider_allows_only_whom_it_lists() -> None:
    assert not allows(None, "team-a", "default") and not allows([], "team-a", "default")  # the default: nobody
    assert allows(["team-a"], "team-a", "anything")
    assert allows(["team-a/web"], "team-a", "web") and not allows(["team-a/web"], "team-a", "default")
    assert not allows(["team-a"], "team-ab", "default") and not allows(["team-a/web"], "team-b", "web")
    assert allows(["*"], "anyone", "default")


def strategy(*providers: str) -> list[CapacityProviderStrategyItem]:
    return [CapacityProviderStrategyItem(capacityProvider=p, weight=1) for p in providers]


def test_using_a_provider_that_does_not_allow_the_namespace_is_refused_at_the_field_that_names_it() -> None:
    access: dict[str, Any] = {"admin-pool": ["ops"], "shared-pool": ["*"]}
    (problem,) = launch_access_problems(None, strategy("shared-pool", "admin-pool"), None, access, "tenant", "default")
    assert problem.path == "capacityProviderStrategy[1].capacityProvider"
    assert problem.message.startswith("capacity provider admin-pool does not allow namespace tenant (cluster default): "
                                      "its spec.kubernetes.allowedNamespaces lists ops (the CapacityProvider's administrator may add 'tenant' or 'tenant/default')")
    (default,) = launch_access_problems(None, None, strategy("admin-pool"), access, "tenant", "default")
    assert default.path == "defaultCapacityProviderStrategy[0].capacityProvider"
    assert launch_access_problems("EC2", strategy("admin-pool"), None, access, "tenant", "default") == []  # no provider used
    assert launch_access_problems(None, strategy("FARGATE", "unknown"), None, access, "tenant", "default") == []
    assert launch_access_problems(None, strategy("admin-pool"), None, access, "ops", "default") == []


def test_allowed_namespaces_entries_are_validated() -> None:
    spec = {"kubernetes": {"allowedNamespaces": ["team-a", "team-b/web_1", "*"]}}
    assert CapacityProviderSpec.model_validate(spec).kubernetes.allowedNamespaces == ["team-a", "team-b/web_1", "*"]  # type: ignore[union-attr]
    for bad in ("Team-A", "team-a/", "a/b/c", "team a"):
        with pytest.raises(ValueError):
            CapacityProviderSpec.model_validate({"kubernetes": {"allowedNamespaces": [bad]}})
