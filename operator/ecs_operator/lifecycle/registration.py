"""A TaskDefinition's round (RegisterTaskDefinition on Kubernetes): each change of spec registers a new
immutable revision; describe-task-definition's view of the family; deregistered and deleted revisions
(docs/ecs-semantics.md §Task definition revisions). Pure: the handler observes and acts.

Nothing is half-applied: a spec that fails ECS's rules or the namespace's workload policy registers no
revision (Ready False naming the field, one Warning Event).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ecs_operator.arns import task_definition_arn
from ecs_operator.models import TaskDefinitionSpec, problems_from_validation_error
from ecs_operator.models.rules import compatibilities
from ecs_operator.ownership import CONFLICT_REASON
from ecs_operator.registry import StoredRevision, content_hash, next_revision, revision_content
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import ignored_read_only, summarize
from ecs_operator.translate.pod import pod_template
from ecs_operator.translate.pod_checks import registration_problems
from ecs_operator.translate.policy import WorkloadPolicy, policy_violations

from .conditions import Notify, ready

MAX_LISTED_REVISIONS = 50
POLICY_REFUSED = "RefusedByWorkloadPolicy"
"""Ready reason of a TaskDefinition the workload policy refused (a later opt-in of the namespace registers it)."""
RETRY_SECONDS = 10.0
"""A refusal that may end without a change of the TaskDefinition (the namespace opting in, a revision's name
freed) is looked at again this often."""


@dataclass(frozen=True)
class Observed:
    body: dict[str, Any]
    """The TaskDefinition, its status as this process wrote it last."""
    revisions: tuple[StoredRevision, ...]
    """The family's registered revisions, oldest first."""
    policy: WorkloadPolicy
    settings: Settings


@dataclass(frozen=True)
class Register:
    """Store revision `number` of `family` (a ControllerRevision the TaskDefinition controls)."""

    family: str
    number: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    register: Register | None
    """The revision to store first; the handler then plans again with it stored."""
    events: tuple[Notify, ...]
    status: dict[str, Any]
    requeue_after: float | None


def plan_task_definition(observed: Observed, now: datetime) -> Plan:
    body = observed.body
    current = body.get("status") or {}
    name = body["metadata"]["name"]
    try:
        model = TaskDefinitionSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        return refused(observed, "InvalidTaskDefinition", "; ".join(str(p) for p in problems_from_validation_error(e)), now)
    problems = registration_problems(model)
    if problems:
        return refused(observed, "InvalidTaskDefinition", "; ".join(str(p) for p in problems), now)
    violations = policy_violations(model.ecs_part(), model.kubernetes, observed.policy)
    if violations:
        return refused(observed, POLICY_REFUSED, "; ".join(str(p) for p in violations), now)

    family = model.family or name
    content = revision_content(model, family)
    existing = list(observed.revisions)
    number = next_revision(existing, content)
    if number is not None:
        data = {"family": family, "hash": content_hash(content), "content": content,
                "registeredAt": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return Plan(Register(family, number, data), (), current, None)

    status = {**current, **describe(observed.settings, model, family, existing),
              "observedGeneration": body["metadata"].get("generation")}
    events: list[Notify] = []
    for state, reason in (("INACTIVE", "Deregistered"), ("DELETE_IN_PROGRESS", "Deleted")):
        for revision in sorted(r["revision"] for r in status["revisions"] if r["status"] == state
                               and r["revision"] not in _in_state(current, state)):
            events.append(Notify("Normal", reason, f"task definition {family}:{revision} is {state}"))
    latest = existing[-1].revision
    status["conditions"], warnings = ready(current, body, True, "Registered", f"{family}:{latest} is registered", now)
    return Plan(None, (*events, *warnings), status, None)


def refused(observed: Observed, reason: str, message: str, now: datetime) -> Plan:
    """Nothing registered; Ready False says why (one Warning Event per new reason or message). A refusal
    that can end by itself (policy, a name taken) is looked at again."""
    body = observed.body
    current = body.get("status") or {}
    conditions, events = ready(current, body, False, reason, message, now)
    status = {**current, "observedGeneration": body["metadata"].get("generation"), "conditions": conditions}
    return Plan(None, events, status, RETRY_SECONDS if reason in (POLICY_REFUSED, CONFLICT_REASON) else None)


def revision_status(model: TaskDefinitionSpec, revision: int) -> str:
    """ACTIVE, INACTIVE (deregistered) or DELETE_IN_PROGRESS (deleted)."""
    kubernetes = model.kubernetes
    if kubernetes and revision in (kubernetes.deletedRevisions or []):
        return "DELETE_IN_PROGRESS"
    return "INACTIVE" if kubernetes and revision in (kubernetes.deregisteredRevisions or []) else "ACTIVE"


def describe(settings: Settings, model: TaskDefinitionSpec, family: str, existing: list[StoredRevision]) -> dict[str, Any]:
    """describe-task-definition's view of the family: latest revision, ARNs, statuses, fidelity."""
    latest = existing[-1]
    translation = pod_template(latest.as_revision(settings), for_service=False, storage=settings.storage_classes)
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
