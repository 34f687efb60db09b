"""RunTask, StartTask, DescribeTasks, ListTasks, StopTask over Task resources and the Pods of services.

RunTask with `count` N makes N Task resources of one task each, so that StopTask stops exactly the
task it names (a Task resource's desiredStatus stops all of its tasks). A task's ARN ends with its
Pod's UID: RunTask waits for the operator to create the Pods and answers with their ARNs.
A service's tasks are its Pods (and the stoppedTasks of its status): describe-tasks and list-tasks
show them too, read as the operator reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn, parse_ref, task_arn
from ecs_operator.lifecycle.task_state import STOPPED_BY_USER, new_record, observe
from ecs_operator.models import TaskSpec
from ecs_operator.models.common import Tag
from ecs_operator.translate.tags import annotated_tags, task_tags

from .account import Account, ecs_name, in_order, kube_name, paginate, resource, wait_for
from .clusters import cluster_name, find_cluster
from .container_instances import instances_of, named_instances
from .errors import client_error, invalid_parameter, service_not_found, unsupported
from .operations import operation
from .rules import problems
from .task_definitions import definition_tags, find_revision

MAX_START_INSTANCES = 10
"""StartTask's limit on containerInstances (ECS's)."""
LAUNCH_SECONDS = 20.0
"""How long RunTask waits for the operator to launch the tasks (their Pods give them their ARNs)."""
ZONE = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class Found:
    """One task of a cluster: its describe-tasks view and where it comes from."""

    task: dict[str, Any]
    owner: dict[str, Any]
    """The Task resource that ran it, or the Service resource whose task it is."""

    @property
    def id(self) -> str:
        return str(self.task["taskArn"]).rsplit("/", 1)[-1]

    @property
    def service(self) -> str | None:
        return ecs_name(self.owner) if self.owner["kind"] == "Service" else None


def _short(ref: str, kind: str = "task") -> str:
    """The task ID (or service name, with kind="service") of a short reference or an ARN."""
    try:
        return parse_ref(ref, kind)[-1]
    except ValueError as e:
        raise invalid_parameter(str(e)) from None


def _records(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in (obj.get("status") or {}).get("tasks") or [] if r.get("taskArn")]


def _described(record: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """describe-tasks' Task: a task record (the operator's) over the fields its owner gives all its tasks."""
    arn = record["taskArn"]
    task = {**shared, **{k: v for k, v in record.items() if v is not None}}
    task["containers"] = [{**c, "taskArn": arn, "containerArn": f"{arn.replace(':task/', ':container/', 1)}/{c['name']}"}
                          for c in record.get("containers") or []]
    if record.get("containerInstance") and task.get("clusterArn"):  # the node: the instance's ID in its cluster
        arn_prefix = task["clusterArn"].replace(":cluster/", ":container-instance/", 1)
        task["containerInstanceArn"] = f"{arn_prefix}/{record['containerInstance']}"
    return task


def describe_task(obj: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """A task of a Task resource: its record, with the fields the resource's tasks share."""
    spec, status = obj["spec"], obj.get("status") or {}
    return _described(record, {
        "clusterArn": status.get("clusterArn"),
        "taskDefinitionArn": status.get("taskDefinitionArn"),
        "launchType": status.get("launchType") or spec.get("launchType"),
        "capacityProviderName": status.get("capacityProviderName"),
        "group": status.get("group"),
        "startedBy": status.get("startedBy"),
        "overrides": spec.get("overrides") or {"containerOverrides": []},
        # a task definition's tags are added by with_definition_tags: they take a read of the revision
        "tags": _ecs_tags(task_tags(own=_tags(spec), propagate=None, definition=None,
                                    managed=spec.get("enableECSManagedTags"), cluster=cluster_name(spec.get("cluster")))),
    })


def describe_service_task(account: Account, cluster: str, pod: dict[str, Any], service: dict[str, Any]) -> dict[str, Any]:
    """A running task of a service: its Pod, read as the operator reads it."""
    meta = pod["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    arn = task_arn(account.settings, cluster, meta["uid"].replace("-", ""))
    record = observe(pod, new_record(meta["name"], arn), datetime.now(UTC), labels.get(ZONE))
    shared = _service_shared(account, cluster, labels.get(L.DEPLOYMENT), annotations, service)
    return _described(record.to_json(), {**shared, "launchType": labels.get(L.LAUNCH_TYPE)})


def _tags(spec: dict[str, Any]) -> list[Tag]:
    return [Tag.model_validate(t) for t in spec.get("tags") or []]


def _ecs_tags(tags: list[Tag]) -> list[dict[str, Any]]:
    return [t.model_dump(exclude_none=True) for t in tags]


def _service_task_tags(cluster: str, annotations: dict[str, str], service: dict[str, Any]) -> list[dict[str, Any]]:
    """A service's task's tags: propagated from its revision (the Pod's annotation) or the service as it is
    now, and the managed ones (docs/ecs-semantics.md §Task tags)."""
    spec = service["spec"]
    return _ecs_tags(task_tags(own=None, propagate=spec.get("propagateTags"), definition=annotated_tags(annotations),
                               service=_tags(spec), managed=spec.get("enableECSManagedTags"), cluster=cluster,
                               service_name=ecs_name(service)))


async def with_definition_tags(account: Account, found: Found) -> dict[str, Any]:
    """`found`'s describe-tasks view with all its tags: a RunTask task with propagateTags TASK_DEFINITION
    gets its revision's tags (before its own, which win on a shared key)."""
    spec = found.owner["spec"]
    if found.owner["kind"] != "Task" or spec.get("propagateTags") != "TASK_DEFINITION":
        return found.task
    ref = (found.owner.get("status") or {}).get("taskDefinitionArn") or spec.get("taskDefinition") or ""
    tags = task_tags(own=_tags(spec), propagate="TASK_DEFINITION", definition=await definition_tags(account, ref),
                     managed=spec.get("enableECSManagedTags"), cluster=cluster_name(spec.get("cluster")))
    return {**found.task, "tags": _ecs_tags(tags)}


def _service_shared(account: Account, cluster: str, deployment: str | None, annotations: dict[str, str],
                    service: dict[str, Any]) -> dict[str, Any]:
    return {"clusterArn": cluster_arn(account.settings, cluster), "startedBy": f"ecs-svc/{deployment}" if deployment else None,
            "group": annotations.get(L.GROUP), "taskDefinitionArn": annotations.get(L.TASK_DEFINITION_ARN),
            "overrides": {"containerOverrides": []}, "tags": _service_task_tags(cluster, annotations, service)}


async def cluster_tasks(account: Account, cluster: str) -> list[Found]:
    """Every task of the cluster: RunTask's (launched), its services' running ones and their recently stopped ones."""
    return (await tasks_and_services(account, cluster))[0]


async def tasks_and_services(account: Account, cluster: str, only: str | None = None
                             ) -> tuple[list[Found], list[dict[str, Any]]]:
    """The cluster's tasks (as cluster_tasks) and its Service resources. The Tasks, Services and Pods are
    listed concurrently: a request waits for one round trip to the API server, not three in a row.
    With `only` (a service's ECS name), what ListTasks by serviceName needs: no Task resources, and the Pods
    of the service's usual resource name (kube_name) only, unless another resource has that ECS name too."""
    cluster_pods = f"{L.SERVICE},{L.CLUSTER}={L.group_label_value(cluster)}"
    own_pods = only and f"{L.SERVICE}={L.group_label_value(kube_name(only))},{L.CLUSTER}={L.group_label_value(cluster)}"
    tasks, listed, pods = await asyncio.gather(
        account.items("Task") if only is None else _nothing(), account.items("Service.ecs"),
        account.call(account.kube.list, "Pod", account.namespace, own_pods or cluster_pods))
    found = [Found(describe_task(obj, r), obj) for obj in tasks if cluster_name(obj["spec"].get("cluster")) == cluster
             for r in _records(obj)]
    mine = [s for s in listed if cluster_name(s["spec"].get("cluster")) == cluster]
    if only is not None and {s["metadata"]["name"] for s in mine if ecs_name(s) == only} - {kube_name(only)}:
        # the name is also a draining predecessor's or a re-created service's (another resource name)
        pods = await account.call(account.kube.list, "Pod", account.namespace, cluster_pods)
    services = {L.group_label_value(s["metadata"]["name"]): s for s in mine}
    for pod in pods:
        service = services.get((pod["metadata"].get("labels") or {}).get(L.SERVICE, ""))
        if service is not None:
            found.append(Found(describe_service_task(account, cluster, pod, service), service))
    for service in services.values():
        for record in (service.get("status") or {}).get("stoppedTasks") or []:
            shared = _service_shared(account, cluster, None, {}, service)
            found.append(Found(_described(record, {**shared, "startedBy": record.get("startedBy")}), service))
    return found, mine


async def _nothing() -> list[dict[str, Any]]:
    return []


@operation("RunTask")
async def run_task(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    spec = {**{k: v for k, v in request.items() if k != "count"}, "cluster": cluster}
    return await _launch(account, cluster, [spec] * (request.get("count") or 1), [])


@operation("StartTask")
async def start_task(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """RunTask on the named container instances, one task on each: a Task resource per instance whose
    memberOf constraint names it (`ec2InstanceId == <id>`), launch type EC2. An instance the cluster
    does not have is a MISSING failure; nothing is launched when more than 10 are named."""
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    named = request["containerInstances"]
    if not 1 <= len(named) <= MAX_START_INSTANCES:
        raise invalid_parameter(f"containerInstances: between 1 and {MAX_START_INSTANCES} container instances, not {len(named)}.")
    found, failures = named_instances(await instances_of(account, cluster), named)
    base = {k: v for k, v in request.items() if k != "containerInstances"}
    specs = [{**base, "cluster": cluster, "launchType": "EC2",
              "placementConstraints": [{"type": "memberOf", "expression": f"ec2InstanceId == {obj['metadata']['name']}"}]}
             for _, obj in found]
    return await _launch(account, cluster, specs, failures)


async def _launch(account: Account, cluster: str, specs: list[dict[str, Any]], failures: list[dict[str, str]]) -> dict[str, Any]:
    """One Task resource per spec (all checked first: none is created when one is refused), then the
    operator's launches, as RunTask answers: the tasks, and a failure for each one it refused."""
    if not specs:
        return {"tasks": [], "failures": failures}
    definition, _, state = await find_revision(account, specs[0]["taskDefinition"])
    if state != "ACTIVE":
        raise client_error("TaskDefinition is inactive")
    for spec in specs:
        if refused := problems(TaskSpec, spec):
            raise invalid_parameter(refused)
    prefix = kube_name(ecs_name(definition))[:40].strip("-")
    token = specs[0].get("clientToken")
    # with a clientToken the names are the token's: a retried call finds the tasks it launched
    names = [f"{prefix}-{hashlib.sha256(f'{token}/{i}'.encode()).hexdigest()[:12]}" if token
             else f"{prefix}-{uuid.uuid4().hex[:12]}" for i in range(len(specs))]
    for name, spec in zip(names, specs, strict=True):
        existing = await account.get("Task", name) if token else None
        if existing is None:
            await account.create(resource("Task", name, spec))
        elif existing["spec"].get("clientToken") != token or existing["spec"].get("taskDefinition") != spec["taskDefinition"]:
            raise invalid_parameter(f"clientToken: {token} was used by another RunTask call with other parameters.")
    launched = await wait_for(lambda: _launched(account, names), LAUNCH_SECONDS)
    if launched is None:
        not_launched = {"reason": f"the operator did not launch the tasks within {LAUNCH_SECONDS:.0f} s"}
        return {"tasks": [], "failures": [*failures, not_launched]}
    return {"tasks": [describe_task(obj, r) for obj in launched for r in _records(obj)],
            "failures": [*failures, *({"arn": f"task/{cluster}/{obj['metadata']['name']}", "reason": _refusal(obj)}
                                      for obj in launched if not _records(obj))]}


async def _launched(account: Account, names: list[str]) -> list[dict[str, Any]] | None:
    """Every Task resource once each has its task's ARN or has been refused (None before)."""
    found = [o for o in [await account.get("Task", name) for name in names] if o is not None]
    return found if len(found) == len(names) and all(_records(o) or _refusal(o) for o in found) else None


def _refusal(obj: dict[str, Any]) -> str:
    ready: dict[str, Any] = next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})
    return f"{ready.get('reason')}: {ready.get('message')}" if ready.get("status") == "False" else ""


@operation("DescribeTasks")
async def describe_tasks(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_name(request.get("cluster"))
    _, (found, _) = await in_order(find_cluster(account, cluster), tasks_and_services(account, cluster))
    by_id = {f.id: f for f in found}
    tasks, failures = [], []
    for ref in request["tasks"]:
        task_id = _short(ref)
        if task_id in by_id:
            task = by_id[task_id].task
            tasks.append(await with_definition_tags(account, by_id[task_id]) if "TAGS" in (request.get("include") or [])
                         else {k: v for k, v in task.items() if k != "tags"})
        else:
            failures.append({"arn": task_arn(account.settings, cluster, task_id), "reason": "MISSING"})
    return {"tasks": tasks, "failures": failures}


@operation("ListTasks")
async def list_tasks(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("daemonName"):
        raise unsupported("ListTasks by daemonName is not supported (ECS daemons are not part of ecs-operator).")
    cluster = cluster_name(request.get("cluster"))
    _, (service, found, services) = await in_order(find_cluster(account, cluster),
                                                   _listed(account, cluster, request.get("serviceName")))
    if service and not any(ecs_name(s) == service for s in services):
        raise service_not_found()
    wanted = request.get("desiredStatus") or "RUNNING"
    arns = sorted(
        f.task["taskArn"] for f in found
        if f.task.get("desiredStatus") == wanted
        and service in (None, f.service)
        and request.get("family") in (None, _family_of(f.task.get("taskDefinitionArn")))
        and request.get("startedBy") in (None, f.task.get("startedBy"))
        and request.get("launchType") in (None, f.task.get("launchType"))
        and request.get("containerInstance") in (None, f.task.get("containerInstance"))
    )
    page, token = paginate(arns, request.get("maxResults"), request.get("nextToken"))
    return {"taskArns": page, "nextToken": token}


async def _listed(account: Account, cluster: str, service_ref: str | None
                  ) -> tuple[str | None, list[Found], list[dict[str, Any]]]:
    """ListTasks' service filter, and the tasks it needs (after find_cluster's errors, as one by one)."""
    service = _short(service_ref, "service") if service_ref else None
    found, services = await tasks_and_services(account, cluster, service)
    return service, found, services


def _family_of(task_definition_arn: str | None) -> str | None:
    return task_definition_arn.rsplit("/", 1)[-1].split(":")[0] if task_definition_arn else None


@operation("StopTask")
async def stop_task(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    cluster = ecs_name(await find_cluster(account, request.get("cluster")))
    task_id = _short(request["task"])
    found = next((f for f in await cluster_tasks(account, cluster) if f.id == task_id), None)
    if found is None:
        raise invalid_parameter("The referenced task was not found.")
    reason = request.get("reason") or STOPPED_BY_USER
    obj = found.owner
    if found.service is not None:
        if found.task.get("lastStatus") != "STOPPED":  # the operator stops it; the service starts a replacement
            def annotated(current: dict[str, Any]) -> dict[str, Any]:
                meta = current["metadata"]
                return {**current, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                         f"{L.STOP_TASK_PREFIX}{task_id}": reason}}}

            await account.update("Service.ecs", obj["metadata"]["name"], annotated,
                                 invalid_parameter("The referenced task was not found."))
        return {"task": {**found.task, "desiredStatus": "STOPPED", "stoppedReason": found.task.get("stoppedReason") or reason}}
    if len(_records(obj)) > 1:
        raise unsupported(f"task {task_id} belongs to Task {obj['metadata']['name']}, which runs {len(_records(obj))} tasks: "
                          "StopTask would stop them all; set spec.desiredStatus to STOPPED on that resource instead")
    await account.patch("Task", obj["metadata"]["name"], {"spec": {"desiredStatus": "STOPPED", "reason": reason}})
    return {"task": {**found.task, "desiredStatus": "STOPPED", "stoppedReason": reason}}
