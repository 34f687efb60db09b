"""More of `ecs-operator api` on the real control plane: every answer of a pipeline over all the
operations served validated against botocore's output shapes, pagination, and the operations beyond
the first ones (cluster settings, task definition families, service deployments...), each checked
against what `kubectl get` shows.

The API process and its keys are test_ecs_api's `api` fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import botocore.session
import pytest

from ecs_operator.api.operations import load
from ecs_operator.api.shapes import output_problems
from test_ecs_api import ARN, FAST, Api, api, container, kubectl_get  # noqa: F401  (api: the fixture)

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")
ECS_MODEL = botocore.session.get_session().get_service_model("ecs")


class Recorder:
    """Every successful answer a client got, as sent (JSON, before botocore parses it)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, http_response: Any, model: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            self.answers.append((model.name, json.loads(http_response.content)))

    def problems(self) -> list[str]:
        return [f"{name}: {p}" for name, answer in self.answers
                for p in output_problems(answer, ECS_MODEL.operation_model(name).output_shape)]


@pytest.fixture
def recorded(api: Api) -> Iterator[tuple[Any, Recorder]]:
    """A boto3 client whose every answer is recorded, and the recorder (validated after the test)."""
    ecs, recorder = api.client(), Recorder()
    ecs.meta.events.register("after-call.ecs", recorder)
    yield ecs, recorder
    assert recorder.problems() == []


def test_every_operation_answers_within_botocores_output_shapes(sandbox: Cluster, namespace: str,
                                                               recorded: tuple[Any, Recorder]) -> None:
    ecs, recorder = recorded
    ecs.create_cluster(clusterName="default", tags=[{"key": "team", "value": "a"}])
    ecs.describe_clusters(clusters=["default", "missing"], include=["TAGS"])
    ecs.list_clusters()
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.28"))
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.29"))
    ecs.describe_task_definition(taskDefinition="web:1", include=["TAGS"])
    ecs.list_task_definitions(familyPrefix="w")
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web:1", desiredCount=1)
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    ecs.update_service(cluster="default", service="web", taskDefinition="web:2")
    ecs.describe_services(cluster="default", services=["web", "missing"], include=["TAGS"])
    ecs.list_services(cluster="default")
    (task,) = ecs.run_task(cluster="default", taskDefinition="web:2")["tasks"]
    ecs.get_waiter("tasks_running").wait(cluster="default", tasks=[task["taskArn"]], WaiterConfig=FAST)
    ecs.list_tasks(cluster="default")
    ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default")["taskArns"], include=["TAGS"])
    ecs.stop_task(cluster="default", task=task["taskArn"])
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[task["taskArn"]], WaiterConfig=FAST)
    ecs.delete_service(cluster="default", service="web", force=True)
    ecs.deregister_task_definition(taskDefinition="web:1")
    ecs.create_cluster(clusterName="spare")
    ecs.delete_cluster(cluster="spare")
    assert recorder.problems() == []
    assert sorted(set(load()) - {name for name, _ in recorder.answers}) == []


def test_list_operations_page_with_max_results_and_next_token(namespace: str, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    names = [f"c{i}" for i in range(5)]
    for name in names:
        ecs.create_cluster(clusterName=name)
    first = ecs.list_clusters(maxResults=2)
    assert first["clusterArns"] == [f"{ARN}:cluster/c0", f"{ARN}:cluster/c1"] and first["nextToken"]
    pages = ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2})
    assert [arn for page in pages for arn in page["clusterArns"]] == [f"{ARN}:cluster/{n}" for n in names]
    last = ecs.list_clusters(maxResults=2, nextToken=ecs.list_clusters(maxResults=4)["nextToken"])
    assert last["clusterArns"] == [f"{ARN}:cluster/c4"] and "nextToken" not in last
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_clusters(nextToken="not-a-token")
    for family in ("a", "b", "c"):
        ecs.register_task_definition(family=family, containerDefinitions=container("nginx:1.29"))
    pages = ecs.get_paginator("list_task_definitions").paginate(PaginationConfig={"PageSize": 2})
    assert [arn.rsplit("/", 1)[-1] for page in pages for arn in page["taskDefinitionArns"]] == ["a:1", "b:1", "c:1"]
    for operation, key, args in (("list_services", "serviceArns", {"cluster": "c0"}), ("list_tasks", "taskArns", {"cluster": "c0"})):
        assert [x for page in ecs.get_paginator(operation).paginate(**args, PaginationConfig={"PageSize": 1}) for x in page[key]] == []
