"""Tasks (RunTask) on the real control plane: ECS's life cycle, stop codes and reasons, dependsOn,
health, placement failures, StopTask, a crash in the middle of launching, launch types, network
modes, the stopped-task TTL, and no API writes once nothing changes.

kwok plays the ECS agent: `sim.ecs.operator.dev/*` annotations (through the TaskDefinition's
`kubernetes.podAnnotations`) make a container exit with a code or fail its health check.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from ecs_objects import (
    API_GROUP,
    apply_all,
    changes_during,
    cluster,
    condition,
    container,
    events,
    events_seen,
    first_line,
    kwok_nodes,
    pods,
    status,
    task,
    task_definition,
    unique,
    wait_task,
    watch,
)
from operator_fixtures import wait_for

if TYPE_CHECKING:
    from conftest import Cluster
    from operator_fixtures import Operator

pytestmark = pytest.mark.usefixtures("running_operator")

TASK_ARN = re.compile(r"^arn:aws:ecs:us-east-1:\d{12}:task/default/[0-9a-f]{32}$")
MISSION_MANIFEST = """\
apiVersion: ecs.operator.dev/v1alpha1
kind: Cluster
metadata:
  name: default
spec: {}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata:
  name: nginx-demo
spec:
  family: nginx-demo
  containerDefinitions:
  - name: nginx
    image: nginx
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata:
  name: nginx
spec:
  taskDefinition: nginx-demo
"""


def exits(container_name: str, code: int, after: str = "2s") -> dict[str, Any]:
    """kubernetes.podAnnotations that make `container_name` exit with `code` once running."""
    return {"podAnnotations": {"sim.ecs.operator.dev/exit": f"{container_name}={code}",
                               "sim.ecs.operator.dev/exit-after": after}}


def record(task_status: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return task_status["tasks"][index]


def containers_of(task_status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in record(task_status)["containers"]}


def test_the_mission_example_runs_and_kubectl_get_ecs_lists_it(sandbox: Cluster, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=MISSION_MANIFEST)
    running = wait_task(sandbox, namespace, "nginx", "RUNNING", timeout=60)

    assert running["desiredStatus"] == "RUNNING" and running["healthStatus"] == "UNKNOWN"  # no health check
    assert running["taskDefinition"] == "nginx-demo:1"
    assert running["taskDefinitionArn"] == "arn:aws:ecs:us-east-1:000000000000:task-definition/nginx-demo:1"
    assert running["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    assert TASK_ARN.match(running["taskArn"]), running["taskArn"]
    assert (running["launchType"], running["group"]) == ("EC2", "family:nginx-demo")
    assert running["createdAt"] <= running["startedAt"]
    nginx = containers_of(running)["nginx"]
    assert (nginx["lastStatus"], nginx["image"], nginx["essential"]) == ("RUNNING", "nginx", True)
    (pod,) = pods(sandbox, namespace, "nginx")
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Task"
    assert record(running)["containerInstance"] == pod["spec"]["nodeName"]
    node = sandbox.kubectl_json("get", "node", pod["spec"]["nodeName"])
    assert node["metadata"]["labels"][f"{API_GROUP}/cluster"] == "default"
    assert running["taskArn"].endswith(pod["metadata"]["uid"].replace("-", ""))

    listed = sandbox.kubectl("get", "ecs", "-n", namespace).stdout
    task_line = next(line for line in listed.splitlines() if line.startswith("task.ecs.operator.dev/nginx"))
    assert task_line.split()[1:4] == ["nginx-demo:1", "RUNNING", "RUNNING"], listed
    assert "taskdefinition.ecs.operator.dev/nginx-demo" in listed and "cluster.ecs.operator.dev/default" in listed

    # applied in one go, the Task waited for its TaskDefinition without a Warning; a task that starts as it
    # should costs no Event at all (its status says it)
    assert events(sandbox, namespace, "nginx") == []
    assert not [e for e in events(sandbox, namespace) if e["type"] == "Warning"]


def test_an_essential_container_exiting_stops_the_task(sandbox: Cluster, namespace: str) -> None:
    apply_all(sandbox, namespace, cluster(),
              task_definition("exiter", container("app", memory=128), container("helper", memory=64, essential=False),
                              kubernetes=exits("app", 2)),
              task("exiter", "exiter"))
    stopped = wait_task(sandbox, namespace, "exiter", "STOPPED")

    assert stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    assert stopped["startedAt"] <= stopped["stoppingAt"] <= stopped["stoppedAt"]
    app, helper = containers_of(stopped)["app"], containers_of(stopped)["helper"]
    assert (app["lastStatus"], app["exitCode"]) == ("STOPPED", 2)
    assert helper["lastStatus"] == "STOPPED"  # ECS stops every other container of the task
    assert wait_for(lambda: not [p for p in pods(sandbox, namespace, "exiter") if p["status"].get("phase") == "Running"],
                    what="no running Pod left")
    (stop_event,) = events_seen(sandbox, namespace, "exiter", reason="TaskStopped")
    assert stop_event["type"] == "Warning" and "Essential container in task exited" in stop_event["message"]


def test_a_non_essential_container_exiting_leaves_the_task_running(sandbox: Cluster, namespace: str) -> None:
    apply_all(sandbox, namespace, cluster(),
              task_definition("helper-exits", container("app", memory=128),
                              container("helper", memory=64, essential=False), kubernetes=exits("helper", 3)),
              task("helper-exits", "helper-exits"))
    after_exit = wait_for(lambda: (s := status(sandbox, "task", "helper-exits", namespace)).get("tasks")
                          and containers_of(s)["helper"]["lastStatus"] == "STOPPED" and s,
                          what="the helper container STOPPED")

    assert containers_of(after_exit)["helper"]["exitCode"] == 3
    assert containers_of(after_exit)["app"]["lastStatus"] == "RUNNING"
    assert (after_exit["lastStatus"], after_exit["desiredStatus"]) == ("RUNNING", "RUNNING")
    assert "stopCode" not in after_exit and "stoppedReason" not in after_exit
    assert not events(sandbox, namespace, "helper-exits", reason="TaskStopped")


def test_depends_on_becomes_start_order_and_health_follows_ecs_rule(sandbox: Cluster, namespace: str) -> None:
    check = {"command": ["CMD-SHELL", "curl -f localhost/ready"], "interval": 5, "retries": 2}
    apply_all(sandbox, namespace, cluster(),
              task_definition(
                  "ordered",
                  container("migrate", "busybox", memory=64, essential=False),
                  container("proxy", "envoy", memory=64, healthCheck=check),
                  container("logger", "fluent-bit", memory=64, essential=False),
                  container("app", memory=128, healthCheck=check, dependsOn=[
                      {"containerName": "migrate", "condition": "SUCCESS"},
                      {"containerName": "proxy", "condition": "HEALTHY"},
                      {"containerName": "logger", "condition": "START"}])),
              task("ordered", "ordered"))
    running = wait_task(sandbox, namespace, "ordered", "RUNNING")

    (pod,) = pods(sandbox, namespace, "ordered")
    (migrate,) = pod["spec"]["initContainers"]
    assert migrate["name"] == "migrate" and "restartPolicy" not in migrate  # SUCCESS: runs to completion (exit 0) before the rest
    main = {c["name"]: c for c in pod["spec"]["containers"]}
    assert list(main) == ["logger", "proxy", "app"]  # the kubelet starts them in this order
    assert "lifecycle" not in main["logger"]  # START: started before the app
    assert "postStart" in main["proxy"]["lifecycle"]  # HEALTHY: its hook holds the app until its health check passes

    healthy = wait_for(lambda: (s := status(sandbox, "task", "ordered", namespace))["healthStatus"] == "HEALTHY" and s,
                       what="task HEALTHY")
    by_name = containers_of(healthy)
    assert (by_name["migrate"]["lastStatus"], by_name["migrate"]["exitCode"]) == ("STOPPED", 0)
    assert [by_name[n]["healthStatus"] for n in ("proxy", "logger", "app")] == ["HEALTHY", "UNKNOWN", "HEALTHY"]
    assert running["lastStatus"] == healthy["lastStatus"] == "RUNNING"


def test_a_failing_health_check_makes_the_task_unhealthy_after_its_grace(sandbox: Cluster, namespace: str) -> None:
    check = {"command": ["CMD", "/healthz"], "interval": 5, "retries": 2}  # UNHEALTHY after 2 failures 5 s apart
    apply_all(sandbox, namespace, cluster(),
              task_definition("sick", container("app", memory=128, healthCheck=check),
                              kubernetes={"podAnnotations": {"sim.ecs.operator.dev/unready": "app"}}),
              task_definition("sick-helper", container("app", memory=128, healthCheck=check),
                              container("helper", memory=64, essential=False, healthCheck=check),
                              kubernetes={"podAnnotations": {"sim.ecs.operator.dev/unready": "helper"}}),
              task("sick", "sick"), task("sick-helper", "sick-helper"))
    running = wait_task(sandbox, namespace, "sick", "RUNNING")
    unhealthy = wait_for(lambda: (s := status(sandbox, "task", "sick", namespace))["healthStatus"] == "UNHEALTHY" and s,
                         timeout=60, what="task UNHEALTHY")

    app = containers_of(unhealthy)["app"]
    assert (app["healthStatus"], app["lastStatus"]) == ("UNHEALTHY", "RUNNING")
    assert unhealthy["lastStatus"] == "RUNNING"  # a standalone task keeps running, as in ECS
    assert running["healthStatus"] in ("UNKNOWN", "UNHEALTHY")  # never HEALTHY on the way
    # a non-essential container's failing check does not count: essentials decide
    helper_task = wait_for(lambda: (s := status(sandbox, "task", "sick-helper", namespace)).get("healthStatus") == "HEALTHY"
                           and containers_of(s)["helper"]["healthStatus"] == "UNHEALTHY" and s,
                           timeout=60, what="sick-helper HEALTHY with its helper UNHEALTHY")
    assert helper_task["lastStatus"] == "RUNNING"


def test_a_task_too_big_for_any_node_stays_provisioning_with_the_reason(sandbox: Cluster, namespace: str) -> None:
    apply_all(sandbox, namespace, cluster(),
              task_definition("huge", container("app", memory=100_000)),
              task_definition("cpu-hog", container("app"), cpu="8192", memory="512"),  # 8 vCPU; nodes have 4
              task("huge", "huge"), task("cpu-hog", "cpu-hog"))
    huge = wait_task(sandbox, namespace, "huge", "PROVISIONING")
    memory_event = wait_for(lambda: events(sandbox, namespace, "huge", reason="TaskPlacementFailed"),
                            what="a placement failure Event for huge")
    cpu_event = wait_for(lambda: events(sandbox, namespace, "cpu-hog", reason="TaskPlacementFailed"),
                         what="a placement failure Event for cpu-hog")

    assert "RESOURCE:MEMORY" in memory_event[0]["message"] and memory_event[0]["type"] == "Warning"
    assert "RESOURCE:CPU" in cpu_event[0]["message"]
    huge = status(sandbox, "task", "huge", namespace)
    assert huge["lastStatus"] == "PROVISIONING" and huge["desiredStatus"] == "RUNNING"
    assert [f["reason"] for f in huge["failures"]] == ["RESOURCE:MEMORY"]
    assert status(sandbox, "task", "cpu-hog", namespace)["lastStatus"] == "PROVISIONING"
    # one Event per placement failure, not one per handler run (Pod events and resyncs keep coming)
    assert len(events_seen(sandbox, namespace, "huge", reason="TaskPlacementFailed")) == 1
    assert memory_event[0].get("count", 1) == 1


def test_stop_task_gives_user_initiated_with_the_reason(sandbox: Cluster, namespace: str) -> None:
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web", memory=64)),
              task("with-reason", "web"), task("without-reason", "web"))
    wait_task(sandbox, namespace, "with-reason", "RUNNING")
    wait_task(sandbox, namespace, "without-reason", "RUNNING")
    sandbox.kubectl("patch", "task", "with-reason", "-n", namespace, "--type", "merge",
                    "-p", json.dumps({"spec": {"desiredStatus": "STOPPED", "reason": "scaling down for the night"}}))
    sandbox.kubectl("patch", "task", "without-reason", "-n", namespace, "--type", "merge",
                    "-p", json.dumps({"spec": {"desiredStatus": "STOPPED"}}))

    with_reason = wait_task(sandbox, namespace, "with-reason", "STOPPED")
    without_reason = wait_task(sandbox, namespace, "without-reason", "STOPPED")
    assert (with_reason["stopCode"], with_reason["stoppedReason"]) == ("UserInitiated", "scaling down for the night")
    assert (without_reason["stopCode"], without_reason["stoppedReason"]) == ("UserInitiated", "Task stopped by user")
    assert with_reason["desiredStatus"] == "STOPPED" and with_reason["stoppingAt"] <= with_reason["stoppedAt"]
    assert wait_for(lambda: not pods(sandbox, namespace), what="the Pods deleted")
    (event,) = events_seen(sandbox, namespace, "with-reason", reason="TaskStopped")
    assert event["type"] == "Normal" and "scaling down for the night" in event["message"]


def test_operator_killed_while_creating_tasks_converges_without_duplicates(
        sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web", memory=32)))
    wait_for(lambda: status(sandbox, "taskdefinition", "web", namespace).get("revision") == 1, what="web:1 registered")
    pod_watch = watch(sandbox, "pods", namespace)
    try:
        apply_all(sandbox, namespace, task("ten", "web", count=10))
        assert first_line(pod_watch, timeout=60).startswith("pod/ten-")  # the first Pod exists...
        running_operator.stop(kill=True)  # ...and the operator dies (SIGKILL) while creating the others
    finally:
        pod_watch.kill()
        pod_watch.communicate()
    at_kill = len(pods(sandbox, namespace, "ten"))
    running_operator.start()

    done = wait_for(lambda: (s := status(sandbox, "task", "ten", namespace)).get("runningCount") == 10 and s,
                    timeout=120, what="10 tasks RUNNING after the restart")
    names = sorted(p["metadata"]["name"] for p in pods(sandbox, namespace, "ten"))
    assert names == sorted(f"ten-{i}" for i in range(10)), f"{at_kill} Pods at the kill; now {names}"
    records = done["tasks"]
    assert len(records) == 10 and {r["lastStatus"] for r in records} == {"RUNNING"}
    uids = {p["metadata"]["uid"].replace("-", "") for p in pods(sandbox, namespace, "ten")}
    assert {r["taskArn"].rsplit("/", 1)[1] for r in records} == uids  # each record names its own Pod
    assert (done["lastStatus"], done["pendingCount"], done["stoppedCount"]) == ("RUNNING", 0, 0)
    # nothing went wrong for the tasks, kill or not: no Warning (and no Event per task that runs as it should)
    assert [e["reason"] for e in events(sandbox, namespace, "ten")] == []


def test_fargate_launch_needs_fargate_in_requires_compatibilities(sandbox: Cluster, namespace: str) -> None:
    """ECS refuses launchType FARGATE for a definition registered for EC2 only, even one whose content would fit."""
    ec2_only = {"requiresCompatibilities": ["EC2"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}
    network = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}}
    apply_all(sandbox, namespace, cluster(),
              task_definition("ec2-only", container("app"), **ec2_only),
              task("on-fargate", "ec2-only", launchType="FARGATE", networkConfiguration=network))

    refused = wait_for(lambda: condition(status(sandbox, "task", "on-fargate", namespace)).get("status") == "False"
                       and status(sandbox, "task", "on-fargate", namespace), what="the FARGATE launch refused")
    message = condition(refused)["message"]
    assert message.startswith("taskDefinition.requiresCompatibilities: Task definition does not support launch_type FARGATE."), message
    assert not pods(sandbox, namespace, "on-fargate") and "tasks" not in refused
    (warning,) = events_seen(sandbox, namespace, "on-fargate", reason=condition(refused)["reason"])
    assert warning["type"] == "Warning" and "launch_type FARGATE" in warning["message"]
    assert status(sandbox, "taskdefinition", "ec2-only", namespace)["compatibilities"] == ["EC2"]


def test_fargate_needs_awsvpc_and_becomes_pod_level_resources(sandbox: Cluster, namespace: str) -> None:
    fargate = {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}
    network = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}}
    apply_all(sandbox, namespace, cluster(),
              task_definition("fg", container("app", portMappings=[{"containerPort": 80}]), **fargate),
              task_definition("bridged", container("app", memory=64)),
              task("fg", "fg", launchType="FARGATE", networkConfiguration=network),
              task("bridged-on-fargate", "bridged", launchType="FARGATE", networkConfiguration=network))
    running = wait_task(sandbox, namespace, "fg", "RUNNING")

    assert running["launchType"] == "FARGATE"
    (pod,) = pods(sandbox, namespace, "fg")
    assert pod["spec"]["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "250m", "memory": "512Mi"}}
    assert not pod["spec"]["containers"][0].get("resources")  # the task's size is the Pod's, as on Fargate
    assert not pod["spec"].get("hostNetwork")
    assert pod["spec"]["containers"][0]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]

    refused = wait_for(lambda: condition(status(sandbox, "task", "bridged-on-fargate", namespace)).get("status") == "False"
                       and status(sandbox, "task", "bridged-on-fargate", namespace), what="the bridge task refused")
    message = condition(refused)["message"]
    assert condition(refused)["reason"] == "InvalidParameterException"
    assert "taskDefinition.requiresCompatibilities" in message and "launch_type FARGATE" in message, message
    assert not pods(sandbox, namespace, "bridged-on-fargate") and "tasks" not in refused
    (warning,) = events_seen(sandbox, namespace, "bridged-on-fargate", reason="InvalidParameterException")
    assert warning["type"] == "Warning"


def test_a_fargate_task_is_not_counted_on_the_container_instance_whose_node_it_shares(
        sandbox: Cluster, namespace: str) -> None:
    """The sandbox's nodes are container instances and FARGATE nodes at once. ECS counts a FARGATE task in
    its cluster, never on a container instance: describe-container-instances counts only the EC2 tasks."""
    fargate = {"requiresCompatibilities": ["FARGATE", "EC2"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}
    network = {"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}}
    apply_all(sandbox, namespace, cluster(), task_definition("fg", container("app"), **fargate),
              task("fg", "fg", launchType="FARGATE", networkConfiguration=network))
    wait_task(sandbox, namespace, "fg", "RUNNING")
    (pod,) = pods(sandbox, namespace, "fg")
    node = pod["spec"]["nodeName"]
    apply_all(sandbox, namespace, task("ec2", "fg", launchType="EC2", placementConstraints=[
        {"type": "memberOf", "expression": f"ec2InstanceId == {node}"}]))
    wait_task(sandbox, namespace, "ec2", "RUNNING")

    def ec2_tasks_on_node() -> int:
        on_node = sandbox.kubectl_json("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}",
                                       "-l", "app.kubernetes.io/managed-by=ecs-operator")["items"]
        return sum(1 for p in on_node if p["metadata"]["labels"].get(f"{API_GROUP}/launch-type") != "FARGATE"
                   and p["status"].get("phase") not in ("Succeeded", "Failed"))

    counted = wait_for(lambda: (s := status(sandbox, "containerinstance", node)).get("runningTasksCount") == ec2_tasks_on_node()
                       and s, 60, what="the instance's count without the FARGATE task")
    assert counted["runningTasksCount"] >= 1  # the EC2 task is counted
    wait_for(lambda: status(sandbox, "cluster", "default", namespace).get("runningTasksCount") == 2, 60,
             what="the cluster counting both tasks")


def test_external_tasks_run_only_on_external_instances_and_ec2_on_the_cluster_instances(
        sandbox: Cluster, namespace: str) -> None:
    name = unique("ext")
    with kwok_nodes(sandbox, [f"{name}-ext"], name, namespace, labels={f"{API_GROUP}/external": "true"}), \
            kwok_nodes(sandbox, [f"{name}-ec2"], name, namespace):
        apply_all(sandbox, namespace, cluster(name),
                  task_definition("web", container("web", memory=64)),
                  task("external", "web", cluster=name, launchType="EXTERNAL", count=3),
                  task("ec2", "web", cluster=name, launchType="EC2", count=3))
        wait_task(sandbox, namespace, "external", "RUNNING")
        wait_task(sandbox, namespace, "ec2", "RUNNING")

        assert {p["spec"]["nodeName"] for p in pods(sandbox, namespace, "external")} == {f"{name}-ext"}
        assert {p["spec"]["nodeName"] for p in pods(sandbox, namespace, "ec2")} == {f"{name}-ec2"}
        attributes = {a["name"] for a in status(sandbox, "containerinstance", f"{name}-ext")["attributes"]}
        assert "ecs.capability.external" in attributes


def test_kubectl_get_shows_how_many_tasks_of_a_count_n_call_run(sandbox: Cluster, namespace: str) -> None:
    """RunTask count 3 with distinctInstance on two instances: two run, one waits; `kubectl get` says so."""
    name = unique("spread")
    with kwok_nodes(sandbox, [f"{name}-a", f"{name}-b"], name, namespace):
        apply_all(sandbox, namespace, cluster(name), task_definition("web", container("web", memory=64)),
                  task("spread", "web", cluster=name, count=3, placementConstraints=[{"type": "distinctInstance"}]))
        wait_for(lambda: (s := status(sandbox, "task", "spread", namespace)).get("runningCount") == 2
                 and s.get("failures"), 90, what="two tasks RUNNING, one unplaced")

        header, row = sandbox.kubectl("get", "ecstask", "spread", "-n", namespace).stdout.splitlines()
        starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
        columns = {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, [*starts[1:], None])}
        assert (columns["LAST STATUS"], columns["DESIRED"], columns["RUNNING"]) == ("PROVISIONING", "3", "2"), columns


def test_network_modes(sandbox: Cluster, namespace: str) -> None:
    sandbox.kubectl("label", "namespace", namespace, f"{API_GROUP}/allow-privileged-workloads=true")  # host mode, host port
    port = {"containerPort": 80, "hostPort": 8080}
    apply_all(sandbox, namespace, cluster(),
              task_definition("awsvpc", container("web", memory=64, portMappings=[{"containerPort": 80}]), networkMode="awsvpc"),
              task_definition("bridge", container("web", memory=64, portMappings=[port]), networkMode="bridge"),
              task_definition("host", container("web", memory=64, portMappings=[{"containerPort": 8081}]), networkMode="host"),
              task_definition("none", container("web", memory=64), networkMode="none"),
              task("awsvpc", "awsvpc", networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}}),
              task("bridge", "bridge"), task("host", "host"), task("none", "none"))
    for name in ("awsvpc", "bridge", "host", "none"):
        wait_task(sandbox, namespace, name, "RUNNING")

    def only_pod(name: str) -> dict[str, Any]:
        (pod,) = pods(sandbox, namespace, name)
        return pod

    assert not only_pod("awsvpc")["spec"].get("hostNetwork")
    assert only_pod("awsvpc")["spec"]["containers"][0]["ports"][0].get("hostPort") is None
    assert only_pod("bridge")["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080
    assert only_pod("host")["spec"]["hostNetwork"] is True
    policy = sandbox.kubectl_json("get", "networkpolicy", "none-isolated", "-n", namespace)
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert not policy["spec"].get("ingress") and not policy["spec"].get("egress")
    assert policy["spec"]["podSelector"]["matchLabels"] == {f"{API_GROUP}/task": "none"}


def test_stopped_tasks_are_deleted_after_the_ttl(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    running_operator.stop()
    running_operator.start("--stopped-task-ttl", "5")
    try:
        apply_all(sandbox, namespace, cluster(), task_definition("web", container("web", memory=64)), task("brief", "web"))
        wait_task(sandbox, namespace, "brief", "RUNNING")
        sandbox.kubectl("patch", "task", "brief", "-n", namespace, "--type", "merge",
                        "-p", json.dumps({"spec": {"desiredStatus": "STOPPED"}}))
        stopped = wait_task(sandbox, namespace, "brief", "STOPPED")
        wait_for(lambda: sandbox.kubectl("get", "task", "brief", "-n", namespace, check=False).returncode != 0,
                 timeout=60, what="the STOPPED task deleted after its TTL")
        assert stopped["stoppedAt"]
    finally:
        running_operator.stop()
        running_operator.start("--stopped-task-ttl", "600")


def test_no_api_writes_at_steady_state(sandbox: Cluster, namespace: str) -> None:
    """Once tasks run, nothing the operator owns changes: no status writes, no Events, over more than
    one period of everything that looks at them again (the Cluster's timer every 10 s, which also
    resyncs Tasks untouched for 60 s; the ContainerInstance resync every 60 s)."""
    name = unique("steady")
    with kwok_nodes(sandbox, [f"{name}-a"], name, namespace):
        apply_all(sandbox, namespace, cluster(name), task_definition("web", container("web", memory=64)),
                  task("steady", "web", cluster=name, count=2))
        wait_task(sandbox, namespace, "steady", "RUNNING")
        wait_for(lambda: status(sandbox, "cluster", name, namespace).get("runningTasksCount") == 2, what="counters")
        wait_for(lambda: status(sandbox, "containerinstance", f"{name}-a").get("runningTasksCount") == 2, what="instance")
        before = len(events(sandbox, namespace))

        changes = changes_during(sandbox, 75, (f"task.{API_GROUP}/steady", namespace), (f"taskdefinition.{API_GROUP}/web", namespace),
                                 (f"cluster.{API_GROUP}/{name}", namespace), (f"containerinstance.{API_GROUP}/{name}-a", None),
                                 ("pods", namespace))
        assert changes == [], f"written at steady state: {changes}"
        assert len(events(sandbox, namespace)) == before
