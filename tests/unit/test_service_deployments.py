"""An ECS service's deployments as describe-services reports them (docs/ecs-semantics.md §Rolling deployments, §Circuit breaker rollback)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator.lifecycle.service_deployments import (
    MAX_EVENTS,
    Advance,
    Deployment,
    TaskView,
    add_events,
    advance,
    started_event,
    stopped_event,
    workload_target,
)
from ecs_operator.models import ServiceSpec
from ecs_operator.models.rules import validate
from ecs_operator.models.service import DeploymentCircuitBreaker, DeploymentEarlySuccessCriteria, ThresholdConfiguration

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
BREAKER = DeploymentCircuitBreaker(enable=True, rollback=True)


def task(deployment: str, status: str = "RUNNING", since: datetime | None = T0, n: int = 0) -> TaskView:
    return TaskView(task_id=f"t{n}", deployment=deployment, last_status=status, health_status="UNKNOWN",
                    essential_health_check=False, running_since=since if status == "RUNNING" else None)


def step(previous: list[Deployment], *, key: str = "k1", td: str = "web:1", tasks: list[TaskView] = (),  # type: ignore[assignment]
         failed: dict[str, int] | None = None, desired: int = 4, last: Deployment | None = None,
         breaker: DeploymentCircuitBreaker | None = BREAKER, threshold: Any = None, at: datetime = T0) -> Advance:
    return advance(service="web", service_uid="uid-1", previous=previous, last_completed=last, desired_count=desired,
                   task_definition=td, config_key=key, tasks=list(tasks), failed=failed or {}, breaker=breaker,
                   threshold_configuration=threshold, now=at, min_running_seconds=40)


def completed(td: str = "web:1", key: str = "k1", at: datetime = T0) -> Advance:
    """A service whose first deployment has reached a steady state with 4 tasks."""
    first = step([], key=key, td=td, at=at)
    dep = first.deployments[0].id
    return step(first.deployments, key=key, td=td, tasks=[task(dep, n=i) for i in range(4)], at=at + timedelta(seconds=41))


def test_first_observation_starts_a_primary_in_progress_with_an_ecs_id() -> None:
    out = step([])
    [primary] = out.deployments
    assert re.fullmatch(r"ecs-svc/\d{19}", primary.id)
    assert (primary.status, primary.rolloutState, primary.taskDefinition, primary.desiredCount) == ("PRIMARY", "IN_PROGRESS", "web:1", 4)
    assert primary.rolloutStateReason == f"ECS deployment {primary.id} in progress."
    assert step(out.deployments).deployments[0].id == primary.id  # stable across observations


def test_completes_only_when_tasks_have_run_long_enough_then_reports_steady_state() -> None:
    first = step([])
    dep = first.deployments[0].id
    young = step(first.deployments, tasks=[task(dep, n=i) for i in range(4)], at=T0 + timedelta(seconds=39))
    assert young.deployments[0].rolloutState == "IN_PROGRESS" and young.messages == []
    done = step(young.deployments, tasks=[task(dep, n=i) for i in range(4)], at=T0 + timedelta(seconds=40))
    assert done.deployments[0].rolloutState == "COMPLETED"
    assert done.deployments[0].rolloutStateReason == f"ECS deployment {dep} completed."
    assert done.messages == [f"(service web) (deployment {dep}) deployment completed.", "(service web) has reached a steady state."]
    assert done.last_completed is not None and done.last_completed.id == dep


def test_a_new_revision_makes_a_new_primary_and_the_old_one_active_until_its_tasks_are_gone() -> None:
    base = completed()
    old = base.deployments[0].id
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed,
                   tasks=[task(old, n=i) for i in range(4)], at=T0 + timedelta(minutes=2))
    primary, active = rolling.deployments
    assert (primary.status, primary.taskDefinition, primary.runningCount) == ("PRIMARY", "web:2", 0)
    assert (active.status, active.id, active.runningCount, active.desiredCount) == ("ACTIVE", old, 4, 4)
    later = T0 + timedelta(minutes=3)
    mixed = [task(primary.id, n=i, since=later - timedelta(seconds=50)) for i in range(4)] + [task(old, n=9)]
    both = step(rolling.deployments, key="k2", td="web:2", last=base.last_completed, tasks=mixed, at=later)
    assert [d.status for d in both.deployments] == ["PRIMARY", "ACTIVE"]
    assert both.deployments[0].rolloutState == "IN_PROGRESS"  # old tasks remain: not steady yet
    done = step(both.deployments, key="k2", td="web:2", last=base.last_completed, tasks=mixed[:4], at=later)
    assert [d.id for d in done.deployments] == [primary.id]  # the replaced one is INACTIVE: dropped
    assert done.deployments[0].rolloutState == "COMPLETED"


def test_a_daemon_deployment_completes_only_once_counted_and_running_on_every_instance() -> None:
    """DAEMON: desiredCount is the eligible instances counted for the deployment; before that nothing
    completes, and pending tasks keep it IN_PROGRESS (ecs-semantics.md §DAEMON services)."""
    def daemon(previous: list[Deployment], counts: dict[str, int], tasks: list[TaskView], at: datetime) -> Advance:
        return advance(service="web", service_uid="uid-1", previous=previous, last_completed=None, desired_count=counts,
                       task_definition="web:1", config_key="k1", tasks=tasks, failed={}, breaker=None,
                       threshold_configuration=None, now=at, min_running_seconds=40)

    first = daemon([], {}, [], T0)  # no DaemonSet counted the instances yet
    dep = first.deployments[0].id
    assert (first.deployments[0].rolloutState, first.deployments[0].desiredCount, first.messages) == ("IN_PROGRESS", 0, [])
    assert daemon(first.deployments, {"ecs-svc/other": 0}, [], T0).deployments[0].rolloutState == "IN_PROGRESS"
    pending = daemon(first.deployments, {dep: 4}, [task(dep, "PENDING", n=i) for i in range(4)], T0 + timedelta(minutes=5))
    assert [(d.desiredCount, d.pendingCount, d.rolloutState) for d in pending.deployments] == [(4, 4, "IN_PROGRESS")]
    assert pending.messages == [] and pending.last_completed is None
    running = [task(dep, since=T0, n=i) for i in range(4)]
    done = daemon(pending.deployments, {dep: 4}, running, T0 + timedelta(minutes=5))
    assert done.deployments[0].rolloutState == "COMPLETED" and done.messages[-1] == "(service web) has reached a steady state."
    empty = daemon(first.deployments, {dep: 0}, [], T0)  # counted: no eligible instance, nothing to run
    assert empty.deployments[0].rolloutState == "COMPLETED"


def test_circuit_breaker_fails_at_the_threshold_and_rolls_back_to_the_last_completed() -> None:
    base = completed()
    assert base.last_completed is not None
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed, at=T0 + timedelta(minutes=2))
    new = rolling.deployments[0].id
    two = step(rolling.deployments, key="k2", td="web:2", last=base.last_completed, failed={new: 2})
    assert two.deployments[0].rolloutState == "IN_PROGRESS" and two.deployments[0].failedTasks == 2
    three = step(two.deployments, key="k2", td="web:2", last=base.last_completed, failed={new: 1})  # desired 4 -> 3
    failed = next(d for d in three.deployments if d.id == new)
    assert (failed.rolloutState, failed.status, failed.failedTasks) == ("FAILED", "ACTIVE", 3)
    assert failed.rolloutStateReason == "ECS deployment circuit breaker: tasks failed to start."
    rollback = three.deployments[0]
    assert rollback.id == base.last_completed.id  # the last COMPLETED deployment itself, not a new one
    assert (rollback.status, rollback.rolloutState, rollback.taskDefinition, rollback.configKey, rollback.rollbackOf) == (
        "PRIMARY", "IN_PROGRESS", "web:1", "k1", "k2")
    assert [d.id for d in three.deployments] == [rollback.id, new]
    assert rollback.rolloutStateReason == f"ECS deployment circuit breaker: rolling back to deploymentId {base.last_completed.id}."
    assert three.messages == [
        f"(service web) (deployment {new}) deployment failed: tasks failed to start.",
        f"(service web) rolling back to deployment {base.last_completed.id}.",
    ]
    # the spec still asks for web:2 (key k2): the rollback stays PRIMARY, no new deployment starts
    again = step(three.deployments, key="k2", td="web:2", last=three.last_completed)
    assert again.deployments[0].id == rollback.id
    assert workload_target(again) == (again.deployments[0], None)


def test_rollback_keeps_the_completed_deployments_tasks_and_completes_it_again() -> None:
    base = completed()
    old = base.deployments[0].id
    kept = [task(old, n=i) for i in range(4)]
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed, tasks=kept, at=T0 + timedelta(minutes=2))
    new = rolling.deployments[0].id
    failing = [*kept, task(new, "PENDING", n=8)]
    back = step(rolling.deployments, key="k2", td="web:2", last=base.last_completed, tasks=failing, failed={new: 3})
    assert [(d.id, d.status, d.rolloutState, d.runningCount, d.desiredCount) for d in back.deployments] == [
        (old, "PRIMARY", "IN_PROGRESS", 4, 4), (new, "ACTIVE", "FAILED", 0, 1)]
    assert workload_target(back) == (back.deployments[0], None)  # the old template: its ReplicaSet and tasks stay
    done = step(back.deployments, key="k2", td="web:2", last=back.last_completed, tasks=kept, at=T0 + timedelta(minutes=3))
    assert [(d.id, d.status, d.rolloutState) for d in done.deployments] == [(old, "PRIMARY", "COMPLETED")]
    assert done.last_completed is not None and done.last_completed.id == old
    assert done.messages[0] == f"(service web) (deployment {old}) deployment completed."


def test_a_rollback_whose_tasks_all_run_completes_at_the_next_observation_not_the_one_that_started_it() -> None:
    """Every new task failed in one observation and the old ones all run: the FAILED deployment and the
    rollback IN_PROGRESS are still what this observation reports (ECS shows both before it completes)."""
    base = completed()
    old = base.deployments[0].id
    kept = [task(old, n=i) for i in range(4)]
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed, tasks=kept, at=T0 + timedelta(minutes=2))
    new = rolling.deployments[0].id
    back = step(rolling.deployments, key="k2", td="web:2", last=base.last_completed, tasks=kept, failed={new: 4})
    assert [(d.id, d.status, d.rolloutState) for d in back.deployments] == [
        (old, "PRIMARY", "IN_PROGRESS"), (new, "ACTIVE", "FAILED")]
    assert back.again
    done = step(back.deployments, key="k2", td="web:2", last=back.last_completed, tasks=kept, at=T0 + timedelta(minutes=3))
    assert [(d.id, d.status, d.rolloutState) for d in done.deployments] == [(old, "PRIMARY", "COMPLETED")]
    assert not done.again


def test_rollback_to_a_completed_deployment_without_tasks_left_keeps_its_id() -> None:
    base = completed()
    old = base.deployments[0].id
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed, at=T0 + timedelta(minutes=2))
    gone = step(rolling.deployments, key="k2", td="web:2", last=base.last_completed)  # minimumHealthyPercent 0
    assert [d.id for d in gone.deployments] == [rolling.deployments[0].id]
    back = step(gone.deployments, key="k2", td="web:2", last=base.last_completed, failed={rolling.deployments[0].id: 3})
    assert [(d.id, d.status, d.rolloutState, d.desiredCount) for d in back.deployments][0] == (old, "PRIMARY", "IN_PROGRESS", 4)


def test_without_rollback_the_failed_deployment_launches_nothing_and_the_last_completed_keeps_running() -> None:
    base = completed()
    old = base.deployments[0].id
    breaker = DeploymentCircuitBreaker(enable=True, rollback=False)
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed, breaker=breaker,
                   tasks=[task(old, n=i) for i in range(4)])
    new = rolling.deployments[0].id
    out = step(rolling.deployments, key="k2", td="web:2", last=base.last_completed, breaker=breaker,
               tasks=[task(old, n=i) for i in range(4)], failed={new: 3})
    assert [(d.id, d.status, d.rolloutState) for d in out.deployments] == [(new, "PRIMARY", "FAILED"), (old, "ACTIVE", "COMPLETED")]
    assert out.messages == [f"(service web) (deployment {new}) deployment failed: tasks failed to start."]
    target, launch = workload_target(out)
    assert (target.id, launch) == (old, None)  # the failed revision's workload returns to the old template
    gone = step(out.deployments, key="k2", td="web:2", last=base.last_completed, breaker=breaker)
    assert workload_target(gone) == (gone.deployments[0], 0)  # no old tasks left: nothing runs


def test_a_failed_first_deployment_has_nothing_to_roll_back_to() -> None:
    first = step([])
    out = step(first.deployments, failed={first.deployments[0].id: 3})
    assert [d.rolloutState for d in out.deployments] == ["FAILED"]
    assert workload_target(out) == (out.deployments[0], 0)


def test_breaker_disabled_or_configured_threshold() -> None:
    first = step([], breaker=None)
    assert step(first.deployments, breaker=None, failed={first.deployments[0].id: 50}).deployments[0].rolloutState == "IN_PROGRESS"
    count = ThresholdConfiguration(type="COUNT", value=1)
    first = step([], threshold=count)
    assert step(first.deployments, threshold=count, failed={first.deployments[0].id: 1}).deployments[0].rolloutState == "FAILED"


def test_desired_count_one_needs_three_failures() -> None:
    first = step([], desired=1)
    dep = first.deployments[0].id
    assert step(first.deployments, desired=1, failed={dep: 2}).deployments[0].rolloutState == "IN_PROGRESS"
    assert step(first.deployments, desired=1, failed={dep: 3}).deployments[0].rolloutState == "FAILED"


def test_counts_pending_and_running_per_deployment() -> None:
    first = step([])
    dep = first.deployments[0].id
    tasks = [task(dep, "RUNNING", n=1), task(dep, "PENDING", n=2), task(dep, "PROVISIONING", n=3), task("ecs-svc/other", n=4)]
    primary = step(first.deployments, tasks=tasks).deployments[0]
    assert (primary.runningCount, primary.pendingCount) == (1, 2)


def test_started_and_stopped_messages_name_every_task() -> None:
    assert started_event("web", ["a", "b"]) == "(service web) has started 2 tasks: (task a) (task b)."
    assert stopped_event("web", ["a"]) == "(service web) has stopped 1 running tasks: (task a)."
    assert stopped_event("web", ["a", "b"], "Essential container in task exited") == (
        "(service web) has stopped 2 running tasks: (task a) (task b). Reason: Essential container in task exited")


def test_events_newest_first_with_state_messages_repeated_only_after_a_change() -> None:
    steady = "(service web) has reached a steady state."
    events, fresh = add_events([], [steady], T0)
    assert fresh == [steady] and events[0]["message"] == steady and events[0]["createdAt"] == "2026-01-01T12:00:00.000Z"
    events, fresh = add_events(events, [steady], T0 + timedelta(minutes=5))
    assert fresh == [] and len(events) == 1  # nothing changed: no new event, no status write
    started = started_event("web", ["x"])
    events, fresh = add_events(events, [started, steady], T0 + timedelta(minutes=6))
    assert fresh == [started, steady]
    assert [e["message"] for e in events] == [steady, started, steady]
    events, fresh = add_events(events, [steady], T0 + timedelta(hours=6, minutes=6))
    assert fresh == [steady]  # re-announced after six hours


def test_alternating_placement_failures_are_not_repeated() -> None:
    a = "(service web) was unable to place a task because no container instance met all of its requirements. Reason: A"
    b = a.replace("A", "B")
    events, _ = add_events([], [a, b], T0)
    events, fresh = add_events(events, [a, b], T0 + timedelta(minutes=1))
    assert fresh == [] and len(events) == 2


def test_events_keep_the_newest_hundred() -> None:
    events: list[dict[str, str]] = []
    for i in range(150):
        events, _ = add_events(events, [started_event("web", [str(i)])], T0 + timedelta(seconds=i))
    assert len(events) == MAX_EVENTS
    assert events[0]["message"] == started_event("web", ["149"])
    assert events[-1]["message"] == started_event("web", ["50"])


def _early(cleanup: str, percent: int = 50) -> DeploymentEarlySuccessCriteria:
    return DeploymentEarlySuccessCriteria(enable=True, healthyPercent=percent, sourceServiceRevisionCleanup=cleanup)  # type: ignore[arg-type]


def test_early_success_deferred_completes_at_healthy_percent_while_old_tasks_drain() -> None:
    """docs/ecs-semantics.md §Early success criteria: ceil(4 x 50%) = 2 healthy tasks of the new revision."""
    base = completed()
    old = base.deployments[0].id
    rolling = step(base.deployments, key="k2", td="web:2", last=base.last_completed,
                   tasks=[task(old, n=i) for i in range(4)], at=T0 + timedelta(minutes=2))
    new = rolling.deployments[0].id
    later = T0 + timedelta(minutes=3)
    one = [task(new, n=10, since=later - timedelta(seconds=50)), *(task(old, n=i) for i in range(3))]
    two = [task(new, n=10 + i, since=later - timedelta(seconds=50)) for i in range(2)] + [task(old, n=i) for i in range(2)]

    def at(tasks: list[TaskView], cleanup: str, previous: list[Deployment] = rolling.deployments) -> Advance:
        return advance(service="web", service_uid="uid-1", previous=previous, last_completed=base.last_completed,
                       desired_count=4, task_definition="web:2", config_key="k2", tasks=tasks, failed={}, breaker=BREAKER,
                       threshold_configuration=None, now=later, min_running_seconds=40, early=_early(cleanup))

    assert at(one, "DEFERRED").deployments[0].rolloutState == "IN_PROGRESS"  # 1 of the 2 needed
    done = at(two, "DEFERRED")
    assert [d.rolloutState for d in done.deployments] == ["COMPLETED", "COMPLETED"]
    assert [d.status for d in done.deployments] == ["PRIMARY", "ACTIVE"]  # the old tasks are still there
    assert done.messages == [f"(service web) (deployment {new}) deployment completed."]  # not steady yet
    assert done.last_completed is not None and done.last_completed.id == new
    # BLOCKING: the previous tasks must be gone first
    assert at(two, "BLOCKING").deployments[0].rolloutState == "IN_PROGRESS"
    assert at(two[:2], "BLOCKING").deployments[0].rolloutState == "COMPLETED"


def test_early_success_criteria_are_checked_as_ecs_checks_them() -> None:
    def found(dc: dict[str, Any]) -> list[tuple[str, str]]:
        return [(p.path, p.message) for p in validate(ServiceSpec.model_validate(
            {"serviceName": "web", "taskDefinition": "web", "desiredCount": 2, "deploymentConfiguration": dc}))]

    ok = {"earlySuccessCriteria": {"enable": True, "healthyPercent": 60, "sourceServiceRevisionCleanup": "DEFERRED"}}
    assert found(ok) == []
    assert found({"earlySuccessCriteria": {"enable": False}}) == []
    paths = [p for p, _ in found({"minimumHealthyPercent": 75, "strategy": "CANARY", "earlySuccessCriteria": {
        "enable": True, "healthyPercent": 60}})]
    assert paths == ["deploymentConfiguration.earlySuccessCriteria",
                     "deploymentConfiguration.earlySuccessCriteria.healthyPercent",
                     "deploymentConfiguration.earlySuccessCriteria.sourceServiceRevisionCleanup"]
