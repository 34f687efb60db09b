"""What one Task's round sees, copied from kopf's indexes in the event loop (kopf updates them only between
awaits, so the copy is one moment's state), plus the one API read a launch needs (the namespace's
workload policy), made in the round's thread."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

import kopf

from ecs_operator.arns import parse_task_definition_ref
from ecs_operator.lifecycle.task_reconcile import TaskObserved
from ecs_operator.ownership import controller_of
from ecs_operator.registry import StoredRevision, UnknownTaskDefinition
from ecs_operator.runtime.context import Context

from .common import kopf_callback
from .lookups import access_of, cluster_instances, find_cluster, node_zone, resolve_stored
from .member_of import labels_in_use
from .namespaces import workload_policy
from .resources import TASKS

KIND = "Task"
INDEXES = ("tasks", "task_pods", "nodes", "revisions", "task_definitions", "registrations", "clusters", "cluster_nodes",
           "node_pods", "member_of_deployments", "member_of_daemon_sets", "member_of_task_pods", "provider_access")
"""The indexes a Task's round reads (a worker keeps these, not the rest of the event that started it)."""


@kopf.index(*TASKS)
@kopf_callback
async def tasks(body: kopf.Body, name: str, namespace: str, memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the Task."""
    return {(namespace, name): memo.snapshots.of(body)}


@dataclass(frozen=True)
class Seen:
    observed: TaskObserved
    launching: bool
    """No task records yet and no stop asked for: the round may launch (the policy is read for it)."""
    revision: StoredRevision | None = None
    """The revision to launch, parsed in the round's thread."""


def snapshot(memo: Context, key: tuple[str, str], ix: dict[str, Any]) -> Seen | None:
    """The Task (its status as this process decided it last), its Pods, and for a launch what it needs."""
    body = next(iter(ix["tasks"].get(key, [])), None)
    if body is None:
        return None
    namespace, uid = key[0], body["metadata"]["uid"]
    status = memo.status(KIND).current(body)
    body = {**body, "status": status}
    pods = {p["metadata"]["name"]: p for p in list(ix["task_pods"].get(key, [])) if (controller_of(p) or {}).get("uid") == uid}
    for record in status.get("tasks") or []:
        name = record.get("podName")
        if name and name not in pods and (pod := memo.unindexed.get("Pod", namespace, name)) is not None:
            pods[name] = pod
    nodes = {n for p in pods.values() if (n := (p.get("spec") or {}).get("nodeName"))}
    observed = TaskObserved(body=body, pods=pods, zones={n: node_zone(ix["nodes"], n) for n in nodes}, settings=memo.settings,
                            lost_nodes=frozenset(n for n in nodes if n not in ix["nodes"]))  # confirmed by with_policy
    spec = body.get("spec") or {}
    if status.get("tasks") or spec.get("desiredStatus") == "STOPPED":
        return Seen(observed, False)
    revision, error = None, None
    try:
        revision = resolve_stored(spec.get("taskDefinition") or "", namespace, ix["revisions"], ix["task_definitions"])
    except UnknownTaskDefinition as e:
        error = str(e)
    return Seen(_for_launch(observed, namespace, spec, ix, error), True, revision)


def _for_launch(observed: TaskObserved, namespace: str, spec: dict[str, Any], ix: dict[str, Any],
                error: str | None) -> TaskObserved:
    cluster_name = spec.get("cluster") or "default"
    ref = spec.get("taskDefinition") or ""
    try:
        family: str | None = parse_task_definition_ref(ref)[0]
    except ValueError:
        family = None
    return replace(
        observed,
        cluster=copy.deepcopy(find_cluster(ix["clusters"], namespace, cluster_name)),
        revision_error=error,
        registering=any(r["pending"] for r in ix["registrations"].get((namespace, family), [])),
        family_known=bool(ix["task_definitions"].get((namespace, family))),
        instances=tuple(cluster_instances(namespace, cluster_name, ix["cluster_nodes"], ix["nodes"], ix["node_pods"])),
        member_of_labels=frozenset(labels_in_use(namespace, ix["member_of_deployments"], ix["member_of_daemon_sets"],
                                                 ix["member_of_task_pods"])),
        provider_access=access_of(ix["provider_access"]))


def with_policy(memo: Context, seen: Seen) -> TaskObserved:
    """In the round's thread, the API reads a round may need: a Node the index lacks is asked for (it is lost
    only if the API server has it no more: the index may not show a new Node yet), and the namespace's
    workload policy (cached briefly) and the revision parsed, for a launch."""
    observed = seen.observed
    if observed.lost_nodes:
        gone = frozenset(n for n in observed.lost_nodes if memo.kube.get("Node", None, n) is None)
        observed = replace(observed, lost_nodes=gone)
    if not seen.launching:
        return observed
    namespace = observed.body["metadata"]["namespace"]
    revision = seen.revision.as_revision(memo.settings) if seen.revision is not None else None
    return replace(observed, policy=workload_policy(memo, namespace), revision=revision)
