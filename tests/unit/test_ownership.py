"""Ownership, never adoption (ownership.py): which objects the operator may write, the conflict it
reports otherwise, and the ECS field each planned child is named after."""

from __future__ import annotations

from typing import Any

from test_translate_service import OWNER, plan, revision

from ecs_operator.models import TaskSpec
from ecs_operator.ownership import Conflict, conflict, conflicts_text, controlled_by, controller_of, in_the_way
from ecs_operator.settings import Settings
from ecs_operator.translate.task import task_pods

ECS = "ecs.operator.dev/v1alpha1"


def obj(kind: str, name: str, *refs: dict[str, Any], namespace: str | None = "ns") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "ownerReferences": list(refs)}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta}


def ref(kind: str, uid: str, controller: bool = True, api_version: str = ECS, name: str = "web") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": controller}


def test_only_the_controller_reference_with_the_owners_uid_api_version_and_kind_counts() -> None:
    owner = {"apiVersion": ECS, "kind": "Service", "uid": "u-1"}
    assert controlled_by(obj("Service", "web", ref("Service", "u-1")), owner)
    assert not controlled_by(obj("Service", "web", ref("Service", "u-1", controller=False)), owner)  # an owner, not the controller
    assert not controlled_by(obj("Service", "web", ref("Service", "u-2")), owner)  # a same-named Service created again
    assert not controlled_by(obj("Service", "web", ref("Service", "u-1", api_version="v1")), owner)  # the core Service kind
    assert not controlled_by(obj("Service", "web", ref("Task", "u-1")), owner)
    assert not controlled_by(obj("Service", "kubernetes"), owner)  # default/kubernetes: no owner at all
    controller = controller_of(obj("Pod", "p", ref("ReplicaSet", "r", controller=False), ref("Task", "t")))
    assert controller is not None and controller["kind"] == "Task"


def test_a_name_held_by_another_is_a_conflict_naming_the_field_the_object_and_its_holder() -> None:
    planned = obj("Service", "payments", ref("Service", "u-1"))
    assert in_the_way(planned, None, "loadBalancers[0]") is None  # free: it is created
    assert in_the_way(planned, obj("Service", "payments", ref("Service", "u-1")), "loadBalancers[0]") is None  # ours
    found = in_the_way(planned, obj("Service", "payments"), "loadBalancers[0]")
    assert found == Conflict("loadBalancers[0]", "Service", "ns", "payments", "no controller")
    message = found.message("Service")
    assert message.startswith("loadBalancers[0]: needs the Service ns/payments, which exists and is not controlled by this Service")
    assert "so nothing was written to it" in message
    held = conflict("metadata.name", obj("Pod", "t-0", ref("ReplicaSet", "x", api_version="apps/v1", name="rs")))
    assert held.holder == "controlled by ReplicaSet rs"
    node = conflict("metadata.name", obj("Node", "pool-0", namespace=None))
    assert node.where == "pool-0"
    assert conflicts_text([found, held], "Task").count("; ") == 1


def test_every_planned_service_child_names_the_ecs_field_that_asked_for_its_name() -> None:
    out = plan({
        "desiredCount": 2,
        "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80},
                          {"targetGroupArn": "arn:tg2", "containerName": "app", "containerPort": 80}],
        "serviceRegistries": [{"registryArn": "arn:sd", "containerName": "app", "containerPort": 80}],
        "serviceConnectConfiguration": {"enabled": True, "services": [
            {"portName": "http", "discoveryName": "payments", "clientAliases": [{"port": 8080, "dnsName": "guard.local"}]}]},
    }, rev=revision(networkMode="none"))
    assert out.origins == {
        ("Deployment", "web"): "metadata.name",
        ("PodDisruptionBudget", "web"): "deploymentConfiguration.minimumHealthyPercent",
        ("Service", "web"): "loadBalancers[0]",
        ("Service", "web-1"): "loadBalancers[1]",
        ("Service", "web-discovery"): "serviceRegistries[0]",
        ("Service", "payments"): "serviceConnectConfiguration.services[0]",
        ("Service", "guard-local"): "serviceConnectConfiguration.services[0].clientAliases[0].dnsName",
        ("NetworkPolicy", "web-isolated"): "taskDefinition.networkMode",
        # each Service's endpoints, which the operator writes (only essential containers count)
        ("EndpointSlice", "web"): "loadBalancers[0]",
        ("EndpointSlice", "web-1"): "loadBalancers[1]",
        ("EndpointSlice", "web-discovery"): "serviceRegistries[0]",
        ("EndpointSlice", "payments"): "serviceConnectConfiguration.services[0]",
        ("EndpointSlice", "guard-local"): "serviceConnectConfiguration.services[0].clientAliases[0].dnsName",
    }
    assert {(o["kind"], o["metadata"]["name"]) for o in out.children} == set(out.origins)
    assert all(controlled_by(o, OWNER) for o in out.children)  # every child names its ECS Service as controller


def test_every_planned_task_child_names_the_ecs_field_that_asked_for_its_name() -> None:
    owner = {**OWNER, "kind": "Task", "name": "job"}
    rev = revision(networkMode="none", containerDefinitions=[{"name": "app", "image": "nginx", "memory": 64}])
    one = task_pods(TaskSpec(taskDefinition="web:3"), name="job", namespace="ns", revision=rev, cluster="default",
                    settings=Settings(), owner=owner)
    assert one.origins == {("Pod", "job-0"): "metadata.name", ("NetworkPolicy", "job-isolated"): "taskDefinition.networkMode"}
    two = task_pods(TaskSpec(taskDefinition="web:3", count=2), name="job", namespace="ns", revision=rev, cluster="default",
                    settings=Settings(), owner=owner)
    assert two.origins[("Pod", "job-1")] == "count (task 1)"
    assert all(controlled_by(o, owner) for o in [*two.pods, *two.extra])
