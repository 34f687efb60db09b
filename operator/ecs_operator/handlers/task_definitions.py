"""TaskDefinition: each change of spec registers a new immutable revision (a ControllerRevision).

A worker per TaskDefinition (runtime/workers.py), started by its first event and woken by a new generation,
observes the family's revisions, asks `plan_task_definition` (lifecycle/registration.py) and acts: the
revision first, then Events and one status write (only when it changed). A refusal that can end by itself
(the workload policy, a revision's name held by another object) is looked at again as the plan asks.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube, OwnershipConflict
from ecs_operator.lifecycle.registration import Observed, Plan, Register, plan_task_definition, refused
from ecs_operator.models import Problem, TaskDefinitionSpec
from ecs_operator.ownership import CONFLICT_REASON, conflict, conflicts_text, owner_reference
from ecs_operator.registry import StoredRevision, stored
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence
from ecs_operator.translate.pod import Revision, pod_template
from ecs_operator.translate.pod_checks import ecs_field

from .common import failed_round, kopf_callback
from .namespaces import workload_policy
from .notices import notify
from .resources import TASK_DEFINITIONS
from .setup import REVISION_KIND_LABEL

logger = logging.getLogger("ecs_operator")

KIND = "TaskDefinition"
CADENCE = Cadence(resync=300.0, batching=Batching(idle=0.0, max=0.25))
"""A new generation is registered at once; the resync repairs what no event said (a revision deleted by hand)."""
CONCURRENT_RETRY_SECONDS = 1.0


@kopf.index(*TASK_DEFINITIONS)
@kopf_callback
async def registrations(name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                  **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, family) -> whether a registration is under way (the operator has not seen this
    generation yet): a Task naming the family waits for it instead of reporting it unknown."""
    return {(namespace, spec.get("family") or name): {"pending": status.get("observedGeneration") != meta.get("generation")}}


@kopf.index(*TASK_DEFINITIONS)
@kopf_callback
async def task_definition_objects(body: kopf.Body, name: str, namespace: str,
        memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> the TaskDefinition."""
    return {(namespace, name): memo.snapshots.of(body)}


@kopf.on.event(*TASK_DEFINITIONS)
@kopf_callback
async def task_definition_changed(type: str, body: kopf.Body, name: str, namespace: str, memo: Context,
                                  task_definition_objects: kopf.Index, revisions: kopf.Index, **_: Any) -> None:
    """Each TaskDefinition at start-up and every new generation (not the operator's own status writes)."""
    key = (namespace, name)
    if type == "DELETED":
        memo.workers.stop(KIND, key)
        memo.status(KIND).forget(body)
        return
    seen = memo.status(KIND).current(body).get("observedGeneration")
    if seen == body.metadata.get("generation") and memo.workers.is_running(KIND, key):
        return

    def failed(error: Exception) -> float | None:  # the API server away: soon; anything else: at the resync
        return failed_round(logger, f"registering task definition {namespace}/{name}", error)

    memo.workers.start(KIND, key, lambda: observe(memo, key, task_definition_objects, revisions),
                       lambda seen: reconcile(memo, seen), CADENCE, failed)


Seen = tuple[dict[str, Any], tuple[StoredRevision, ...]]


def observe(memo: Context, key: tuple[str, str], objects: kopf.Index, revisions: kopf.Index) -> Seen | None:
    """The TaskDefinition (its status as this process wrote it last) and its family's revisions."""
    body = next(iter(objects.get(key, [])), None)
    if body is None:
        return None
    family = (body.get("spec") or {}).get("family") or key[1]
    return {**body, "status": memo.status(KIND).current(body)}, tuple(stored(list(revisions.get((key[0], family), []))))


def reconcile(memo: Context, seen: Seen) -> float | None:
    """The plan (the workload policy read here, in the round's thread); a revision to register first, then
    the plan again with it stored; Events; one status write."""
    body, revisions = seen
    observed = Observed(body, revisions, workload_policy(memo, body["metadata"]["namespace"]), memo.settings)
    plan = plan_task_definition(observed, memo.clock())
    if plan.register is not None and (refusals := pod_refusals(
            memo.kube, TaskDefinitionSpec.model_validate(body.get("spec") or {}), plan.register.family,
            body["metadata"]["namespace"])):
        plan = refused(observed, "InvalidTaskDefinition", "; ".join(str(p) for p in refusals), memo.clock())
    elif plan.register is not None:
        try:
            revision = register(memo, observed.body, plan.register)
        except OwnershipConflict as e:  # the revision's name is held by a ControllerRevision not ours
            message = conflicts_text([conflict("metadata.name", e.existing)], "TaskDefinition")
            plan = refused(observed, CONFLICT_REASON, message, memo.clock())
        else:
            if revision is None:  # the same number registered concurrently with other content
                return CONCURRENT_RETRY_SECONDS
            plan = plan_task_definition(replace(observed, revisions=(*observed.revisions, revision)), memo.clock())
    return act(memo, observed, plan)


def pod_refusals(kube: Kube, model: TaskDefinitionSpec, family: str, namespace: str) -> list[Problem]:
    """What the API server refuses in the family's Pod (a server-side dry-run: the checks pod_checks does not
    know, e.g. of a newer Kubernetes), each named by its ECS field: a revision that can never start a task is
    not registered."""
    rev = Revision(family, 1, model.ecs_part(), model.kubernetes)
    template = pod_template(rev, for_service=False).template
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "generateName": "registration-check-", "namespace": namespace}}
    return [Problem(ecs_field(rev.definition, template, field), message) for field, message in kube.dry_run_refusals(pod)]


def act(memo: Context, observed: Observed, plan: Plan) -> float | None:
    for event in plan.events:
        notify(memo, observed.body, type=event.type, reason=event.reason, message=event.message)
    memo.status(KIND).write(observed.body, plan.status)
    return plan.requeue_after


def register(memo: Context, body: dict[str, Any], action: Register) -> StoredRevision | None:
    """Store the revision (immutable); None if the same number holds other content (registered concurrently)."""
    meta = body["metadata"]
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{meta['name']}-{action.number}",
            "namespace": meta["namespace"],
            "labels": {REVISION_KIND_LABEL: L.group_label_value(meta["name"]), L.FAMILY: L.group_label_value(action.family),
                       L.REVISION: str(action.number), L.MANAGED_BY: L.MANAGED_BY_VALUE},
            "ownerReferences": [{**owner_reference(body), "controller": True, "blockOwnerDeletion": True}],
        },
        "revision": action.number,
        "data": action.data,
    }
    created, fresh = memo.kube.create(revision)
    if not fresh and created["data"]["hash"] != action.data["hash"]:
        return None
    if fresh:
        message = f"registered task definition {action.family}:{action.number}"
        notify(memo, body, type="Normal", reason="Registered", message=message)
    return stored([{"revision": action.number, "data": created["data"]}])[0]
