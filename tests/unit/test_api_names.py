"""How the API names things: ARNs and short names as input, ECS names as Kubernetes resource names,
ECS's nextToken pages."""

from __future__ import annotations

import pytest

from ecs_operator.api.account import kube_name, paginate
from ecs_operator.api.errors import ApiError
from ecs_operator.arns import cluster_arn, parse_ref, service_arn, task_arn
from ecs_operator.settings import Settings

SETTINGS = Settings()


def test_every_arn_the_api_returns_parses_back() -> None:
    assert parse_ref(cluster_arn(SETTINGS, "default"), "cluster") == ["default"]
    assert parse_ref(service_arn(SETTINGS, "default", "web"), "service") == ["default", "web"]
    assert parse_ref(task_arn(SETTINGS, "default", "0123abcd"), "task") == ["default", "0123abcd"]
    assert parse_ref("arn:aws:ecs:us-east-1:123456789012:service/web", "service") == ["web"]  # ECS's old short format
    assert parse_ref("web", "service") == ["web"]


@pytest.mark.parametrize("ref", ["arn:aws:ecs:us-east-1:000000000000:service/default/web", "arn:aws:ecs:us-east-1:0:cluster/"])
def test_an_arn_of_another_kind_is_refused(ref: str) -> None:
    with pytest.raises(ValueError):
        parse_ref(ref, "cluster")


def test_kubernetes_names_for_ecs_names() -> None:
    assert kube_name("web") == "web"
    odd = kube_name("Batch_Job")
    assert odd.startswith("batch-job-") and odd != kube_name("batch_Job") and len(odd) <= 63
    assert len(kube_name("A" * 255)) <= 63
    assert kube_name("_").startswith("x-")


def test_pages_follow_next_tokens_to_the_end() -> None:
    items = list(range(25))
    seen, token = [], None
    while True:
        page, token = paginate(items, 10, token)
        seen += page
        if token is None:
            break
    assert seen == items
    with pytest.raises(ApiError) as raised:
        paginate(items, 10, "not-a-token")
    assert raised.value.code == "InvalidParameterException"
