"""Task definition revisions: what a reference (family, family:revision, ARN) names, and what a
registration adds. Pure: the handlers pass in what the indexes hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ecs_operator.arns import parse_task_definition_ref, task_definition_arn
from ecs_operator.models import RegisterTaskDefinition, TaskDefinitionSpec
from ecs_operator.models.task_definition import TaskDefinitionKubernetes
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision


def revision_content(spec: TaskDefinitionSpec, family: str) -> dict[str, Any]:
    """What a revision records: the ECS definition (family filled in) and the Pod-shaping extension.

    Deregistration and deletion are not part of a revision: changing them registers nothing.
    """
    ecs = spec.ecs_part().to_json()
    ecs["family"] = family
    states = {"deregisteredRevisions", "deletedRevisions"}
    kubernetes = spec.kubernetes.model_dump(mode="json", exclude_none=True, exclude=states) if spec.kubernetes else {}
    return {"taskDefinition": ecs, "kubernetes": kubernetes}


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StoredRevision:
    revision: int
    family: str
    hash: str
    content: dict[str, Any]
    registeredAt: str

    def as_revision(self, settings: Settings) -> Revision:
        kubernetes = self.content.get("kubernetes") or {}
        return Revision(
            family=self.family,
            revision=self.revision,
            definition=RegisterTaskDefinition.model_validate(self.content["taskDefinition"]),
            kubernetes=TaskDefinitionKubernetes.model_validate(kubernetes) if kubernetes else None,
            arn=task_definition_arn(settings, self.family, self.revision),
        )


def stored(entries: Iterable[dict[str, Any]]) -> list[StoredRevision]:
    """Index entries (ControllerRevision data) as revisions, oldest first."""
    out = [
        StoredRevision(
            revision=int(e["revision"]),
            family=e["data"]["family"],
            hash=e["data"]["hash"],
            content=e["data"]["content"],
            registeredAt=e["data"].get("registeredAt", ""),
        )
        for e in entries
    ]
    return sorted(out, key=lambda r: r.revision)


def next_revision(existing: list[StoredRevision], content: dict[str, Any]) -> int | None:
    """The revision number to register for `content`, or None when the latest already holds it.

    ECS registers a new revision on every change and never reuses numbers.
    """
    if existing and existing[-1].hash == content_hash(content):
        return None
    return (existing[-1].revision if existing else 0) + 1


class UnknownTaskDefinition(Exception):
    """A task definition reference that names nothing usable (the message says why, ECS-style)."""


def resolve(ref: str, revisions: list[StoredRevision], deregistered: set[int], allow_inactive: bool = False) -> StoredRevision:
    """`family` -> the latest ACTIVE revision; `family:N` and the ARN -> that one, refused if INACTIVE
    (unless `allow_inactive`: what already runs on a revision keeps running after deregistration)."""
    try:
        family, number = parse_task_definition_ref(ref)
    except ValueError as e:
        raise UnknownTaskDefinition(str(e)) from None
    if not revisions:
        raise UnknownTaskDefinition(f"Unable to find task definition {ref!r}: no revision of family {family!r} is registered")
    if number is None:
        active = [r for r in revisions if r.revision not in deregistered]
        if not active:
            raise UnknownTaskDefinition(f"task definition family {family!r} has no ACTIVE revision")
        return active[-1]
    found = next((r for r in revisions if r.revision == number), None)
    if found is None:
        raise UnknownTaskDefinition(f"Unable to find task definition {family}:{number}: "
                                    f"latest revision is {revisions[-1].revision}")
    if number in deregistered and not allow_inactive:
        raise UnknownTaskDefinition(f"TaskDefinition {family}:{number} is inactive (deregistered): new tasks cannot use it")
    return found
