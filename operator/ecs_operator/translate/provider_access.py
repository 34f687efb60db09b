"""Who may use a CapacityProvider: the namespaces (or namespace/cluster pairs) its administrator lists in
`spec.kubernetes.allowedNamespaces` (docs/ecs-semantics.md §Capacity providers belong to an administrator)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ecs_operator.models import Problem
from ecs_operator.models.common import CapacityProviderStrategyItem

from .launch import FARGATE_PROVIDERS

EVERY_NAMESPACE = "*"
FIELD = "spec.kubernetes.allowedNamespaces"


def allows(allowed: Sequence[str] | None, namespace: str, cluster: str) -> bool:
    """Whether cluster `cluster` of `namespace` may use a provider with this list (absent: nobody)."""
    return any(entry in (EVERY_NAMESPACE, namespace, f"{namespace}/{cluster}") for entry in allowed or ())


def visible_to(allowed: Sequence[str] | None, namespace: str) -> bool:
    """Whether `namespace` may see a provider with this list at all: it allows the namespace, one of its
    clusters, or every namespace (the API shows a tenant only those)."""
    return any(entry in (EVERY_NAMESPACE, namespace) or entry.startswith(f"{namespace}/") for entry in allowed or ())


def refusal(provider: str, allowed: Sequence[str] | None, namespace: str, cluster: str) -> str:
    """Why cluster `cluster` of `namespace` may not use `provider`, and what an administrator would change."""
    listed = ", ".join(allowed or ()) or "nobody"
    return (f"capacity provider {provider} does not allow namespace {namespace} (cluster {cluster}): its {FIELD} "
            f"lists {listed} (the CapacityProvider's administrator may add {namespace!r} or {namespace + '/' + cluster!r})")


def access_problems(providers: Sequence[str], path: str, access: Mapping[str, Sequence[str] | None],
                    namespace: str, cluster: str) -> list[Problem]:
    """A Problem at `path.format(i)` for each listed provider that exists and does not allow the cluster.
    FARGATE and FARGATE_SPOT are built in: every namespace may use them. A provider that does not exist
    yet is not refused here: when it appears, its pool ignores whoever it does not allow."""
    return [Problem(path.format(i), refusal(p, access[p], namespace, cluster))
            for i, p in enumerate(providers)
            if p not in FARGATE_PROVIDERS and p in access and not allows(access[p], namespace, cluster)]


def strategy_access_problems(items: Sequence[CapacityProviderStrategyItem] | None, path: str,
                             access: Mapping[str, Sequence[str] | None], namespace: str, cluster: str) -> list[Problem]:
    """access_problems for a capacity provider strategy, at `<path>[i].capacityProvider`."""
    return access_problems([i.capacityProvider for i in items or ()], path + "[{}].capacityProvider", access, namespace, cluster)


def launch_access_problems(launch_type: str | None, strategy: Sequence[CapacityProviderStrategyItem] | None,
                           cluster_default: Sequence[CapacityProviderStrategyItem] | None,
                           access: Mapping[str, Sequence[str] | None], namespace: str, cluster: str) -> list[Problem]:
    """The providers a RunTask or CreateService would use (as launch_choice picks them), each checked, at the
    field that names it: the request's strategy, else the cluster's default strategy."""
    if launch_type:
        return []
    if strategy:
        return strategy_access_problems(strategy, "capacityProviderStrategy", access, namespace, cluster)
    return strategy_access_problems(cluster_default, "defaultCapacityProviderStrategy", access, namespace, cluster)
