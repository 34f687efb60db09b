"""A Task's round as a pure plan (lifecycle/task_reconcile.py): the launch and its records, Waiting then
Refused with ECS's exception names, StopTask, an essential container's exit, the urgency of each status
change, the stopped-task TTL, the health check's grace as the next look, and nothing at steady state."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator.lifecycle.conditions import Notify
from ecs_operator.lifecycle.task_reconcile import (
    DeletePod,
    DeleteTask,
    Launch,
    LaunchOutcome,
    Log,
    PodCreated,
    PodRefused,
    Refused,
    TaskObserved,
    TaskPlan,
    Waiting,
    plan_launched,
    plan_task,
)
from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.ownership import CONFLICT_REASON, conflict
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings()
DEFINITION = RegisterTaskDefinition.model_validate({"family": "app", "containerDefinitions": [
    {"name": "app", "image": "nginx", "essential": True,
     "healthCheck": {"command": ["CMD", "true"], "interval": 5, "retries": 2, "startPeriod": 10}},
    {"name": "helper", "image": "busybox", "essential": False}]})
REVISION = Revision("app", 1, DEFINITION, arn="arn:aws:ecs:us-east-1:123456789012:task-definition/app:1")
CLUSTER: dict[str, Any] = {"name": "default", "uid": "cluster-uid", "spec": {}, "deleting": None, "inactive": {}}
POD_UID = "0f3c9a2e-1111-2222-3333-444455556666"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def task(age: float = 0.0, spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "t", "namespace": "team", "uid": "task-uid", "generation": 1,
                         "creationTimestamp": stamp(NOW - timedelta(seconds=age))},
            "spec": spec or {"taskDefinition": "app:1"}, "status": status or {}}


def seen(body: dict[str, Any], pods: dict[str, dict[str, Any]] | None = None, **launch: Any) -> TaskObserved:
    return TaskObserved(body=body, pods=pods or {}, zones={"node-1": "us-east-1a"}, settings=SETTINGS, **launch)


def launchable(body: dict[str, Any]) -> TaskObserved:
    return seen(body, cluster=CLUSTER, revision=REVISION, family_known=True)


def running(ready: bool = True, started: datetime = NOW) -> dict[str, Any]:
    return {"state": {"running": {"startedAt": stamp(started)}}, "ready": ready}


def exited(code: int) -> dict[str, Any]:
    return {"state": {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed",
                                     "startedAt": stamp(NOW), "finishedAt": stamp(NOW + timedelta(seconds=5))}}, "ready": False}


def the_pod(statuses: dict[str, dict[str, Any]] | None = None, node: str | None = "node-1", phase: str = "Running",
            deleting: bool = False) -> dict[str, Any]:
    """The Pod the launch plans, as the API shows it later."""
    plan = plan_task(launchable(task()), NOW)
    pod = copy.deepcopy(plan.actions[0].translation.pods[0])  # type: ignore[union-attr]
    pod["metadata"].update(uid=POD_UID, creationTimestamp=stamp(NOW))
    if deleting:
        pod["metadata"]["deletionTimestamp"] = stamp(NOW + timedelta(seconds=30))
    if node:
        pod["spec"]["nodeName"] = node
    pod["status"] = {"phase": phase, "containerStatuses": [{"name": n, **s} for n, s in (statuses or {}).items()]}
    return pod


def launched(pod: dict[str, Any] | None = None) -> TaskPlan:
    """The launch, then its records from the created Pod."""
    observed = launchable(task())
    plan = plan_task(observed, NOW)
    (launch,) = plan.actions
    assert isinstance(launch, Launch)
    return plan_launched(observed, launch, LaunchOutcome((PodCreated(pod or the_pod(node=None, phase="Pending")),)), NOW)


def follow(status: dict[str, Any], pod: dict[str, Any] | None, at: datetime = NOW, spec: dict[str, Any] | None = None) -> TaskPlan:
    return plan_task(seen(task(spec=spec, status=status), {"t-0": pod} if pod else {}), at)


def events(plan: TaskPlan) -> list[tuple[str, str]]:
    return [(a.type, a.reason) for a in plan.actions if isinstance(a, Notify)]


# --- launch ---------------------------------------------------------------------------------------


def test_a_new_task_plans_its_pods_and_writes_nothing_before_they_exist() -> None:
    plan = plan_task(launchable(task()), NOW)
    (launch,) = plan.actions
    assert isinstance(launch, Launch) and plan.status is None and plan.verdict is None
    assert [p["metadata"]["name"] for p in launch.translation.pods] == ["t-0"]
    assert launch.cluster == "default" and launch.revision is REVISION
    count = plan_task(launchable(task(spec={"taskDefinition": "app:1", "count": 3})), NOW).actions[0]
    assert [p["metadata"]["name"] for p in count.translation.pods] == ["t-0", "t-1", "t-2"]  # type: ignore[union-attr]


def test_the_launch_records_each_task_with_its_arn_and_holds_the_status_a_moment() -> None:
    plan = launched()
    status = plan.status
    assert status is not None
    (record,) = status["tasks"]
    arn = f"arn:aws:ecs:us-east-1:000000000000:task/default/{POD_UID.replace('-', '')}"
    assert record["taskArn"] == status["taskArn"] == arn
    assert (status["lastStatus"], status["desiredStatus"], status["taskDefinition"]) == ("PROVISIONING", "RUNNING", "app:1")
    assert (status["clusterName"], status["group"], status["launchType"]) == ("default", "family:app", "EC2")
    assert status["taskDefinitionArn"] == REVISION.arn and status["fidelity"]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [("Ready", "True", "Launched")]
    assert not plan.urgent  # PROVISIONING: nobody waits for it, it goes with the next step (one write)
    assert events(plan) == [] and any(isinstance(a, Log) and a.reason == "Launched" for a in plan.actions)


def test_a_pod_refused_by_admission_fails_its_task_to_start() -> None:
    observed = launchable(task())
    (launch,) = plan_task(observed, NOW).actions
    assert isinstance(launch, Launch)
    plan = plan_launched(observed, launch, LaunchOutcome((PodRefused("t-0", "violates PodSecurity \"restricted\""),)), NOW)
    assert plan.status is not None and plan.urgent
    assert (plan.status["lastStatus"], plan.status["stopCode"]) == ("STOPPED", "TaskFailedToStart")
    assert events(plan) == [("Warning", "TaskFailedToStart")]


def test_a_name_held_by_another_object_refuses_the_launch() -> None:
    observed = launchable(task())
    (launch,) = plan_task(observed, NOW).actions
    assert isinstance(launch, Launch)
    holder = {"kind": "Pod", "metadata": {"name": "t-0", "namespace": "team"}}
    plan = plan_launched(observed, launch, LaunchOutcome(conflicts=(conflict("metadata.name", holder),)), NOW)
    assert isinstance(plan.verdict, Refused) and plan.verdict.reason == CONFLICT_REASON
    assert plan.status is not None and "tasks" not in plan.status and plan.urgent


# --- waiting, then refused ------------------------------------------------------------------------


def test_a_missing_cluster_is_waited_for_within_the_grace_then_refused() -> None:
    plan = plan_task(seen(task(age=1.0), revision=REVISION), NOW)
    assert isinstance(plan.verdict, Waiting) and plan.status is None and plan.actions == ()
    assert plan.requeue_after == 4.0  # when the grace ends
    plan = plan_task(seen(task(age=6.0), revision=REVISION), NOW)
    assert isinstance(plan.verdict, Refused) and plan.verdict.reason == "ClusterNotFoundException"
    assert plan.status is not None and plan.urgent
    assert plan.status["conditions"][0]["reason"] == "ClusterNotFoundException"
    assert events(plan) == [("Warning", "ClusterNotFoundException")]
    # refused again for the same reason: nothing to write, no second Event
    again = plan_task(seen(task(age=60.0, status=plan.status), revision=REVISION), NOW)
    assert again.status is None and again.actions == () and isinstance(again.verdict, Refused)


def test_a_deleting_cluster_refuses_a_task_created_after_its_deletion() -> None:
    deleting = {**CLUSTER, "deleting": stamp(NOW - timedelta(seconds=10))}
    plan = plan_task(seen(task(age=1.0), cluster=deleting, revision=REVISION), NOW)
    assert isinstance(plan.verdict, Refused) and plan.verdict.reason == "ClusterNotFoundException"
    assert "inactive" in plan.verdict.message


def test_an_unknown_task_definition_is_waited_for_then_a_client_exception() -> None:
    young = plan_task(seen(task(age=1.0), cluster=CLUSTER, revision_error="Unable to describe task definition."), NOW)
    assert isinstance(young.verdict, Waiting)
    registering = plan_task(seen(task(age=60.0), cluster=CLUSTER, registering=True, family_known=True,
                                 revision_error="not yet"), NOW)
    assert isinstance(registering.verdict, Waiting) and registering.requeue_after == 6.0  # age / 10
    old = plan_task(seen(task(age=60.0), cluster=CLUSTER, family_known=True,
                         revision_error="Unable to describe task definition."), NOW)
    assert isinstance(old.verdict, Refused) and old.verdict.reason == "ClientException"
    assert old.verdict.message == "taskDefinition: Unable to describe task definition."


def test_invalid_parameters_are_an_invalid_parameter_exception() -> None:
    plan = plan_task(launchable(task(spec={"taskDefinition": "app:1", "count": 11})), NOW)
    assert isinstance(plan.verdict, Refused) and plan.verdict.reason == "InvalidParameterException"
    assert "count" in plan.verdict.message and plan.urgent
    fargate = plan_task(launchable(task(spec={"taskDefinition": "app:1", "launchType": "FARGATE"})), NOW)
    assert isinstance(fargate.verdict, Refused) and fargate.verdict.reason == "InvalidParameterException"
    assert "requiresCompatibilities" in fargate.verdict.message


# --- following the Pods ---------------------------------------------------------------------------


def test_each_step_is_held_a_moment_but_running_is_written_at_once() -> None:
    provisioning = launched().status
    assert provisioning is not None
    pending = follow(provisioning, the_pod({"app": {"state": {"waiting": {"reason": "ContainerCreating"}}}}, phase="Pending"))
    assert pending.status is not None and pending.status["lastStatus"] == "PENDING" and not pending.urgent
    run = follow(pending.status, the_pod({"app": running(), "helper": running()}))
    assert run.status is not None and run.status["lastStatus"] == "RUNNING" and run.urgent
    assert run.status["tasks"][0]["availabilityZone"] == "us-east-1a"
    assert events(run) == []  # a task that starts as it should costs no Event (the Pod and one status write)


def test_steady_state_writes_nothing_and_does_nothing() -> None:
    pod = the_pod({"app": running(), "helper": running()})
    status = follow(launched().status or {}, pod).status
    assert status is not None
    plan = follow(status, pod, NOW + timedelta(minutes=5))
    assert plan == TaskPlan(requeue_after=None)


def test_a_placement_failure_is_written_at_once_with_one_event() -> None:
    pod = the_pod(node=None, phase="Pending")
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                    "message": "0/3 nodes are available: 3 Insufficient memory."}]
    plan = follow(launched().status or {}, pod)
    assert plan.status is not None and plan.urgent
    assert plan.status["failures"][0]["reason"] == "RESOURCE:MEMORY"
    assert events(plan) == [("Warning", "TaskPlacementFailed")]
    assert follow(plan.status, pod).actions == ()  # the same failure: no second Event


def test_stop_task_deactivates_until_the_pod_is_gone() -> None:
    pod = the_pod({"app": running(), "helper": running()})
    status = follow(launched().status or {}, pod).status or {}
    stop = {"taskDefinition": "app:1", "desiredStatus": "STOPPED", "reason": "done"}
    plan = follow(status, pod, spec=stop)
    assert plan.status is not None and plan.urgent
    assert (plan.status["lastStatus"], plan.status["desiredStatus"]) == ("DEACTIVATING", "STOPPED")
    assert (plan.status["stopCode"], plan.status["stoppedReason"]) == ("UserInitiated", "done")
    assert [a for a in plan.actions if isinstance(a, DeletePod)] == [DeletePod("t-0", POD_UID, 30)]
    # the Pod is going: no second deletion
    stopping = follow(plan.status, the_pod({"app": running(), "helper": running()}, deleting=True), spec=stop)
    assert stopping.status is not None and stopping.status["lastStatus"] == "STOPPING"
    assert not any(isinstance(a, DeletePod) for a in stopping.actions)
    gone = follow(stopping.status, None, NOW + timedelta(seconds=3), spec=stop)
    assert gone.status is not None and gone.status["lastStatus"] == "STOPPED" and gone.urgent
    assert (gone.status["stopCode"], gone.status["stoppedReason"]) == ("UserInitiated", "done")
    assert events(gone) == [("Normal", "TaskStopped")]


def test_stop_task_before_the_launch_just_ends_the_task() -> None:
    plan = plan_task(seen(task(age=1.0, spec={"taskDefinition": "app:1", "desiredStatus": "STOPPED"})), NOW)
    assert plan.status is not None and plan.urgent and plan.actions == ()
    assert (plan.status["lastStatus"], plan.status["stopCode"], plan.status["stoppedReason"]) == (
        "STOPPED", "UserInitiated", "Task stopped by user")


def test_an_essential_container_exit_stops_the_task() -> None:
    status = follow(launched().status or {}, the_pod({"app": running(), "helper": running()})).status or {}
    exiting = follow(status, the_pod({"app": exited(1), "helper": running()}))
    assert exiting.status is not None and exiting.urgent
    assert (exiting.status["desiredStatus"], exiting.status["stopCode"]) == ("STOPPED", "EssentialContainerExited")
    assert exiting.status["stoppedReason"] == "Essential container in task exited"
    assert any(isinstance(a, DeletePod) for a in exiting.actions)  # the rest of the task is stopped
    done = follow(exiting.status, the_pod({"app": exited(1), "helper": exited(143)}, phase="Failed"))
    assert done.status is not None and done.status["lastStatus"] == "STOPPED" and done.urgent
    assert events(done) == [("Warning", "TaskStopped")]
    assert not any(isinstance(a, DeletePod) for a in done.actions)


def test_a_non_essential_exit_changes_nothing_that_is_urgent() -> None:
    status = follow(launched().status or {}, the_pod({"app": running(), "helper": running()})).status or {}
    plan = follow(status, the_pod({"app": running(), "helper": exited(0)}))
    assert plan.status is not None and plan.status["lastStatus"] == "RUNNING" and not plan.urgent
    assert plan.actions == ()


# --- when to look again ---------------------------------------------------------------------------


def test_a_failing_health_check_is_looked_at_when_its_grace_ends() -> None:
    # grace: startPeriod 10 + interval 5 * retries 2 = 20 s after the container started
    pod = the_pod({"app": running(ready=False), "helper": running()})
    plan = follow(launched().status or {}, pod, NOW + timedelta(seconds=3))
    assert plan.requeue_after == 17.5
    later = follow(plan.status or {}, pod, NOW + timedelta(seconds=20))
    assert later.status is not None and later.status["healthStatus"] == "UNHEALTHY" and later.urgent
    assert later.requeue_after is None


def test_a_stopped_task_goes_when_its_ttl_ends() -> None:
    stopped = plan_task(seen(task(spec={"taskDefinition": "app:1", "desiredStatus": "STOPPED"})), NOW).status or {}
    ttl = SETTINGS.stopped_task_ttl_seconds
    kept = plan_task(seen(task(spec={"taskDefinition": "app:1", "desiredStatus": "STOPPED"}, status=stopped)),
                     NOW + timedelta(seconds=10))
    assert kept.status is None and kept.actions == () and kept.requeue_after == ttl - 10 + 0.5
    due = plan_task(replace(seen(task(spec={"taskDefinition": "app:1", "desiredStatus": "STOPPED"}, status=stopped))),
                    NOW + timedelta(seconds=ttl))
    assert due.actions == (DeleteTask(),) and due.status is None


def test_a_placement_failure_is_announced_once_per_cause_however_its_detail_changes() -> None:
    """Capacity comes up node by node: the scheduler's message changes with each ("0/3 nodes", "0/4 nodes",
    a not-ready taint in between), the cause (RESOURCE:MEMORY) does not. One Event per task per cause."""
    def waiting(message: str) -> dict[str, Any]:
        pod = the_pod(node=None, phase="Pending")
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                        "message": message}]
        return pod

    status = launched().status or {}
    posted: list[tuple[str, str]] = []
    for message in ["0/3 nodes are available: 3 Insufficient memory.",
                    "0/4 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                    "3 Insufficient memory.",
                    "0/4 nodes are available: 4 Insufficient memory.",
                    "0/5 nodes are available: 5 Insufficient memory.",
                    "0/5 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                    "4 Insufficient memory."]:
        plan = follow(status, waiting(message))
        posted += events(plan)
        status = plan.status or status
        assert status["failures"][0]["detail"] == message  # the status tells the latest detail
    assert posted == [("Warning", "TaskPlacementFailed"), ("Warning", "TaskPlacementFailed")]  # MEMORY, then INACTIVE


def test_a_task_whose_instance_is_gone_stops_at_once_as_ecs_reports_a_terminated_host() -> None:
    status = follow(launched().status or {}, the_pod({"app": running(), "helper": running()})).status or {}
    pod = the_pod({"app": running(), "helper": running()})
    plan = plan_task(replace(seen(task(status=status), {"t-0": pod}), lost_nodes=frozenset({"node-1"})), NOW)
    assert plan.status is not None and plan.urgent
    [record] = plan.status["tasks"]
    assert (record["lastStatus"], record["desiredStatus"], record["stopCode"], record["stoppedReason"]) == (
        "STOPPED", "STOPPED", "TerminationNotice", "Host EC2 (instance node-1) stopped/terminated")
    assert {c["lastStatus"] for c in record["containers"]} == {"STOPPED"}
    assert (plan.status["lastStatus"], plan.status["stopCode"]) == ("STOPPED", "TerminationNotice")
    assert [a for a in plan.actions if isinstance(a, DeletePod)] == [DeletePod("t-0", POD_UID, 0)]  # no kubelet to wait for
    assert events(plan) == [("Warning", "TaskStopped")]
    # the Pod deleted: nothing changes any more
    assert follow(plan.status, None).status is None
