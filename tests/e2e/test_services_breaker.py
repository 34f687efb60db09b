"""The deployment circuit breaker and healthCheckGracePeriodSeconds (docs/ecs-semantics.md §Rolling deployments, §Circuit breaker rollback).

Failing tasks come from kwok stages: `sim.ecs.operator.dev/exit` makes the essential container
exit once running; `sim.ecs.operator.dev/unready` fails its health check.
"""

from __future__ import annotations

import time
from typing import Any

from operator_fixtures import wait_for
from service_support import (
    ECS_SERVICE,
    apply_all,
    cluster,
    deployment_of,
    is_live,
    is_ready,
    merge_patch,
    messages,
    pods,
    register,
    service,
    status,
    steady,
    task_definition,
    watch_pods,
    watch_services,
)

from ecs_operator.lifecycle.pods import parse_time

EXITING = {"sim.ecs.operator.dev/exit": "app=1", "sim.ecs.operator.dev/exit-after": "1s"}
HEALTH_CHECK = {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 5, "timeout": 2, "retries": 1}


def breaker_service(rollback: bool, desired: int = 4) -> dict[str, Any]:
    """maximumPercent 125: one new task at a time, so the failures come one by one."""
    return service(desired=desired, deploymentConfiguration={
        "minimumHealthyPercent": 100, "maximumPercent": 125,
        "deploymentCircuitBreaker": {"enable": True, "rollback": rollback}})


def failing_update(sandbox: Any, namespace: str, rollback: bool) -> tuple[dict[str, Any], Any, Any]:
    """web:1 steady with 4 tasks, then an update to web:2 whose essential container exits."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, breaker_service(rollback))
    first = steady(sandbox, namespace, "web:1", 4)
    register(sandbox, namespace, task_definition(image="nginx:broken", annotations=EXITING), 2)
    pod_watch, service_watch = watch_pods(sandbox, namespace), watch_services(sandbox, namespace)
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    return first, pod_watch, service_watch


def failed_deployment(service_watch: Any) -> tuple[dict[str, Any], float]:
    """The web:2 deployment as it was when the breaker tripped, and when that was seen."""
    def seen() -> tuple[dict[str, Any], float] | None:
        for change in service_watch.since(0):
            for d in (change.object.get("status") or {}).get("deployments") or []:
                if d["taskDefinition"] == "web:2" and d["rolloutState"] == "FAILED":
                    return d, change.at
        return None

    try:
        return wait_for(seen, 120, what="the web:2 deployment FAILED")
    except AssertionError as timeout:  # say what the service showed instead, and whether the watch held
        shown = [(c.object.get("status") or {}).get("deployments") for c in service_watch.since(0)][-3:]
        raise AssertionError(f"{timeout}; last deployments seen: {shown}; watch errors: {service_watch.errors}") from None


def test_circuit_breaker_fails_the_deployment_and_rolls_back(sandbox: Any, namespace: str, running_operator: Any) -> None:
    first, pod_watch, service_watch = failing_update(sandbox, namespace, rollback=True)
    try:
        failed, _ = failed_deployment(service_watch)
        final = steady(sandbox, namespace, "web:1", 4, timeout=180)
    finally:
        pod_watch.stop()
        service_watch.stop()
    assert failed["failedTasks"] >= 3  # min(200, max(3, ceil(4 / 2))); failures seen together may pass it
    for change in service_watch.changes:  # never FAILED before the threshold
        for d in (change.object.get("status") or {}).get("deployments") or []:
            assert (d["rolloutState"] == "FAILED") == (d["id"] == failed["id"] and d["failedTasks"] >= 3), d
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    old_id = first["deployments"][0]["id"]
    assert final["deployments"][0]["id"] == old_id  # the last COMPLETED deployment itself, not a new one
    said = messages(final)
    failure = f"(service web) (deployment {failed['id']}) deployment failed: tasks failed to start."
    back = said.index(f"(service web) rolling back to deployment {old_id}.")
    assert said.index(failure) < back < len(said) - said[::-1].index(f"(service web) (deployment {old_id}) deployment completed.") - 1
    rolled_back = [d for c in service_watch.changes for d in (c.object.get("status") or {}).get("deployments") or []
                   if d["id"] == old_id and d["rolloutState"] == "IN_PROGRESS"]
    assert rolled_back[0]["rolloutStateReason"] == f"ECS deployment circuit breaker: rolling back to deploymentId {old_id}."
    assert {deployment_of(p) for p in pods(sandbox, namespace)} == {old_id}
    assert final["taskDefinition"] == "web:1" and final["lastCompletedDeployment"]["id"] == old_id
    for snapshot in pod_watch.snapshots:  # minimumHealthyPercent 100 held while web:2 failed
        assert sum(1 for p in snapshot.values() if is_live(p) and is_ready(p)) >= 4
    events = sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=web")["items"]
    assert failure in {e["message"] for e in events if e["reason"] == "ServiceEvent"}


def test_rollback_keeps_the_last_completed_deployments_tasks_and_reports_the_failed_ones(
    sandbox: Any, namespace: str, running_operator: Any
) -> None:
    """ECS's defaults (minimumHealthyPercent 100, maximumPercent 200): the rollback returns the web:1
    deployment to IN_PROGRESS, same id, and its tasks never stop; the failed web:2 tasks can be
    described as DescribeTasks shows them (docs/ecs-semantics.md §Circuit breaker rollback, §Stopped service tasks)."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=4, deploymentConfiguration={
        "deploymentCircuitBreaker": {"enable": True, "rollback": True}}))
    first = steady(sandbox, namespace, "web:1", 4)
    old_id = first["deployments"][0]["id"]
    web1 = {p["metadata"]["uid"] for p in pods(sandbox, namespace)}
    # exits at once: never RUNNING long enough to count as healthy, so no web:1 task is replaced by it
    at_once = {**EXITING, "sim.ecs.operator.dev/exit-after": "0s"}
    register(sandbox, namespace, task_definition(image="nginx:broken", annotations=at_once), 2)
    pod_watch, service_watch = watch_pods(sandbox, namespace), watch_services(sandbox, namespace)
    try:
        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
        failed, _ = failed_deployment(service_watch)
        final = steady(sandbox, namespace, "web:1", 4, timeout=180)
    finally:
        pod_watch.stop()
        service_watch.stop()

    # web:1 went back to IN_PROGRESS (PRIMARY, same id) after the failure, then COMPLETED
    shapes = [[(d["id"], d["status"], d["rolloutState"]) for d in (c.object.get("status") or {}).get("deployments") or []]
              for c in service_watch.changes]
    returned = [s for s in shapes if s and s[0] == (old_id, "PRIMARY", "IN_PROGRESS")]
    assert returned and (failed["id"], "ACTIVE", "FAILED") in returned[0], shapes
    assert [(d["id"], d["status"], d["rolloutState"]) for d in final["deployments"]] == [(old_id, "PRIMARY", "COMPLETED")]
    assert final["lastCompletedDeployment"]["id"] == old_id
    assert failed["failedTasks"] >= 3  # min(200, max(3, ceil(4 / 2)))

    # its 4 tasks were never stopped; live tasks never exceeded maximumPercent (200: 8)
    assert {p["metadata"]["uid"] for p in pods(sandbox, namespace)} == web1
    assert [c for c in pod_watch.changes if c.type == "DELETED" and c.object["metadata"]["uid"] in web1] == []
    for n, snapshot in enumerate(pod_watch.snapshots):
        assert sum(1 for p in snapshot.values() if is_live(p)) <= 8, f"sample {n}"

    # the failed tasks as DescribeTasks shows them, and the reason in the service events
    web2 = {c.object["metadata"]["uid"].replace("-", "") for c in pod_watch.changes
            if deployment_of(c.object) == failed["id"]}
    stopped = {t["taskArn"].rsplit("/", 1)[-1]: t for t in final.get("stoppedTasks") or []}
    exited = [t for task_id, t in stopped.items() if task_id in web2 and t["stopCode"] == "EssentialContainerExited"]
    assert len(exited) >= 3, stopped
    said = messages(final)
    for t in exited:
        task_id = t["taskArn"].rsplit("/", 1)[-1]
        assert t["taskArn"] == f"arn:aws:ecs:us-east-1:000000000000:task/default/{task_id}"
        assert (t["lastStatus"], t["desiredStatus"], t["stoppedReason"]) == ("STOPPED", "STOPPED", "Essential container in task exited")
        assert (t["startedBy"], t["group"]) == (failed["id"], "service:web")
        assert [(c["name"], c["lastStatus"], c["exitCode"]) for c in t["containers"]] == [("app", "STOPPED", 1)]
        assert t.get("stoppedAt") and t.get("startedAt")
        assert any(m.startswith("(service web) has stopped ") and f"(task {task_id})" in m
                   and m.endswith(". Reason: Essential container in task exited") for m in said), said
    for task_id, t in stopped.items():  # web:2 tasks the rollback stopped before they failed
        if t["stopCode"] == "ServiceSchedulerInitiated":
            assert task_id in web2 and t["stoppedReason"] == f"Scaling activity initiated by (deployment {old_id})"
    assert set(stopped) <= web2  # no web:1 task among them

def test_without_rollback_the_failed_deployment_launches_no_new_tasks(sandbox: Any, namespace: str, running_operator: Any) -> None:
    first, pod_watch, service_watch = failing_update(sandbox, namespace, rollback=False)
    old_id = first["deployments"][0]["id"]
    try:
        failed, _ = failed_deployment(service_watch)

        def settled() -> dict[str, Any] | None:
            state = status(sandbox, namespace)
            shape = [(d["id"], d["status"], d["rolloutState"], d["runningCount"]) for d in state.get("deployments") or []]
            current = pods(sandbox, namespace)
            done = len(current) == 4 and {deployment_of(p) for p in current} == {old_id}
            return state if done and shape == [(failed["id"], "PRIMARY", "FAILED", 0), (old_id, "ACTIVE", "COMPLETED", 4)] else None

        state = wait_for(settled, 120, what="the failed deployment with no tasks and the old one running 4")
        quiet_from = time.monotonic()
        # as long as ECS would keep retrying (several health/launch cycles), no web:2 task is started
        wait_for(lambda: time.monotonic() - quiet_from > 15, 30, what="a quiet period")
    finally:
        pod_watch.stop()
        service_watch.stop()
    assert [c for c in pod_watch.since(quiet_from) if c.type == "ADDED"] == []
    assert state["deployments"][0]["failedTasks"] >= 3
    assert f"(service web) (deployment {failed['id']}) deployment failed: tasks failed to start." in messages(state)
    assert not any("rolling back" in m for m in messages(state))
    assert status(sandbox, namespace)["deployments"] == state["deployments"]


def test_unhealthy_tasks_are_replaced_only_after_the_grace_period_and_trip_the_breaker(
    sandbox: Any, namespace: str, running_operator: Any
) -> None:
    grace = 12
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(annotations={"sim.ecs.operator.dev/unready": "app"}, healthCheck=HEALTH_CHECK), 1)
    watch = watch_pods(sandbox, namespace)
    try:
        apply_all(sandbox, namespace, service(desired=1, healthCheckGracePeriodSeconds=grace, deploymentConfiguration={
            "deploymentCircuitBreaker": {"enable": True, "rollback": True}}))
        state = wait_for(lambda: (s := status(sandbox, namespace)).get("rolloutState") == "FAILED" and s, 180,
                         what="the breaker to trip on health checks")
    finally:
        watch.stop()
    said = messages(state)
    unhealthy = [c.object for c in watch.changes if c.type == "DELETED"
                 and f"(service web) (task {c.object['metadata']['uid'].replace('-', '')}) failed container health checks." in said]
    assert len(unhealthy) == 3  # desired 1: the breaker's threshold is 3
    for pod in unhealthy:
        started = parse_time(pod["status"]["containerStatuses"][0]["state"]["running"]["startedAt"])
        stopped = parse_time(pod["metadata"]["deletionTimestamp"])
        assert (stopped - started).total_seconds() >= grace, f"{pod['metadata']['name']} replaced inside the grace period"
    records = {t["taskArn"].rsplit("/", 1)[-1]: t for t in state.get("stoppedTasks") or []}
    for pod in unhealthy:  # as DescribeTasks shows them, and named in the stop event
        task_id = pod["metadata"]["uid"].replace("-", "")
        assert (records[task_id]["stopCode"], records[task_id]["stoppedReason"]) == (
            "ServiceSchedulerInitiated", "Task failed container health checks")
        assert f"(service web) has stopped 1 running tasks: (task {task_id}). Reason: Task failed container health checks" in said
    primary = state["deployments"][0]
    assert primary["failedTasks"] == 3 and primary["rolloutState"] == "FAILED"
    assert f"(service web) (deployment {primary['id']}) deployment failed: tasks failed to start." in said
