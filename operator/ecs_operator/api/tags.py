"""TagResource, UntagResource, ListTagsForResource: the `tags` of the resource's spec, found by its ARN.

Clusters, services, RunTask's tasks and the key's own capacity providers take tags. A task definition's
tags are part of what its revision records (a change would register a new revision), so they are only
listed; a service's task is a Pod of the service, whose tags are the service's to propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecs_operator.models import CapacityProviderSpec, ClusterSpec, ServiceSpec, TaskSpec
from ecs_operator.models.base import EcsModel

from . import capacity_providers
from .account import Account
from .clusters import cluster_name
from .errors import ApiError, invalid_parameter, unsupported
from .operations import operation
from .rules import problems
from .services import find_service
from .tasks import cluster_tasks, with_definition_tags

MODELS: dict[str, type[EcsModel]] = {"Cluster": ClusterSpec, "Service.ecs": ServiceSpec, "Task": TaskSpec,
                                     "CapacityProvider": CapacityProviderSpec}


def not_found(arn: str) -> ApiError:
    return ApiError("ResourceNotFoundException", f"The specified resource could not be found: {arn}.")


async def _resource(account: Account, arn: str, changing: bool) -> tuple[str, dict[str, Any]]:
    """(kind, resource) that `arn` names; `changing`: the caller would write its tags."""
    fields = arn.split(":", 5)  # arn:aws:ecs:REGION:ACCOUNT:KIND/PATH (a task definition's path holds a ':')
    kind, _, path = fields[-1].partition("/")
    if len(fields) != 6 or fields[0] != "arn" or fields[2] != "ecs" or not path:
        raise invalid_parameter(f"Invalid resource ARN: {arn}.")
    parts = path.split("/")
    try:
        if kind == "cluster" and len(parts) == 1:
            found = await account.find("Cluster", parts[0])
            if found is None:
                raise not_found(arn)
            return "Cluster", found
        if kind == "service" and len(parts) == 2:
            return "Service.ecs", await find_service(account, parts[0], parts[1])
        if kind == "task" and len(parts) == 2:
            task = next((f for f in await cluster_tasks(account, cluster_name(parts[0])) if f.id == parts[1]), None)
            if task is None:
                raise not_found(arn)
            if not changing:  # its tags as describe-tasks reports them: propagated and managed ones too
                return "Task", {"spec": {"tags": (await with_definition_tags(account, task)).get("tags") or []}}
            if task.service is not None:
                raise unsupported(f"Task {parts[1]} is a task of service {task.service}: tag the service (propagateTags).")
            if changing and len((task.owner.get("status") or {}).get("tasks") or []) > 1:  # made by kubectl with count
                raise unsupported(f"Task {parts[1]} shares its Task resource {task.owner['metadata']['name']} with others: "
                                  "tagging it would tag them all; set spec.tags on that resource instead.")
            return "Task", task.owner
        if kind == "task-definition" and len(parts) == 1:
            family = parts[0].split(":")[0]
            found = await account.find("TaskDefinition", family)
            if found is None:
                raise not_found(arn)
            if changing:
                raise unsupported("A task definition's tags are part of its revision: register a revision with the new tags.")
            return "TaskDefinition", found
        if kind == "capacity-provider" and len(parts) == 1:
            if changing:
                return "CapacityProvider", await capacity_providers.own_provider(account, parts[0], "tag")
            found = (await capacity_providers.visible(account)).get(parts[0])
            if found is None:
                raise not_found(arn)
            return "CapacityProvider", found
    except ApiError as e:
        if e.code in ("ClusterNotFoundException", "ServiceNotFoundException"):
            raise not_found(arn) from None
        raise
    raise invalid_parameter(f"Tags are not supported on {arn}.")


async def _retag(account: Account, arn: str, change: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    kind, obj = await _resource(account, arn, changing=True)

    def updated(current: dict[str, Any]) -> dict[str, Any]:
        spec = {**current["spec"], "tags": change(list(current["spec"].get("tags") or []))}
        if not spec["tags"]:
            del spec["tags"]
        if refused := problems(MODELS[kind], spec):
            raise invalid_parameter(refused)
        return {**current, "spec": spec}

    await account.update(kind, obj["metadata"]["name"], updated, not_found(arn))


@operation("TagResource")
async def tag_resource(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """A tag given replaces the resource's tag of its key; ECS reserves the `aws:` prefix."""
    given = {t["key"]: t for t in request["tags"]}
    if reserved := sorted(k for k in given if k.lower().startswith("aws:")):
        raise invalid_parameter(f"Tag keys starting with 'aws:' are reserved: {', '.join(reserved)}.")
    await _retag(account, request["resourceArn"],
                 lambda tags: [t for t in tags if t.get("key") not in given] + list(given.values()))
    return {}


@operation("UntagResource")
async def untag_resource(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    keys = set(request["tagKeys"])
    await _retag(account, request["resourceArn"], lambda tags: [t for t in tags if t.get("key") not in keys])
    return {}


@operation("ListTagsForResource")
async def list_tags_for_resource(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    _, obj = await _resource(account, request["resourceArn"], changing=False)
    return {"tags": list((obj.get("spec") or {}).get("tags") or [])}
