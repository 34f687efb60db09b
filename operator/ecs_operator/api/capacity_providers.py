"""CreateCapacityProvider, DescribeCapacityProviders, UpdateCapacityProvider, DeleteCapacityProvider over
the cluster-scoped CapacityProvider resources, within the account boundary the operator enforces.

A key's namespace sees only the providers whose `spec.kubernetes.allowedNamespaces` lets it use them
(itself, one of its clusters, or `*`), plus ECS's built-in FARGATE and FARGATE_SPOT; any other is, to
it, a provider that does not exist. It may change or delete only its own providers (every entry its
namespace or one of its clusters): one shared with other namespaces belongs to an administrator
(AccessDeniedException). Creating, updating or deleting one at all needs a key marked
`"capacityProviders": true` (api/keys.py): a CapacityProvider is cluster-scoped, beyond what a namespace's
own rights reach, so a plain key that could write one would grant more than its holder has. A provider
it creates allows it alone; its node pool (`spec.kubernetes.nodePool`, not an ECS field) is for an
administrator to add.
"""

from __future__ import annotations

from typing import Any

from ecs_operator.arns import capacity_provider_arn, parse_ref
from ecs_operator.models import CapacityProviderSpec
from ecs_operator.translate.launch import FARGATE_PROVIDERS
from ecs_operator.translate.provider_access import visible_to

from .account import Account, kube_name, paginate, resource, wait_for
from .clusters import find_cluster
from .errors import ApiError, access_denied, client_error, invalid_parameter
from .operations import operation
from .rules import problems

STATUS_WAIT_SECONDS = 5.0
"""How long CreateCapacityProvider waits for the operator's first status (ECS answers ACTIVE at once)."""


def provider_name(obj: dict[str, Any]) -> str:
    return str((obj.get("spec") or {}).get("name") or obj["metadata"]["name"])


def _allowed(obj: dict[str, Any]) -> list[str]:
    return list(((obj.get("spec") or {}).get("kubernetes") or {}).get("allowedNamespaces") or [])


def _own(obj: dict[str, Any], namespace: str) -> bool:
    """Whether only `namespace` (or its clusters) may use the provider: then it may change it."""
    allowed = _allowed(obj)
    return bool(allowed) and all(entry == namespace or entry.startswith(f"{namespace}/") for entry in allowed)


def _ref(ref: str) -> str:
    try:
        return parse_ref(ref, "capacity-provider")[-1]
    except ValueError as e:
        raise invalid_parameter(str(e)) from None


async def _providers(account: Account) -> list[dict[str, Any]]:
    return await account.call(account.kube.list, "CapacityProvider", None)


async def visible(account: Account) -> dict[str, dict[str, Any]]:
    return {provider_name(p): p for p in await _providers(account) if visible_to(_allowed(p), account.namespace)}


def _may_write(account: Account, what: str) -> None:
    if not account.capacity_providers:
        raise access_denied(f"This access key may not {what} capacity providers: they are cluster-scoped resources; "
                            f"an administrator grants it per key (\"capacityProviders\": true in its entry of the keys Secret).")


async def own_provider(account: Account, ref: str, what: str) -> dict[str, Any]:
    """The named provider if this key may `what` it; else why not."""
    _may_write(account, what)
    name = _ref(ref)
    if name in FARGATE_PROVIDERS:
        raise invalid_parameter(f"The capacity provider {name} is reserved by ECS and cannot be changed.")
    found = (await visible(account)).get(name)
    if found is None:
        raise invalid_parameter(f"The specified capacity provider {name} does not exist.")
    if not _own(found, account.namespace):
        raise access_denied(f"The capacity provider {name} is shared by an administrator ({', '.join(_allowed(found))}): "
                            f"namespace {account.namespace} may use it but not change it.")
    return found


def describe_provider(account: Account, obj: dict[str, Any], include: list[str] | None = None) -> dict[str, Any]:
    """describe-capacity-providers' CapacityProvider: the spec, under the operator's status (which adds ECS's defaults)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    name = provider_name(obj)
    out = {**spec, **status, "name": name, "capacityProviderArn": capacity_provider_arn(account.settings, name),
           "status": status.get("status") or "ACTIVE", "type": status.get("type") or "EC2_AUTOSCALING"}
    asg = out.get("autoScalingGroupProvider") or {}
    if not asg.get("autoScalingGroupArn"):  # required in ECS's answer; a provider made with kubectl may have none
        settings = account.settings
        out["autoScalingGroupProvider"] = {
            **asg, "autoScalingGroupArn": f"arn:aws:autoscaling:{settings.region}:{settings.account_id}:"
                                          f"autoScalingGroup:ecs-operator:autoScalingGroupName/{name}"}
    if "TAGS" not in (include or []):
        out.pop("tags", None)
    return out


def _builtin(account: Account, name: str) -> dict[str, Any]:
    return {"name": name, "capacityProviderArn": capacity_provider_arn(account.settings, name), "status": "ACTIVE", "type": name}


@operation("CreateCapacityProvider")
async def create_capacity_provider(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    _may_write(account, "create")
    name = request["name"]
    if request.get("cluster"):
        await find_cluster(account, request["cluster"])
    spec = {**request, "kubernetes": {"allowedNamespaces": [account.namespace]}}
    if refused := problems(CapacityProviderSpec, spec):
        raise invalid_parameter(refused)
    taken = client_error(f"The specified capacity provider {name} already exists.")
    if any(provider_name(p) == name or p["metadata"]["name"] == kube_name(name) for p in await _providers(account)):
        raise taken
    try:
        created, _ = await account.call(account.kube.create, resource("CapacityProvider", kube_name(name), spec))
    except ApiError:  # created by a concurrent call meanwhile (anyone's: the resource is cluster-scoped)
        if await account.get("CapacityProvider", kube_name(name)) is not None:
            raise taken from None
        raise
    ready = await wait_for(lambda: account.with_status("CapacityProvider", created["metadata"]["name"]), STATUS_WAIT_SECONDS)
    return {"capacityProvider": describe_provider(account, ready or created, ["TAGS"])}


@operation("DescribeCapacityProviders")
async def describe_capacity_providers(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Named ones (unknown or not visible: MISSING failures), or all the namespace sees, FARGATE's first."""
    seen = await visible(account)
    include = request.get("include")
    if request.get("capacityProviders"):
        found, failures = [], []
        for ref in request["capacityProviders"]:
            name = _ref(ref)
            if name in FARGATE_PROVIDERS:
                found.append(_builtin(account, name))
            elif name in seen:
                found.append(describe_provider(account, seen[name], include))
            else:
                failures.append({"arn": capacity_provider_arn(account.settings, name), "reason": "MISSING"})
        return {"capacityProviders": found, "failures": failures}
    every = ([_builtin(account, n) for n in FARGATE_PROVIDERS]
             + [describe_provider(account, seen[n], include) for n in sorted(seen)])
    page, token = paginate(every, request.get("maxResults"), request.get("nextToken"), limit=10)
    return {"capacityProviders": page, "failures": [], "nextToken": token}


@operation("UpdateCapacityProvider")
async def update_capacity_provider(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """The autoScalingGroupProvider members given replace the spec's (managedScaling member by member)."""
    found = await own_provider(account, request["name"], "update")
    given = request.get("autoScalingGroupProvider") or {}

    def updated(current: dict[str, Any]) -> dict[str, Any]:
        asg = dict(current["spec"].get("autoScalingGroupProvider") or {})
        scaling = {**(asg.get("managedScaling") or {}), **(given.get("managedScaling") or {})}
        asg.update({**given, **({"managedScaling": scaling} if scaling else {})})
        spec = {**current["spec"], "autoScalingGroupProvider": asg,
                **({"managedInstancesProvider": request["managedInstancesProvider"]}
                   if "managedInstancesProvider" in request else {})}
        if refused := problems(CapacityProviderSpec, spec):
            raise invalid_parameter(refused)
        return {**current, "spec": spec}

    # the resource is cluster-scoped: Account's namespace is ignored in its path
    written = await account.update("CapacityProvider", found["metadata"]["name"], updated,
                                   invalid_parameter(f"The capacity provider {provider_name(found)} was deleted meanwhile."))
    return {"capacityProvider": {**describe_provider(account, written), "updateStatus": "UPDATE_IN_PROGRESS"}}


@operation("DeleteCapacityProvider")
async def delete_capacity_provider(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Refused while a cluster of the namespace lists it or a service's strategy names it, as ECS does
    (the operator would hold the deletion back meanwhile); else DELETE_IN_PROGRESS until its nodes are gone."""
    found = await own_provider(account, request["capacityProvider"], "delete")
    name = provider_name(found)
    users = [f"cluster {c['spec'].get('clusterName') or c['metadata']['name']}" for c in await account.items("Cluster")
             if name in (c["spec"].get("capacityProviders") or [])]
    users += [f"service {s['spec'].get('serviceName') or s['metadata']['name']}" for s in await account.items("Service.ecs")
              if name in {i.get("capacityProvider") for i in s["spec"].get("capacityProviderStrategy") or []}]
    if users:
        raise ApiError("ResourceInUseException",
                       f"The capacity provider {name} is in use by {', '.join(users)}: remove it from them first.")
    await account.delete("CapacityProvider", found["metadata"]["name"])
    return {"capacityProvider": {**describe_provider(account, found), "updateStatus": "DELETE_IN_PROGRESS"}}
