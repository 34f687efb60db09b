"""A task's tags: propagated, own and managed ones (translate/tags.py; docs/ecs-semantics.md §Task tags)."""

from __future__ import annotations

import pytest

from ecs_operator.models import TaskSpec
from ecs_operator.models.common import Tag
from ecs_operator.models.rules import validate
from ecs_operator.translate.tags import annotated_tags, task_tags

DEFINITION = [Tag(key="app", value="web"), Tag(key="team", value="a")]
SERVICE = [Tag(key="tier", value="front")]


def keys(tags: list[Tag]) -> list[tuple[str | None, str | None]]:
    return [(t.key, t.value) for t in tags]


@pytest.mark.parametrize(("propagate", "expected"), [
    (None, []),
    ("NONE", []),
    ("TASK_DEFINITION", [("app", "web"), ("team", "a")]),
    ("SERVICE", [("tier", "front")]),
])
def test_only_what_propagateTags_names_is_propagated(propagate: str | None, expected: list[tuple[str, str]]) -> None:
    tags = task_tags(own=None, propagate=propagate, definition=DEFINITION, service=SERVICE, managed=False, cluster="c")
    assert keys(tags) == expected


def test_the_tasks_own_tag_wins_over_a_propagated_one() -> None:
    tags = task_tags(own=[Tag(key="team", value="b")], propagate="TASK_DEFINITION", definition=DEFINITION,
                     managed=None, cluster="c")
    assert keys(tags) == [("app", "web"), ("team", "b")]


def test_managed_tags_name_the_cluster_and_a_services_name() -> None:
    standalone = task_tags(own=None, propagate=None, definition=DEFINITION, managed=True, cluster="prod")
    assert keys(standalone) == [("aws:ecs:clusterName", "prod")]
    service = task_tags(own=None, propagate="SERVICE", definition=None, service=SERVICE, managed=True, cluster="prod",
                        service_name="web")
    assert keys(service) == [("tier", "front"), ("aws:ecs:clusterName", "prod"), ("aws:ecs:serviceName", "web")]


def test_the_pod_annotation_gives_back_the_definitions_tags() -> None:
    assert keys(annotated_tags({"ecs.operator.dev/tags": '{"app": "web"}'})) == [("app", "web")]
    assert annotated_tags({"ecs.operator.dev/tags": "not json"}) == []
    assert annotated_tags({}) == []


def test_run_task_refuses_propagating_the_services_tags() -> None:
    problems = validate(TaskSpec(taskDefinition="web", propagateTags="SERVICE"))
    assert [(p.path, "SERVICE" in p.message) for p in problems] == [("propagateTags", True)]
    assert validate(TaskSpec(taskDefinition="web", propagateTags="TASK_DEFINITION")) == []
