"""Every registered operation's answer, from its real handler over an in-memory Kubernetes with the
operator's status already written, is valid for botocore's output shape: the right JSON types, enum
values and required members. botocore validates only requests; a wrong answer would surface as a
client's parse error or a KeyError in Terraform, so it is checked here for each operation."""

from __future__ import annotations

import asyncio
import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError as KubeError
from ecs_operator.api import capacity_providers, clusters, services, task_definitions, tasks
from ecs_operator.api.account import Account
from ecs_operator.api.operations import load
from ecs_operator.api.shapes import check_input, operation_model, output_problems, shape_output
from ecs_operator.arns import cluster_arn, service_arn, task_arn, task_definition_arn
from ecs_operator.lifecycle.task_state import new_record, observe
from ecs_operator.settings import Settings

SETTINGS = Settings()
NOW = "2026-01-02T03:04:05Z"
DEFINITION = {"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 128}]}
DEPLOYMENT = {"id": "ecs-svc/1111", "status": "PRIMARY", "taskDefinition": "web:1", "configKey": "k", "desiredCount": 1,
              "runningCount": 1, "pendingCount": 0, "failedTasks": 0, "rolloutState": "COMPLETED",
              "rolloutStateReason": "", "createdAt": NOW, "updatedAt": NOW}
PAUSED = {**DEPLOYMENT, "id": "ecs-svc/2222", "status": "ACTIVE", "rolloutState": "IN_PROGRESS", "lifecycleStage": "POST_SCALE_UP",
          "hookRuns": [{"hookId": "0123456789abcdef0123", "gate": "POST_SCALE_UP", "stage": "POST_SCALE_UP", "index": 0,
                        "targetType": "PAUSE", "status": "AWAITING_ACTION", "startedAt": NOW, "expiresAt": NOW,
                        "timeoutAction": "ROLLBACK"}]}
"""A deployment waiting at a PAUSE lifecycle hook (ContinueServiceDeployment)."""


def pod(name: str, service: str | None) -> dict[str, Any]:
    labels = {L.SERVICE: L.group_label_value(service), L.CLUSTER: "default", L.DEPLOYMENT: "1111", L.LAUNCH_TYPE: "EC2"} if service else {}
    return {"kind": "Pod", "metadata": {"name": name, "uid": f"{name}-0000-0000-0000-000000000000"[:36], "labels": labels,
                                        "annotations": {L.TASK_DEFINITION_ARN: task_definition_arn(SETTINGS, "web", 1)},
                                        "creationTimestamp": NOW},
            "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            "status": {"phase": "Running", "startTime": NOW, "containerStatuses": [
                {"name": "web", "ready": True, "restartCount": 0, "image": "nginx", "state": {"running": {"startedAt": NOW}}}]}}


def task_status(name: str) -> dict[str, Any]:
    """A Task resource's status as the operator writes it once its Pod runs."""
    arn = task_arn(SETTINGS, "default", name.replace("-", ""))
    record = observe(pod(name, None), new_record(name, arn), datetime.now(timezone.utc)).to_json()
    return {"observedGeneration": 1, "clusterArn": cluster_arn(SETTINGS, "default"), "launchType": "EC2",
            "taskDefinitionArn": task_definition_arn(SETTINGS, "web", 1), "tasks": [record],
            "conditions": [{"type": "Ready", "status": "True"}]}


def instance_status(node: str, namespace: str | None) -> dict[str, Any]:
    """A ContainerInstance's status as the operator writes it for a Node of cluster `default` (namespace None: shared)."""
    resources = [{"name": "CPU", "type": "INTEGER", "integerValue": 2048}, {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680},
                 {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22"]}]
    return {"clusterName": "default", "clusterNamespace": namespace, "sharedInstance": namespace is None, "ec2InstanceId": node,
            "containerInstanceArn": f"arn:aws:ecs:us-east-1:000000000000:container-instance/default/{node}", "status": "ACTIVE",
            "agentConnected": True, "registeredResources": resources, "remainingResources": resources, "remainingCpu": 2048,
            "remainingMemory": 7680, "runningTasksCount": 0, "pendingTasksCount": 0, "registeredAt": NOW,
            "attributes": [{"name": "ecs.instance-type", "value": "m5.large"}, {"name": "ecs.capability.docker-remote-api.1.17"}]}


STATUS: dict[str, Any] = {
    "Cluster": lambda obj: {"status": "ACTIVE", "clusterArn": cluster_arn(SETTINGS, obj["spec"]["clusterName"]),
                            "registeredContainerInstancesCount": 1, "runningTasksCount": 1, "pendingTasksCount": 0,
                            "activeServicesCount": 1, "observedGeneration": 1},
    "TaskDefinition": lambda obj: {"observedGeneration": 1, "revision": 1, "taskDefinitionArn": task_definition_arn(SETTINGS, "web", 1),
                                   "revisions": [{"revision": 1, "status": "ACTIVE", "registeredAt": NOW}],
                                   "compatibilities": ["EC2"], "conditions": [{"type": "Ready", "status": "True"}]},
    "Service.ecs": lambda obj: {"observedGeneration": 1, "deploymentTrigger": "t", "status": "ACTIVE", "taskDefinition": "web:1",
                                "runningCount": 1, "pendingCount": 0, "rolloutState": "COMPLETED", "deployments": [DEPLOYMENT, PAUSED],
                                "events": [{"id": "e1", "createdAt": NOW, "message": "(service web) has reached a steady state."}],
                                "serviceArn": service_arn(SETTINGS, "default", "web"), "fidelity": {"summary": "exact"}},
    "Task": lambda obj: task_status(obj["metadata"]["name"]),
    "CapacityProvider": lambda obj: {"name": obj["spec"].get("name") or obj["metadata"]["name"], "status": "ACTIVE",
                                     "type": "EC2_AUTOSCALING", "updateStatus": "CREATE_COMPLETE",
                                     "autoScalingGroupProvider": {"managedScaling": {"status": "ENABLED", "targetCapacity": 100},
                                                                  "managedTerminationProtection": "DISABLED"}},
}
"""What the operator writes into each kind's status (written here at once: no handler waits)."""


class FakeKube:
    """One namespace of custom resources in memory; a write keeps generation 1 and gets the operator's status."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}

    @staticmethod
    def _kind(obj: dict[str, Any]) -> str:
        return "Service.ecs" if obj["kind"] == "Service" else obj["kind"]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.objects.get((kind, name)))

    def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for (k, _), o in sorted(self.objects.items()) if k == kind]

    def create(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        kind = self._kind(obj)
        if (kind, obj["metadata"]["name"]) in self.objects:
            raise KubeError(409, "AlreadyExists", f"{kind} {obj['metadata']['name']} already exists")
        obj = copy.deepcopy(obj)
        obj["metadata"].update(generation=1, creationTimestamp=NOW, uid="u-" + obj["metadata"]["name"])
        if kind in STATUS:
            obj["status"] = STATUS[kind](obj)
        self.objects[(kind, obj["metadata"]["name"])] = obj
        return copy.deepcopy(obj), True

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.objects[(self._kind(obj), obj["metadata"]["name"])] = copy.deepcopy(obj)
        return obj

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        obj = self.objects.get((kind, name))
        if obj is None:
            return None
        for key, value in patch.items():
            obj[key] = {**(obj.get(key) or {}), **value}
        return copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        return self.objects.pop((kind, name), None) is not None


def seeded() -> FakeKube:
    """A cluster `default` with the task definition `web` (revision 1), the service `web` and one RunTask task;
    capacity providers of team-a alone (`own`), of everyone (`shared`) and of team-b alone (`theirs`)."""
    kube = FakeKube()
    kube.create({"kind": "Cluster", "metadata": {"name": "default"}, "spec": {"clusterName": "default", "tags": [{"key": "a", "value": "b"}],
                                                                                 "serviceConnectDefaults": {"namespace": "apps"}}})
    kube.create({"kind": "TaskDefinition", "metadata": {"name": "web"}, "spec": DEFINITION})
    kube.create({"kind": "ControllerRevision", "metadata": {"name": "web-1"}, "data": {"content": {"taskDefinition": DEFINITION}}})
    kube.create({"kind": "Service", "metadata": {"name": "web"},
                 "spec": {"serviceName": "web", "cluster": "default", "taskDefinition": "web:1", "desiredCount": 1,
                                                                     "serviceConnectConfiguration": {"enabled": True}}})
    kube.create({"kind": "Task", "metadata": {"name": "web-0123"}, "spec": {"cluster": "default", "taskDefinition": "web:1"}})
    kube.create(pod("web-abcd", "web"))
    for node, namespace in (("node-own", "team-a"), ("node-shared", None), ("node-other", "team-b")):
        kube.objects[("ContainerInstance", node)] = {"kind": "ContainerInstance", "metadata": {"name": node}, "spec": {},
                                                     "status": instance_status(node, namespace)}
    kube.create({"kind": "CapacityProvider", "metadata": {"name": "own"}, "spec": {"kubernetes": {"allowedNamespaces": ["team-a"]}}})
    kube.create({"kind": "CapacityProvider", "metadata": {"name": "shared"}, "spec": {"kubernetes": {"allowedNamespaces": ["*"]}}})
    kube.create({"kind": "CapacityProvider", "metadata": {"name": "theirs"}, "spec": {"kubernetes": {"allowedNamespaces": ["team-b"]}}})
    return kube


def task_id() -> str:
    return str(task_status("web-0123")["tasks"][0]["taskArn"]).rsplit("/", 1)[-1]


REQUESTS: dict[str, dict[str, Any]] = {
    "CreateCluster": {"clusterName": "other", "tags": [{"key": "k", "value": "v"}]},
    "DescribeClusters": {"clusters": ["default", "missing"], "include": ["TAGS"]},
    "ListClusters": {"maxResults": 1},
    "DeleteCluster": {"cluster": "default"},
    "UpdateCluster": {"cluster": "default", "settings": [{"name": "containerInsights", "value": "enabled"}],
                      "serviceConnectDefaults": {"namespace": "apps"}},
    "UpdateClusterSettings": {"cluster": "default", "settings": [{"name": "containerInsights", "value": "disabled"}]},
    "PutClusterCapacityProviders": {"cluster": "default", "capacityProviders": ["FARGATE"],
                                    "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]},
    "CreateCapacityProvider": {"name": "mine", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:aws:autoscaling:x"},
                               "tags": [{"key": "k", "value": "v"}]},
    "DescribeCapacityProviders": {"include": ["TAGS"]},
    "UpdateCapacityProvider": {"name": "own", "autoScalingGroupProvider": {"managedScaling": {"targetCapacity": 80}}},
    "DeleteCapacityProvider": {"capacityProvider": "own"},
    "ListContainerInstances": {"cluster": "default", "filter": "attribute:ecs.instance-type == m5.large"},
    "DescribeContainerInstances": {"cluster": "default", "containerInstances": ["node-own", "node-shared", "node-other"]},
    "UpdateContainerInstancesState": {"cluster": "default", "containerInstances": ["node-own", "missing"], "status": "DRAINING"},
    "TagResource": {"resourceArn": "arn:aws:ecs:us-east-1:000000000000:service/default/web", "tags": [{"key": "k", "value": "v"}]},
    "UntagResource": {"resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/default", "tagKeys": ["a"]},
    "ListTagsForResource": {"resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/default"},
    "PutAccountSetting": {"name": "containerInsights", "value": "enhanced", "principalArn": "arn:aws:iam::000000000000:user/ci"},
    "PutAccountSettingDefault": {"name": "awsvpcTrunking", "value": "enabled"},
    "ListAccountSettings": {"effectiveSettings": True},
    "DeleteAccountSetting": {"name": "containerInsights"},
    "RegisterTaskDefinition": DEFINITION,
    "DeregisterTaskDefinition": {"taskDefinition": "web:1"},
    "DescribeTaskDefinition": {"taskDefinition": "web", "include": ["TAGS"]},
    "ListTaskDefinitions": {"familyPrefix": "w"},
    "ListTaskDefinitionFamilies": {"familyPrefix": "w", "status": "ALL"},
    "CreateService": {"cluster": "default", "serviceName": "api", "taskDefinition": "web", "desiredCount": 1},
    "UpdateService": {"cluster": "default", "service": "web", "desiredCount": 2},
    "DescribeServices": {"cluster": "default", "services": ["web", "missing"], "include": ["TAGS"]},
    "ListServices": {"cluster": "default"},
    "ListServicesByNamespace": {"namespace": "apps"},
    "ListServiceDeployments": {"cluster": "default", "service": "web", "status": ["SUCCESSFUL"]},
    "DescribeServiceDeployments": {"serviceDeploymentArns": [service_arn(SETTINGS, "default", "web").replace(":service/", ":service-deployment/") + "/1111",
                                                             service_arn(SETTINGS, "default", "web").replace(":service/", ":service-deployment/") + "/2"]},
    "ContinueServiceDeployment": {"serviceDeploymentArn": service_arn(SETTINGS, "default", "web").replace(
        ":service/", ":service-deployment/") + "/2222", "hookId": "0123456789abcdef0123", "action": "CONTINUE"},
    "DeleteService": {"cluster": "default", "service": "web", "force": True},
    "RunTask": {"cluster": "default", "taskDefinition": "web:1", "count": 2},
    "DeleteTaskDefinitions": {"taskDefinitions": ["web:1", "web:9", "web"]},
    "StartTask": {"cluster": "default", "taskDefinition": "web:1", "containerInstances": ["node-own", "missing"], "startedBy": "ci"},
    "DescribeTasks": {"cluster": "default", "tasks": ["TASK", "0123456789abcdef0123456789abcdef"], "include": ["TAGS"]},
    "ListTasks": {"cluster": "default"},
    "StopTask": {"cluster": "default", "task": "TASK", "reason": "done"},
}
"""A request for each registered operation, run against `seeded()` (TASK: the seeded task's ID)."""


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake writes the operator's status with every write: a handler's first look finds it."""
    for module, name in ((clusters, "STATUS_WAIT_SECONDS"), (capacity_providers, "STATUS_WAIT_SECONDS"), (services, "OBSERVED_SECONDS"),
                         (task_definitions, "REGISTRATION_SECONDS"), (tasks, "LAUNCH_SECONDS")):
        monkeypatch.setattr(module, name, 0.0)


def test_every_registered_operation_has_a_sample_request() -> None:
    assert sorted(REQUESTS) == sorted(load())


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_the_answer_is_valid_for_the_output_shape(name: str) -> None:
    operation = operation_model(name)
    assert operation is not None and operation.output_shape is not None
    request = check_input(operation, {k: [task_id() if v == "TASK" else v for v in v] if isinstance(v, list) else
                                      task_id() if v == "TASK" else v for k, v in REQUESTS[name].items()})
    kube = seeded()
    if name == "DeleteCluster":  # refused while the service and the task remain
        kube.objects = {k: v for k, v in kube.objects.items() if k[0] not in ("Service.ecs", "Task")}
    answer = shape_output(operation, asyncio.run(load()[name](Account("team-a", kube, SETTINGS, capacity_providers=True), request)))  # type: ignore[arg-type]
    assert (answer or not operation.output_shape.members) and output_problems(answer, operation.output_shape) == []


def test_the_check_finds_wrong_types_enums_and_missing_members() -> None:
    describe = operation_model("DescribeServices")
    assert describe is not None and describe.output_shape is not None
    bad = {"services": [{"status": "ACTIVE", "desiredCount": "2", "launchType": "SPACESHIP", "deployments": {}}],
           "failures": [{"arn": 7}]}
    assert output_problems(bad, describe.output_shape) == [
        "services[0].desiredCount: expected integer, got str '2'",
        "services[0].launchType: 'SPACESHIP' is not one of EC2, FARGATE, EXTERNAL, MANAGED_INSTANCES",
        "services[0].deployments: expected a list, got dict",
        "failures[0].arn: expected string, got int 7",
    ]
    register = operation_model("RegisterTaskDefinition")
    assert register is not None and register.output_shape is not None
    assert output_problems({"taskDefinition": {"containerDefinitions": [{"name": "c", "essential": 1}]}}, register.output_shape) == [
        "taskDefinition.containerDefinitions[0].essential: expected boolean, got int 1"]
