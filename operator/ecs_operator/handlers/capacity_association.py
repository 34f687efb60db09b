"""Cluster association of capacity providers (PutClusterCapacityProviders): the Cluster's
CapacityProviders condition says whether the providers in its spec are associated, and why not."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.instances import is_active
from ecs_operator.lifecycle.conditions import set_condition
from ecs_operator.runtime.context import Context
from ecs_operator.translate.provider_access import access_problems

from .common import kopf_callback, now
from .lookups import access_of
from .notices import notify
from .resources import CLUSTERS, SERVICES

ASSOCIATION = "CapacityProviders"
"""Cluster condition: the capacity providers in spec are associated (PutClusterCapacityProviders)."""
IN_USE = "The specified capacity provider is in use and cannot be removed."


@kopf.index(*SERVICES)
@kopf_callback
async def cluster_strategies(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, cluster) -> each service with the providers its strategy names."""
    providers = [i["capacityProvider"] for i in spec.get("capacityProviderStrategy") or []]
    return {(namespace, spec.get("cluster") or "default"): {"service": name, "providers": providers}} if providers else {}


@kopf.timer(*CLUSTERS, id="capacity_provider_association", interval=5)
@kopf_callback
def cluster_association(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Context,
                        cluster_strategies: kopf.Index, cluster_pods: kopf.Index, provider_access: kopf.Index, **_: Any) -> None:
    """A provider that does not allow the cluster's namespace is refused: it never scales for the cluster
    (docs/ecs-semantics.md §Capacity providers belong to an administrator). ECS refuses to remove a provider
    from a cluster while a service strategy or a task uses it: the provider stays associated. The
    CapacityProviders condition says which and why."""
    cluster = spec.get("clusterName") or name
    listed = list(spec.get("capacityProviders") or [])
    access = access_of(provider_access)
    denied = access_problems(listed, "capacityProviders[{}]", access, namespace, cluster) + access_problems(
        [i.get("capacityProvider", "") for i in spec.get("defaultCapacityProviderStrategy") or []],
        "defaultCapacityProviderStrategy[{}].capacityProvider", access, namespace, cluster)
    users = _users_in_cluster(list(cluster_strategies.get((namespace, cluster), [])),
                              list(cluster_pods.get((namespace, L.group_label_value(cluster)), [])))
    refused = {p: u for p, u in users.items() if p not in listed}
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == ASSOCIATION), None)
    if denied:
        wanted = ("False", "AccessDeniedException", "; ".join(str(p) for p in denied))
    elif refused:
        detail = "; ".join(f"{p} is used by {', '.join(u)}" for p, u in sorted(refused.items()))
        wanted = ("False", "ResourceInUseException", f"{IN_USE} {detail}")
    elif listed or previous:
        wanted = ("True", "Associated", f"capacity providers associated: {', '.join(listed) or 'none'}")
    else:
        return
    if previous and (previous["status"], previous["reason"], previous["message"]) == wanted:
        return
    if wanted[0] == "False":
        notify(memo, body, "Warning", wanted[1], wanted[2])
    conditions = set_condition(status.get("conditions"), ASSOCIATION, wanted[0] == "True", wanted[1], wanted[2],
                               body.metadata.get("generation"), now())
    memo.kube.patch_status("Cluster", namespace, name, {"conditions": conditions})


def _users_in_cluster(services: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, list[str]]:
    """provider -> what uses it in the cluster: services by strategy, tasks placed by it."""
    users: dict[str, list[str]] = {}
    for s in services:
        for p in s["providers"]:
            users.setdefault(p, []).append(f"service {s['service']}")
    counts: dict[str, int] = {}
    for pod in pods:
        provider = (pod["metadata"].get("labels") or {}).get(L.CAPACITY_PROVIDER)
        if provider and is_active(pod):
            counts[provider] = counts.get(provider, 0) + 1
    for provider, count in counts.items():
        users.setdefault(provider, []).append(f"{count} task(s)")
    return users
