"""The deployment circuit breaker and healthCheckGracePeriodSeconds (ecs-semantics.md 4.3, 4.4, 4.6).

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

    return wait_for(seen, 120, what="the web:2 deployment FAILED")


def test_circuit_breaker_fails_the_deployment_and_rolls_back(sandbox: Any, namespace: str, running_operator: Any) -> None:
    first, pod_watch, service_watch = failing_update(sandbox, namespace, rollback=True)
    try:
        failed, _ = failed_deployment(service_watch)
        final = steady(sandbox, namespace, "web:1", 4, timeout=180)
    finally:
        pod_watch.stop()
        service_watch.stop()
    assert failed["failedTasks"] == 3  # min(200, max(3, ceil(4 / 2)))
    for change in service_watch.changes:  # never FAILED before the threshold
        for d in (change.object.get("status") or {}).get("deployments") or []:
            assert (d["rolloutState"] == "FAILED") == (d["id"] == failed["id"] and d["failedTasks"] >= 3), d
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    old_id, rollback_id = first["deployments"][0]["id"], final["deployments"][0]["id"]
    assert rollback_id not in (old_id, failed["id"])
    said = messages(final)
    failure = f"(service web) (deployment {failed['id']}) deployment failed: tasks failed to start."
    assert said.index(failure) < said.index(f"(service web) rolling back to deployment {old_id}.") < said.index(
        f"(service web) (deployment {rollback_id}) deployment completed.")
    rolled_back = [d for c in service_watch.changes for d in (c.object.get("status") or {}).get("deployments") or []
                   if d["id"] == rollback_id]
    assert rolled_back[0]["rolloutStateReason"] == f"ECS deployment circuit breaker: rolling back to deploymentId {old_id}."
    assert {deployment_of(p) for p in pods(sandbox, namespace)} == {rollback_id}
    assert final["taskDefinition"] == "web:1" and final["lastCompletedDeployment"]["id"] == rollback_id
    for snapshot in pod_watch.snapshots:  # minimumHealthyPercent 100 held while web:2 failed
        assert sum(1 for p in snapshot.values() if is_live(p) and is_ready(p)) >= 4
    events = sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=web")["items"]
    assert failure in {e["message"] for e in events if e["reason"] == "ServiceEvent"}


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
    primary = state["deployments"][0]
    assert primary["failedTasks"] == 3 and primary["rolloutState"] == "FAILED"
    assert f"(service web) (deployment {primary['id']}) deployment failed: tasks failed to start." in said
