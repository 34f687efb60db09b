"""Deployment alarms: the pure verdict and its effect on a deployment (docs/ecs-semantics.md §Deployment alarms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator.adapters.alertmanager import alerts_url, in_alarm, matcher
from ecs_operator.lifecycle.service_alarms import (
    ALARM_BAKE_MINUTES,
    CONDITION,
    AlarmReading,
    AlarmWatch,
    alarm_condition,
    verdict,
    watch_for,
)
from ecs_operator.lifecycle.service_deployments import Advance, Deployment, TaskView, advance, workload_target
from ecs_operator.models.service import DeploymentAlarms

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MINUTE = 60.0
BAKE = ALARM_BAKE_MINUTES * MINUTE
ROLLBACK = DeploymentAlarms(alarmNames=["errors", "latency"], enable=True, rollback=True)
NO_ROLLBACK = DeploymentAlarms(alarmNames=["errors"], enable=True, rollback=False)
SERVICE = {"metadata": {"name": "web", "namespace": "team-a", "generation": 1}}


def watch(alarms: DeploymentAlarms = ROLLBACK, firing: set[str] | None = None, problem: str | None = None,
          configured: bool = True, shifting: bool = False) -> AlarmWatch:
    reading = AlarmReading(frozenset(firing or ()), problem, configured)
    out = watch_for(alarms, reading, shifting, MINUTE)
    assert out is not None
    return out


def task(deployment: str, n: int) -> TaskView:
    return TaskView(task_id=f"t{n}", deployment=deployment, last_status="RUNNING", health_status="UNKNOWN",
                    essential_health_check=False, running_since=T0 - timedelta(minutes=10))


def step(previous: list[Deployment], *, key: str, td: str, tasks: list[TaskView], at: datetime,
         last: Deployment | None = None, alarm: AlarmWatch | None = None) -> Advance:
    return advance(service="web", service_uid="uid-1", previous=previous, last_completed=last, desired_count=2,
                   task_definition=td, config_key=key, tasks=tasks, failed={}, breaker=None, threshold_configuration=None,
                   now=at, min_running_seconds=40, alarm=alarm)


def rolled_out(alarm: AlarmWatch) -> tuple[Advance, Advance, str]:
    """web:1 COMPLETED (no alarms then), then web:2 started with alarms and all its tasks running, web:1's gone."""
    first = step([], key="k1", td="web:1", tasks=[], at=T0)
    one = first.deployments[0].id
    done = step(first.deployments, key="k1", td="web:1", tasks=[task(one, 0), task(one, 1)], at=T0)
    assert done.deployments[0].rolloutState == "COMPLETED"
    started = step(done.deployments, key="k2", td="web:2", tasks=[task(one, 0), task(one, 1)], at=T0,
                   last=done.last_completed, alarm=alarm)
    two = started.deployments[0].id
    return done, started, two


def test_off_without_enable_or_names() -> None:
    reading = AlarmReading()
    assert watch_for(None, reading, False, MINUTE) is None
    assert watch_for(DeploymentAlarms(alarmNames=["a"], enable=False, rollback=True), reading, False, MINUTE) is None
    assert watch_for(DeploymentAlarms(alarmNames=[], enable=True, rollback=True), reading, False, MINUTE) is None


def test_rolling_bakes_after_the_steady_state_the_shifting_strategies_do_not() -> None:
    assert watch().bake_seconds == BAKE
    assert watch(shifting=True).bake_seconds == 0


def test_an_alarm_in_alarm_triggers_with_the_names_that_fired() -> None:
    decided = verdict(watch(firing={"latency", "other"}), None, False, T0, "s")
    assert decided.triggered == ("latency",)
    assert decided.member == {"status": "TRIGGERED", "alarmNames": ["errors", "latency"], "triggeredAlarmNames": ["latency"]}


def test_monitoring_until_the_bake_after_the_steady_state_ends() -> None:
    w = watch()
    assert verdict(w, None, False, T0, "s").member["status"] == "MONITORING"
    begun = verdict(w, None, True, T0, "2026-01-01T12:00:00.000Z")
    assert (begun.hold, begun.bake_started, begun.due) == (True, "2026-01-01T12:00:00.000Z", T0 + timedelta(seconds=BAKE))
    during = verdict(w, begun.bake_started, True, T0 + timedelta(seconds=BAKE - 1), "s")
    assert during.hold and during.member["status"] == "MONITORING"
    over = verdict(w, begun.bake_started, True, T0 + timedelta(seconds=BAKE), "s")
    assert not over.hold and over.member == {"status": "MONITORING_COMPLETE", "alarmNames": ["errors", "latency"]}


def test_unreadable_alarms_hold_the_completion_but_fail_nothing() -> None:
    w = watch(firing={"errors"}, problem="Alertmanager at http://am did not answer")
    decided = verdict(w, "2026-01-01T12:00:00.000Z", True, T0 + timedelta(hours=1), "s")
    assert decided.triggered == () and decided.hold and decided.due is None


def test_no_alarm_source_configured_disables_the_alarms_without_holding() -> None:
    decided = verdict(watch(problem="no Alertmanager is configured", configured=False), None, True, T0, "s")
    assert decided.member == {"status": "DISABLED", "alarmNames": ["errors", "latency"]} and not decided.hold


def test_rolling_deployment_stays_in_progress_for_the_bake_then_completes() -> None:
    w = watch()
    _, started, two = rolled_out(w)
    steady = step(started.deployments, key="k2", td="web:2", tasks=[task(two, 2), task(two, 3)], at=T0,
                  last=started.last_completed, alarm=w)
    primary = steady.deployments[0]
    assert primary.rolloutState == "IN_PROGRESS"
    assert primary.alarms == {"status": "MONITORING", "alarmNames": ["errors", "latency"]}
    assert steady.alarm_due == T0 + timedelta(seconds=BAKE)
    done = step(steady.deployments, key="k2", td="web:2", tasks=[task(two, 2), task(two, 3)], at=T0 + timedelta(seconds=BAKE),
                last=steady.last_completed, alarm=w)
    assert done.deployments[0].rolloutState == "COMPLETED"
    assert done.deployments[0].alarms == {"status": "MONITORING_COMPLETE", "alarmNames": ["errors", "latency"]}


def test_an_alarm_fails_the_deployment_and_rolls_back_to_the_last_completed() -> None:
    done, started, two = rolled_out(watch())
    one = done.deployments[0].id
    tasks = [task(one, 0), task(two, 2)]
    fired = step(started.deployments, key="k2", td="web:2", tasks=tasks, at=T0 + timedelta(seconds=5),
                 last=started.last_completed, alarm=watch(firing={"errors"}))
    back, failed = fired.deployments
    assert (failed.id, failed.rolloutState, failed.status) == (two, "FAILED", "ACTIVE")
    assert failed.rolloutStateReason == "ECS deployment alarms: alarm(s) in ALARM state: errors."
    assert failed.alarms == {"status": "TRIGGERED", "alarmNames": ["errors", "latency"], "triggeredAlarmNames": ["errors"]}
    assert (back.id, back.status, back.rolloutState, back.rollbackOf) == (one, "PRIMARY", "IN_PROGRESS", "k2")
    assert back.rolloutStateReason == f"ECS deployment alarms: rolling back to deploymentId {one}."
    assert fired.messages == [f"(service web) (deployment {two}) deployment failed: alarm detected.",
                              f"(service web) rolling back to deployment {one}."]
    assert fired.warnings == fired.messages[:1] and fired.again
    # the rollback is not failed by the alarm that is still firing: it completes once its tasks run alone
    back_done = step(fired.deployments, key="k2", td="web:2", tasks=[task(one, 0), task(one, 1)], at=T0 + timedelta(seconds=10),
                     last=fired.last_completed, alarm=watch(firing={"errors"}))
    assert [(d.id, d.rolloutState) for d in back_done.deployments] == [(one, "COMPLETED")]


def test_an_alarm_during_the_bake_fails_a_rolling_deployment_without_rollback() -> None:
    w = watch(NO_ROLLBACK)
    _, started, two = rolled_out(w)
    steady = step(started.deployments, key="k2", td="web:2", tasks=[task(two, 2), task(two, 3)], at=T0,
                  last=started.last_completed, alarm=w)
    fired = step(steady.deployments, key="k2", td="web:2", tasks=[task(two, 2), task(two, 3)], at=T0 + timedelta(seconds=30),
                 last=steady.last_completed, alarm=watch(NO_ROLLBACK, firing={"errors"}))
    [primary] = fired.deployments
    assert (primary.id, primary.status, primary.rolloutState) == (two, "PRIMARY", "FAILED")
    assert primary.alarms is not None and primary.alarms["status"] == "TRIGGERED"
    assert fired.messages == [f"(service web) (deployment {two}) deployment failed: alarm detected."]
    assert not fired.again


def test_the_condition_says_when_alarms_cannot_be_watched_once() -> None:
    conditions, event = alarm_condition([], SERVICE, watch(problem="no Alertmanager is configured", configured=False), T0)
    [c] = conditions
    assert (c["type"], c["status"], c["reason"]) == (CONDITION, "False", "AlarmsNotWatched")
    assert "errors, latency" in c["message"] and "no Alertmanager is configured" in c["message"]
    assert event is not None and event.severity == "Warning" and event.reason == "DeploymentAlarmsNotWatched"
    again, repeated = alarm_condition(conditions, SERVICE, watch(problem="no Alertmanager is configured", configured=False), T0)
    assert repeated is None and again == conditions
    watched, none = alarm_condition(conditions, SERVICE, watch(), T0)
    assert watched[0]["status"] == "True" and none is None
    assert alarm_condition(watched, SERVICE, None, T0) == ([], None)


def test_alertmanager_query_and_the_namespace_rule() -> None:
    assert matcher("alertname", 'a"b\\c') == 'alertname="a\\"b\\\\c"'
    url = alerts_url("http://127.0.0.1:9093/", "errors", "team-a")
    assert url.startswith("http://127.0.0.1:9093/api/v2/alerts?active=true&silenced=false&inhibited=false&filter=")
    mine = {"labels": {"alertname": "errors", "namespace": "team-a"}, "status": {"state": "active"}}
    assert in_alarm([mine], "errors", "team-a")
    assert not in_alarm([{**mine, "labels": {"alertname": "errors", "namespace": "team-b"}}], "errors", "team-a")
    assert not in_alarm([{**mine, "labels": {"alertname": "errors"}}], "errors", "team-a")  # no namespace: nobody's
    assert not in_alarm([{**mine, "status": {"state": "suppressed"}}], "errors", "team-a")
    assert not in_alarm([], "errors", "team-a")


def test_a_deployment_its_alarms_failed_keeps_its_tasks_but_launches_none() -> None:
    w = watch(NO_ROLLBACK)
    _, started, two = rolled_out(w)
    steady = step(started.deployments, key="k2", td="web:2", tasks=[task(two, 2), task(two, 3)], at=T0,
                  last=started.last_completed, alarm=w)
    fired = step(steady.deployments, key="k2", td="web:2", tasks=[task(two, 2), task(two, 3)], at=T0 + timedelta(seconds=30),
                 last=steady.last_completed, alarm=watch(NO_ROLLBACK, firing={"errors"}))
    assert workload_target(fired) == (fired.deployments[0], 2)  # the circuit breaker's failures keep none (0)


def test_the_operator_setting_takes_an_http_url_from_the_flag_or_the_environment(monkeypatch: Any) -> None:
    import argparse

    import pytest

    from ecs_operator.runner import add_arguments, settings_from

    def parse(*argv: str) -> str:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return settings_from(parser.parse_args(list(argv))).alertmanager_url

    monkeypatch.delenv("ECS_OPERATOR_ALERTMANAGER_URL", raising=False)
    assert parse() == ""
    assert parse("--alertmanager-url", "http://am.monitoring:9093") == "http://am.monitoring:9093"
    monkeypatch.setenv("ECS_OPERATOR_ALERTMANAGER_URL", "https://am:9093")
    assert parse() == "https://am:9093"
    with pytest.raises(SystemExit):
        parse("--alertmanager-url", "am:9093")


def test_a_blue_green_deployment_is_watched_until_it_completes_and_rolls_back_to_blue() -> None:
    """BLUE_GREEN, LINEAR, CANARY: no extra bake (their bakeTimeInMinutes is part of the deployment); blue still runs."""
    shifting = watch(shifting=True)
    done, started, green = rolled_out(shifting)
    blue = done.deployments[0].id
    both = [task(blue, 0), task(blue, 1), task(green, 2), task(green, 3)]
    baking = step(started.deployments, key="k2", td="web:2", tasks=both, at=T0, last=started.last_completed, alarm=shifting)
    assert baking.deployments[0].rolloutState == "IN_PROGRESS" and baking.alarm_due is None
    fired = step(baking.deployments, key="k2", td="web:2", tasks=both, at=T0 + timedelta(seconds=5),
                 last=baking.last_completed, alarm=watch(firing={"errors"}, shifting=True))
    assert [(d.id, d.status, d.rolloutState) for d in fired.deployments] == [
        (blue, "PRIMARY", "IN_PROGRESS"), (green, "ACTIVE", "FAILED")]
