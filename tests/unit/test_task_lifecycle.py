"""ECS's task life cycle read off Pods (docs/ecs-semantics.md §Health status, §Essential containers): lastStatus, stop codes and
reasons, container records, health by ECS's rule and when it changes without a Pod event, and the
Task resource's summary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from ecs_operator import labels as L
from ecs_operator.lifecycle.health import health_deadline, task_health
from ecs_operator.lifecycle.placement_failures import placement_failure_reasons
from ecs_operator.lifecycle.records import TaskRecord
from ecs_operator.lifecycle.task_state import (
    ESSENTIAL_EXITED,
    new_record,
    observe,
    pod_last_status,
    request_stop,
)
from ecs_operator.lifecycle.task_summary import summarize_tasks

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
STAMP = "2026-01-01T12:00:00Z"


def running(ready: bool = True, started: str = STAMP) -> dict[str, Any]:
    return {"state": {"running": {"startedAt": started}}, "ready": ready}


def exited(code: int) -> dict[str, Any]:
    return {"state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": STAMP, "finishedAt": "2026-01-01T12:00:05Z"}}, "ready": False}


def pod(statuses: dict[str, dict[str, Any]] | None = None, *, essential: str = "app", node: str | None = "node-1",
        phase: str = "Running", checks: dict[str, dict[str, int]] | None = None, init: list[dict[str, Any]] | None = None,
        deleting: bool = False, containers: tuple[str, ...] = ("app", "helper")) -> dict[str, Any]:
    """A task Pod as the API returns it (annotations as the translation writes them)."""
    statuses = statuses or {}
    init_names = {c["name"] for c in init or []}
    meta: dict[str, Any] = {"name": "t-0", "creationTimestamp": STAMP, "annotations": {
        L.ESSENTIAL_CONTAINERS: essential, L.HEALTH_CHECKED_CONTAINERS: json.dumps(checks or {})}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:01:00Z"
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [{"name": n, "image": "nginx"} for n in containers],
                            "initContainers": init or []}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": {
        "phase": phase,
        "containerStatuses": [{"name": n, **s} for n, s in statuses.items() if n not in init_names],
        "initContainerStatuses": [{"name": n, **s} for n, s in statuses.items() if n in init_names],
    }}


@pytest.mark.parametrize(("the_pod", "expected"), [
    (pod(node=None, phase="Pending"), "PROVISIONING"),  # no node yet: waiting for capacity
    (pod({"app": {"state": {"waiting": {"reason": "ContainerCreating"}}}}, phase="Pending"), "PENDING"),
    (pod({"app": running(), "helper": {"state": {"waiting": {}}}}), "ACTIVATING"),  # essential started, not all
    (pod({"app": running(), "helper": running()}), "RUNNING"),
    (pod({"app": running(), "helper": exited(0)}), "RUNNING"),  # a non-essential container may end
    (pod({"app": running(), "helper": running()}, deleting=True), "STOPPING"),
    (pod({"app": exited(0), "helper": exited(0)}, deleting=True), "DEPROVISIONING"),
    (pod({"app": exited(1), "helper": exited(0)}, phase="Failed"), "STOPPED"),
])
def test_last_status_follows_the_pod(the_pod: dict[str, Any], expected: str) -> None:
    assert pod_last_status(the_pod) == expected
    assert observe(the_pod, new_record("t-0"), T0).lastStatus == expected


def test_an_essential_container_exit_stops_the_task_with_ecs_code_and_reason() -> None:
    seen = observe(pod({"app": exited(2), "helper": running()}), new_record("t-0"), T0)
    assert (seen.lastStatus, seen.desiredStatus) == ("DEACTIVATING", "STOPPED")  # the operator deletes the Pod now
    assert (seen.stopCode, seen.stoppedReason) == ("EssentialContainerExited", ESSENTIAL_EXITED)
    app = next(c for c in seen.containers if c.name == "app")
    assert (app.lastStatus, app.exitCode) == ("STOPPED", 2)
    gone = observe(None, seen, T0 + timedelta(seconds=1))
    assert (gone.lastStatus, gone.stopCode, gone.stoppedReason) == ("STOPPED", "EssentialContainerExited", ESSENTIAL_EXITED)
    assert [c.lastStatus for c in gone.containers] == ["STOPPED", "STOPPED"] and gone.stoppedAt


def test_a_non_essential_exit_changes_only_its_container() -> None:
    seen = observe(pod({"app": running(), "helper": exited(3)}), new_record("t-0"), T0)
    assert (seen.lastStatus, seen.desiredStatus, seen.stopCode) == ("RUNNING", "RUNNING", None)
    helper = next(c for c in seen.containers if c.name == "helper")
    assert (helper.lastStatus, helper.exitCode, helper.essential) == ("STOPPED", 3, False)


def test_an_out_of_memory_kill_reads_as_ecs_reports_it() -> None:
    oom = {"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}
    seen = observe(pod({"app": oom, "helper": running()}), new_record("t-0"), T0)
    app = next(c for c in seen.containers if c.name == "app")
    assert (app.exitCode, app.reason) == (137, "OutOfMemoryError: Container killed due to memory usage")


def test_an_image_pull_failure_fails_the_task_to_start() -> None:
    pull = {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}
    seen = observe(pod({"app": pull}, phase="Pending"), new_record("t-0"), T0)
    assert (seen.stopCode, seen.stoppedReason, seen.desiredStatus) == ("TaskFailedToStart", "CannotPullContainerError: not found", "STOPPED")


def test_stop_task_keeps_the_users_reason_through_to_stopped() -> None:
    started = observe(pod({"app": running(), "helper": running()}), new_record("t-0"), T0)
    stopping = request_stop(started, "UserInitiated", "maintenance", T0)
    assert (stopping.lastStatus, stopping.desiredStatus, stopping.stoppingAt) == ("DEACTIVATING", "STOPPED", STAMP)
    gone = observe(None, stopping, T0 + timedelta(seconds=2))
    assert (gone.lastStatus, gone.stopCode, gone.stoppedReason) == ("STOPPED", "UserInitiated", "maintenance")


def test_states_never_go_backwards_and_version_counts_changes() -> None:
    first = observe(pod(node=None, phase="Pending"), new_record("t-0"), T0)
    up = observe(pod({"app": running(), "helper": running()}), first, T0)
    again = observe(pod({"app": running(), "helper": running()}), up, T0)
    assert (first.version, up.version, again.version) == (1, 2, 2)
    assert observe(pod(node=None, phase="Pending"), up, T0).lastStatus == "RUNNING"
    stopped = observe(None, up, T0)
    assert observe(pod({"app": running(), "helper": running()}), stopped, T0) == stopped  # STOPPED is final


def test_depends_on_init_container_failing_fails_the_task_to_start() -> None:
    init = [{"name": "migrate", "image": "busybox"}]
    failed = pod({"migrate": exited(1)}, phase="Pending", init=init)
    seen = observe(failed, new_record("t-0"), T0)
    assert seen.stopCode == "TaskFailedToStart" and "migrate exited with code 1" in (seen.stoppedReason or "")


def test_a_complete_only_target_reports_the_real_exit_code_its_wrapper_wrote() -> None:
    """The wrapper (translate/dependencies.py) exits 0 so that the dependents start; ECS shows the real code."""
    init = [{"name": "setup", "image": "busybox"}]
    wrapped = exited(0)
    wrapped["state"]["terminated"]["message"] = "ecs-exit-code=3\n"
    seen = observe(pod({"setup": wrapped, "app": running(), "helper": running()}, init=init), new_record("t-0"), T0)
    setup = next(c for c in seen.containers if c.name == "setup")
    assert (seen.lastStatus, seen.stopCode) == ("RUNNING", None)
    assert (setup.lastStatus, setup.exitCode, setup.reason) == ("STOPPED", 3, None)
    wrapped["state"]["terminated"]["message"] = "ecs-exit-code=0"
    assert next(c for c in observe(pod({"setup": wrapped}, init=init), new_record("t-0"), T0).containers
                if c.name == "setup").exitCode == 0
    plain = exited(0)
    plain["state"]["terminated"]["message"] = "done"  # an ordinary container's own message is no exit code
    assert next(c for c in observe(pod({"setup": plain}, init=init), new_record("t-0"), T0).containers
                if c.name == "setup").exitCode == 0


CHECK = {"interval": 5, "retries": 2, "startPeriod": 10}  # grace: 10 + 2 * 5 = 20 s


def test_container_health_by_ecs_rule() -> None:
    checks = {"app": CHECK}
    healthy = observe(pod({"app": running(), "helper": running()}, checks=checks), new_record("t-0"), T0)
    assert healthy.healthStatus == "HEALTHY"  # the only essential container passes its check
    failing = pod({"app": running(ready=False), "helper": running()}, checks=checks)
    assert observe(failing, new_record("t-0"), T0 + timedelta(seconds=19)).healthStatus == "UNKNOWN"  # still in its grace
    assert observe(failing, new_record("t-0"), T0 + timedelta(seconds=20)).healthStatus == "UNHEALTHY"
    unchecked = observe(pod({"app": running(), "helper": running()}), new_record("t-0"), T0)
    assert unchecked.healthStatus == "UNKNOWN"  # no health check: UNKNOWN, as ECS reports it
    helper_failing = pod({"app": running(), "helper": running(ready=False)}, checks={"app": CHECK, "helper": CHECK})
    assert observe(helper_failing, new_record("t-0"), T0 + timedelta(minutes=5)).healthStatus == "HEALTHY"  # non-essential


@pytest.mark.parametrize(("values", "expected"), [
    (["HEALTHY", "UNHEALTHY", "UNKNOWN"], "UNHEALTHY"),
    (["HEALTHY", "UNKNOWN"], "UNKNOWN"),
    (["HEALTHY", "HEALTHY"], "HEALTHY"),
    ([], "UNKNOWN"),
])
def test_task_health_priority(values: list[str], expected: str) -> None:
    assert task_health(values) == expected  # type: ignore[arg-type]


def test_health_deadline_is_when_a_failing_check_turns_unhealthy() -> None:
    failing = pod({"app": running(ready=False), "helper": running()}, checks={"app": CHECK})
    assert health_deadline(failing, T0 + timedelta(seconds=3)) == T0 + timedelta(seconds=20)
    assert health_deadline(failing, T0 + timedelta(seconds=20)) is None  # already UNHEALTHY: nothing ahead
    passing = pod({"app": running(), "helper": running()}, checks={"app": CHECK})
    assert health_deadline(passing, T0) is None
    assert health_deadline(pod({"app": running(ready=False), "helper": running()}), T0) is None  # no check


def test_summary_of_several_tasks_is_led_by_the_least_advanced() -> None:
    def rec(state: str, **fields: Any) -> TaskRecord:
        return TaskRecord(podName=f"t-{state}", lastStatus=state, **fields)  # type: ignore[arg-type]

    summary = summarize_tasks([rec("RUNNING", startedAt=STAMP), rec("PENDING")])
    assert (summary["lastStatus"], summary["runningCount"], summary["pendingCount"]) == ("PENDING", 1, 1)
    assert "taskArn" not in summary  # several tasks: no single ARN on top
    assert summary["desiredCount"] == 2  # kubectl get's DESIRED column beside RUNNING
    assert summarize_tasks([rec("RUNNING"), rec("STOPPED", desiredStatus="STOPPED")])["desiredCount"] == 1
    stopped = summarize_tasks([rec("STOPPED", desiredStatus="STOPPED", stopCode="UserInitiated",
                                   stoppedReason="Task stopped by user", stoppedAt=STAMP)])
    assert (stopped["lastStatus"], stopped["desiredStatus"], stopped["stopCode"], stopped["stoppedAt"]) == (
        "STOPPED", "STOPPED", "UserInitiated", STAMP)
    assert summarize_tasks([rec("RUNNING"), rec("STOPPED", stoppedAt=STAMP)]).get("stoppedAt") is None  # not all stopped


@pytest.mark.parametrize(("message", "reasons"), [
    ("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available", ["RESOURCE:MEMORY"]),
    ("0/3 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.", ["RESOURCE:MEMORY", "RESOURCE:CPU"]),
    ("0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports.", ["RESOURCE:PORTS"]),
    ("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", ["ATTRIBUTE"]),
    ("0/3 nodes are available: 3 Too many pods. preemption: 0/3 nodes are available", ["RESOURCE:ENI"]),
    ("0/0 nodes are available", ["MISSING"]),
])
def test_scheduler_messages_become_ecs_placement_failure_reasons(message: str, reasons: list[str]) -> None:
    assert placement_failure_reasons(message) == reasons
