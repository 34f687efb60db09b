"""More of `ecs-operator api` on the real control plane: every answer of a pipeline over all the
operations served validated against botocore's output shapes, pagination, and the operations beyond
the first ones (cluster settings, task definition families, service deployments...), each checked
against what `kubectl get` shows.

The API process and its keys are api_support's `api` fixture.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest
from api_support import Api, Recorder, api  # noqa: F401  (api: the fixture)
from operator_fixtures import wait_for
from service_support import ECS_SERVICE
from test_ecs_api import ARN, FAST, container, kubectl_get

from ecs_operator import labels as L
from ecs_operator.api.operations import load
from ecs_operator.nodepool.instance_types import build_node, instance_type

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")
ELSEWHERE = {"ContinueServiceDeployment"}
"""Operations whose answer another test validates: ContinueServiceDeployment needs a deployment paused at a
hook (test_services_hooks.py::test_a_pause_hook_waits_for_continue_service_deployment)."""


@contextmanager
def own_instance(sandbox: Cluster, namespace: str, cluster: str) -> Iterator[str]:
    """A kwok Node registered with the namespace's `cluster` (a container instance of its own), removed afterwards."""
    name = f"api-{uuid.uuid4().hex[:10]}"
    node = build_node(name, instance_type("m5.large"), "us-east-1a", labels={L.CLUSTER: cluster, L.CLUSTER_NAMESPACE: namespace})
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(node))
    try:
        yield name
    finally:
        sandbox.kubectl("delete", "node", name, "--wait=false", check=False)


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
    ecs.list_service_deployments(cluster="default", service="web")  # one in progress, one replaced
    ecs.describe_services(cluster="default", services=["web", "missing"], include=["TAGS"])
    ecs.list_services(cluster="default")
    (task,) = ecs.run_task(cluster="default", taskDefinition="web:2")["tasks"]
    ecs.get_waiter("tasks_running").wait(cluster="default", tasks=[task["taskArn"]], WaiterConfig=FAST)
    ecs.list_tasks(cluster="default")
    ecs.describe_tasks(cluster="default", tasks=ecs.list_tasks(cluster="default")["taskArns"], include=["TAGS"])
    ecs.stop_task(cluster="default", task=task["taskArn"])
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[task["taskArn"]], WaiterConfig=FAST)
    deployments = ecs.list_service_deployments(cluster="default", service="web")["serviceDeployments"]
    ecs.describe_service_deployments(serviceDeploymentArns=[d["serviceDeploymentArn"] for d in deployments])
    ecs.delete_service(cluster="default", service="web", force=True)
    ecs.deregister_task_definition(taskDefinition="web:1")
    ecs.delete_task_definitions(taskDefinitions=["web:1"])
    ecs.update_cluster(cluster="default", settings=[{"name": "containerInsights", "value": "enabled"}])
    ecs.update_cluster_settings(cluster="default", settings=[{"name": "containerInsights", "value": "disabled"}])
    ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=["FARGATE"], defaultCapacityProviderStrategy=[])
    ecs.list_task_definition_families()
    provider = ecs.create_capacity_provider(name=f"{namespace[:40]}-pipeline", autoScalingGroupProvider={
        "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/asg"})["capacityProvider"]
    ecs.describe_capacity_providers(include=["TAGS"])
    ecs.update_capacity_provider(name=provider["name"], autoScalingGroupProvider={"managedTerminationProtection": "DISABLED"})
    ecs.delete_capacity_provider(capacityProvider=provider["name"])
    with own_instance(sandbox, namespace, "default") as node:
        arn = f"{ARN}:container-instance/default/{node}"
        wait_for(lambda: arn in ecs.list_container_instances(cluster="default")["containerInstanceArns"], what="the instance")
        ecs.describe_container_instances(cluster="default", containerInstances=[arn, "missing"])
        ecs.start_task(cluster="default", taskDefinition="web:2", containerInstances=[arn])
        ecs.update_container_instances_state(cluster="default", containerInstances=[node], status="DRAINING")
    ecs.tag_resource(resourceArn=f"{ARN}:cluster/default", tags=[{"key": "k", "value": "v"}])
    ecs.untag_resource(resourceArn=f"{ARN}:cluster/default", tagKeys=["k"])
    ecs.list_tags_for_resource(resourceArn=f"{ARN}:task-definition/web:1")
    ecs.put_account_setting_default(name="containerInsights", value="enabled")
    ecs.put_account_setting(name="awsvpcTrunking", value="enabled")
    ecs.list_account_settings(effectiveSettings=True)
    ecs.delete_account_setting(name="awsvpcTrunking")
    ecs.create_cluster(clusterName="spare", serviceConnectDefaults={"namespace": "apps"})
    ecs.list_services_by_namespace(namespace="apps")
    ecs.delete_cluster(cluster="spare")
    assert recorder.problems() == []
    assert sorted(set(load()) - {name for name, _ in recorder.answers} - ELSEWHERE) == []


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


def test_cluster_updates_and_capacity_providers(sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    ecs.create_cluster(clusterName="default", settings=[{"name": "containerInsights", "value": "enabled"}])
    updated = ecs.update_cluster(cluster="default", serviceConnectDefaults={"namespace": "apps"})["cluster"]
    assert updated["serviceConnectDefaults"] == {"namespace": "apps"} and updated["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    ecs.update_cluster_settings(cluster="default", settings=[{"name": "containerInsights", "value": "disabled"}])
    spec = kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace, "default")["spec"]
    assert (spec["settings"], spec["serviceConnectDefaults"]) == ([{"name": "containerInsights", "value": "disabled"}], {"namespace": "apps"})
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.update_cluster_settings(cluster="default", settings=[{"name": "containerInsights", "value": "sometimes"}])
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster(cluster="nowhere", settings=[])

    ours, theirs, elsewhere = (f"{namespace[:40]}-{suffix}" for suffix in ("ours", "theirs", "other"))
    allowed = {ours: [namespace], theirs: [f"{namespace}/other"], elsewhere: ["some-other-namespace"]}
    for name, entries in allowed.items():
        sandbox.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "CapacityProvider", "metadata": {"name": name},
            "spec": {"kubernetes": {"allowedNamespaces": entries}}}))
    try:
        put = ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=[ours, "FARGATE"],
                                                 defaultCapacityProviderStrategy=[{"capacityProvider": ours, "weight": 1}])["cluster"]
        assert put["capacityProviders"] == [ours, "FARGATE"]
        assert kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace, "default")["spec"]["capacityProviders"] == [ours, "FARGATE"]
        with pytest.raises(ecs.exceptions.AccessDeniedException):
            ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=[theirs], defaultCapacityProviderStrategy=[])
        for hidden in (elsewhere, "never-made"):
            with pytest.raises(ecs.exceptions.InvalidParameterException, match="does not exist"):
                ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=[hidden], defaultCapacityProviderStrategy=[])
        with pytest.raises(ecs.exceptions.InvalidParameterException, match="not in capacityProviders"):
            ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=["FARGATE"],
                                               defaultCapacityProviderStrategy=[{"capacityProvider": ours, "weight": 1}])
        ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.29"))
        ecs.create_service(cluster="default", serviceName="web", taskDefinition="web", desiredCount=0,
                           capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}])
        with pytest.raises(ecs.exceptions.ResourceInUseException):
            ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=[ours], defaultCapacityProviderStrategy=[])
        cleared = ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=[ours, "FARGATE"], defaultCapacityProviderStrategy=[])
        assert cleared["cluster"].get("defaultCapacityProviderStrategy", []) == []
    finally:
        sandbox.kubectl("delete", "capacityproviders.ecs.operator.dev", *allowed, "--wait=false", check=False)


def test_task_definition_families(recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    for family in ("web", "worker", "api"):
        ecs.register_task_definition(family=family, containerDefinitions=container("nginx:1.29"))
    ecs.deregister_task_definition(taskDefinition="worker:1")
    assert ecs.list_task_definition_families()["families"] == ["api", "web", "worker"]
    assert ecs.list_task_definition_families(status="ACTIVE")["families"] == ["api", "web"]
    assert ecs.list_task_definition_families(status="INACTIVE")["families"] == ["worker"]
    assert ecs.list_task_definition_families(familyPrefix="w", status="ALL")["families"] == ["web", "worker"]
    pages = ecs.get_paginator("list_task_definition_families").paginate(PaginationConfig={"PageSize": 1})
    assert [f for page in pages for f in page["families"]] == ["api", "web", "worker"]


def test_service_deployments_and_namespaces(sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    ecs.create_cluster(clusterName="default", serviceConnectDefaults={"namespace": "apps"})
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.28"))
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.29"))
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web:1", desiredCount=1,
                       serviceConnectConfiguration={"enabled": True})
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    first = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["status"]["deployments"][0]["id"]

    def completed() -> list[dict[str, Any]]:
        """The service's deployments once the newest completed (rolloutState COMPLETED follows steadiness)."""
        found: list[dict[str, Any]] = ecs.list_service_deployments(cluster="default", service="web")["serviceDeployments"]
        return found if found[0]["status"] == "SUCCESSFUL" else []

    (done,) = wait_for(completed, timeout=90, what="the deployment to complete")
    arn = f"{ARN}:service-deployment/default/web/{first.removeprefix('ecs-svc/')}"
    assert (done["serviceDeploymentArn"], done["status"], done["serviceArn"]) == (arn, "SUCCESSFUL", f"{ARN}:service/default/web")
    ecs.update_service(cluster="default", service="web", taskDefinition="web:2")
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    second = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["status"]["deployments"][0]["id"]
    listed = wait_for(completed, timeout=90, what="the second deployment to complete")
    assert listed[0]["serviceDeploymentArn"].endswith("/" + second.removeprefix("ecs-svc/"))
    assert ecs.list_service_deployments(cluster="default", service="web", status=["IN_PROGRESS"])["serviceDeployments"] == []
    described = ecs.describe_service_deployments(serviceDeploymentArns=[listed[0]["serviceDeploymentArn"], arn + "0"])
    (deployment,) = described["serviceDeployments"]
    assert deployment["targetServiceRevision"]["runningTaskCount"] == 1 and deployment["status"] == "SUCCESSFUL"
    assert described["failures"] == [{"arn": arn + "0", "reason": "MISSING"}]
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.list_service_deployments(cluster="default", service="ghost")

    assert ecs.list_services_by_namespace(namespace="apps")["serviceArns"] == [f"{ARN}:service/default/web"]
    with pytest.raises(ecs.exceptions.NamespaceNotFoundException):
        ecs.list_services_by_namespace(namespace="nowhere")


def test_capacity_providers_within_the_namespace_boundary(sandbox: Cluster, namespace: str, api: Api,
                                                          recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    mine, shared, theirs = (f"{namespace[:40]}-{suffix}" for suffix in ("mine", "shared", "theirs"))
    for name, entries in ((shared, [namespace, "someone-else"]), (theirs, ["someone-else"])):
        sandbox.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "CapacityProvider", "metadata": {"name": name},
            "spec": {"kubernetes": {"allowedNamespaces": entries}}}))
    try:
        made = ecs.create_capacity_provider(name=mine, tags=[{"key": "team", "value": "a"}], autoScalingGroupProvider={
            "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/asg",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 90}})["capacityProvider"]
        assert (made["name"], made["capacityProviderArn"], made["status"]) == (mine, f"{ARN}:capacity-provider/{mine}", "ACTIVE")
        resource = sandbox.kubectl_json("get", "capacityproviders.ecs.operator.dev", mine)
        assert resource["spec"]["kubernetes"]["allowedNamespaces"] == [namespace]
        with pytest.raises(ecs.exceptions.ClientException, match="already exists"):
            ecs.create_capacity_provider(name=theirs, autoScalingGroupProvider={"autoScalingGroupArn": "arn:x"})
        with pytest.raises(ecs.exceptions.InvalidParameterException, match="must not start with"):
            ecs.create_capacity_provider(name="ecs-reserved", autoScalingGroupProvider={"autoScalingGroupArn": "arn:x"})

        every = [p["name"] for p in ecs.describe_capacity_providers()["capacityProviders"]]
        assert every == ["FARGATE", "FARGATE_SPOT", *sorted([mine, shared])]
        named = ecs.describe_capacity_providers(capacityProviders=[mine, theirs], include=["TAGS"])
        assert [p["tags"] for p in named["capacityProviders"]] == [[{"key": "team", "value": "a"}]]
        assert named["failures"] == [{"arn": f"{ARN}:capacity-provider/{theirs}", "reason": "MISSING"}]
        plain = api.client(api.other_key_id, "other")  # a key without "capacityProviders": true
        assert [p["name"] for p in plain.describe_capacity_providers()["capacityProviders"]] == ["FARGATE", "FARGATE_SPOT"]
        with pytest.raises(plain.exceptions.AccessDeniedException, match="capacityProviders"):
            plain.create_capacity_provider(name=f"{namespace[:40]}-plain", autoScalingGroupProvider={"autoScalingGroupArn": "arn:x"})
        assert not sandbox.kubectl("get", "capacityproviders.ecs.operator.dev", f"{namespace[:40]}-plain", check=False).stdout

        updated = ecs.update_capacity_provider(name=mine, autoScalingGroupProvider={"managedScaling": {"targetCapacity": 70}})
        assert updated["capacityProvider"]["updateStatus"] == "UPDATE_IN_PROGRESS"
        scaling = sandbox.kubectl_json("get", "capacityproviders.ecs.operator.dev", mine)["spec"]["autoScalingGroupProvider"]["managedScaling"]
        assert scaling == {"status": "ENABLED", "targetCapacity": 70}
        with pytest.raises(ecs.exceptions.AccessDeniedException):
            ecs.update_capacity_provider(name=shared, autoScalingGroupProvider={"managedDraining": "DISABLED"})
        with pytest.raises(ecs.exceptions.InvalidParameterException, match="does not exist"):
            ecs.delete_capacity_provider(capacityProvider=theirs)
        with pytest.raises(ecs.exceptions.AccessDeniedException):
            ecs.delete_capacity_provider(capacityProvider=shared)

        ecs.create_cluster(clusterName="default", capacityProviders=[mine])
        with pytest.raises(ecs.exceptions.ResourceInUseException):
            ecs.delete_capacity_provider(capacityProvider=f"{ARN}:capacity-provider/{mine}")
        ecs.put_cluster_capacity_providers(cluster="default", capacityProviders=[], defaultCapacityProviderStrategy=[])
        deleted = ecs.delete_capacity_provider(capacityProvider=mine)["capacityProvider"]
        assert deleted["updateStatus"] == "DELETE_IN_PROGRESS"
        wait_for(lambda: sandbox.kubectl("get", "capacityproviders.ecs.operator.dev", mine, check=False).returncode != 0,
                 timeout=60, what="the provider to go")
    finally:
        sandbox.kubectl("delete", "capacityproviders.ecs.operator.dev", mine, shared, theirs, "--wait=false", "--ignore-not-found", check=False)


def test_container_instances_of_the_namespaces_cluster(sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    ecs.create_cluster(clusterName="ci")
    ecs.create_cluster(clusterName="default")  # the sandbox's nodes are shared instances of every namespace's `default`
    shared = ecs.list_container_instances(cluster="default")["containerInstanceArns"]
    assert shared and all(a.startswith(f"{ARN}:container-instance/default/") for a in shared)
    with pytest.raises(ecs.exceptions.AccessDeniedException):
        ecs.update_container_instances_state(cluster="default", containerInstances=shared[:1], status="DRAINING")
    assert sandbox.kubectl_json("get", "containerinstances.ecs.operator.dev", shared[0].rsplit("/", 1)[-1]).get(
        "spec", {}).get("status") != "DRAINING"

    with own_instance(sandbox, namespace, "ci") as node:
        arn = f"{ARN}:container-instance/ci/{node}"
        assert wait_for(lambda: ecs.list_container_instances(cluster="ci")["containerInstanceArns"], what="the instance") == [arn]
        (described,) = ecs.describe_container_instances(cluster="ci", containerInstances=[node])["containerInstances"]
        status = sandbox.kubectl_json("get", "containerinstances.ecs.operator.dev", node)["status"]
        assert (described["containerInstanceArn"], described["ec2InstanceId"], described["status"]) == (arn, node, "ACTIVE")
        resources = {r["name"]: r.get("integerValue") for r in described["registeredResources"]}
        assert resources == {r["name"]: r.get("integerValue") for r in status["registeredResources"]} and resources["CPU"] == 2048
        assert ecs.list_container_instances(cluster="ci", filter="attribute:ecs.instance-type == m5.large")["containerInstanceArns"] == [arn]
        assert ecs.list_container_instances(cluster="ci", filter="attribute:ecs.instance-type == c5.xlarge")["containerInstanceArns"] == []
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.list_container_instances(cluster="ci", filter="attribute:ecs.instance-type ==")

        drained = ecs.update_container_instances_state(cluster="ci", containerInstances=[arn, "gone"], status="DRAINING")
        assert [i["status"] for i in drained["containerInstances"]] == ["DRAINING"]
        assert drained["failures"] == [{"arn": "gone", "reason": "MISSING"}]
        assert sandbox.kubectl_json("get", "containerinstances.ecs.operator.dev", node)["spec"]["status"] == "DRAINING"
        wait_for(lambda: sandbox.kubectl_json("get", "node", node)["spec"].get("unschedulable"), what="the node to be cordoned")
        assert ecs.list_container_instances(cluster="ci", status="DRAINING")["containerInstanceArns"] == [arn]
        assert ecs.list_container_instances(cluster="ci", status="ACTIVE")["containerInstanceArns"] == []
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.update_container_instances_state(cluster="ci", containerInstances=[arn], status="DEREGISTERING")
        ecs.update_container_instances_state(cluster="ci", containerInstances=[node], status="ACTIVE")
        wait_for(lambda: not sandbox.kubectl_json("get", "node", node)["spec"].get("unschedulable"), what="the node to be uncordoned")
        assert not [a for a in ecs.list_container_instances(cluster="default")["containerInstanceArns"] if a.endswith("/" + node)]


def test_start_task_runs_on_the_named_instances(sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    ecs.create_cluster(clusterName="default")
    ecs.register_task_definition(family="job", containerDefinitions=container("nginx:1.29"))
    first, second = sorted(ecs.list_container_instances(cluster="default")["containerInstanceArns"])[:2]
    started = ecs.start_task(cluster="default", taskDefinition="job", startedBy="nightly",
                             containerInstances=[first, second.rsplit("/", 1)[-1], "i-gone"])
    assert started["failures"] == [{"arn": "i-gone", "reason": "MISSING"}]
    arns = [t["taskArn"] for t in started["tasks"]]
    assert len(arns) == 2 and {t["startedBy"] for t in started["tasks"]} == {"nightly"}
    ecs.get_waiter("tasks_running").wait(cluster="default", tasks=arns, WaiterConfig=FAST)
    described = ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]
    assert sorted(t["containerInstanceArn"] for t in described) == [first, second]
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(a.rsplit("/", 1)[-1] for a in (first, second))
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="containerInstances"):
        ecs.start_task(cluster="default", taskDefinition="job", containerInstances=[f"i-{n}" for n in range(11)])


def test_stop_task_of_a_service_task_is_replaced_as_in_ecs(sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    """StopTask of a service's task: it stops (UserInitiated, the reason given), the service starts a
    replacement, and the deployment neither fails nor counts it as a failed task."""
    ecs, _ = recorded
    ecs.create_cluster(clusterName="default")
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.29"))
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web", desiredCount=2,
                       deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    victim, survivor = sorted(ecs.list_tasks(cluster="default", serviceName="web")["taskArns"])

    answer = ecs.stop_task(cluster="default", task=victim, reason="rotating credentials")["task"]
    assert (answer["taskArn"], answer["desiredStatus"]) == (victim, "STOPPED")
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[victim], WaiterConfig=FAST)
    (stopped,) = ecs.describe_tasks(cluster="default", tasks=[victim])["tasks"]
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("UserInitiated", "rotating credentials"), stopped
    running = wait_for(lambda: len(arns := ecs.list_tasks(cluster="default", serviceName="web")["taskArns"]) == 2
                       and victim not in arns and arns, what="a replacement task")
    assert survivor in running
    service = wait_for(lambda: (s := ecs.describe_services(cluster="default", services=["web"])["services"][0])["deployments"][0][
        "rolloutState"] == "COMPLETED" and s, what="the deployment COMPLETED")
    assert [(d["rolloutState"], d["failedTasks"]) for d in service["deployments"]] == [("COMPLETED", 0)]
    assert service["runningCount"] == 2
    annotations = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["metadata"].get("annotations") or {}
    assert not [k for k in annotations if k.startswith("stop-task.")], annotations  # gone with the task


def test_a_pipeline_retrying_with_its_client_token_gets_the_same_tasks_and_service(
        sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    ecs.create_cluster(clusterName="default")
    ecs.register_task_definition(family="job", containerDefinitions=container("nginx:1.29"))
    first = ecs.run_task(cluster="default", taskDefinition="job", count=2, clientToken="build-1234")["tasks"]
    again = ecs.run_task(cluster="default", taskDefinition="job", count=2, clientToken="build-1234")["tasks"]
    assert sorted(t["taskArn"] for t in again) == sorted(t["taskArn"] for t in first) and len(first) == 2
    assert len(kubectl_get(sandbox, "tasks.ecs.operator.dev", namespace)) == 2

    made = ecs.create_service(cluster="default", serviceName="web", taskDefinition="job", desiredCount=1, clientToken="svc-1")
    retried = ecs.create_service(cluster="default", serviceName="web", taskDefinition="job", desiredCount=1, clientToken="svc-1")
    assert retried["service"]["serviceArn"] == made["service"]["serviceArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="not idempotent"):
        ecs.create_service(cluster="default", serviceName="web", taskDefinition="job", desiredCount=3, clientToken="svc-2")
    assert [s["spec"]["desiredCount"] for s in kubectl_get(sandbox, ECS_SERVICE, namespace)] == [1]


def test_delete_task_definitions_as_a_cleanup_job_does(sandbox: Cluster, namespace: str, recorded: tuple[Any, Recorder]) -> None:
    """Deregister old revisions, then delete them: DELETE_IN_PROGRESS, refused to new tasks, listed by that
    status; the ACTIVE one is a failure and stays; the next registration takes a new number."""
    ecs, _ = recorded
    ecs.create_cluster(clusterName="default")
    for image in ("nginx:1.27", "nginx:1.28", "nginx:1.29"):
        ecs.register_task_definition(family="web", containerDefinitions=container(image))
    ecs.deregister_task_definition(taskDefinition="web:1")
    ecs.deregister_task_definition(taskDefinition="web:2")
    answer = ecs.delete_task_definitions(taskDefinitions=["web:1", f"{ARN}:task-definition/web:2", "web:3"])
    assert [(d["revision"], d["status"]) for d in answer["taskDefinitions"]] == [(1, "DELETE_IN_PROGRESS"), (2, "DELETE_IN_PROGRESS")]
    assert [f["arn"] for f in answer["failures"]] == [f"{ARN}:task-definition/web:3"] and "ACTIVE" in answer["failures"][0]["reason"]
    resource = kubectl_get(sandbox, "taskdefinitions.ecs.operator.dev", namespace, "web")
    assert resource["spec"]["kubernetes"]["deletedRevisions"] == [1, 2]
    assert [(r["revision"], r["status"]) for r in resource["status"]["revisions"]] == [
        (1, "DELETE_IN_PROGRESS"), (2, "DELETE_IN_PROGRESS"), (3, "ACTIVE")]
    assert ecs.list_task_definitions(status="DELETE_IN_PROGRESS")["taskDefinitionArns"] == [
        f"{ARN}:task-definition/web:1", f"{ARN}:task-definition/web:2"]
    assert ecs.describe_task_definition(taskDefinition="web:1")["taskDefinition"]["status"] == "DELETE_IN_PROGRESS"
    with pytest.raises(ecs.exceptions.ClientException, match="inactive"):
        ecs.run_task(cluster="default", taskDefinition="web:2")
    assert ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.30"))["taskDefinition"]["revision"] == 4
    # as in ECS, every registration numbers a revision, one identical to the last too
    assert ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.30"))["taskDefinition"]["revision"] == 5


def test_tags_and_account_settings(sandbox: Cluster, namespace: str, api: Api, recorded: tuple[Any, Recorder]) -> None:
    ecs, _ = recorded
    cluster = ecs.create_cluster(clusterName="default", tags=[{"key": "team", "value": "a"}])["cluster"]["clusterArn"]
    ecs.tag_resource(resourceArn=cluster, tags=[{"key": "team", "value": "b"}, {"key": "cost", "value": "42"}])
    assert kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace, "default")["spec"]["tags"] == [
        {"key": "team", "value": "b"}, {"key": "cost", "value": "42"}]
    ecs.untag_resource(resourceArn=cluster, tagKeys=["team"])
    assert ecs.list_tags_for_resource(resourceArn=cluster)["tags"] == [{"key": "cost", "value": "42"}]
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.29"), tags=[{"key": "app", "value": "web"}])
    definition = f"{ARN}:task-definition/web:1"
    assert ecs.list_tags_for_resource(resourceArn=definition)["tags"] == [{"key": "app", "value": "web"}]
    with pytest.raises(ecs.exceptions.UnsupportedFeatureException):
        ecs.tag_resource(resourceArn=definition, tags=[{"key": "x", "value": "y"}])
    service = ecs.create_service(cluster="default", serviceName="web", taskDefinition="web", desiredCount=0)["service"]["serviceArn"]
    ecs.tag_resource(resourceArn=service, tags=[{"key": "tier", "value": "front"}])
    assert kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["spec"]["tags"] == [{"key": "tier", "value": "front"}]
    (task,) = ecs.run_task(cluster="default", taskDefinition="web")["tasks"]
    ecs.tag_resource(resourceArn=task["taskArn"], tags=[{"key": "run", "value": "1"}])
    assert ecs.describe_tasks(cluster="default", tasks=[task["taskArn"]], include=["TAGS"])["tasks"][0]["tags"] == [{"key": "run", "value": "1"}]
    ecs.stop_task(cluster="default", task=task["taskArn"])
    # docs/ecs-semantics.md §Task tags: propagated first, the task's own win, managed ones added
    (tagged,) = ecs.run_task(cluster="default", taskDefinition="web", propagateTags="TASK_DEFINITION",
                             enableECSManagedTags=True, tags=[{"key": "app", "value": "job"}, {"key": "run", "value": "2"}])["tasks"]
    expected = [{"key": "app", "value": "job"}, {"key": "run", "value": "2"}, {"key": "aws:ecs:clusterName", "value": "default"}]
    assert ecs.describe_tasks(cluster="default", tasks=[tagged["taskArn"]], include=["TAGS"])["tasks"][0]["tags"] == expected
    assert ecs.list_tags_for_resource(resourceArn=tagged["taskArn"])["tags"] == expected
    ecs.stop_task(cluster="default", task=tagged["taskArn"])
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="propagateTags"):
        ecs.run_task(cluster="default", taskDefinition="web", propagateTags="SERVICE")
    ecs.update_service(cluster="default", service="web", desiredCount=1, propagateTags="SERVICE", enableECSManagedTags=True)
    deadline = time.monotonic() + 60
    while not (arns := ecs.list_tasks(cluster="default", serviceName="web")["taskArns"]):
        assert time.monotonic() < deadline, "the service's task never appeared"
        time.sleep(0.5)
    assert ecs.describe_tasks(cluster="default", tasks=arns[:1], include=["TAGS"])["tasks"][0]["tags"] == [
        {"key": "tier", "value": "front"}, {"key": "aws:ecs:clusterName", "value": "default"},
        {"key": "aws:ecs:serviceName", "value": "web"}]
    with pytest.raises(ecs.exceptions.ResourceNotFoundException):
        ecs.list_tags_for_resource(resourceArn=f"{ARN}:cluster/nowhere")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn=cluster, tags=[{"key": "aws:reserved", "value": "x"}])

    root = "arn:aws:iam::000000000000:root"
    assert ecs.list_account_settings(name="containerInsights", effectiveSettings=True)["settings"] == [
        {"name": "containerInsights", "value": "disabled", "principalArn": root, "type": "aws_managed"}]
    ecs.put_account_setting_default(name="containerInsights", value="enabled")
    assert ecs.list_account_settings(name="containerInsights", effectiveSettings=True)["settings"][0]["value"] == "enabled"
    stored = sandbox.kubectl_json("get", "configmap", "ecs-account-settings", "-n", namespace)["data"]["settings.json"]
    assert json.loads(stored)["default"] == {"containerInsights": "enabled"}
    assert api.client(api.other_key_id, "other").list_account_settings()["settings"] == []  # another account
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_account_setting(name="serviceLongArnFormat", value="disabled")
    pages = ecs.get_paginator("list_account_settings").paginate(effectiveSettings=True, PaginationConfig={"PageSize": 4})
    assert len([s for page in pages for s in page["settings"]]) == 11


def test_fifty_clients_at_once_lose_and_duplicate_nothing(sandbox: Cluster, namespace: str, api: Api) -> None:
    """50 threads, each with its own boto3 client, create, describe, list and update at once: every call
    answers (no 5xx: retries are off), every answer is within the model, and kubectl shows exactly what was made."""
    threads, clusters = 50, 5
    clients = [api.client() for _ in range(threads)]
    recorders = [Recorder() for _ in range(threads)]
    for client, recorder in zip(clients, recorders, strict=True):
        client.meta.events.register("after-call.ecs", recorder)

    def work(i: int) -> str:
        ecs, cluster = clients[i], f"load-{i % clusters}"
        assert ecs.create_cluster(clusterName=cluster)["cluster"]["clusterName"] == cluster  # 10 threads per name: idempotent
        ecs.register_task_definition(family=f"fam-{i}", containerDefinitions=container("nginx:1.29"))
        assert f"{ARN}:cluster/{cluster}" in ecs.list_clusters()["clusterArns"]
        ecs.create_service(cluster=cluster, serviceName=f"svc-{i}", taskDefinition=f"fam-{i}", desiredCount=0)
        ecs.update_service(cluster=cluster, service=f"svc-{i}", deploymentConfiguration={"maximumPercent": 150})
        ecs.tag_resource(resourceArn=f"{ARN}:service/{cluster}/svc-{i}", tags=[{"key": "thread", "value": str(i)}])
        (described,) = ecs.describe_services(cluster=cluster, services=[f"svc-{i}"], include=["TAGS"])["services"]
        assert described["tags"] == [{"key": "thread", "value": str(i)}]
        ecs.describe_clusters(clusters=[cluster])
        ecs.list_services(cluster=cluster)
        return f"svc-{i}"

    with ThreadPoolExecutor(threads) as pool:
        made = list(pool.map(work, range(threads)))
    assert sorted(made) == sorted(f"svc-{i}" for i in range(threads))
    assert [p for r in recorders for p in r.problems()] == []

    assert sorted(c["spec"]["clusterName"] for c in kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace)) == [
        f"load-{n}" for n in range(clusters)]
    services = kubectl_get(sandbox, ECS_SERVICE, namespace)
    assert sorted(s["spec"]["serviceName"] for s in services) == sorted(made)
    assert all(s["spec"]["tags"] == [{"key": "thread", "value": s["spec"]["serviceName"].removeprefix("svc-")}]
               and s["spec"]["deploymentConfiguration"]["maximumPercent"] == 150 for s in services)
    families = kubectl_get(sandbox, "taskdefinitions.ecs.operator.dev", namespace)
    assert sorted((f["spec"]["family"], f["status"]["revision"]) for f in families) == sorted((f"fam-{i}", 1) for i in range(threads))
    listed = [a for c in range(clusters) for page in clients[0].get_paginator("list_services").paginate(cluster=f"load-{c}")
              for a in page["serviceArns"]]
    assert len(listed) == len(set(listed)) == threads
