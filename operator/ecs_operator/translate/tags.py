"""The tags a task carries: its own, those propagated from its task definition or service, and ECS's
managed tags (docs/ecs-semantics.md §Task tags). A task's Pods carry its task definition's tags as one
JSON annotation (fixed per revision, so a service's tag change restarts nothing); the ECS API reports a
task's tags by these rules when asked (DescribeTasks include TAGS, ListTagsForResource)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from ecs_operator import labels as L
from ecs_operator.models.common import Tag

TAGS_ANNOTATION = f"{L.API_GROUP}/tags"
MANAGED_CLUSTER = "aws:ecs:clusterName"
MANAGED_SERVICE = "aws:ecs:serviceName"


def task_tags(
    *,
    own: Sequence[Tag] | None,
    propagate: str | None,
    definition: Sequence[Tag] | None,
    service: Sequence[Tag] | None = None,
    managed: bool | None,
    cluster: str,
    service_name: str = "",
) -> list[Tag]:
    """The task's tags: those propagated first (propagateTags: TASK_DEFINITION or SERVICE; none by default),
    then its own, a key given twice keeping the later value; with enableECSManagedTags, ECS's
    aws:ecs:clusterName and, for a service's task, aws:ecs:serviceName."""
    source = {"TASK_DEFINITION": definition, "SERVICE": service}.get(propagate or "NONE") or []
    merged = {t.key: t.value for t in [*source, *(own or [])] if t.key}
    if managed:
        merged[MANAGED_CLUSTER] = cluster
        if service_name:
            merged[MANAGED_SERVICE] = service_name
    return [Tag(key=k, value=v) for k, v in merged.items()]


def annotated_tags(annotations: dict[str, str]) -> list[Tag]:
    """The task definition's tags a Pod's annotation holds."""
    try:
        held = json.loads(annotations.get(TAGS_ANNOTATION) or "{}")
    except ValueError:
        return []
    return [Tag(key=k, value=v) for k, v in held.items()] if isinstance(held, dict) else []
