"""RegisterTaskDefinition, DeregisterTaskDefinition, DeleteTaskDefinitions, DescribeTaskDefinition,
ListTaskDefinitions and ListTaskDefinitionFamilies over TaskDefinition resources.

One resource per family; its spec is the latest RegisterTaskDefinition, and each change of it
registers a revision (a ControllerRevision the operator writes). Registering = writing the
family's spec, then waiting for the operator's status to show the revision; deregistering = listing
the revision in the spec's `kubernetes.deregisteredRevisions`, deleting = in `kubernetes.deletedRevisions`.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from ecs_operator.arns import parse_task_definition_ref, task_definition_arn
from ecs_operator.models import TaskDefinitionSpec
from ecs_operator.models.common import Tag

from .account import Account, ecs_name, kube_name, paginate, resource, wait_for
from .errors import ApiError, client_error, server_error
from .operations import operation
from .rules import problems

REGISTRATION_SECONDS = 30.0
"""How long RegisterTaskDefinition waits for the operator to register the revision."""

ALWAYS_LISTED = ("volumes", "placementConstraints")
CONTAINER_ALWAYS_LISTED = ("portMappings", "environment", "mountPoints", "volumesFrom")
"""Members ECS answers even when empty: deploy tools register a description again as it is, and read
these without a default (ecs-deploy fails on a missing `volumes`)."""


async def find_revision(account: Account, ref: str) -> tuple[dict[str, Any], int, str]:
    """(the family's resource, revision number, its status) for `family`, `family:revision` or an ARN;
    no revision named: the latest ACTIVE one. ClientException when there is none."""
    try:
        family, number = parse_task_definition_ref(ref)
    except ValueError as e:
        raise client_error(str(e)) from None
    obj = await account.find("TaskDefinition", family)
    revisions = {r["revision"]: r["status"] for r in ((obj or {}).get("status") or {}).get("revisions") or []}
    if number is None:
        number = max((n for n, s in revisions.items() if s == "ACTIVE"), default=None)
    if obj is None or number is None or number not in revisions:
        raise client_error("Unable to describe task definition.")
    return obj, number, revisions[number]


async def describe_revision(account: Account, obj: dict[str, Any], number: int) -> dict[str, Any]:
    """describe-task-definition's TaskDefinition: the content the revision recorded, and its status."""
    stored = await account.get("ControllerRevision", f"{obj['metadata']['name']}-{number}")
    if stored is None:
        raise server_error(f"revision {number} of {ecs_name(obj)} is listed but its record is missing")
    status = obj.get("status") or {}
    entry = next(r for r in status.get("revisions") or [] if r["revision"] == number)
    content = stored["data"]["content"]["taskDefinition"]
    containers = [{**{k: [] for k in CONTAINER_ALWAYS_LISTED}, **c} for c in content.get("containerDefinitions") or []]
    return {**{k: [] for k in ALWAYS_LISTED}, **content, "containerDefinitions": containers,
            "taskDefinitionArn": task_definition_arn(account.settings, content["family"], number),
            "revision": number, "status": entry["status"], "registeredAt": entry.get("registeredAt"),
            "compatibilities": status.get("compatibilities"), "registeredBy": "ecs-operator"}


async def definition_tags(account: Account, ref: str) -> list[Tag]:
    """The tags revision `ref` recorded (none when it cannot be found)."""
    try:
        obj, number, _ = await find_revision(account, ref)
    except ApiError:
        return []
    stored = await account.get("ControllerRevision", f"{obj['metadata']['name']}-{number}") or {}
    content = (stored.get("data") or {}).get("content") or {}
    return [Tag.model_validate(t) for t in (content.get("taskDefinition") or {}).get("tags") or []]


@operation("RegisterTaskDefinition")
async def register_task_definition(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    family = request["family"]
    if refused := problems(TaskDefinitionSpec, request):
        raise client_error(refused)
    registration = uuid.uuid4().hex  # every call numbers a revision, as in ECS
    existing = await account.find("TaskDefinition", family)
    if existing is None:
        try:
            written = await account.create(resource("TaskDefinition", kube_name(family),
                                                    {**request, "kubernetes": {"registration": registration}}))
        except ApiError:  # a concurrent registration created the family meanwhile: this one updates it
            existing = await account.find("TaskDefinition", family)
            if existing is None:
                raise
    if existing is not None:  # the family's Kubernetes-only settings (podLabels, deregistered revisions...) stay
        written = await account.update("TaskDefinition", existing["metadata"]["name"], lambda current: {
            **current,
            "spec": {**request, "kubernetes": {**(current["spec"].get("kubernetes") or {}), "registration": registration}}},
            _gone(family))
    name, generation = written["metadata"]["name"], written["metadata"]["generation"]
    seen = await wait_for(lambda: _observed(account, name, generation), REGISTRATION_SECONDS)
    if seen is None:
        raise server_error(f"the operator did not register {family} within {REGISTRATION_SECONDS:.0f} s")
    ready: dict[str, Any] = next((c for c in seen["status"].get("conditions") or [] if c["type"] == "Ready"), {})
    if ready.get("status") != "True":
        if existing is None:
            await account.delete("TaskDefinition", name)
        else:
            await account.update("TaskDefinition", name, lambda current: {**current, "spec": existing["spec"]}, _gone(family))
        raise client_error(ready.get("message") or "the task definition was refused")
    described = await describe_revision(account, seen, seen["status"]["revision"])
    return {"taskDefinition": described, "tags": request.get("tags") or []}


def _gone(family: str) -> ApiError:
    return client_error(f"The task definition family {family} was deleted meanwhile.")


async def _observed(account: Account, name: str, generation: int) -> dict[str, Any] | None:
    found = await account.get("TaskDefinition", name)
    return found if found and (found.get("status") or {}).get("observedGeneration", 0) >= generation else None


@operation("DescribeTaskDefinition")
async def describe_task_definition(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    obj, number, _ = await find_revision(account, request["taskDefinition"])
    tags = obj["spec"].get("tags") if "TAGS" in (request.get("include") or []) else None
    return {"taskDefinition": await describe_revision(account, obj, number), "tags": tags}


@operation("ListTaskDefinitions")
async def list_task_definitions(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    prefix, wanted = request.get("familyPrefix") or "", request.get("status") or "ACTIVE"
    found = sorted(
        (ecs_name(obj), r["revision"])
        for obj in await account.items("TaskDefinition") if ecs_name(obj).startswith(prefix)
        for r in (obj.get("status") or {}).get("revisions") or [] if r["status"] == wanted
    )
    if request.get("sort") == "DESC":
        found.reverse()
    arns = [task_definition_arn(account.settings, family, number) for family, number in found]
    page, token = paginate(arns, request.get("maxResults"), request.get("nextToken"))
    return {"taskDefinitionArns": page, "nextToken": token}


@operation("ListTaskDefinitionFamilies")
async def list_task_definition_families(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Families by prefix; ACTIVE: those with an ACTIVE revision, INACTIVE: those with none, ALL (ECS's default): both."""
    prefix, wanted = request.get("familyPrefix") or "", request.get("status") or "ALL"
    families = []
    for obj in await account.items("TaskDefinition"):
        states = {r["status"] for r in (obj.get("status") or {}).get("revisions") or []}
        state = "ACTIVE" if "ACTIVE" in states else "INACTIVE"
        if states and ecs_name(obj).startswith(prefix) and wanted in ("ALL", state):
            families.append(ecs_name(obj))
    page, token = paginate(sorted(families), request.get("maxResults"), request.get("nextToken"))
    return {"families": page, "nextToken": token}


@operation("DeregisterTaskDefinition")
async def deregister_task_definition(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """The revision becomes INACTIVE: running tasks and services keep it, new tasks are refused it."""
    ref = request["taskDefinition"]
    if parse_task_definition_ref(ref)[1] is None:
        raise client_error("The specified task definition identifier is invalid. Specify a valid revision.")
    obj, number, _ = await find_revision(account, ref)

    def deregistered(current: dict[str, Any]) -> dict[str, Any]:
        kubernetes = dict(current["spec"].get("kubernetes") or {})
        kubernetes["deregisteredRevisions"] = sorted({*(kubernetes.get("deregisteredRevisions") or []), number})
        return {**current, "spec": {**current["spec"], "kubernetes": kubernetes}}

    written = await account.update("TaskDefinition", obj["metadata"]["name"], deregistered, _gone(ecs_name(obj)))
    seen = await wait_for(lambda: _observed(account, obj["metadata"]["name"], written["metadata"]["generation"]),
                          REGISTRATION_SECONDS)
    return {"taskDefinition": await describe_revision(account, seen or obj, number)}


MAX_DELETED = 10
"""DeleteTaskDefinitions' limit on taskDefinitions (ECS's)."""


@operation("DeleteTaskDefinitions")
async def delete_task_definitions(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Each named INACTIVE revision becomes DELETE_IN_PROGRESS (listed in the spec's
    `kubernetes.deletedRevisions`): refused to new tasks and services, kept for what already runs on it.
    An ACTIVE revision, or one that does not exist, is a failure; the others are deleted."""
    refs = request["taskDefinitions"]
    if not 1 <= len(refs) <= MAX_DELETED:
        raise ApiError("InvalidParameterException",
                       f"taskDefinitions: between 1 and {MAX_DELETED} task definitions, not {len(refs)}.")
    chosen: dict[str, tuple[dict[str, Any], set[int]]] = {}
    failures = []
    for ref in refs:
        try:
            if parse_task_definition_ref(ref)[1] is None:
                raise client_error("The specified task definition identifier is invalid. Specify a valid revision.")
            obj, number, state = await find_revision(account, ref)
        except ApiError as e:
            failures.append({"arn": ref, "reason": e.message})
            continue
        if state == "ACTIVE":
            failures.append({"arn": task_definition_arn(account.settings, ecs_name(obj), number),
                             "reason": "The task definition is ACTIVE: deregister it before deleting it."})
            continue
        chosen.setdefault(obj["metadata"]["name"], (obj, set()))[1].add(number)
    deleted = []
    for name, (obj, numbers) in chosen.items():
        def marked(current: dict[str, Any], numbers: set[int] = numbers) -> dict[str, Any]:
            kubernetes = dict(current["spec"].get("kubernetes") or {})
            kubernetes["deletedRevisions"] = sorted({*(kubernetes.get("deletedRevisions") or []), *numbers})
            return {**current, "spec": {**current["spec"], "kubernetes": kubernetes}}

        written = await account.update("TaskDefinition", name, marked, _gone(ecs_name(obj)))
        seen = await wait_for(functools.partial(_observed, account, name, written["metadata"]["generation"]),
                              REGISTRATION_SECONDS)
        deleted += [await describe_revision(account, seen or written, n) for n in sorted(numbers)]
    return {"taskDefinitions": deleted, "failures": failures}
