"""ContainerInstances on the real control plane: one per Node of an ECS cluster, resources in ECS units
that follow tasks as they start and stop, attributes from node labels, and DRAINING.

Each test brings its own kwok nodes labelled for an ECS cluster of its own, so the numbers are
exact whatever else runs in the session.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from ecs_objects import (
    API,
    API_GROUP,
    apply_all,
    changes_during,
    cluster,
    container,
    events,
    kwok_nodes,
    pods,
    resources,
    status,
    task,
    task_definition,
    unique,
    wait_task,
)
from ecs_operator import labels as L
from ecs_operator.nodepool.instance_types import KWOK_ANNOTATION, build_node, instance_type
from operator_fixtures import wait_for
from service_support import is_ready, watch_pods

if TYPE_CHECKING:
    from conftest import Cluster
    from operator_fixtures import Operator

pytestmark = pytest.mark.usefixtures("running_operator")

RESERVED_PORTS = ["22", "2375", "2376", "51678", "51679"]  # the ECS agent's defaults, as strings (STRINGSET)


def instance(sandbox: Cluster, name: str) -> dict[str, Any]:
    return status(sandbox, "containerinstance", name)


def remaining_becomes(sandbox: Cluster, name: str, **expected: Any) -> dict[str, Any]:
    return wait_for(lambda: (s := instance(sandbox, name)) and all(resources(s, "remainingResources").get(k) == v
                                                                   for k, v in expected.items()) and s,
                    what=f"{name} remaining {expected}")


def stop(sandbox: Cluster, namespace: str, name: str) -> None:
    sandbox.kubectl("patch", "task", name, "-n", namespace, "--type", "merge", "-p", '{"spec": {"desiredStatus": "STOPPED"}}')


def test_registered_and_remaining_resources_follow_tasks(sandbox: Cluster, namespace: str) -> None:
    name = unique("ci")
    node = f"{name}-a"
    with kwok_nodes(sandbox, [node], name, namespace, labels={f"attributes.{API_GROUP}/stack": "prod"}):
        registered = wait_for(lambda: (s := instance(sandbox, node)).get("agentConnected") and s,
                              what="the ContainerInstance, its agent connected (the Node Ready)")
        assert (registered["clusterName"], registered["ec2InstanceId"], registered["status"]) == (name, node, "ACTIVE")
        assert (registered["clusterNamespace"], registered["sharedInstance"]) == (namespace, False)
        assert registered["containerInstanceArn"] == f"arn:aws:ecs:us-east-1:000000000000:container-instance/{name}/{node}"
        full = {"CPU": 2048, "MEMORY": 8192, "PORTS": RESERVED_PORTS, "PORTS_UDP": [], "GPU": 0}  # m5.large
        assert resources(registered, "registeredResources") == full == resources(registered, "remainingResources")
        attributes = {a["name"]: a.get("value") for a in registered["attributes"]}
        assert {k: attributes.get(k) for k in ("ecs.availability-zone", "ecs.instance-type", "ecs.os-type",
                                               "ecs.cpu-architecture", "stack")} == {
            "ecs.availability-zone": "us-east-1a", "ecs.instance-type": "m5.large", "ecs.os-type": "linux",
            "ecs.cpu-architecture": "x86_64", "stack": "prod"}
        assert registered["runningTasksCount"] == 0 and registered["pendingTasksCount"] == 0

        sandbox.kubectl("label", "namespace", namespace, f"{API_GROUP}/allow-privileged-workloads=true")  # static host ports
        ports = [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}]
        apply_all(sandbox, namespace, cluster(name),
                  task_definition("hard", container("web", cpu=512, memory=1024, portMappings=ports)),
                  task_definition("soft", container("web", cpu=256, memory=512, memoryReservation=256)),
                  task("hard", "hard", cluster=name))
        wait_task(sandbox, namespace, "hard", "RUNNING")
        one = remaining_becomes(sandbox, node, CPU=2048 - 512, MEMORY=8192 - 1024)
        assert resources(one, "remainingResources")["PORTS"] == sorted(RESERVED_PORTS + ["8080"])
        assert resources(one, "remainingResources")["PORTS_UDP"] == ["5353"]
        assert one["runningTasksCount"] == 1
        assert resources(one, "registeredResources") == full  # registered never changes

        apply_all(sandbox, namespace, task("soft", "soft", cluster=name))
        wait_task(sandbox, namespace, "soft", "RUNNING")
        remaining_becomes(sandbox, node, CPU=2048 - 512 - 256, MEMORY=8192 - 1024 - 256)  # the reservation counts

        stop(sandbox, namespace, "hard")
        freed = remaining_becomes(sandbox, node, CPU=2048 - 256, MEMORY=8192 - 256, PORTS=RESERVED_PORTS, PORTS_UDP=[])
        assert freed["runningTasksCount"] == 1
        stop(sandbox, namespace, "soft")
        assert remaining_becomes(sandbox, node, **full)["runningTasksCount"] == 0

        sandbox.kubectl("label", "node", node, f"attributes.{API_GROUP}/stack=staging", "--overwrite")
        wait_for(lambda: {"name": "stack", "value": "staging"} in instance(sandbox, node)["attributes"],
                 what="the custom attribute follows the node label")


def test_draining_moves_service_tasks_and_leaves_standalone_tasks(sandbox: Cluster, namespace: str) -> None:
    name = unique("drain")
    a, b = f"{name}-a", f"{name}-b"
    service = {"apiVersion": API, "kind": "Service", "metadata": {"name": "svc"},
               "spec": {"serviceName": "svc", "cluster": name, "taskDefinition": "web", "desiredCount": 2, "launchType": "EC2",
                        "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}}}
    in_zone_a = [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == us-east-1a"}]
    with kwok_nodes(sandbox, [a, b], name, namespace, zones=("us-east-1a", "us-east-1b")):
        apply_all(sandbox, namespace, cluster(name), task_definition("web", container("web", memory=64)), service,
                  task("standalone", "web", cluster=name, placementConstraints=in_zone_a))
        wait_task(sandbox, namespace, "standalone", "RUNNING")
        (standalone,) = pods(sandbox, namespace, "standalone")
        assert standalone["spec"]["nodeName"] == a

        def service_nodes() -> list[str]:
            return sorted(p["spec"].get("nodeName", "") for p in pods(sandbox, namespace)
                          if p["metadata"]["labels"].get(f"{API_GROUP}/service") and p["status"].get("phase") == "Running"
                          and not p["metadata"].get("deletionTimestamp"))

        assert wait_for(lambda: service_nodes() == [a, b], what="one service task per zone (ECS's default spread)")

        sandbox.kubectl("patch", "containerinstance", a, "--type", "merge", "-p", json.dumps({"spec": {"status": "DRAINING"}}))
        wait_for(lambda: instance(sandbox, a).get("status") == "DRAINING", what="the instance DRAINING")
        assert wait_for(lambda: service_nodes() == [b, b], timeout=90, what="the service tasks moved off the draining node")
        node = sandbox.kubectl_json("get", "node", a)
        assert node["spec"].get("unschedulable") is True  # cordoned: no new task goes there
        (still,) = pods(sandbox, namespace, "standalone")
        assert (still["metadata"]["uid"], still["spec"]["nodeName"]) == (standalone["metadata"]["uid"], a)
        assert status(sandbox, "task", "standalone", namespace)["lastStatus"] == "RUNNING"  # standalone tasks stay
        assert wait_for(lambda: instance(sandbox, a).get("runningTasksCount") == 1, what="only the standalone task left")
        draining = [e for e in _instance_events(sandbox, a) if e["reason"] == "Draining"]
        assert len(draining) == 1 and "standalone tasks stay" in draining[0]["message"]
        assert "namespace" not in draining[0]["involvedObject"]  # a cluster-scoped object's Event
        described = sandbox.kubectl("describe", "containerinstance", a).stdout.split("\nEvents:")[-1]
        assert "Draining" in described and f"container instance {a} is DRAINING" in described, described

        sandbox.kubectl("patch", "containerinstance", a, "--type", "merge", "-p", json.dumps({"spec": {"status": "ACTIVE"}}))
        wait_for(lambda: instance(sandbox, a).get("status") == "ACTIVE", what="the instance ACTIVE again")
        wait_for(lambda: not sandbox.kubectl_json("get", "node", a)["spec"].get("unschedulable"), what="the node uncordoned")
        assert f"{API_GROUP}/draining" not in sandbox.kubectl_json("get", "node", a)["metadata"]["labels"]


def test_kubectl_get_ecs_lists_the_namespaces_objects_and_ecs_capacity_the_instances(sandbox: Cluster, namespace: str) -> None:
    """`kubectl get ecs -n NS` is what a namespace holds; the cluster-scoped instances are listed by
    `kubectl get ecs-capacity`."""
    name = unique("listed")
    node = f"{name}-a"
    with kwok_nodes(sandbox, [node], name, namespace):
        apply_all(sandbox, namespace, cluster(name))
        wait_for(lambda: instance(sandbox, node).get("agentConnected"), what=f"container instance {node}")
        listed = sandbox.kubectl("get", "ecs", "-n", namespace, "-o", "name").stdout.split()
        assert listed == [f"cluster.{API_GROUP}/{name}"], listed
        capacity = sandbox.kubectl("get", "ecs-capacity", "-o", "name").stdout.split()
        assert f"containerinstance.{API_GROUP}/{node}" in capacity, capacity


def _drain_cluster(sandbox: Cluster, namespace: str, name: str, nodes: list[str], **spec: Any) -> dict[str, Any]:
    """An ECS cluster on `nodes` with a service of 2 tasks (`spec`: more of its CreateService fields);
    returns the service's first RUNNING task once both run."""
    service = {"apiVersion": API, "kind": "Service", "metadata": {"name": "svc"},
               "spec": {"serviceName": "svc", "cluster": name, "taskDefinition": "web", "desiredCount": 2, "launchType": "EC2", **spec}}
    apply_all(sandbox, namespace, cluster(name), task_definition("web", container("web", memory=64)), service)
    wait_for(lambda: (s := status(sandbox, "services.ecs.operator.dev", "svc", namespace)).get("runningCount") == 2
             and s.get("rolloutState") == "COMPLETED", timeout=90, what="2 service tasks RUNNING")
    return next(p for p in _live_service_pods(sandbox, namespace) if p["status"].get("phase") == "Running")


def _live_service_pods(sandbox: Cluster, namespace: str) -> list[dict[str, Any]]:
    return [p for p in pods(sandbox, namespace) if p["metadata"]["labels"].get(f"{API_GROUP}/service")
            and not p["metadata"].get("deletionTimestamp")]


def _running(snapshot: dict[str, dict[str, Any]]) -> int:
    """RUNNING service tasks in a snapshot of the namespace's Pods: Ready and not being stopped."""
    return sum(1 for p in snapshot.values() if p["metadata"]["labels"].get(f"{API_GROUP}/service")
               and not p["metadata"].get("deletionTimestamp") and is_ready(p))


def test_draining_at_ecs_defaults_starts_the_replacement_before_stopping_the_task(
        sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    """No deploymentConfiguration: minimumHealthyPercent 100, maximumPercent 200. ECS starts a replacement
    on another instance first and stops the task on the DRAINING instance once the replacement runs
    (issue 14.1: the eviction was refused by the PodDisruptionBudget forever). An operator restart in
    the middle continues from what exists: still one replacement."""
    name = unique("drain-default")
    nodes = [f"{name}-a", f"{name}-b", f"{name}-c"]
    with kwok_nodes(sandbox, nodes, name, namespace, zones=("us-east-1a", "us-east-1b", "us-east-1c")):
        first = _drain_cluster(sandbox, namespace, name, nodes)
        victim = first["spec"]["nodeName"]
        moving = sorted(p["metadata"]["uid"] for p in _live_service_pods(sandbox, namespace) if p["spec"]["nodeName"] == victim)
        watch = watch_pods(sandbox, namespace)
        sandbox.kubectl("patch", "containerinstance", victim, "--type", "merge", "-p", json.dumps({"spec": {"status": "DRAINING"}}))
        replacing = f"(service svc) is replacing {len(moving)} tasks on DRAINING container instance(s) {victim}"
        wait_for(lambda: any(e["message"].startswith(replacing) for e in status(sandbox, "services.ecs.operator.dev", "svc", namespace)["events"]),
                 timeout=30, what="the replacement announced")
        running_operator.restart()  # in the middle of the drain: the new operator goes on from what exists
        wait_for(lambda: (i := instance(sandbox, victim)).get("runningTasksCount") == 0 and i["status"] == "DRAINING",
                 timeout=90, what="the draining instance without tasks")
        final = wait_for(lambda: (live := _live_service_pods(sandbox, namespace)) and len(live) == 2
                         and all(is_ready(p) for p in live) and live, timeout=60, what="2 tasks RUNNING elsewhere")
        watch.stop()
        assert victim not in {p["spec"]["nodeName"] for p in final}
        assert not set(moving) & {p["metadata"]["uid"] for p in final}
        added = {c.object["metadata"]["uid"] for c in watch.changes if c.type == "ADDED"}
        assert len(added) == len(moving), f"one replacement per task, never more: {added}"  # nothing duplicated by the restart
        assert min(_running(s) for s in watch.snapshots) == 2  # each replacement ran before its task stopped
        assert sandbox.kubectl_json("get", "deployment", "svc", "-n", namespace)["spec"]["replicas"] == 2
        state = wait_for(lambda: (s := status(sandbox, "services.ecs.operator.dev", "svc", namespace)).get("runningCount") == 2 and s,
                         what="the service's count back at 2")
        assert (state["desiredCount"], state["rolloutState"]) == (2, "COMPLETED")
        stopped = [e["message"] for e in state["events"] if e["message"].startswith("(service svc) has stopped")]
        assert {t for m in stopped for t in moving if f"(task {t.replace('-', '')})" in m} == set(moving), stopped
        assert sandbox.kubectl_json("get", "node", victim)["spec"].get("unschedulable") is True


def test_draining_with_minimum_and_maximum_100_percent_stays_draining_and_says_why(sandbox: Cluster, namespace: str) -> None:
    """minimumHealthyPercent 100 and maximumPercent 100: ECS can neither start a replacement first nor stop
    the task first; the instance stays DRAINING with its task, and a Warning Event names deploymentConfiguration."""
    name = unique("drain-stuck")
    nodes = [f"{name}-a", f"{name}-b"]
    with kwok_nodes(sandbox, nodes, name, namespace, zones=("us-east-1a", "us-east-1b")):
        first = _drain_cluster(sandbox, namespace, name, nodes,
                               deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 100})
        victim = first["spec"]["nodeName"]
        sandbox.kubectl("patch", "containerinstance", victim, "--type", "merge", "-p", json.dumps({"spec": {"status": "DRAINING"}}))
        warning = wait_for(lambda: next((e for e in events(sandbox, namespace, "svc", "ServiceEvent") if e["type"] == "Warning"), None),
                           30, what="a Warning Event about the service")
        assert warning["message"] == (
            f"(service svc) was unable to replace 1 tasks on DRAINING container instance(s) {victim}: deploymentConfiguration "
            "minimumHealthyPercent 100 and maximumPercent 100 allow neither starting a replacement first nor stopping a task "
            "first. Update the minimumHealthyPercent or maximumPercent value."), warning["message"]
        assert warning["message"] in [e["message"] for e in status(sandbox, "services.ecs.operator.dev", "svc", namespace)["events"]]
        assert not changes_during(sandbox, 6, ("pods", namespace), ("deployments", namespace))  # nothing started or stopped
        assert [p["metadata"]["uid"] for p in _live_service_pods(sandbox, namespace) if p["spec"]["nodeName"] == victim] == [first["metadata"]["uid"]]
        assert (instance(sandbox, victim)["status"], instance(sandbox, victim)["runningTasksCount"]) == ("DRAINING", 1)

        # as the event says: with minimumHealthyPercent 50 the task stops first, then its replacement starts elsewhere
        sandbox.kubectl("patch", "services.ecs.operator.dev", "svc", "-n", namespace, "--type", "merge", "-p",
                        json.dumps({"spec": {"deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}}}))
        wait_for(lambda: instance(sandbox, victim).get("runningTasksCount") == 0, timeout=90, what="the task stopped")
        wait_for(lambda: len(live := _live_service_pods(sandbox, namespace)) == 2 and all(is_ready(p) for p in live)
                 and victim not in {p["spec"]["nodeName"] for p in live}, timeout=60, what="its replacement RUNNING elsewhere")
        texts = [e["message"] for e in status(sandbox, "services.ecs.operator.dev", "svc", namespace)["events"]]
        assert (f"(service svc) is stopping 1 tasks on DRAINING container instance(s) {victim} first (minimumHealthyPercent 50); "
                "their replacements start on other instances.") in texts, texts


def _instance_events(sandbox: Cluster, name: str) -> list[dict[str, Any]]:
    """Events about a cluster-scoped ContainerInstance (Kubernetes keeps them in the default namespace)."""
    items = sandbox.kubectl_json("get", "events", "-A", "--field-selector",
                                 f"involvedObject.kind=ContainerInstance,involvedObject.name={name}")["items"]
    return items


def test_agent_connected_follows_the_nodes_ready_condition(sandbox: Cluster) -> None:
    """The Node's Ready condition stands for the ECS agent's connection. The node is one no kubelet
    (here: kwok) reports on, so the test sets its condition as a kubelet, then the node controller, would."""
    name = unique("agent")
    node = build_node(name, instance_type("m5.large"), "us-east-1a", labels={L.CLUSTER: name, L.SHARED_INSTANCE: "true"})
    del node["metadata"]["annotations"][KWOK_ANNOTATION]

    def ready(value: str, reason: str) -> None:
        condition = {"type": "Ready", "status": value, "reason": reason, "message": reason,
                     "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}
        sandbox.kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                        "-p", json.dumps({"status": {"conditions": [condition]}}))

    sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
    try:
        never_reported = wait_for(lambda: instance(sandbox, name).get("registeredResources") and instance(sandbox, name),
                                  what="the ContainerInstance of a node nobody reports on")
        assert never_reported["agentConnected"] is False
        assert (never_reported["clusterName"], never_reported.get("clusterNamespace"), never_reported["sharedInstance"]) == (name, None, True)
        ready("True", "KubeletReady")
        wait_for(lambda: instance(sandbox, name).get("agentConnected") is True, what="agentConnected once the node is Ready")
        ready("Unknown", "NodeStatusUnknown")
        wait_for(lambda: instance(sandbox, name).get("agentConnected") is False, what="agentConnected False once it is not")
    finally:
        sandbox.kubectl("delete", "node", name, "--wait=false", check=False)


def test_any_valid_node_quantity_is_read_in_ecs_units(sandbox: Cluster) -> None:
    """Kubernetes accepts `1k` CPUs and `1Ti` or `1e12` bytes of memory; the instance reports them in ECS
    units (issue 14.14: the status crashed on `1k`, retried every minute)."""
    name = unique("quantities")
    node = build_node(name, instance_type("m5.large"), "us-east-1a", labels={L.CLUSTER: name, L.SHARED_INSTANCE: "true"})
    node["status"]["capacity"].update(cpu="1k", memory="1Ti")
    node["status"]["allocatable"].update(cpu="1000", memory="1e12")
    sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
    try:
        registered = wait_for(lambda: resources(instance(sandbox, name), "registeredResources"), what="the instance's resources")
        assert (registered["CPU"], registered["MEMORY"]) == (1000 * 1024, 10**12 // 1048576)
    finally:
        sandbox.kubectl("delete", "node", name, "--wait=false", check=False)
