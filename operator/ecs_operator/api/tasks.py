"""RunTask, DescribeTasks, ListTasks, StopTask over Task resources.

RunTask with `count` N makes N Task resources of one task each, so that StopTask stops exactly the
task it names (a Task resource's desiredStatus stops all of its tasks). A task's ARN ends with its
Pod's UID: RunTask waits for the operator to create the Pods and answers with their ARNs.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from ecs_operator.arns import parse_ref, task_arn
from ecs_operator.lifecycle.task_state import STOPPED_BY_USER
from ecs_operator.models import TaskSpec, problems_from_validation_error, validate

from .account import Account, ecs_name, kube_name, paginate, resource, wait_for
from .clusters import cluster_name, find_cluster
from .errors import client_error, invalid_parameter, unsupported
from .operations import operation
from .task_definitions import find_revision

LAUNCH_SECONDS = 20.0
"""How long RunTask waits for the operator to launch the tasks (their Pods give them their ARNs)."""


def _task_id(ref: str) -> str:
    try:
        return parse_ref(ref, "task")[-1]
    except ValueError as e:
        raise invalid_parameter(str(e)) from None


def _records(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in (obj.get("status") or {}).get("tasks") or [] if r.get("taskArn")]


def describe_task(account: Account, obj: dict[str, Any], record: dict[str, Any], include: list[str] | None = None) -> dict[str, Any]:
    """describe-tasks' Task: one record of the Task resource's status, with the fields its tasks share."""
    spec, status = obj["spec"], obj.get("status") or {}
    arn = record["taskArn"]
    return {
        **record,
        "clusterArn": status.get("clusterArn"),
        "taskDefinitionArn": record.get("taskDefinitionArn") or status.get("taskDefinitionArn"),
        "launchType": status.get("launchType") or spec.get("launchType"),
        "capacityProviderName": status.get("capacityProviderName"),
        "group": record.get("group") or status.get("group"),
        "startedBy": record.get("startedBy") or status.get("startedBy"),
        "overrides": spec.get("overrides") or {"containerOverrides": []},
        "containers": [{**c, "taskArn": arn, "containerArn": f"{arn.replace(':task/', ':container/', 1)}/{c['name']}"}
                       for c in record.get("containers") or []],
        "tags": spec.get("tags") if "TAGS" in (include or []) else None,
    }


async def _cluster_tasks(account: Account, cluster: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(Task resource, task record) for every launched task of the cluster."""
    return [(obj, r) for obj in await account.items("Task") if cluster_name(obj["spec"].get("cluster")) == cluster
            for r in _records(obj)]


@operation("RunTask")
async def run_task(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    definition, _, state = await find_revision(account, request["taskDefinition"])
    if state != "ACTIVE":
        raise client_error("TaskDefinition is inactive")
    spec = {**{k: v for k, v in request.items() if k != "count"}, "cluster": cluster}
    try:
        problems = validate(TaskSpec.model_validate(spec))
    except ValidationError as e:
        problems = problems_from_validation_error(e)
    if problems:
        raise invalid_parameter("; ".join(map(str, problems)))
    prefix = kube_name(ecs_name(definition))[:40].strip("-")
    names = [f"{prefix}-{uuid.uuid4().hex[:12]}" for _ in range(request.get("count") or 1)]
    for name in names:
        await account.create(resource("Task", name, spec))
    launched = await wait_for(lambda: _launched(account, names), LAUNCH_SECONDS) or []
    tasks = [describe_task(account, obj, r) for obj in launched for r in _records(obj)]
    failures = [{"arn": f"task/{cluster}/{name}", "reason": _refusal(obj)} for name, obj in zip(names, launched)
                if not _records(obj)] if launched else [{"reason": f"the operator did not launch the tasks within {LAUNCH_SECONDS:.0f} s"}]
    return {"tasks": tasks, "failures": failures}


async def _launched(account: Account, names: list[str]) -> list[dict[str, Any]] | None:
    """Every Task resource once each has its task's ARN or has been refused (None before)."""
    found = [o for o in [await account.get("Task", name) for name in names] if o is not None]
    return found if len(found) == len(names) and all(_records(o) or _refusal(o) for o in found) else None


def _refusal(obj: dict[str, Any]) -> str:
    ready: dict[str, Any] = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
    return f"{ready.get('reason')}: {ready.get('message')}" if ready.get("status") == "False" else ""


@operation("DescribeTasks")
async def describe_tasks(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    by_id = {r["taskArn"].rsplit("/", 1)[-1]: (obj, r) for obj, r in await _cluster_tasks(account, cluster)}
    tasks, failures = [], []
    for ref in request["tasks"]:
        task_id = _task_id(ref)
        if task_id in by_id:
            tasks.append(describe_task(account, *by_id[task_id], request.get("include")))
        else:
            failures.append({"arn": task_arn(account.settings, cluster, task_id), "reason": "MISSING"})
    return {"tasks": tasks, "failures": failures}


@operation("ListTasks")
async def list_tasks(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("serviceName") or request.get("daemonName"):
        raise unsupported("ListTasks by serviceName or daemonName is not supported yet: list the service's Pods "
                          "(label ecs.operator.dev/service) instead.")
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    wanted = request.get("desiredStatus") or "RUNNING"
    arns = sorted(
        d["taskArn"] for d in (describe_task(account, obj, r) for obj, r in await _cluster_tasks(account, cluster))
        if d.get("desiredStatus") == wanted
        and request.get("family") in (None, _family_of(d.get("taskDefinitionArn")))
        and request.get("startedBy") in (None, d.get("startedBy"))
        and request.get("launchType") in (None, d.get("launchType"))
        and request.get("containerInstance") in (None, d.get("containerInstance"))
    )
    page, token = paginate(arns, request.get("maxResults"), request.get("nextToken"))
    return {"taskArns": page, "nextToken": token}


def _family_of(task_definition_arn: str | None) -> str | None:
    """The family of a task definition ARN."""
    return task_definition_arn.rsplit("/", 1)[-1].split(":")[0] if task_definition_arn else None


@operation("StopTask")
async def stop_task(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    task_id = _task_id(request["task"])
    found = next(((obj, r) for obj, r in await _cluster_tasks(account, cluster) if r["taskArn"].endswith(f"/{task_id}")), None)
    if found is None:
        raise invalid_parameter("The referenced task was not found.")
    obj, record = found
    if len(_records(obj)) > 1:
        raise unsupported(f"task {task_id} belongs to Task {obj['metadata']['name']}, which runs {len(_records(obj))} tasks: "
                          "StopTask would stop them all; set spec.desiredStatus to STOPPED on that resource instead")
    reason = request.get("reason") or STOPPED_BY_USER
    await account.patch("Task", obj["metadata"]["name"], {"spec": {"desiredStatus": "STOPPED", "reason": reason}})
    return {"task": {**describe_task(account, obj, record), "desiredStatus": "STOPPED", "stoppedReason": reason}}
