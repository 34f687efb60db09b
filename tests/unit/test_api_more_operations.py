"""The mapping of the operations beyond the first ones, on test_api_outputs' in-memory Kubernetes:
cluster settings and capacity providers (who may use which), task definition families, service
deployments' states and ARNs, services by Service Connect namespace."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from test_api_outputs import DEPLOYMENT, SETTINGS, FakeKube, seeded, task_id

from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError as KubeError
from ecs_operator.api import task_definitions
from ecs_operator.api.account import Account, paginate
from ecs_operator.api.deployments import service_deployments
from ecs_operator.api.errors import ApiError
from ecs_operator.api.operations import load
from ecs_operator.api.shapes import operation_model, output_problems, shape_output

ARN = "arn:aws:ecs:us-east-1:000000000000"


def call(kube: FakeKube, name: str, request: dict[str, Any], capacity_providers: bool = True) -> dict[str, Any]:
    """As team-a's key; by default one an administrator let write capacity providers."""
    account = Account("team-a", kube, SETTINGS, capacity_providers)  # type: ignore[arg-type]
    return asyncio.run(load()[name](account, request))


def refused(kube: FakeKube, name: str, request: dict[str, Any], capacity_providers: bool = True) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call(kube, name, request, capacity_providers)
    return raised.value


def test_update_cluster_settings_replaces_the_named_setting_only() -> None:
    kube = seeded()
    call(kube, "UpdateCluster", {"cluster": "default", "settings": [{"name": "containerInsights", "value": "enabled"}]})
    answer = call(kube, "UpdateClusterSettings", {"cluster": "default", "settings": [{"name": "containerInsights", "value": "enhanced"}]})
    assert answer["cluster"]["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    spec = kube.objects[("Cluster", "default")]["spec"]
    assert spec["serviceConnectDefaults"] == {"namespace": "apps"} and spec["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
    assert refused(kube, "UpdateCluster", {"cluster": "nowhere"}).code == "ClusterNotFoundException"
    assert refused(kube, "UpdateClusterSettings", {"cluster": "default", "settings": [{"name": "containerInsights", "value": "x"}]}).code == \
        "InvalidParameterException"


def provider(kube: FakeKube, name: str, allowed: list[str]) -> None:
    kube.objects[("CapacityProvider", name)] = {"kind": "CapacityProvider", "metadata": {"name": name},
                                               "spec": {"kubernetes": {"allowedNamespaces": allowed}}}


@pytest.mark.parametrize(("providers", "code"), [
    (["hidden"], "InvalidParameterException"),  # allows another namespace only: as if it did not exist
    (["nowhere"], "InvalidParameterException"),
    (["pair"], "AccessDeniedException"),  # visible (team-a/other may use it) but not to cluster default
])
def test_a_provider_must_allow_the_namespace_and_the_cluster(providers: list[str], code: str) -> None:
    kube = seeded()
    provider(kube, "hidden", ["team-b"])
    provider(kube, "pair", ["team-a/other"])
    error = refused(kube, "PutClusterCapacityProviders", {"cluster": "default", "capacityProviders": providers,
                                                          "defaultCapacityProviderStrategy": []})
    assert error.code == code
    assert "capacityProviders" not in kube.objects[("Cluster", "default")]["spec"]


def test_put_capacity_providers_replaces_both_lists_and_keeps_providers_in_use() -> None:
    kube = seeded()
    provider(kube, "ours", ["*"])
    strategy = [{"capacityProvider": "ours", "weight": 1}]
    answer = call(kube, "PutClusterCapacityProviders", {"cluster": "default", "capacityProviders": ["ours", "FARGATE"],
                                                        "defaultCapacityProviderStrategy": strategy})
    assert (answer["cluster"]["capacityProviders"], answer["cluster"]["defaultCapacityProviderStrategy"]) == (["ours", "FARGATE"], strategy)
    kube.objects[("Service.ecs", "web")]["spec"]["capacityProviderStrategy"] = strategy
    error = refused(kube, "PutClusterCapacityProviders", {"cluster": "default", "capacityProviders": ["FARGATE"],
                                                          "defaultCapacityProviderStrategy": []})
    assert (error.code, error.message) == ("ResourceInUseException", "The specified capacity provider ours is in use by service web "
                                                                      "and cannot be removed.")


def test_task_definition_families_by_status() -> None:
    kube = seeded()
    kube.create({"kind": "TaskDefinition", "metadata": {"name": "worker"}, "spec": {"family": "worker"}})
    kube.objects[("TaskDefinition", "worker")]["status"]["revisions"] = [{"revision": 1, "status": "INACTIVE"}]
    assert call(kube, "ListTaskDefinitionFamilies", {})["families"] == ["web", "worker"]
    assert call(kube, "ListTaskDefinitionFamilies", {"status": "ACTIVE"})["families"] == ["web"]
    assert call(kube, "ListTaskDefinitionFamilies", {"status": "INACTIVE", "familyPrefix": "w"})["families"] == ["worker"]
    assert call(kube, "ListTaskDefinitionFamilies", {"familyPrefix": "x"})["families"] == []


def test_a_description_lists_what_ecs_always_lists() -> None:
    """ecs-deploy registers a description again as it is and fails on a missing `volumes` (a TypeError)."""
    described = call(seeded(), "DescribeTaskDefinition", {"taskDefinition": "web"})["taskDefinition"]
    assert (described["volumes"], described["placementConstraints"]) == ([], [])
    (web,) = described["containerDefinitions"]
    assert web == {"name": "web", "image": "nginx", "memory": 128,
                   "portMappings": [], "environment": [], "mountPoints": [], "volumesFrom": []}
    kube = seeded()
    volume = {"name": "data", "host": {"sourcePath": "/data"}}
    mount = {"sourceVolume": "data", "containerPath": "/data"}
    stored = {"family": "web", "volumes": [volume], "containerDefinitions": [{"name": "web", "image": "nginx", "mountPoints": [mount]}]}
    kube.objects[("ControllerRevision", "web-1")]["data"]["content"]["taskDefinition"] = stored
    described = call(kube, "DescribeTaskDefinition", {"taskDefinition": "web:1"})["taskDefinition"]
    assert described["volumes"] == [volume] and described["containerDefinitions"][0]["mountPoints"] == [mount]


@pytest.mark.parametrize(("started_by", "code"), [("ECS Deploy", None), ("AWS Step Functions", None), ("ci/job_7-a", None),
                                                ("rm -rf *", "InvalidParameterException"), ("x" * 129, "InvalidParameterException")])
def test_started_by_takes_what_ecs_takes(started_by: str, code: str | None) -> None:
    """Spaces as ECS takes them (ecs-deploy's `ecs run` starts tasks as "ECS Deploy"); other characters refused."""
    request = {"cluster": "default", "taskDefinition": "web:1", "startedBy": started_by}
    if code is None:
        assert len(call(seeded(), "RunTask", request)["tasks"]) == 1
    else:
        assert refused(seeded(), "RunTask", request).code == code


def deployment(number: str, status: str, rollout: str, **more: Any) -> dict[str, Any]:
    return {**DEPLOYMENT, "id": f"ecs-svc/{number}", "status": status, "rolloutState": rollout, **more}


@pytest.mark.parametrize(("deployments", "states"), [
    ([deployment("2", "PRIMARY", "IN_PROGRESS"), deployment("1", "ACTIVE", "COMPLETED")], ["IN_PROGRESS", "SUCCESSFUL"]),
    ([deployment("3", "PRIMARY", "IN_PROGRESS"), deployment("2", "ACTIVE", "IN_PROGRESS")], ["IN_PROGRESS", "STOPPED"]),
    ([deployment("1", "PRIMARY", "IN_PROGRESS", rollbackOf="k2"), deployment("2", "ACTIVE", "FAILED")],
     ["ROLLBACK_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"]),
    ([deployment("1", "PRIMARY", "COMPLETED"), deployment("2", "ACTIVE", "FAILED")], ["SUCCESSFUL", "ROLLBACK_SUCCESSFUL"]),
    ([deployment("2", "PRIMARY", "FAILED")], ["STOPPED"]),
])
def test_service_deployment_states_follow_the_rollout(deployments: list[dict[str, Any]], states: list[str]) -> None:
    service = seeded().objects[("Service.ecs", "web")]
    service["status"]["deployments"] = deployments
    found = service_deployments(Account("team-a", None, SETTINGS), service)  # type: ignore[arg-type]
    assert [d["status"] for d in found] == states
    assert found[0]["serviceDeploymentArn"] == f"{ARN}:service-deployment/default/web/{deployments[0]['id'].removeprefix('ecs-svc/')}"
    assert [r["arn"] for r in found[0]["sourceServiceRevisions"]] == [
        f"{ARN}:service-revision/default/web/{d['id'].removeprefix('ecs-svc/')}" for d in deployments[1:]]
    if deployments[0].get("rollbackOf"):  # the failed one names the revision it rolled back to
        assert found[1]["rollback"]["serviceRevisionArn"] == f"{ARN}:service-revision/default/web/1"


def test_a_canary_deployment_shows_its_lifecycle_stage_and_traffic_weights() -> None:
    service = seeded().objects[("Service.ecs", "web")]
    service["status"]["deployments"] = [
        deployment("2", "PRIMARY", "IN_PROGRESS", lifecycleStage="PRODUCTION_TRAFFIC_SHIFT", productionTrafficPercent=10.0),
        deployment("1", "ACTIVE", "COMPLETED", lifecycleStage="CLEAN_UP")]
    green, blue = service_deployments(Account("team-a", None, SETTINGS), service)  # type: ignore[arg-type]
    assert (green["status"], green["lifecycleStage"]) == ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT")
    assert green["targetServiceRevision"]["requestedProductionTrafficWeight"] == 10.0
    assert green["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"] == 90.0
    assert green["deploymentCircuitBreaker"] == {"status": "DISABLED"}
    service["spec"]["deploymentConfiguration"] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    green, _ = service_deployments(Account("team-a", None, SETTINGS), service)  # type: ignore[arg-type]
    assert green["deploymentCircuitBreaker"] == {"status": "MONITORING", "failureCount": 0, "threshold": 3}


def test_blue_green_and_rollback_answers_are_valid_service_deployments() -> None:
    """lifecycleStage, the traffic weights, the circuit breaker and the rollback, as botocore parses them."""
    kube = seeded()
    status = kube.objects[("Service.ecs", "web")]["status"]
    kube.objects[("Service.ecs", "web")]["spec"]["deploymentConfiguration"] = {
        "strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5, "deploymentCircuitBreaker": {"enable": True, "rollback": True}}
    operation = operation_model("DescribeServiceDeployments")
    assert operation is not None and operation.output_shape is not None
    arn = f"{ARN}:service-deployment/default/web/"
    for deployments in ([deployment("2", "PRIMARY", "IN_PROGRESS", lifecycleStage="BAKE_TIME", productionTrafficPercent=100.0),
                         deployment("1", "ACTIVE", "COMPLETED")],
                        [deployment("1", "PRIMARY", "IN_PROGRESS", rollbackOf="k2", rolloutStateReason="rolling back"),
                         deployment("2", "ACTIVE", "FAILED", lifecycleStage="BAKE_TIME", failedTasks=1)]):
        status["deployments"] = deployments
        answer = shape_output(operation, call(kube, "DescribeServiceDeployments",
                                              {"serviceDeploymentArns": [arn + "1", arn + "2"]}))
        assert output_problems(answer, operation.output_shape) == [] and len(answer["serviceDeployments"]) == 2
    failed = next(d for d in answer["serviceDeployments"] if d["serviceDeploymentArn"].endswith("/2"))
    assert failed["rollback"]["serviceRevisionArn"].endswith("/1") and failed["status"] == "ROLLBACK_IN_PROGRESS"
    assert failed["deploymentCircuitBreaker"]["status"] == "TRIGGERED"


def test_the_last_completed_deployment_is_listed_once_replaced() -> None:
    kube = seeded()
    status = kube.objects[("Service.ecs", "web")]["status"]
    status["deployments"] = [deployment("2", "PRIMARY", "IN_PROGRESS", createdAt="2026-01-02T04:00:00Z")]
    status["lastCompletedDeployment"] = deployment("1", "PRIMARY", "COMPLETED")
    listed = call(kube, "ListServiceDeployments", {"service": "web"})["serviceDeployments"]
    assert [(d["serviceDeploymentArn"].rsplit("/", 1)[-1], d["status"]) for d in listed] == [("2", "IN_PROGRESS"), ("1", "SUCCESSFUL")]
    assert call(kube, "ListServiceDeployments", {"service": "web", "createdAt": {"after": 1767326000.0}})["serviceDeployments"] == listed[:1]
    assert refused(kube, "ListServiceDeployments", {"service": "ghost"}).code == "ServiceNotFoundException"
    assert refused(kube, "DescribeServiceDeployments", {"serviceDeploymentArns": [f"{ARN}:service/default/web"]}).code == \
        "InvalidParameterException"


def test_services_by_namespace_their_own_or_their_clusters() -> None:
    kube = seeded()
    kube.create({"kind": "Service", "metadata": {"name": "api"}, "spec": {
        "serviceName": "api", "cluster": "default", "serviceConnectConfiguration": {"enabled": True, "namespace": "arn:aws:x:namespace/other"}}})
    assert call(kube, "ListServicesByNamespace", {"namespace": "apps"})["serviceArns"] == [f"{ARN}:service/default/web"]
    assert call(kube, "ListServicesByNamespace", {"namespace": "other"})["serviceArns"] == [f"{ARN}:service/default/api"]
    assert refused(kube, "ListServicesByNamespace", {"namespace": "nowhere"}).code == "NamespaceNotFoundException"


def test_a_namespace_sees_the_providers_that_allow_it_and_fargates() -> None:
    kube = seeded()
    provider(kube, "pair", ["team-a/default"])
    listed = call(kube, "DescribeCapacityProviders", {})["capacityProviders"]
    assert [(p["name"], p["type"]) for p in listed] == [
        ("FARGATE", "FARGATE"), ("FARGATE_SPOT", "FARGATE_SPOT"), ("own", "EC2_AUTOSCALING"), ("pair", "EC2_AUTOSCALING"),
        ("shared", "EC2_AUTOSCALING")]
    named = call(kube, "DescribeCapacityProviders", {"capacityProviders": ["theirs", f"{ARN}:capacity-provider/own"]})
    assert [p["name"] for p in named["capacityProviders"]] == ["own"]
    assert named["failures"] == [{"arn": f"{ARN}:capacity-provider/theirs", "reason": "MISSING"}]
    page = call(kube, "DescribeCapacityProviders", {"maxResults": 2})
    assert [p["name"] for p in page["capacityProviders"]] == ["FARGATE", "FARGATE_SPOT"] and page["nextToken"]


def test_a_created_provider_allows_its_namespace_alone() -> None:
    kube = seeded()
    made = call(kube, "CreateCapacityProvider", {"name": "Batch_Pool", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:asg"}})
    (obj,) = [o for (k, _), o in kube.objects.items() if k == "CapacityProvider" and o["spec"].get("name") == "Batch_Pool"]
    assert obj["spec"]["kubernetes"] == {"allowedNamespaces": ["team-a"]} and "namespace" not in obj["metadata"]
    assert made["capacityProvider"]["capacityProviderArn"] == f"{ARN}:capacity-provider/Batch_Pool"
    for name, code in (("theirs", "ClientException"), ("fargate-x", "InvalidParameterException")):
        assert refused(kube, "CreateCapacityProvider", {"name": name, "autoScalingGroupProvider": {"autoScalingGroupArn": "a"}}).code == code


@pytest.mark.parametrize(("operation", "request_"), [
    ("CreateCapacityProvider", {"name": "mine", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:asg"}}),
    ("UpdateCapacityProvider", {"name": "own", "autoScalingGroupProvider": {"managedDraining": "DISABLED"}}),
    ("DeleteCapacityProvider", {"capacityProvider": "own"}),
    ("TagResource", {"resourceArn": f"{ARN}:capacity-provider/own", "tags": [{"key": "team", "value": "a"}]}),
])
def test_a_plain_key_may_not_write_cluster_scoped_providers(operation: str, request_: dict[str, Any]) -> None:
    """Beyond what the namespace's own rights reach: only a key marked capacityProviders may (api/keys.py)."""
    kube = seeded()
    before = {k: dict(v) for k, v in kube.objects.items() if k[0] == "CapacityProvider"}
    error = refused(kube, operation, request_, capacity_providers=False)
    assert error.code == "AccessDeniedException" and "capacityProviders" in error.message, error.message
    assert {k: v for k, v in kube.objects.items() if k[0] == "CapacityProvider"} == before
    assert call(kube, "DescribeCapacityProviders", {"capacityProviders": ["own"]}, capacity_providers=False)["capacityProviders"]


@pytest.mark.parametrize(("name", "code"), [("theirs", "InvalidParameterException"), ("shared", "AccessDeniedException"),
                                            ("FARGATE", "InvalidParameterException")])
def test_only_its_own_providers_may_be_changed(name: str, code: str) -> None:
    kube = seeded()
    assert refused(kube, "UpdateCapacityProvider", {"name": name, "autoScalingGroupProvider": {"managedDraining": "DISABLED"}}).code == code
    assert refused(kube, "DeleteCapacityProvider", {"capacityProvider": name}).code == code


def test_update_merges_managed_scaling_and_delete_waits_for_no_user() -> None:
    kube = seeded()
    kube.objects[("CapacityProvider", "own")]["spec"]["autoScalingGroupProvider"] = {"managedScaling": {"status": "ENABLED", "targetCapacity": 90}}
    call(kube, "UpdateCapacityProvider", {"name": "own", "autoScalingGroupProvider": {"managedScaling": {"targetCapacity": 60},
                                                                                     "managedDraining": "DISABLED"}})
    assert kube.objects[("CapacityProvider", "own")]["spec"]["autoScalingGroupProvider"] == {
        "managedScaling": {"status": "ENABLED", "targetCapacity": 60}, "managedDraining": "DISABLED"}
    kube.objects[("Cluster", "default")]["spec"]["capacityProviders"] = ["own"]
    assert refused(kube, "DeleteCapacityProvider", {"capacityProvider": "own"}).message == \
        "The capacity provider own is in use by cluster default: remove it from them first."
    kube.objects[("Cluster", "default")]["spec"]["capacityProviders"] = []
    assert call(kube, "DeleteCapacityProvider", {"capacityProvider": "own"})["capacityProvider"]["updateStatus"] == "DELETE_IN_PROGRESS"
    assert ("CapacityProvider", "own") not in kube.objects


def test_a_clusters_instances_are_the_namespaces_own_and_the_shared_ones() -> None:
    kube = seeded()
    listed = call(kube, "ListContainerInstances", {"cluster": "default"})["containerInstanceArns"]
    assert listed == [f"{ARN}:container-instance/default/node-own", f"{ARN}:container-instance/default/node-shared"]
    described = call(kube, "DescribeContainerInstances", {"cluster": "default", "containerInstances": [listed[0], "node-other"]})
    assert [i["ec2InstanceId"] for i in described["containerInstances"]] == ["node-own"]
    assert described["failures"] == [{"arn": "node-other", "reason": "MISSING"}]
    assert call(kube, "ListContainerInstances", {"cluster": "default", "filter": "attribute:ecs.instance-type != m5.large"}) == {
        "containerInstanceArns": [], "nextToken": None}
    assert refused(kube, "ListContainerInstances", {"cluster": "default", "filter": "attribute:"}).code == "InvalidParameterException"


def test_only_the_namespaces_own_instances_change_state() -> None:
    kube = seeded()
    assert refused(kube, "UpdateContainerInstancesState", {"cluster": "default", "containerInstances": ["node-own", "node-shared"],
                                                           "status": "DRAINING"}).code == "AccessDeniedException"
    assert kube.objects[("ContainerInstance", "node-own")]["spec"] == {}  # nothing changed
    assert refused(kube, "UpdateContainerInstancesState", {"cluster": "default", "containerInstances": ["node-own"],
                                                           "status": "REGISTERING"}).code == "InvalidParameterException"
    answer = call(kube, "UpdateContainerInstancesState", {"cluster": "default", "containerInstances": ["node-own"], "status": "DRAINING"})
    assert [i["status"] for i in answer["containerInstances"]] == ["DRAINING"]
    assert kube.objects[("ContainerInstance", "node-own")]["spec"] == {"status": "DRAINING"}
    assert call(kube, "ListContainerInstances", {"cluster": "default", "status": "DRAINING"})["containerInstanceArns"] == [
        f"{ARN}:container-instance/default/node-own"]


def test_tags_by_arn_on_each_kind() -> None:
    kube = seeded()
    cluster, service = f"{ARN}:cluster/default", f"{ARN}:service/default/web"
    call(kube, "TagResource", {"resourceArn": cluster, "tags": [{"key": "a", "value": "new"}, {"key": "b", "value": "2"}]})
    assert call(kube, "ListTagsForResource", {"resourceArn": cluster})["tags"] == [{"key": "a", "value": "new"}, {"key": "b", "value": "2"}]
    call(kube, "UntagResource", {"resourceArn": cluster, "tagKeys": ["a", "b"]})
    assert "tags" not in kube.objects[("Cluster", "default")]["spec"]
    call(kube, "TagResource", {"resourceArn": service, "tags": [{"key": "team", "value": "a"}]})
    assert kube.objects[("Service.ecs", "web")]["spec"]["tags"] == [{"key": "team", "value": "a"}]
    task = f"{ARN}:task/default/{task_id()}"
    call(kube, "TagResource", {"resourceArn": task, "tags": [{"key": "run", "value": "1"}]})
    assert call(kube, "ListTagsForResource", {"resourceArn": task})["tags"] == [{"key": "run", "value": "1"}]
    provider = f"{ARN}:capacity-provider/own"
    call(kube, "TagResource", {"resourceArn": provider, "tags": [{"key": "p", "value": "1"}]})
    assert kube.objects[("CapacityProvider", "own")]["spec"]["tags"] == [{"key": "p", "value": "1"}]
    assert call(kube, "ListTagsForResource", {"resourceArn": f"{ARN}:task-definition/web:1"})["tags"] == []


@pytest.mark.parametrize(("arn", "tags", "code"), [
    (f"{ARN}:cluster/nowhere", [{"key": "a", "value": "b"}], "ResourceNotFoundException"),
    (f"{ARN}:service/default/ghost", [{"key": "a", "value": "b"}], "ResourceNotFoundException"),
    (f"{ARN}:cluster/default", [{"key": "aws:x", "value": "b"}], "InvalidParameterException"),
    (f"{ARN}:task-definition/web:1", [{"key": "a", "value": "b"}], "UnsupportedFeatureException"),
    (f"{ARN}:capacity-provider/shared", [{"key": "a", "value": "b"}], "AccessDeniedException"),
    (f"{ARN}:container-instance/default/node-own", [{"key": "a", "value": "b"}], "InvalidParameterException"),
    ("default", [{"key": "a", "value": "b"}], "InvalidParameterException"),
])
def test_tags_refused(arn: str, tags: list[dict[str, str]], code: str) -> None:
    assert refused(seeded(), "TagResource", {"resourceArn": arn, "tags": tags}).code == code


def test_account_settings_are_kept_in_the_namespaces_config_map() -> None:
    kube = seeded()
    root, user = "arn:aws:iam::000000000000:root", "arn:aws:iam::000000000000:user/ci"
    assert call(kube, "ListAccountSettings", {}) == {"settings": [], "nextToken": None}
    effective = call(kube, "ListAccountSettings", {"effectiveSettings": True, "name": "containerInsights"})["settings"]
    assert effective == [{"name": "containerInsights", "value": "disabled", "principalArn": root, "type": "aws_managed"}]
    assert call(kube, "PutAccountSettingDefault", {"name": "containerInsights", "value": "enabled"})["setting"]["principalArn"] == root
    call(kube, "PutAccountSetting", {"name": "containerInsights", "value": "enhanced", "principalArn": user})
    assert ("ConfigMap", "ecs-account-settings") in kube.objects
    assert call(kube, "ListAccountSettings", {})["settings"] == [
        {"name": "containerInsights", "value": "enabled", "principalArn": root, "type": "user"}]
    assert call(kube, "ListAccountSettings", {"principalArn": user, "effectiveSettings": True, "name": "containerInsights"})["settings"] == [
        {"name": "containerInsights", "value": "enhanced", "principalArn": user, "type": "user"}]
    page = call(kube, "ListAccountSettings", {"effectiveSettings": True, "maxResults": 5})
    assert len(page["settings"]) == 5 and page["nextToken"]
    assert refused(kube, "PutAccountSetting", {"name": "taskLongArnFormat", "value": "disabled"}).code == "InvalidParameterException"
    assert call(kube, "DeleteAccountSetting", {"name": "containerInsights"})["setting"] == {
        "name": "containerInsights", "value": "enabled", "principalArn": root, "type": "user"}
    assert call(kube, "ListAccountSettings", {})["settings"] == []
    assert call(kube, "DeleteAccountSetting", {"name": "containerInsights"})["setting"]["type"] == "aws_managed"
    assert call(kube, "ListAccountSettings", {"principalArn": user})["settings"][0]["value"] == "enhanced"  # the user's stays


@pytest.mark.parametrize(("kind", "name", "request_"), [
    ("Cluster", "CreateCluster", {"clusterName": "default"}),
    ("TaskDefinition", "RegisterTaskDefinition", {"family": "web", "containerDefinitions": [{"name": "web", "image": "nginx", "memory": 64}]}),
])
def test_a_concurrent_creation_of_the_same_name_is_not_an_error(kind: str, name: str, request_: dict[str, Any],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The first look finds nothing, the creation then meets the resource another request made meanwhile."""
    monkeypatch.setattr(task_definitions, "REGISTRATION_SECONDS", 0.0)
    kube, looked = seeded(), []
    real_list = kube.list

    def racing(kind_: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        looked.append(kind_)
        return [] if kind_ == kind and looked.count(kind) == 1 else real_list(kind_, namespace, label_selector)

    monkeypatch.setattr(kube, "list", racing)
    assert call(kube, name, request_)
    assert looked.count(kind) >= 2


def test_pages_hold_max_results_up_to_the_limit_and_the_operations_default_without_it() -> None:
    items = list(range(150))
    assert [len(paginate(items, m, None, default=d)[0]) for m, d in ((None, 20), (50, 20), (500, 20), (None, None))] == [20, 50, 100, 100]
    page, token = paginate(items, 100, None)
    assert paginate(items, 100, token) == (items[100:], None)


def test_a_provider_created_meanwhile_by_anyone_is_already_there(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = seeded()
    monkeypatch.setattr(kube, "list", lambda kind, namespace, label_selector=None: [])  # the look misses `theirs`, made meanwhile
    error = refused(kube, "CreateCapacityProvider", {"name": "theirs", "autoScalingGroupProvider": {"autoScalingGroupArn": "a"}})
    assert (error.code, error.message) == ("ClientException", "The specified capacity provider theirs already exists.")
    assert kube.objects[("CapacityProvider", "theirs")]["spec"]["kubernetes"] == {"allowedNamespaces": ["team-b"]}


def test_start_task_runs_one_task_on_each_named_instance() -> None:
    kube = seeded()
    before = {name for kind, name in kube.objects if kind == "Task"}
    answer = call(kube, "StartTask", {"cluster": "default", "taskDefinition": "web:1", "startedBy": "ci",
                                      "containerInstances": [f"{ARN}:container-instance/default/node-own", "gone"]})
    assert answer["failures"] == [{"arn": "gone", "reason": "MISSING"}]
    (made,) = [o for (kind, name), o in kube.objects.items() if kind == "Task" and name not in before]
    assert made["spec"]["launchType"] == "EC2" and made["spec"]["startedBy"] == "ci"
    assert made["spec"]["placementConstraints"] == [{"type": "memberOf", "expression": "ec2InstanceId == node-own"}]
    assert "containerInstances" not in made["spec"]
    eleven = [f"i-{n}" for n in range(11)]
    error = refused(kube, "StartTask", {"cluster": "default", "taskDefinition": "web:1", "containerInstances": eleven})
    assert error.code == "InvalidParameterException" and "containerInstances" in error.message


def test_a_retried_run_task_with_its_client_token_launches_nothing_more() -> None:
    kube = seeded()
    request = {"cluster": "default", "taskDefinition": "web:1", "count": 2, "clientToken": "deploy-42"}
    first = call(kube, "RunTask", request)
    tasks = {name for kind, name in kube.objects if kind == "Task"}
    again = call(kube, "RunTask", request)
    assert [t["taskArn"] for t in again["tasks"]] == [t["taskArn"] for t in first["tasks"]] and len(first["tasks"]) == 2
    assert {name for kind, name in kube.objects if kind == "Task"} == tasks
    error = refused(kube, "RunTask", {**request, "taskDefinition": "web"})
    assert error.code == "InvalidParameterException" and "clientToken" in error.message


def test_a_retried_create_service_answers_the_service_it_made() -> None:
    kube = seeded()
    request = {"cluster": "default", "serviceName": "api", "taskDefinition": "web:1", "desiredCount": 1, "clientToken": "t-1"}
    made = call(kube, "CreateService", request)["service"]
    assert call(kube, "CreateService", request)["service"]["serviceArn"] == made["serviceArn"]
    assert len([name for kind, name in kube.objects if kind == "Service.ecs"]) == 2  # the seeded `web` and `api`
    error = refused(kube, "CreateService", {**request, "desiredCount": 3})
    assert (error.code, error.message) == ("InvalidParameterException", "Creation of service was not idempotent.")


def test_list_tasks_lists_each_kind_once_and_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API server's round trips are most of a read's time (benchmarks/bench_api.py): one after another
    the lists would never meet at the barrier. By serviceName, RunTask's Task resources are not read."""
    kube = seeded()
    listed: list[str] = []
    real = kube.list
    together = threading.Barrier(3, timeout=5)

    selectors: list[str | None] = []

    def list_(kind: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        listed.append(kind)
        if kind == "Pod":
            selectors.append(label_selector)
        together.wait()
        return real(kind, namespace, label_selector)

    monkeypatch.setattr(kube, "list", list_)
    assert len(call(kube, "ListTasks", {"cluster": "default", "serviceName": "web"})["taskArns"]) == 1
    assert sorted(listed) == ["Cluster", "Pod", "Service.ecs"]
    assert selectors == [f"{L.SERVICE}=web,{L.CLUSTER}=default"]  # the service's own Pods only
    assert refused(kube, "ListTasks", {"cluster": "default", "serviceName": "nothing"}).code == "ServiceNotFoundException"
    listed.clear()
    together = threading.Barrier(4, timeout=5)
    assert len(call(kube, "ListTasks", {"cluster": "default"})["taskArns"]) >= 1
    assert sorted(listed) == ["Cluster", "Pod", "Service.ecs", "Task"]
    listed.clear()
    together = threading.Barrier(2, timeout=5)
    assert [s["serviceName"] for s in call(kube, "DescribeServices", {"cluster": "default", "services": ["web"]})["services"]] == ["web"]
    assert sorted(listed) == ["Cluster", "Service.ecs"]


def test_list_tasks_of_a_name_two_service_resources_share_reads_all_the_clusters_service_pods(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A deleted service still draining and its re-created successor (another resource name): both one ECS name."""
    kube = seeded()
    kube.create({"kind": "Service", "metadata": {"name": "web-0a1b2c3d4e"},
                 "spec": {"serviceName": "web", "cluster": "default", "taskDefinition": "web:1", "desiredCount": 1}})
    selectors: list[str | None] = []
    real = kube.list

    def list_(kind: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        if kind == "Pod":
            selectors.append(label_selector)
        return real(kind, namespace, label_selector)

    monkeypatch.setattr(kube, "list", list_)
    assert len(call(kube, "ListTasks", {"cluster": "default", "serviceName": "web"})["taskArns"]) == 1
    assert selectors == [f"{L.SERVICE}=web,{L.CLUSTER}=default", f"{L.SERVICE},{L.CLUSTER}=default"]


def test_reads_answer_the_missing_cluster_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run at once, the reads still fail as run one by one: the cluster's error, not a later read's."""
    kube = seeded()
    real = kube.list

    def list_(kind: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        if kind != "Cluster":
            raise KubeError(500, "InternalError", "etcd is away")
        return real(kind, namespace, label_selector)

    monkeypatch.setattr(kube, "list", list_)
    for operation, request in (("ListTasks", {"cluster": "nope", "serviceName": "nothing"}),
                               ("DescribeTasks", {"cluster": "nope", "tasks": ["x"]}),
                               ("DescribeServices", {"cluster": "nope", "services": ["web"]}),
                               ("ListServices", {"cluster": "nope"})):
        assert refused(kube, operation, request).code == "ClusterNotFoundException", operation
    assert refused(kube, "ListTasks", {"cluster": "default"}).code == "ServerException"


def test_delete_task_definitions_refuses_what_is_not_inactive_revision_by_revision() -> None:
    kube = seeded()
    answer = call(kube, "DeleteTaskDefinitions", {"taskDefinitions": ["web:1", "web:9", "web"]})
    assert answer["taskDefinitions"] == []
    assert [f["reason"] for f in answer["failures"]] == [
        "The task definition is ACTIVE: deregister it before deleting it.", "Unable to describe task definition.",
        "The specified task definition identifier is invalid. Specify a valid revision."]
    assert "deletedRevisions" not in (kube.objects[("TaskDefinition", "web")]["spec"].get("kubernetes") or {})
    assert refused(kube, "DeleteTaskDefinitions", {"taskDefinitions": [f"web:{n}" for n in range(11)]}).code == "InvalidParameterException"


def test_deployment_alarms_are_the_service_deployments_alarms_member() -> None:
    """ServiceDeploymentAlarms as botocore parses it; a deployment its alarms failed is not the circuit breaker's."""
    kube = seeded()
    service = kube.objects[("Service.ecs", "web")]
    service["spec"]["deploymentConfiguration"] = {"deploymentCircuitBreaker": {"enable": True, "rollback": True},
                                                  "alarms": {"alarmNames": ["errors"], "enable": True, "rollback": True}}
    triggered = {"status": "TRIGGERED", "alarmNames": ["errors"], "triggeredAlarmNames": ["errors"]}
    service["status"]["deployments"] = [
        deployment("1", "PRIMARY", "IN_PROGRESS", rollbackOf="k2", alarms={"status": "MONITORING_COMPLETE", "alarmNames": ["errors"]}),
        deployment("2", "ACTIVE", "FAILED", alarms=triggered)]
    operation = operation_model("DescribeServiceDeployments")
    assert operation is not None and operation.output_shape is not None
    arn = f"{ARN}:service-deployment/default/web/"
    answer = shape_output(operation, call(kube, "DescribeServiceDeployments", {"serviceDeploymentArns": [arn + "1", arn + "2"]}))
    assert output_problems(answer, operation.output_shape) == []
    back, failed = sorted(answer["serviceDeployments"], key=lambda d: d["serviceDeploymentArn"])
    assert failed["alarms"] == triggered and failed["status"] == "ROLLBACK_IN_PROGRESS"
    assert failed["deploymentCircuitBreaker"]["status"] == "MONITORING_COMPLETE"
    assert back["alarms"]["status"] == "MONITORING_COMPLETE"
    service["status"]["deployments"] = [deployment("3", "PRIMARY", "IN_PROGRESS")]
    assert service_deployments(Account("team-a", None, SETTINGS), service)[0]["alarms"] == {"status": "DISABLED"}  # type: ignore[arg-type]
