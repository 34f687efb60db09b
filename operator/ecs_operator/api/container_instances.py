"""ListContainerInstances, DescribeContainerInstances, UpdateContainerInstancesState over the cluster-scoped
ContainerInstance resources (one per registered Node; the operator keeps their status).

A cluster's instances are those registered with it for the key's namespace, and the shared instances of
a cluster of that name (docs/ecs-semantics.md §Clusters belong to a namespace). Only the namespace's own
instances may be drained: a shared one serves every namespace's cluster (AccessDeniedException).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecs_operator.arns import parse_ref
from ecs_operator.lifecycle.pods import parse_time
from ecs_operator.placement.query import Instance, QuerySyntaxError, evaluate, parse

from .account import Account, ecs_name, paginate
from .clusters import find_cluster
from .errors import access_denied, invalid_parameter
from .operations import operation

SETTABLE = ("ACTIVE", "DRAINING")


def _id(ref: str) -> str:
    try:
        return parse_ref(ref, "container-instance")[-1]
    except ValueError as e:
        raise invalid_parameter(str(e)) from None


async def instances_of(account: Account, cluster: str) -> dict[str, dict[str, Any]]:
    """The cluster's container instances by ID (the node name), with the status the operator wrote."""
    found = await account.call(account.kube.list, "ContainerInstance", None)
    return {o["metadata"]["name"]: o for o in found
            if (o.get("status") or {}).get("clusterName") == cluster and (o.get("status") or {}).get("containerInstanceArn")
            and ((o.get("status") or {}).get("clusterNamespace") == account.namespace
                 or (o.get("status") or {}).get("sharedInstance"))}


def describe_instance(obj: dict[str, Any]) -> dict[str, Any]:
    """describe-container-instances' ContainerInstance: the operator's status; a DRAINING asked for shows at once."""
    status = obj.get("status") or {}
    return {**status, "status": (obj.get("spec") or {}).get("status") or status.get("status") or "ACTIVE"}


def _for_query(described: dict[str, Any]) -> Instance:
    """What a cluster query sees of an instance (its tasks' groups are not in the status: task:group matches none)."""
    return Instance(
        ec2InstanceId=described.get("ec2InstanceId") or "",
        attributes={a["name"]: a.get("value") or "" for a in described.get("attributes") or []},
        agentConnected=bool(described.get("agentConnected", True)),
        registeredAt=parse_time(described.get("registeredAt")) or datetime(1970, 1, 1, tzinfo=UTC),
        runningTasksCount=int(described.get("runningTasksCount") or 0),
    )


@operation("ListContainerInstances")
async def list_container_instances(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """By `status` (default: every state but INACTIVE) and `filter`, a cluster query as placement constraints use."""
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    try:
        query = parse(request["filter"]) if request.get("filter") else None
    except QuerySyntaxError as e:
        raise invalid_parameter(str(e)) from None
    arns = []
    for obj in (await instances_of(account, cluster)).values():
        described = describe_instance(obj)
        if (request.get("status") not in (None, described["status"])
                or described["status"] == "INACTIVE" and not request.get("status")):
            continue
        if query is None or evaluate(query, _for_query(described)):
            arns.append(described["containerInstanceArn"])
    page, token = paginate(sorted(arns), request.get("maxResults"), request.get("nextToken"))
    return {"containerInstanceArns": page, "nextToken": token}


@operation("DescribeContainerInstances")
async def describe_container_instances(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    found, failures = named_instances(await instances_of(account, cluster), request["containerInstances"])
    return {"containerInstances": [describe_instance(obj) for _, obj in found], "failures": failures}


def named_instances(instances: dict[str, dict[str, Any]],
                    refs: list[str]) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, str]]]:
    """The instances the references (ARNs or IDs) name, and a MISSING failure for each other one."""
    found = [(ref, instances[_id(ref)]) for ref in refs if _id(ref) in instances]
    return found, [{"arn": ref, "reason": "MISSING"} for ref in refs if _id(ref) not in instances]


@operation("UpdateContainerInstancesState")
async def update_container_instances_state(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """DRAINING or ACTIVE in each instance's spec (the operator cordons and drains the Node); nothing is
    changed when one of them may not be (a shared instance) or the state is another."""
    wanted = request["status"]
    if wanted not in SETTABLE:
        raise invalid_parameter(f"Container instances can only be set to {' or '.join(SETTABLE)}, not {wanted}.")
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    chosen, failures = named_instances(await instances_of(account, cluster), request["containerInstances"])
    for ref, obj in chosen:
        if (obj.get("status") or {}).get("clusterNamespace") != account.namespace:
            raise access_denied(f"Container instance {_id(ref)} is a shared instance of every namespace's cluster {cluster}: "
                                f"only an administrator may change its state.")
    updated = []
    for ref, obj in chosen:  # cluster-scoped: Account's namespace is ignored in the path
        written = await account.patch("ContainerInstance", obj["metadata"]["name"], {"spec": {"status": wanted}})
        if written is None:  # deleted meanwhile
            failures.append({"arn": ref, "reason": "MISSING"})
        else:
            updated.append(describe_instance(written))
    return {"containerInstances": updated, "failures": failures}
