"""TaskDefinition: each change of spec registers a new immutable revision (a ControllerRevision).

Nothing is half-applied: a spec that fails ECS's rules or the workload policy registers no revision
(Ready=False naming the field, one Warning Event). Status is written only when it changes.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.adapters.kube import OwnershipConflict
from ecs_operator.arns import task_definition_arn
from ecs_operator.models import Problem, TaskDefinitionSpec, problems_from_validation_error
from ecs_operator.models.rules import compatibilities
from ecs_operator.ownership import CONFLICT_REASON, conflict, conflicts_text, owner_reference
from ecs_operator.registry import StoredRevision, content_hash, next_revision, revision_content, stored
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import ignored_read_only, summarize
from ecs_operator.translate.pod import Revision, pod_template
from ecs_operator.translate.pod_checks import ecs_field, registration_problems
from ecs_operator.translate.policy import policy_violations

from .common import kopf_callback, now, problems_text, ready
from .namespaces import workload_policy
from .notices import log, notify
from .resources import TASK_DEFINITIONS
from .setup import REVISION_KIND_LABEL

MAX_LISTED_REVISIONS = 50
POLICY_REFUSED = "RefusedByWorkloadPolicy"
"""Ready reason of a TaskDefinition the workload policy refused (a later opt-in of the namespace registers it)."""
POLICY_RETRY_SECONDS = 10


@kopf.index(*TASK_DEFINITIONS)
@kopf_callback
def registrations(name: str, namespace: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta,
                  **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, family) -> whether a registration is under way (the operator has not seen this
    generation yet): a Task naming the family waits for it instead of reporting it unknown."""
    return {(namespace, spec.get("family") or name): {"pending": status.get("observedGeneration") != meta.get("generation")}}


@kopf.on.resume(*TASK_DEFINITIONS)
@kopf.on.create(*TASK_DEFINITIONS)
@kopf.on.update(*TASK_DEFINITIONS, field="spec")
@kopf_callback
def register(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status,
             patch: kopf.Patch, memo: Any, revisions: kopf.Index, **_: Any) -> None:
    settings, kube = memo.settings, memo.kube
    current = {k: v for k, v in status.items() if k != "kopf"}
    generation = body.metadata.get("generation")
    reason = "InvalidTaskDefinition"
    try:
        model = TaskDefinitionSpec.model_validate(dict(spec))
    except ValidationError as e:
        problems = problems_from_validation_error(e)
    else:
        problems = registration_problems(model)
        if not problems:
            policy = workload_policy(memo, namespace)
            problems, reason = policy_violations(model.ecs_part(), model.kubernetes, policy), POLICY_REFUSED
    if problems:
        message = problems_text(problems)
        wanted = {**current, "observedGeneration": generation,
                  "conditions": ready(current, body, False, reason, message)}
        if wanted["conditions"] != current.get("conditions"):
            log(body, logging.WARNING, reason, message)
        patch.status.update(_changes(current, wanted))
        return

    family = model.family or name
    content = revision_content(model, family)
    existing = stored(revisions.get((namespace, family), []))
    number = next_revision(existing, content)
    if number is not None and (refused := pod_refusals(kube, model, family, namespace)):
        message = problems_text(refused)
        wanted = {**current, "observedGeneration": generation,
                  "conditions": ready(current, body, False, "InvalidTaskDefinition", message)}
        if wanted["conditions"] != current.get("conditions"):
            log(body, logging.WARNING, "InvalidTaskDefinition", message)
        patch.status.update(_changes(current, wanted))
        return
    if number is not None:
        try:
            existing = [*existing, _register(kube, body, name, namespace, family, number, content)]
        except OwnershipConflict as e:  # the revision's name is held by a ControllerRevision not ours
            message = conflicts_text([conflict("metadata.name", e.existing)], "TaskDefinition")
            wanted = {**current, "observedGeneration": generation,
                      "conditions": ready(current, body, False, CONFLICT_REASON, message)}
            patch.status.update(_changes(current, wanted))
            return

    wanted = {**current, **_describe(settings, model, family, existing), "observedGeneration": generation}
    for state, reason in (("INACTIVE", "Deregistered"), ("DELETE_IN_PROGRESS", "Deleted")):
        for revision in sorted(r["revision"] for r in wanted["revisions"] if r["status"] == state
                               and r["revision"] not in _in_state(current, state)):
            notify(body, type="Normal", reason=reason, message=f"task definition {family}:{revision} is {state}")
    latest = existing[-1].revision
    wanted["conditions"] = ready(current, body, True, "Registered", f"{family}:{latest} is registered")
    patch.status.update(_changes(current, wanted))


def pod_refusals(kube: Any, model: TaskDefinitionSpec, family: str, namespace: str) -> list[Problem]:
    """What the API server refuses in the revision's Pod (server-side dry-run: the checks pod_checks does
    not know, e.g. of a newer Kubernetes), each named by its ECS field."""
    rev = Revision(family, 1, model.ecs_part(), model.kubernetes)
    template = pod_template(rev, for_service=False).template
    pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"],
           "metadata": {**template["metadata"], "generateName": "registration-check-", "namespace": namespace}}
    return [Problem(ecs_field(rev.definition, template, field), message)
            for field, message in kube.dry_run_refusals(pod)]


def _refused_for_now(status: kopf.Status, **_: Any) -> bool:
    return any(c.get("type") == "Ready" and c.get("reason") in (POLICY_REFUSED, CONFLICT_REASON)
               for c in status.get("conditions") or [])


@kopf.timer(*TASK_DEFINITIONS, id="retry_policy_refusal", interval=POLICY_RETRY_SECONDS, when=_refused_for_now)
def retry_policy_refusal(**kwargs: Any) -> None:
    """A revision the workload policy refused registers once the namespace opts in (a label
    change is no event of the TaskDefinition's); one whose name was taken, once that object is gone."""
    register(**kwargs)


def _register(kube: Any, body: kopf.Body, name: str, namespace: str, family: str, number: int,
              content: dict[str, Any]) -> StoredRevision:
    """Store revision `number` (immutable); a concurrent registration of the same number is retried."""
    registered_at = now().strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {"family": family, "hash": content_hash(content), "content": content, "registeredAt": registered_at}
    revision = {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{name}-{number}",
            "namespace": namespace,
            "labels": {REVISION_KIND_LABEL: L.group_label_value(name), L.FAMILY: L.group_label_value(family),
                       L.REVISION: str(number), L.MANAGED_BY: L.MANAGED_BY_VALUE},
            "ownerReferences": [{**owner_reference(body), "controller": True, "blockOwnerDeletion": True}],
        },
        "revision": number,
        "data": data,
    }
    created, fresh = kube.create(revision)
    if not fresh and created["data"]["hash"] != data["hash"]:
        raise kopf.TemporaryError(f"revision {number} of {family} was registered concurrently; retrying", delay=1)
    if fresh:
        notify(body, type="Normal", reason="Registered", message=f"registered task definition {family}:{number}")
    return stored([{"revision": number, "data": created["data"]}])[0]


def revision_status(model: TaskDefinitionSpec, revision: int) -> str:
    """ACTIVE, INACTIVE (deregistered) or DELETE_IN_PROGRESS (deleted)."""
    kubernetes = model.kubernetes
    if kubernetes and revision in (kubernetes.deletedRevisions or []):
        return "DELETE_IN_PROGRESS"
    return "INACTIVE" if kubernetes and revision in (kubernetes.deregisteredRevisions or []) else "ACTIVE"


def _describe(settings: Settings, model: TaskDefinitionSpec, family: str, existing: list[StoredRevision]) -> dict[str, Any]:
    """describe-task-definition's view of the family: latest revision, ARNs, statuses, fidelity."""
    latest = existing[-1]
    translation = pod_template(latest.as_revision(settings), for_service=False, region=settings.region)
    entries = translation.report.entries(latest.content["taskDefinition"])
    launch_types = compatibilities(model)
    return {
        "family": family,
        "revision": latest.revision,
        "taskDefinition": f"{family}:{latest.revision}",
        "taskDefinitionArn": task_definition_arn(settings, family, latest.revision),
        "status": revision_status(model, latest.revision),
        "revisions": [
            {
                "revision": r.revision,
                "status": revision_status(model, r.revision),
                "registeredAt": r.registeredAt,
                "taskDefinitionArn": task_definition_arn(settings, family, r.revision),
            }
            for r in existing[-MAX_LISTED_REVISIONS:]
        ],
        "compatibilities": launch_types,
        "compatibilitiesText": ",".join(launch_types),
        "fidelity": {**summarize(entries), "fields": [e.to_json() for e in entries if e.verdict != "exact"],
                     **ignored_read_only(model)},
    }


def _in_state(status: dict[str, Any], state: str) -> set[int]:
    return {r["revision"] for r in status.get("revisions") or [] if r.get("status") == state}


def _changes(current: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The status fields to patch: none at all when nothing changed (a resume writes nothing)."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}
