"""CreateCluster, DescribeClusters, ListClusters, DeleteCluster, UpdateCluster, UpdateClusterSettings and
PutClusterCapacityProviders over Cluster resources (the spec is CreateCluster's request; updates change it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecs_operator.arns import cluster_arn, parse_ref
from ecs_operator.lifecycle.cluster_deletion import too_late
from ecs_operator.models import ClusterSpec
from ecs_operator.translate.launch import FARGATE_PROVIDERS
from ecs_operator.translate.provider_access import allows, visible_to

from .account import Account, ecs_name, kube_name, paginate, resource, wait_for
from .errors import ApiError, access_denied, cluster_not_found, invalid_parameter
from .operations import operation
from .rules import problems

DEFAULT = "default"
STATUS_WAIT_SECONDS = 5.0
"""How long CreateCluster waits for the operator's first status (ECS answers ACTIVE at once)."""


def cluster_name(ref: str | None) -> str:
    """The cluster a request names (short name or ARN); ECS's `default` when it names none."""
    try:
        return parse_ref(ref, "cluster")[0] if ref else DEFAULT
    except ValueError as e:
        raise invalid_parameter(str(e)) from None


async def find_cluster(account: Account, ref: str | None) -> dict[str, Any]:
    """The named Cluster resource, or ClusterNotFoundException."""
    found = await account.find("Cluster", cluster_name(ref))
    if found is None:
        raise cluster_not_found()
    return found


def describe_cluster(account: Account, obj: dict[str, Any], include: list[str] | None = None) -> dict[str, Any]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name = ecs_name(obj)
    # the status copies the spec's providers, strategy and settings once the operator sees a change: the spec is newer
    out = {**status, **spec, "clusterName": name, "clusterArn": cluster_arn(account.settings, name),
           "status": status.get("status") or "PROVISIONING"}
    if "TAGS" not in (include or []):
        out.pop("tags", None)
    return out


@operation("CreateCluster")
async def create_cluster(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    name = request.get("clusterName") or DEFAULT
    existing = await account.find("Cluster", name)
    if existing is not None:  # ECS: CreateCluster of an existing cluster answers it
        return {"cluster": describe_cluster(account, existing, ["TAGS"])}
    spec = {**request, "clusterName": name}
    if refused := problems(ClusterSpec, spec):
        raise invalid_parameter(refused)
    try:
        created = await account.create(resource("Cluster", kube_name(name), spec))
    except ApiError:  # created by a concurrent CreateCluster meanwhile: answered as it is, as ECS does
        existing = await account.find("Cluster", name)
        if existing is None:
            raise
        return {"cluster": describe_cluster(account, existing, ["TAGS"])}
    ready = await wait_for(lambda: account.with_status("Cluster", created["metadata"]["name"]), STATUS_WAIT_SECONDS)
    return {"cluster": describe_cluster(account, ready or created, ["TAGS"])}


@operation("DescribeClusters")
async def describe_clusters(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    by_name = {ecs_name(c): c for c in await account.items("Cluster")}
    clusters, failures = [], []
    for ref in request.get("clusters") or [DEFAULT]:
        name = cluster_name(ref)
        if name in by_name:
            clusters.append(describe_cluster(account, by_name[name], request.get("include")))
        else:
            failures.append({"arn": cluster_arn(account.settings, name), "reason": "MISSING"})
    return {"clusters": clusters, "failures": failures}


@operation("ListClusters")
async def list_clusters(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    arns = sorted(cluster_arn(account.settings, ecs_name(c)) for c in await account.items("Cluster"))
    page, token = paginate(arns, request.get("maxResults"), request.get("nextToken"))
    return {"clusterArns": page, "nextToken": token}


@operation("DeleteCluster")
async def delete_cluster(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Refused while services or active tasks remain, as ECS does (the operator would keep the Cluster
    ACTIVE behind its finalizer meanwhile; refusing up front leaves it untouched)."""
    cluster = await find_cluster(account, request["cluster"])
    name = ecs_name(cluster)
    deletion = cluster["metadata"].get("deletionTimestamp")
    services = [s for s in await account.items("Service.ecs") if (s["spec"].get("cluster") or DEFAULT) == name
                and (s.get("status") or {}).get("status") != "INACTIVE" and not s["metadata"].get("deletionTimestamp")
                and not too_late(s["metadata"].get("creationTimestamp"), bool((s.get("status") or {}).get("deployments")),
                                 deletion)]
    if services:
        raise ApiError("ClusterContainsServicesException",
                       "The Cluster cannot be deleted while Services are active: "
                       f"{', '.join(sorted(map(ecs_name, services))[:5])}.")
    tasks = [t for t in await account.items("Task") if (t["spec"].get("cluster") or DEFAULT) == name
             and (t.get("status") or {}).get("lastStatus") not in (None, "STOPPED")]
    if tasks:
        raise ApiError("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")
    await account.delete("Cluster", cluster["metadata"]["name"])
    return {"cluster": {**describe_cluster(account, cluster), "status": "INACTIVE"}}


async def _update_cluster(account: Account, ref: str, changes: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """Write `changes(spec)` into the cluster's spec, from its latest read (checked by the operator's rules first)."""
    cluster = await find_cluster(account, ref)

    def updated(current: dict[str, Any]) -> dict[str, Any]:
        spec = {**current["spec"], **changes(current["spec"])}
        if refused := problems(ClusterSpec, spec):
            raise invalid_parameter(refused)
        return {**current, "spec": spec}

    written = await account.update("Cluster", cluster["metadata"]["name"], updated, cluster_not_found())
    return {"cluster": describe_cluster(account, written)}


@operation("UpdateCluster")
async def update_cluster(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Only the members given change (settings, configuration, serviceConnectDefaults), as ECS's."""
    return await _update_cluster(account, request["cluster"], lambda _: {k: v for k, v in request.items() if k != "cluster"})


@operation("UpdateClusterSettings")
async def update_cluster_settings(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """A setting given replaces the one of its name; the others stay."""
    given = {s.get("name"): s for s in request["settings"]}
    return await _update_cluster(account, request["cluster"], lambda spec: {
        "settings": [s for s in spec.get("settings") or [] if s.get("name") not in given] + list(given.values())})


@operation("PutClusterCapacityProviders")
async def put_cluster_capacity_providers(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Replaces the cluster's providers and default strategy (empty lists remove them). A provider must be
    visible to the key's namespace (its allowedNamespaces lists it), and usable by this cluster; one that a
    service of the cluster still names in its strategy may not be removed (ResourceInUseException)."""
    cluster = await find_cluster(account, request["cluster"])
    name = ecs_name(cluster)
    access = {(p.get("spec") or {}).get("name") or p["metadata"]["name"]:
              ((p.get("spec") or {}).get("kubernetes") or {}).get("allowedNamespaces")
              for p in await account.call(account.kube.list, "CapacityProvider", None)}
    for provider in request["capacityProviders"]:
        if provider in FARGATE_PROVIDERS:
            continue
        allowed = access.get(provider)
        if provider not in access or not visible_to(allowed, account.namespace):
            raise invalid_parameter(f"The specified capacity provider {provider} does not exist.")
        if not allows(allowed, account.namespace, name):
            raise access_denied(f"The capacity provider {provider} does not allow cluster {name}.")
    removed = set(cluster["spec"].get("capacityProviders") or []) - set(request["capacityProviders"])
    for service in await account.items("Service.ecs"):
        used = {i.get("capacityProvider") for i in service["spec"].get("capacityProviderStrategy") or []}
        if (cluster_name(service["spec"].get("cluster")) == name and used & removed
                and not service["metadata"].get("deletionTimestamp")):
            raise ApiError("ResourceInUseException", f"The specified capacity provider {sorted(used & removed)[0]} is in use "
                           f"by service {ecs_name(service)} and cannot be removed.")
    return await _update_cluster(account, request["cluster"], lambda _: {
        "capacityProviders": request["capacityProviders"],
        "defaultCapacityProviderStrategy": request["defaultCapacityProviderStrategy"]})

