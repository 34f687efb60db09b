"""CreateService, UpdateService, DescribeServices, ListServices, DeleteService over Service resources.

The Service resource's spec is CreateService; UpdateService changes it (forceNewDeployment is the
`ecs.operator.dev/force-new-deployment` annotation), and the operator's status carries ECS's
deployments, events and counts, which describe-services answers.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn, parse_ref, parse_task_definition_ref, service_arn, task_definition_arn
from ecs_operator.lifecycle.pods import parse_time
from ecs_operator.models import ServiceSpec

from .account import Account, ecs_name, in_order, kube_name, paginate, resource, wait_for
from .clusters import cluster_name, find_cluster
from .errors import invalid_parameter, service_not_active, service_not_found
from .operations import operation
from .rules import problems
from .task_definitions import find_revision

OBSERVED_SECONDS = 15.0
"""How long CreateService and UpdateService wait for the operator to act on the change, so that the
answer (and a services_stable waiter right after it) shows the new deployment as ECS's would."""
UPDATE_FIELDS = ("cluster", "service", "forceNewDeployment")
"""UpdateService members that are not fields of the service's spec."""


def _cluster_of(obj: dict[str, Any]) -> str:
    return cluster_name(obj["spec"].get("cluster"))


def _service_name(ref: str) -> tuple[str | None, str]:
    try:
        parts = parse_ref(ref, "service")
    except ValueError as e:
        raise invalid_parameter(str(e)) from None
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


async def services_of(account: Account, cluster: str) -> list[dict[str, Any]]:
    return of_cluster(await account.items("Service.ecs"), cluster)


def of_cluster(services: list[dict[str, Any]], cluster: str) -> list[dict[str, Any]]:
    """The cluster's services, live ones first: a name can be both a draining service's and its
    re-created successor's, and the successor is the one a name means."""
    found = [s for s in services if _cluster_of(s) == cluster]
    return sorted(found, key=lambda s: bool(s["metadata"].get("deletionTimestamp")))


async def find_service(account: Account, cluster_ref: str | None, ref: str) -> dict[str, Any]:
    """The live Service resource; a deleted one still remembered as INACTIVE is ServiceNotActiveException."""
    cluster = await find_cluster(account, cluster_ref)
    named_cluster, name = _service_name(ref)
    found = next((s for s in await services_of(account, named_cluster or ecs_name(cluster)) if ecs_name(s) == name), None)
    if found is None:
        raise service_not_active() if name in inactive_services(account, cluster) else service_not_found()
    return found


def inactive_services(account: Account, cluster: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cluster's deleted services the operator remembers (its status's `inactiveServices`, within
    the stopped-task TTL), as Service resources that describe_service shows INACTIVE."""
    oldest = datetime.now(UTC) - timedelta(seconds=account.settings.stopped_task_ttl_seconds)
    out = {}
    for name, record in ((cluster.get("status") or {}).get("inactiveServices") or {}).items():
        deleted = parse_time(record.get("deletedAt"))
        if record and deleted is not None and deleted >= oldest:
            out[name] = {"kind": "Service", "spec": {**record.get("spec", {}), "serviceName": name},
                         "metadata": {"name": name, "creationTimestamp": record.get("createdAt"),
                                      "deletionTimestamp": record["deletedAt"]},
                         "status": {"status": "INACTIVE", "taskDefinition": record.get("taskDefinition"),
                                    "events": record.get("events") or [], "deployments": []}}
    return out


def _revision_arn(account: Account, ref: str | None) -> str | None:
    try:
        family, number = parse_task_definition_ref(ref or "")
    except ValueError:  # a spec written with kubectl that the operator refused: shown as written
        return ref
    return task_definition_arn(account.settings, family, number) if ref and number is not None else ref


def describe_service(account: Account, obj: dict[str, Any], include: list[str] | None = None) -> dict[str, Any]:
    """describe-services' Service: the spec (the request as made) under the operator's status."""
    spec, status = obj["spec"], obj.get("status") or {}
    name, cluster = ecs_name(obj), _cluster_of(obj)
    deleting = bool(obj["metadata"].get("deletionTimestamp"))
    out = {
        **spec, **status,
        "serviceName": name,
        "serviceArn": service_arn(account.settings, cluster, name),
        "clusterArn": cluster_arn(account.settings, cluster),
        "status": "DRAINING" if deleting and status.get("status") != "INACTIVE" else status.get("status") or "ACTIVE",
        "desiredCount": 0 if deleting else spec.get("desiredCount") or 0,
        "runningCount": status.get("runningCount", 0),
        "pendingCount": status.get("pendingCount", 0),
        "taskDefinition": _revision_arn(account, status.get("taskDefinition") or spec.get("taskDefinition")),
        "deployments": [{**d, "taskDefinition": _revision_arn(account, d.get("taskDefinition"))}
                        for d in status.get("deployments") or []],
        "createdAt": obj["metadata"].get("creationTimestamp"),
        "schedulingStrategy": spec.get("schedulingStrategy") or "REPLICA",
        "launchType": spec.get("launchType") or (None if spec.get("capacityProviderStrategy") else "EC2"),
        "deploymentController": spec.get("deploymentController") or {"type": "ECS"},
        "createdBy": "ecs-operator",
    }
    out.pop("placedTasks", None)  # the operator's bookkeeping (lifecycle/service_reconcile.py PLACED_TASKS)
    if "TAGS" not in (include or []):
        out.pop("tags", None)
    return out


async def _observed(account: Account, name: str, generation: int, trigger: str | None) -> dict[str, Any] | None:
    """The Service once the operator has acted on `generation` (and on a new force-new-deployment trigger)."""
    found = await account.get("Service.ecs", name)
    status = (found or {}).get("status") or {}
    done = status.get("observedGeneration", 0) >= generation and status.get("deploymentTrigger") != trigger
    return found if done else None


@operation("CreateService")
async def create_service(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    name = request["serviceName"]
    spec = {**request, "cluster": cluster}
    existing = next((s for s in await services_of(account, cluster)
                     if ecs_name(s) == name and (s.get("status") or {}).get("status") != "INACTIVE"), None)
    if existing is not None:  # a retried call (same parameters, clientToken included) answers the service it made
        if existing["spec"] != spec:
            raise invalid_parameter("Creation of service was not idempotent.")
        return {"service": describe_service(account, existing, ["TAGS"])}
    if request.get("taskDefinition"):
        await find_revision(account, request["taskDefinition"])
    if refused := problems(ServiceSpec, spec):
        raise invalid_parameter(refused)
    resource_name = kube_name(name)
    if await account.get("Service.ecs", resource_name) is not None:  # that name serves another cluster's service
        resource_name = f"{resource_name[:50]}-{hashlib.sha256(f'{cluster}/{name}'.encode()).hexdigest()[:10]}"
    created = await account.create(resource("Service", resource_name, spec))
    seen = await wait_for(lambda: _observed(account, resource_name, created["metadata"]["generation"], None), OBSERVED_SECONDS)
    return {"service": describe_service(account, seen or created, ["TAGS"])}


@operation("UpdateService")
async def update_service(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    obj = await find_service(account, request.get("cluster"), request["service"])
    if obj["metadata"].get("deletionTimestamp") or (obj.get("status") or {}).get("status") == "INACTIVE":
        raise service_not_active()
    if request.get("taskDefinition"):
        await find_revision(account, request["taskDefinition"])
    changes = {k: v for k, v in request.items() if k not in UPDATE_FIELDS}
    force = uuid.uuid4().hex if request.get("forceNewDeployment") else None
    trigger = (obj.get("status") or {}).get("deploymentTrigger") if force else None

    def updated(current: dict[str, Any]) -> dict[str, Any]:
        spec = {**current["spec"], **changes}
        if refused := problems(ServiceSpec, spec):
            raise invalid_parameter(refused)
        annotations = {**(current["metadata"].get("annotations") or {}), **({L.FORCE_NEW_DEPLOYMENT: force} if force else {})}
        return {**current, "metadata": {**current["metadata"], "annotations": annotations}, "spec": spec}

    name = obj["metadata"]["name"]
    written = await account.update("Service.ecs", name, updated, service_not_found())
    # Not acted on in time (the operator is down or busy): the change is written and the answer shows
    # the service as it is; an error would make the client retry, and a retry force a second deployment.
    seen = await wait_for(lambda: _observed(account, name, written["metadata"]["generation"], trigger), OBSERVED_SECONDS)
    return {"service": describe_service(account, seen or written)}


@operation("DescribeServices")
async def describe_services(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    found, listed = await in_order(find_cluster(account, request.get("cluster")), account.items("Service.ecs"))
    cluster = ecs_name(found)
    by_name: dict[str, dict[str, Any]] = {}
    for service in [*of_cluster(listed, cluster), *inactive_services(account, found).values()]:
        by_name.setdefault(ecs_name(service), service)
    services, failures = [], []
    for ref in request["services"]:
        _, name = _service_name(ref)
        if name in by_name:
            services.append(describe_service(account, by_name[name], request.get("include")))
        else:
            failures.append({"arn": service_arn(account.settings, cluster, name), "reason": "MISSING"})
    return {"services": services, "failures": failures}


@operation("ListServices")
async def list_services(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    found, listed = await in_order(find_cluster(account, request.get("cluster")), account.items("Service.ecs"))
    cluster = ecs_name(found)
    described = [describe_service(account, s) for s in of_cluster(listed, cluster)]
    arns = sorted(d["serviceArn"] for d in described if d["status"] == "ACTIVE"
                  and request.get("launchType") in (None, d.get("launchType"))
                  and request.get("schedulingStrategy") in (None, d["schedulingStrategy"]))
    page, token = paginate(arns, request.get("maxResults"), request.get("nextToken"))
    return {"serviceArns": page, "nextToken": token}


@operation("DeleteService")
async def delete_service(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """The operator drains the service (DRAINING, desiredCount 0) and deletes it once its tasks are gone."""
    obj = await find_service(account, request.get("cluster"), request["service"])
    if ((obj["spec"].get("desiredCount") or 0) > 0 and not request.get("force")
            and obj["spec"].get("schedulingStrategy") != "DAEMON"):
        raise invalid_parameter("The service cannot be stopped while it is scaled above 0.")
    await account.delete("Service.ecs", obj["metadata"]["name"])
    return {"service": {**describe_service(account, obj), "status": "DRAINING", "desiredCount": 0}}
