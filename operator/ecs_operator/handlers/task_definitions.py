"""TaskDefinition: each change of spec registers a new immutable revision (a ControllerRevision)."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.arns import task_definition_arn
from ecs_operator.models import TaskDefinitionSpec, problems_from_validation_error, validate
from ecs_operator.models.rules import compatibility_findings
from ecs_operator.registry import content_hash, next_revision, revision_content, stored
from ecs_operator.translate.fidelity import summarize
from ecs_operator.translate.pod import Revision, pod_template
from ecs_operator.translate.policy import policy_violations

from .common import now, owner_reference, problems_text, ready
from .namespaces import allowed_features
from .resources import TASK_DEFINITIONS
from .setup import REVISION_KIND_LABEL

MAX_LISTED_REVISIONS = 50


@kopf.on.resume(*TASK_DEFINITIONS)
@kopf.on.create(*TASK_DEFINITIONS)
@kopf.on.update(*TASK_DEFINITIONS, field="spec")
def register(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status,
             patch: kopf.Patch, memo: Any, revisions: kopf.Index, **_: Any) -> None:
    settings, kube = memo.settings, memo.kube
    try:
        model = TaskDefinitionSpec.model_validate(dict(spec))
    except ValidationError as e:
        problems = problems_from_validation_error(e)
    else:
        problems = validate(model) or policy_violations(model.ecs_part(), allowed_features(kube, namespace, settings))
    if problems:
        patch.status["conditions"] = ready(status, body, False, "InvalidTaskDefinition", problems_text(problems))
        return

    family = model.family or name
    content = revision_content(model, family)
    existing = stored(revisions.get((namespace, family), []))
    number = next_revision(existing, content)
    if number is not None:
        registered_at = now().strftime("%Y-%m-%dT%H:%M:%SZ")
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
            "data": {"family": family, "hash": content_hash(content), "content": content, "registeredAt": registered_at},
        }
        created, fresh = kube.create(revision)
        if not fresh and created["data"]["hash"] != content_hash(content):
            raise kopf.TemporaryError(f"revision {number} of {family} was registered concurrently; retrying", delay=1)
        kopf.event(body, type="Normal", reason="Registered", message=f"registered task definition {family}:{number}")
        existing = [*existing, *stored([{"revision": number, "data": revision["data"]}])]

    deregistered = set((model.kubernetes.deregisteredRevisions if model.kubernetes else None) or [])
    latest = existing[-1]
    translation = pod_template(latest.as_revision(settings), for_service=False, region=settings.region)
    entries = translation.report.entries(latest.content["taskDefinition"])
    compatibilities = [lt for lt in ("EC2", "EXTERNAL", "FARGATE") if not list(compatibility_findings(model.ecs_part(), lt))]
    patch.status.update({
        "family": family,
        "revision": latest.revision,
        "taskDefinition": f"{family}:{latest.revision}",
        "taskDefinitionArn": task_definition_arn(settings, family, latest.revision),
        "status": "INACTIVE" if latest.revision in deregistered else "ACTIVE",
        "revisions": [
            {
                "revision": r.revision,
                "status": "INACTIVE" if r.revision in deregistered else "ACTIVE",
                "registeredAt": r.registeredAt,
                "taskDefinitionArn": task_definition_arn(settings, family, r.revision),
            }
            for r in existing[-MAX_LISTED_REVISIONS:]
        ],
        "compatibilities": compatibilities,
        "compatibilitiesText": ",".join(compatibilities),
        "fidelity": {**summarize(entries), "fields": [e.to_json() for e in entries if e.verdict != "exact"]},
        "observedGeneration": body.metadata.get("generation"),
        "conditions": ready(status, body, True, "Registered", f"{family}:{latest.revision} is registered"),
    })
