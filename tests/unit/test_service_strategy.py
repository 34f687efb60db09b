"""BLUE_GREEN, LINEAR and CANARY deployments (lifecycle/service_strategy.py and its use in plan_service): the step
schedules, the bake timers with an injected clock, the endpoint split and the rollback decision
(docs/ecs-semantics.md §Blue/green, linear and canary deployments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_service_reconcile import observed, pod, service

from ecs_operator import labels as L
from ecs_operator.lifecycle.service_reconcile import ServiceDecision, digits, key_of, plan_service
from ecs_operator.lifecycle.service_strategy import Position, Shift, position, shift_for, split
from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.models.service import DeploymentConfiguration
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import SECOND_SLOT, SLOT_LABEL

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def config(**fields: Any) -> DeploymentConfiguration:
    return DeploymentConfiguration.model_validate(fields)


def at(shift: Shift, ms: int) -> Position:
    return position(shift, T0, T0 + ms * MS)


def test_blue_green_moves_all_traffic_at_once_and_bakes_for_its_minutes() -> None:
    shift = shift_for(config(strategy="BLUE_GREEN", bakeTimeInMinutes=2))
    assert shift == Shift(((100.0, 0.0),), 120.0)
    assert position(shift, None, T0) == Position("SCALE_UP", 0.0, None)  # green not healthy yet: no traffic
    assert at(shift, 0) == Position("BAKE_TIME", 100.0, T0 + timedelta(seconds=120))
    assert at(shift, 119_999).stage == "BAKE_TIME"
    assert at(shift, 120_000) == Position("CLEAN_UP", 100.0, None)
    assert at(shift, 120_000).clean_up


def test_the_minute_is_the_operator_setting() -> None:
    shift = shift_for(config(strategy="BLUE_GREEN", bakeTimeInMinutes=2), minute_seconds=0.5)
    assert shift is not None and shift.bake == 1.0
    assert at(shift, 999).stage == "BAKE_TIME" and at(shift, 1000).stage == "CLEAN_UP"


def test_canary_shifts_its_percent_then_the_rest_after_its_bake_time() -> None:
    shift = shift_for(config(strategy="CANARY", bakeTimeInMinutes=1,
                             canaryConfiguration={"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 3}), minute_seconds=1)
    assert shift == Shift(((10.0, 3.0), (100.0, 0.0)), 1.0)
    assert at(shift, 0) == Position("PRODUCTION_TRAFFIC_SHIFT", 10.0, T0 + timedelta(seconds=3))
    assert at(shift, 2_999).percent == 10.0
    assert at(shift, 3_000) == Position("BAKE_TIME", 100.0, T0 + timedelta(seconds=4))
    assert at(shift, 4_000).stage == "CLEAN_UP"


def test_canary_and_linear_defaults_are_ecs_defaults() -> None:
    canary = shift_for(config(strategy="CANARY"))
    assert canary == Shift(((5.0, 600.0), (100.0, 0.0)), 0.0)  # 5 %, 10 minutes; no bakeTimeInMinutes: none
    linear = shift_for(config(strategy="LINEAR"))
    assert linear is not None and [p for p, _ in linear.steps] == [10.0 * k for k in range(1, 11)]
    assert {w for _, w in linear.steps[:-1]} == {360.0} and linear.steps[-1] == (100.0, 0.0)  # 6 minutes, none after 100 %
    assert shift_for(config(strategy="ROLLING")) is None and shift_for(None) is None


def test_linear_steps_every_step_bake_time_and_no_wait_after_100() -> None:
    shift = shift_for(config(strategy="LINEAR", bakeTimeInMinutes=2,
                             linearConfiguration={"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}), minute_seconds=1)
    assert shift == Shift(((25.0, 1.0), (50.0, 1.0), (75.0, 1.0), (100.0, 0.0)), 2.0)
    assert [at(shift, ms).percent for ms in (0, 999, 1_000, 1_999, 2_000, 2_999, 3_000)] == [25, 25, 50, 50, 75, 75, 100]
    assert at(shift, 1_500).due == T0 + timedelta(seconds=2)
    assert at(shift, 3_000).stage == "BAKE_TIME" and at(shift, 4_999).stage == "BAKE_TIME"
    assert at(shift, 5_000).stage == "CLEAN_UP"


def test_a_linear_step_that_does_not_divide_100_ends_at_100() -> None:
    shift = shift_for(config(strategy="LINEAR", linearConfiguration={"stepPercent": 30.0}))
    assert shift is not None and [p for p, _ in shift.steps] == [30.0, 60.0, 90.0, 100.0]


@pytest.mark.parametrize(("percent", "green", "blue", "expected"), [
    (0, 4, 4, (0, 4)), (100, 4, 4, (4, 0)), (50, 4, 4, (4, 4)),
    (10, 10, 10, (1, 9)), (25, 4, 4, (1, 3)), (75, 4, 4, (3, 1)),
    (10, 4, 4, (1, 4)),  # 20 %: the nearest share 4 and 4 tasks allow
    (10, 1, 1, (1, 1)), (30, 3, 0, (3, 0)), (30, 0, 3, (0, 3)),
])
def test_split_lists_the_endpoint_ratio_nearest_the_share(percent: float, green: int, blue: int,
                                                          expected: tuple[int, int]) -> None:
    assert split(percent, green, blue) == expected


def test_the_schedule_fields_are_validated_as_ecs_does() -> None:
    from pydantic import ValidationError
    for bad in ({"bakeTimeInMinutes": 1441}, {"canaryConfiguration": {"canaryPercent": 0.0}},
                {"linearConfiguration": {"stepPercent": 2.9}}, {"linearConfiguration": {"stepBakeTimeInMinutes": -1}}):
        with pytest.raises(ValidationError):
            config(strategy="LINEAR", **bad)


# plan_service: blue and green side by side, the bake, the clean-up and the rollback

REV2 = Revision("web", 2, RegisterTaskDefinition.model_validate({"family": "web", "containerDefinitions": [
    {"name": "app", "image": "nginx:2", "memory": 64, "portMappings": [{"containerPort": 80, "name": "http"}]}]}))
BLUE_GREEN = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1,
              "deploymentCircuitBreaker": {"enable": True, "rollback": True,
                                           "thresholdConfiguration": {"type": "COUNT", "value": 1}}}
LB = [{"containerName": "app", "containerPort": 80}]


def live(decision: ServiceDecision) -> tuple[dict[str, Any], ...]:
    """The workloads as the owned index would show them once applied."""
    return tuple({**c, "metadata": {**c["metadata"], "uid": f"uid-{c['metadata']['name']}"}}
                 for c in decision.children if c["kind"] == "Deployment")


def applied(decision: ServiceDecision) -> dict[str, Any]:
    """What observe() reads of the children once the decision was applied."""
    workloads = live(decision)
    return {"deployments": workloads, "owned": {key_of(w): w for w in workloads}}


def with_ip(p: dict[str, Any], n: int) -> dict[str, Any]:
    return {**p, "status": {**p["status"], "podIP": f"10.0.0.{n}"}}


def endpoints(decision: ServiceDecision) -> list[str]:
    [slice_] = [c for c in decision.children if c["kind"] == "EndpointSlice"]
    return sorted(e["targetRef"]["name"] for e in slice_["endpoints"])


def test_blue_green_keeps_blue_until_the_bake_ends_then_removes_it() -> None:
    body = service(desired=2, deploymentConfiguration=BLUE_GREEN, loadBalancers=LB)
    first = plan_service(observed(body), T0)
    blue = first.status["deployments"][0]["id"]
    blue_pods = [with_ip(pod(n, blue, started=T0 - timedelta(minutes=5)), n) for n in (1, 2)]
    steady = plan_service(observed(body, blue_pods, first.status, **applied(first)), T0)
    assert steady.status["deployments"][0]["rolloutState"] == "COMPLETED"

    update = service(desired=2, deploymentConfiguration=BLUE_GREEN, loadBalancers=LB, taskDefinition="web:2")
    seen = dict(requested=REV2, revisions={"web:1": observed(body).requested, "web:2": REV2}, **applied(steady))
    t1 = T0 + timedelta(seconds=1)
    start = plan_service(observed(update, blue_pods, steady.status, **seen), t1)
    green = start.status["deployments"][0]
    assert green["lifecycleStage"] == "SCALE_UP" and green["productionTrafficPercent"] == 0
    names = {w["metadata"]["name"]: w for w in live(start)}
    assert set(names) == {"web", f"web{SECOND_SLOT}"}  # blue where it was, green beside it
    assert names[f"web{SECOND_SLOT}"]["metadata"]["labels"][SLOT_LABEL] == "b"
    assert names[f"web{SECOND_SLOT}"]["spec"]["template"]["metadata"]["labels"][L.DEPLOYMENT] == digits(green["id"])
    assert names["web"]["spec"]["template"]["metadata"]["labels"][L.DEPLOYMENT] == digits(blue)
    assert names["web"]["spec"]["replicas"] == 2 and names[f"web{SECOND_SLOT}"]["spec"]["replicas"] == 2
    assert endpoints(start) == ["web-1", "web-2"]  # blue serves

    green_pods = [with_ip(pod(n, green["id"], started=t1, ready=True), n) for n in (3, 4)]
    seen.update(applied(start))
    everyone = blue_pods + green_pods
    t2 = t1 + timedelta(seconds=40)  # green's tasks count as healthy (40 s RUNNING)
    shifted = plan_service(observed(update, everyone, start.status, **seen), t2)
    record = shifted.status["deployments"][0]
    assert (record["lifecycleStage"], record["productionTrafficPercent"]) == ("BAKE_TIME", 100)
    assert record["rolloutState"] == "IN_PROGRESS" and endpoints(shifted) == ["web-3", "web-4"]
    assert len(live(shifted)) == 2 and shifted.requeue_after is not None and shifted.requeue_after <= 60.05

    baking = plan_service(observed(update, everyone, shifted.status, **seen), t2 + timedelta(seconds=59.9))
    assert len(live(baking)) == 2 and baking.status["deployments"][0]["lifecycleStage"] == "BAKE_TIME"

    done = plan_service(observed(update, everyone, baking.status, **seen), t2 + timedelta(seconds=60))
    assert [w["metadata"]["name"] for w in live(done)] == [f"web{SECOND_SLOT}"]
    assert done.status["deployments"][0]["lifecycleStage"] == "CLEAN_UP"
    assert ("Deployment", "web") in {(k, n) for k, n, _ in done.stale}  # blue's workload goes

    gone = plan_service(observed(update, green_pods, done.status, **{**seen, **applied(done)}),
                        t2 + timedelta(seconds=62))
    assert gone.status["deployments"][0]["rolloutState"] == "COMPLETED"
    assert [d["id"] for d in gone.status["deployments"]] == [green["id"]]


def test_a_green_failure_during_the_bake_rolls_back_to_blue() -> None:
    body = service(desired=1, deploymentConfiguration=BLUE_GREEN, loadBalancers=LB)
    first = plan_service(observed(body), T0)
    blue = first.status["deployments"][0]["id"]
    blue_pods = [with_ip(pod(1, blue, started=T0 - timedelta(minutes=5)), 1)]
    steady = plan_service(observed(body, blue_pods, first.status, **applied(first)), T0)
    update = service(desired=1, deploymentConfiguration=BLUE_GREEN, loadBalancers=LB, taskDefinition="web:2")
    seen = dict(requested=REV2, revisions={"web:1": observed(body).requested, "web:2": REV2}, **applied(steady))
    start = plan_service(observed(update, blue_pods, steady.status, **seen), T0 + timedelta(seconds=1))
    green = start.status["deployments"][0]["id"]
    seen.update(applied(start))
    ok = [with_ip(pod(2, green, started=T0), 2)]
    baking = plan_service(observed(update, blue_pods + ok, start.status, **seen), T0 + timedelta(seconds=41))
    assert baking.status["deployments"][0]["lifecycleStage"] == "BAKE_TIME" and endpoints(baking) == ["web-2"]

    failed = [with_ip(pod(2, green, exited=True), 2)]
    back = plan_service(observed(update, blue_pods + failed, baking.status, **seen), T0 + timedelta(seconds=50))
    states = {d["id"]: (d["status"], d["rolloutState"]) for d in back.status["deployments"]}
    assert states == {blue: ("PRIMARY", "IN_PROGRESS"), green: ("ACTIVE", "FAILED")}
    assert [w["metadata"]["name"] for w in live(back)] == ["web"]  # blue only; green's workload goes
    assert ("Deployment", f"web{SECOND_SLOT}") in {(k, n) for k, n, _ in back.stale}
    assert endpoints(back) == ["web-1"]  # traffic back on blue
    messages = [e.message for e in back.events]
    assert f"(service web) (deployment {green}) deployment failed: tasks failed to start." in messages
    assert f"(service web) rolling back to deployment {blue}." in messages


def test_canary_lists_one_green_task_of_ten() -> None:
    body = service(desired=10, loadBalancers=LB, deploymentConfiguration={
        "strategy": "CANARY", "bakeTimeInMinutes": 1,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1}})
    first = plan_service(observed(body), T0)
    blue = first.status["deployments"][0]["id"]
    blue_pods = [with_ip(pod(n, blue, started=T0 - timedelta(minutes=5)), n) for n in range(1, 11)]
    steady = plan_service(observed(body, blue_pods, first.status, **applied(first)), T0)
    update = replace_spec(body, taskDefinition="web:2")
    seen = dict(requested=REV2, revisions={"web:1": observed(body).requested, "web:2": REV2}, **applied(steady))
    start = plan_service(observed(update, blue_pods, steady.status, **seen), T0)
    green = start.status["deployments"][0]["id"]
    green_pods = [with_ip(pod(n, green, started=T0 - timedelta(minutes=1)), n) for n in range(11, 21)]
    seen.update(applied(start))
    canary = plan_service(observed(update, blue_pods + green_pods, start.status, **seen), T0 + timedelta(seconds=1))
    listed = endpoints(canary)
    assert len(listed) == 10 and sum(int(n.split("-")[1]) > 10 for n in listed) == 1
    assert canary.status["deployments"][0]["productionTrafficPercent"] == 10.0
    assert canary.requeue_after is not None and 59 < canary.requeue_after <= 60.05


def replace_spec(body: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {**body, "spec": {**body["spec"], **spec}}

