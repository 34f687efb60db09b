"""A Service's reconcile decided from what was observed (lifecycle/service_reconcile.py): which tasks stop
and why, the circuit breaker's count, the events and their severity, the next check, refusals and the
steady state (docs/ecs-semantics.md §Rolling deployments, §Circuit breaker rollback, §Health status,
§Stopped service tasks). Inputs have the shapes the e2e scenarios create (tests/e2e/service_support.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator import labels as L
from ecs_operator.lifecycle.service_events import ServiceEvent
from ecs_operator.lifecycle.service_reconcile import (
    RETRY_SECONDS,
    ServiceDecision,
    ServiceObserved,
    after_evictions,
    digits,
    key_of,
    plan_service,
)
from ecs_operator.lifecycle.service_tasks import HEALTH_CHECKS_FAILED
from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
SETTINGS = Settings(service_task_ready_seconds=40, max_service_tasks=10)
CHECK = {"interval": 5, "retries": 2, "startPeriod": 10}
"""A container with this health check that is not ready is UNHEALTHY 20 s after it started."""
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}
CLUSTER = {"name": "default", "uid": "c-1", "spec": {"clusterName": "default"}, "deleting": None, "inactive": {}}


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def revision() -> Revision:
    definition = RegisterTaskDefinition.model_validate({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "nginx:1", "memory": 64, "portMappings": [{"containerPort": 80, "name": "http"}]}]})
    return Revision("web", 1, definition)


def service(name: str = "web", desired: int = 1, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """As service_support.service() applies it, once the API server gave it its metadata."""
    return {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns", "uid": "svc-uid", "generation": 1,
                         "creationTimestamp": stamp(T0 - timedelta(minutes=10)), "annotations": annotations or {}},
            "spec": {"cluster": "default", "taskDefinition": "web:1", "desiredCount": desired, **spec}}


def pod(n: int, deployment: str = "", started: datetime | None = T0 - timedelta(seconds=60), ready: bool = True,
        checked: bool = False, exited: bool = False) -> dict[str, Any]:
    """A service task's Pod: placed and running since `started`, or its essential container exited."""
    annotations = {L.ESSENTIAL_CONTAINERS: "app", L.CONTAINER_NAMES: json.dumps({"app": "app"})}
    if checked:
        annotations[L.HEALTH_CHECKED_CONTAINERS] = json.dumps({"app": CHECK})
    if exited:
        state: dict[str, Any] = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": stamp(T0 - timedelta(seconds=5)),
                                                "finishedAt": stamp(T0 - timedelta(seconds=4))}}
    else:
        state = {"running": {"startedAt": stamp(started)}} if started else {"waiting": {"reason": "ContainerCreating"}}
    return {"metadata": {"name": f"web-{n}", "namespace": "ns", "uid": f"0000-{n:04d}", "annotations": annotations,
                         "creationTimestamp": stamp(T0 - timedelta(minutes=5)),
                         "labels": {L.SERVICE: "web", L.DEPLOYMENT: digits(deployment)}},
            "spec": {"nodeName": "n1", "restartPolicy": "Never" if exited else "Always", "containers": [{"name": "app", "image": "nginx:1"}]},
            "status": {"phase": "Failed" if exited else "Running",
                       "containerStatuses": [{"name": "app", "ready": ready and not exited, "state": state}]}}


def observed(body: dict[str, Any], pods: list[dict[str, Any]] = (), current: dict[str, Any] | None = None,  # type: ignore[assignment]
             **more: Any) -> ServiceObserved:
    """What observe() reads for this Service: its cluster exists, web:1 is registered."""
    rev = revision()
    return replace(ServiceObserved(
        service=body, spec=ServiceSpec.model_validate(body["spec"]), invalid=(), current=current or {},
        pods=tuple(pods), stopping=frozenset(), deployments=(), daemon_sets=(), owned={}, cluster=CLUSTER,
        requested=rev, revisions={rev.name: rev}, settings=SETTINGS,
    ), **more)


def primary_id(decision: ServiceDecision) -> str:
    return str(decision.status["deployments"][0]["id"])


def events(decision: ServiceDecision) -> list[tuple[str, str]]:
    return [(e.severity, e.message) for e in decision.events]


def test_an_unhealthy_task_stays_within_the_grace_period_and_is_stopped_after_it() -> None:
    body = service(healthCheckGracePeriodSeconds=60)
    first = plan_service(observed(body), T0)
    deployment = primary_id(first)
    started = T0 - timedelta(seconds=30)  # UNHEALTHY since T0 - 10 s; its grace period ends at T0 + 30 s
    sick = pod(1, deployment, started=started, ready=False, checked=True)

    inside = plan_service(observed(body, [sick], first.status), T0)
    assert inside.stops == () and inside.status["deployments"][0]["failedTasks"] == 0
    assert inside.requeue_after == 11  # counted healthy at started + 40 s comes first (+1: whole seconds)

    after = plan_service(observed(body, [sick], inside.status), started + timedelta(seconds=60))
    assert [(s.pod["metadata"]["uid"], s.stop.code, s.stop.reason) for s in after.stops] == [
        ("0000-0001", "ServiceSchedulerInitiated", HEALTH_CHECKS_FAILED)]
    assert ("Warning", "(service web) (task 00000001) failed container health checks.") in events(after)
    assert ("Warning", f"(service web) has stopped 1 running tasks: (task 00000001). Reason: {HEALTH_CHECKS_FAILED}") in events(after)
    [record] = after.status["stoppedTasks"]
    assert (record["stopCode"], record["stoppedReason"], record["startedBy"]) == ("ServiceSchedulerInitiated", HEALTH_CHECKS_FAILED, deployment)
    assert after.status["deployments"][0]["failedTasks"] == 1


def test_three_failed_tasks_trip_the_circuit_breaker_of_a_one_task_service() -> None:
    body = service(deploymentConfiguration=BREAKER)
    decision = plan_service(observed(body), T0)
    deployment = primary_id(decision)
    for n in range(1, 4):  # the ReplicaSet replaces each stopped task; each one's essential container exits
        decision = plan_service(observed(body, [pod(n, deployment, exited=True)], decision.status), T0 + timedelta(seconds=n))
        assert [s.stop.code for s in decision.stops] == ["EssentialContainerExited"]
    primary = decision.status["deployments"][0]
    assert (primary["failedTasks"], primary["rolloutState"]) == (3, "FAILED")  # min(200, max(3, ceil(0.5 x 1)))
    assert ("Warning", f"(service web) (deployment {deployment}) deployment failed: tasks failed to start.") in events(decision)
    assert not decision.children[0]["spec"]["replicas"]  # a FAILED deployment without rollback launches nothing


def test_a_stop_request_stops_the_task_as_user_initiated_without_counting_a_failure() -> None:
    first = plan_service(observed(service()), T0)
    deployment = primary_id(first)
    body = service(deploymentConfiguration=BREAKER, annotations={
        f"{L.STOP_TASK_PREFIX}00000001": "scaling down for the night", f"{L.STOP_TASK_PREFIX}gone": ""})
    decision = plan_service(observed(body, [pod(1, deployment)], first.status), T0)
    assert [(s.stop.code, s.stop.reason) for s in decision.stops] == [("UserInitiated", "scaling down for the night")]
    assert decision.status["deployments"][0]["failedTasks"] == 0
    assert decision.forget == ("gone",)  # its task is no longer there; 00000001's goes once its Pod is gone
    assert decision.status["stoppedTasks"][0]["stopCode"] == "UserInitiated"


def test_event_severity_comes_from_the_rule_not_the_wording() -> None:
    body = service(name="failed-web")  # "failed" in a name made every event of the service a Warning
    unplaceable = pod(2, started=None)
    del unplaceable["spec"]["nodeName"]
    unplaceable["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": "0/3 nodes are available: 3 Insufficient memory."}]
    decision = plan_service(observed(body, [pod(1), unplaceable]), T0)
    assert events(decision)[0] == ("Normal", "(service failed-web) has started 1 tasks: (task 00000001).")
    [unable] = [e for e in decision.events if "unable to place a task" in e.message]
    assert unable.severity == "Warning" and "RESOURCE:MEMORY" in unable.message
    assert decision.reported


def test_the_next_check_is_the_earliest_time_based_change() -> None:
    first = plan_service(observed(service(desired=2)), T0)
    pods = [pod(1, primary_id(first), started=T0 - timedelta(seconds=10)), pod(2, primary_id(first), started=T0 - timedelta(seconds=25))]
    assert plan_service(observed(service(desired=2), pods, first.status), T0).requeue_after == 16  # counted healthy at 40 s
    settled = [pod(1, primary_id(first), started=T0 - timedelta(minutes=5))]
    assert plan_service(observed(service(desired=1), settled, first.status), T0).requeue_after is None


def test_an_invalid_spec_is_a_refusal_with_nothing_applied() -> None:
    decision = plan_service(observed(service(desired=20)), T0)  # above the operator's max_service_tasks
    [ready] = decision.status["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidParameterException")
    assert decision.children == () and decision.stops == () and decision.write and not decision.reported
    assert decision.events == (ServiceEvent(ready["message"], "Warning", "InvalidParameterException"),)
    again = plan_service(observed(service(desired=20), current=decision.status), T0 + timedelta(seconds=1))
    assert not again.write and again.events == ()  # the same refusal: no write, no second Warning


def test_a_missing_cluster_is_refused_and_looked_at_again() -> None:
    decision = plan_service(replace(observed(service()), cluster=None), T0)
    assert decision.status["conditions"][0]["reason"] == "ClusterNotFoundException"
    assert decision.requeue_after == RETRY_SECONDS and decision.children == ()


def test_at_steady_state_nothing_is_written_or_applied() -> None:
    body = service(desired=2)
    first = plan_service(observed(body), T0)
    pods = [pod(n, primary_id(first)) for n in (1, 2)]
    settled = plan_service(observed(body, pods, first.status), T0)
    assert settled.status["rolloutState"] == "COMPLETED" and settled.write
    owned = {key_of(c): c for c in settled.children}
    again = plan_service(observed(body, pods, settled.status, owned=owned), T0 + timedelta(seconds=30))
    assert not again.write and again.apply == frozenset() and again.stale == ()
    assert again.events == () and again.stops == () and again.requeue_after is None


def test_a_task_on_a_draining_instance_is_evicted_first_below_minimum_healthy_100() -> None:
    """docs/ecs-semantics.md §Draining: the event says how many the PodDisruptionBudget let go."""
    body = service(desired=2, deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200})
    first = plan_service(observed(body), T0)
    pods = [pod(n, primary_id(first)) for n in (1, 2)]
    for p in pods:
        p["metadata"]["labels"] |= {"ecs.operator.dev/workload": "web", "pod-template-hash": "abc"}
    pods[1]["spec"]["nodeName"] = "n2"
    decision = plan_service(observed(body, pods, first.status, draining=frozenset({"n2"})), T0)
    [eviction] = decision.evictions
    assert [p["metadata"]["name"] for p in eviction.pods] == ["web-2"] and decision.stops == ()
    assert not any("DRAINING" in e.message for e in decision.events)  # only the eviction's outcome tells
    done = after_evictions(decision, first.status, [e for e in [eviction.event(1)] if e], T0)
    assert events(done)[-1] == ("Normal", "(service web) is stopping 1 tasks on DRAINING container instance(s) n2 first "
                                          "(minimumHealthyPercent 50); their replacements start on other instances.")
    assert done.status["events"][0]["message"] == events(done)[-1][1]
    assert eviction.event(0) is None  # every eviction refused: nothing to say


def test_task_events_come_from_the_status_so_a_restart_neither_loses_nor_repeats_them() -> None:
    """The tasks reported started are kept in the status with the events that report them (one write): a
    process that starts after a kill, knowing nothing of earlier Pod events, reports exactly the tasks
    placed or gone since the last write, and a second look at the same world reports nothing."""
    body = service(desired=2)
    first = plan_service(observed(body), T0)
    deployment = primary_id(first)
    # placed, but the process that saw them was killed before it reported them (no pending memory)
    running = [pod(1, deployment), pod(2, deployment)]
    placed = plan_service(observed(body, running, first.status), T0)
    assert ("Normal", "(service web) has started 2 tasks: (task 00000001) (task 00000002).") in events(placed)
    assert plan_service(observed(body, running, placed.status), T0 + timedelta(seconds=1)).events == ()
    # both stopped by the scheduler while no process watched (no DELETED event reached the new one)
    gone = plan_service(observed(body, [], placed.status), T0 + timedelta(seconds=2))
    assert [m for _, m in events(gone) if "has stopped" in m] == [
        "(service web) has stopped 2 running tasks: (task 00000001) (task 00000002)."]
    again = plan_service(observed(body, [], gone.status), T0 + timedelta(seconds=3))
    assert [m for _, m in events(again) if "has st" in m] == []


def test_a_task_whose_instance_is_gone_is_stopped_at_once_naming_the_host_and_is_no_failure() -> None:
    body = service(desired=2, deploymentConfiguration=BREAKER)
    first = plan_service(observed(body), T0)
    deployment = primary_id(first)
    lost, kept = pod(1, deployment), pod(2, deployment)
    lost["spec"]["nodeName"] = "gone-node"
    decision = plan_service(observed(body, [lost, kept], first.status, lost_nodes=frozenset({"gone-node"})), T0)
    reason = "Host EC2 (instance gone-node) stopped/terminated"
    assert [(s.pod["metadata"]["uid"], s.stop.code, s.stop.reason, s.lost) for s in decision.stops] == [
        ("0000-0001", "TerminationNotice", reason, True)]
    assert ("Warning", f"(service web) has stopped 1 running tasks: (task 00000001). Reason: {reason}") in events(decision)
    assert decision.status["deployments"][0]["failedTasks"] == 0  # the host failed, not the task
    [record] = decision.status["stoppedTasks"]
    assert (record["stopCode"], record["stoppedReason"]) == ("TerminationNotice", reason)


def test_a_status_written_before_placed_tasks_adopts_the_running_tasks_without_reporting_them_again() -> None:
    body = service(desired=1)
    first = plan_service(observed(body), T0)
    running = [pod(1, primary_id(first))]
    placed = plan_service(observed(body, running, first.status), T0)
    older = {k: v for k, v in placed.status.items() if k != "placedTasks"}  # as an earlier operator version wrote it
    upgraded = plan_service(observed(body, running, older), T0 + timedelta(seconds=1))
    assert [m for _, m in events(upgraded) if "has st" in m] == []
    assert upgraded.status["placedTasks"] == ["00000001"]


def test_a_pre_scale_up_pause_hook_holds_green_at_zero_and_its_rollback_returns_to_blue() -> None:
    """lifecycleHooks (lifecycle/service_hooks.py) in the reconcile: green's workload has no replicas while the
    PRE_SCALE_UP hook waits; ContinueServiceDeployment's ROLLBACK (the annotation it writes) rolls back."""
    config = {"strategy": "BLUE_GREEN", "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]}]}
    body = service(deploymentConfiguration=config)
    decision = plan_service(observed(body), T0)
    blue = primary_id(decision)
    decision = plan_service(observed(body, [pod(1, blue)], decision.status), T0 + timedelta(seconds=1))
    assert decision.status["deployments"][0]["rolloutState"] == "COMPLETED"
    one = revision()
    two = Revision("web", 2, one.definition)
    updated = {**body, "spec": {**body["spec"], "taskDefinition": "web:2"}}
    paused = plan_service(observed(updated, [pod(1, blue)], decision.status, requested=two,
                                   revisions={one.name: one, two.name: two}), T0 + timedelta(seconds=2))
    green = paused.status["deployments"][0]
    assert green["id"] != blue and green["lifecycleStage"] == "PRE_SCALE_UP"
    (run,) = green["hookRuns"]
    assert run["status"] == "AWAITING_ACTION"
    workloads = {w["spec"]["template"]["metadata"]["labels"][L.DEPLOYMENT]: w["spec"]["replicas"]
                 for w in paused.children if w["kind"] == "Deployment"}
    assert workloads == {digits(blue): 1, digits(green["id"]): 0}
    asked = {**updated, "metadata": {**updated["metadata"], "annotations": {f"{L.CONTINUE_PREFIX}{run['hookId']}": "ROLLBACK"}}}
    back = plan_service(observed(asked, [pod(1, blue)], paused.status, requested=two, revisions={one.name: one, two.name: two}),
                        T0 + timedelta(seconds=3))
    assert [(d["id"], d["rolloutState"]) for d in back.status["deployments"]] == [(blue, "IN_PROGRESS"), (green["id"], "FAILED")]
    assert any("deployment failed: lifecycle hook" in m for _, m in events(back))
    assert back.hooks.forget == ()  # the annotation goes once the hook's outcome is written
