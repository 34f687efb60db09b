"""Clusters on the real control plane: ECS's counters and settings in status, and deletion held back
(with ECS's exception named) while services or tasks remain."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from ecs_objects import (
    API,
    API_GROUP,
    apply_all,
    cluster,
    condition,
    container,
    events,
    kwok_nodes,
    pods,
    status,
    task,
    task_definition,
    unique,
    wait_task,
)
from operator_fixtures import wait_for

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")


def service(name: str, cluster_name: str, desired: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Service", "metadata": {"name": name},
            "spec": {"serviceName": name, "cluster": cluster_name, "taskDefinition": "web", "desiredCount": desired,
                     "launchType": "EC2"}}


def counters(sandbox: Cluster, namespace: str, name: str, **expected: Any) -> dict[str, Any]:
    return wait_for(lambda: (s := status(sandbox, "cluster", name, namespace)) and all(s.get(k) == v for k, v in expected.items())
                    and s, what=f"cluster {name} with {expected}")


def test_cluster_status_counts_instances_tasks_and_services(sandbox: Cluster, namespace: str) -> None:
    name = unique("cl")
    nodes = [f"{name}-a", f"{name}-b", f"{name}-c"]
    with kwok_nodes(sandbox, nodes, name, namespace, zones=("us-east-1a", "us-east-1b", "us-east-1c")):
        apply_all(sandbox, namespace, cluster(name, settings=[{"name": "containerInsights", "value": "enabled"}]),
                  task_definition("web", container("web", memory=64)),
                  task_definition("huge", container("web", memory=100_000)))
        empty = counters(sandbox, namespace, name, registeredContainerInstancesCount=3)
        assert (empty["status"], empty["clusterName"]) == ("ACTIVE", name)
        assert empty["clusterArn"] == f"arn:aws:ecs:us-east-1:000000000000:cluster/{name}"
        assert empty["settings"] == [{"name": "containerInsights", "value": "enabled"}]
        assert (empty["runningTasksCount"], empty["pendingTasksCount"], empty["activeServicesCount"]) == (0, 0, 0)
        assert condition(empty) | {"lastTransitionTime": None} == {
            "type": "Ready", "status": "True", "reason": "Active", "message": f"cluster {name} is ACTIVE",
            "observedGeneration": 1, "lastTransitionTime": None}

        apply_all(sandbox, namespace, task("two", "web", cluster=name, count=2), task("huge", "huge", cluster=name),
                  service("svc", name, 1))
        wait_task(sandbox, namespace, "two", "RUNNING")
        counters(sandbox, namespace, name, runningTasksCount=3, pendingTasksCount=1, activeServicesCount=1)

        sandbox.kubectl("label", "node", nodes[2], f"{API_GROUP}/cluster-")  # the instance leaves the cluster
        counters(sandbox, namespace, name, registeredContainerInstancesCount=2)
        wait_for(lambda: sandbox.kubectl("get", "containerinstance", nodes[2], check=False).returncode != 0,
                 what="its ContainerInstance deregistered")


def test_deleting_a_cluster_is_held_back_while_services_or_tasks_remain(sandbox: Cluster, namespace: str) -> None:
    """ECS refuses DeleteCluster while services or tasks remain and the cluster stays ACTIVE and working;
    Kubernetes cannot refuse the DELETE, so the deletion waits, and what comes after it is refused."""
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web", memory=64)),
              task("worker", "web"), service("svc", "default", 1))
    wait_task(sandbox, namespace, "worker", "RUNNING")
    counters(sandbox, namespace, "default", activeServicesCount=1, runningTasksCount=2)

    sandbox.kubectl("delete", "cluster", "default", "-n", namespace, "--wait=false")
    held = wait_for(lambda: condition(s := status(sandbox, "cluster", "default", namespace), "Deleted").get("reason")
                    == "ClusterContainsServicesException" and s, what="deletion held back by the service")
    assert held["status"] == "ACTIVE" and condition(held)["status"] == "True"
    assert condition(held, "Deleted")["status"] == "False" and "svc" in condition(held, "Deleted")["message"]
    assert events(sandbox, namespace, "default", reason="ClusterContainsServicesException")[0]["type"] == "Warning"

    # still ACTIVE and working: its service scales and the counters follow (kopf stops a deleted object's timers)
    sandbox.kubectl("scale", f"service.{API_GROUP}", "svc", "-n", namespace, "--replicas=2")
    counters(sandbox, namespace, "default", status="ACTIVE", activeServicesCount=1, runningTasksCount=3)

    # what is created into it now is refused with ECS's error for an inactive cluster, and holds nothing back
    apply_all(sandbox, namespace, service("late-svc", "default", 1), task("late-task", "web"))
    for kind, name in ((f"service.{API_GROUP}", "late-svc"), ("task", "late-task")):
        refused = wait_for(lambda: condition(s := status(sandbox, kind, name, namespace)).get("reason")
                           == "ClusterNotFoundException" and s, what=f"{name} refused")
        assert "The referenced cluster was inactive" in condition(refused)["message"]
        assert events(sandbox, namespace, name, reason="ClusterNotFoundException")[0]["type"] == "Warning"
    assert sandbox.kubectl("get", "deployment", "late-svc", "-n", namespace, check=False).returncode != 0
    assert not pods(sandbox, namespace, "late-task")
    assert "late-svc" not in condition(status(sandbox, "cluster", "default", namespace), "Deleted")["message"]
    counters(sandbox, namespace, "default", activeServicesCount=1, runningTasksCount=3)

    sandbox.kubectl("delete", f"service.{API_GROUP}", "svc", "-n", namespace, "--wait=false")
    by_task = wait_for(lambda: condition(s := status(sandbox, "cluster", "default", namespace), "Deleted").get("reason")
                       == "ClusterContainsTasksException" and s, timeout=90, what="deletion held back by the task")
    assert "worker" in condition(by_task, "Deleted")["message"] and by_task["status"] == "ACTIVE"
    assert by_task["activeServicesCount"] == 0
    assert sandbox.kubectl("get", "cluster", "default", "-n", namespace, check=False).returncode == 0

    sandbox.kubectl("patch", "task", "worker", "-n", namespace, "--type", "merge",
                    "-p", json.dumps({"spec": {"desiredStatus": "STOPPED"}}))
    wait_for(lambda: sandbox.kubectl("get", "cluster", "default", "-n", namespace, check=False).returncode != 0,
             timeout=90, what="the cluster deleted once nothing runs in it")
    wait_for(lambda: sandbox.kubectl("get", "task", "worker", "-n", namespace, check=False).returncode != 0,
             what="its STOPPED task gone with it")
