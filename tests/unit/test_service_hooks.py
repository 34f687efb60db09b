"""Deployment lifecycle hooks, decided with an injected clock (lifecycle/service_hooks.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ecs_operator.lifecycle.service_deployments import Deployment, millisecond_stamp
from ecs_operator.lifecycle.service_hooks import (
    HookContext,
    HookRun,
    HookStep,
    HookTarget,
    advance_hooks,
    continue_requests,
    task_outcome,
)
from ecs_operator.lifecycle.service_strategy import Shift
from ecs_operator.models.service import DeploymentConfiguration, DeploymentLifecycleHook

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
CONTEXT = HookContext("web", "arn:aws:ecs:us-east-1:0:service/default/web",
                      "arn:aws:ecs:us-east-1:0:service-deployment/default/web/1", minute_seconds=60)
ALL_AT_ONCE = Shift(((100.0, 0.0),), 0.0)
TARGET = HookTarget("check:1", frozenset({"check"}), ("check", "sidecar"))


def pause(*stages: str, **timeout: Any) -> DeploymentLifecycleHook:
    return DeploymentLifecycleHook.model_validate({"targetType": "PAUSE", "lifecycleStages": list(stages),
                                                   **({"timeoutConfiguration": timeout} if timeout else {})})


def task_hook(*stages: str) -> DeploymentLifecycleHook:
    return DeploymentLifecycleHook.model_validate({"hookTargetArn": "check", "lifecycleStages": list(stages),
                                                   "hookDetails": {"url": "http://web/health"}})


def record(ready_at: datetime | None = None) -> Deployment:
    return Deployment(id="ecs-svc/1", taskDefinition="web:2", configKey="k", createdAt=millisecond_stamp(T0),
                      trafficShiftStartedAt=millisecond_stamp(ready_at) if ready_at else None)


def step(hooks: list[DeploymentLifecycleHook], now: datetime, runs: list[HookRun] | None = None, *, ready: bool = True,
         shift: Shift = ALL_AT_ONCE, ready_at: datetime | None = T0, continues: dict[str, str] | None = None,
         tasks: dict[str, Any] | None = None, targets: dict[str, Any] | None = None) -> HookStep:
    return advance_hooks(record=record(ready_at), shift=shift, hooks=hooks, green_ready=ready, reconcile=False,
                         runs=runs or [], targets={"check": TARGET} if targets is None else targets, tasks=tasks or {},
                         continues=continues or {}, context=CONTEXT, now=now)


def stopped_task(**codes: int) -> dict[str, Any]:
    return {"status": {"tasks": [{"lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
                                  "containers": [{"name": n, "exitCode": c} for n, c in codes.items()]}]}}


def test_a_pause_hook_holds_its_stage_until_continued_then_the_next_stage_runs() -> None:
    hooks = [pause("POST_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT")]
    first = step(hooks, T0)
    assert (first.position.stage, first.position.percent, first.hold) == ("POST_SCALE_UP", 0.0, False)
    (run,) = first.runs
    assert (run.status, run.targetType, run.timeoutAction) == ("AWAITING_ACTION", "PAUSE", "ROLLBACK")
    assert run.expiresAt == millisecond_stamp(T0 + timedelta(minutes=1440))  # ECS's default timeout
    assert "awaiting action" in first.messages[0]
    # nothing happens while it waits
    assert step(hooks, T0 + timedelta(hours=1), first.runs).position.stage == "POST_SCALE_UP"
    second = step(hooks, T0 + timedelta(hours=2), first.runs, continues={run.hookId: "CONTINUE"})
    assert second.runs[0].status == "SUCCEEDED"
    assert (second.position.stage, second.position.percent) == ("POST_PRODUCTION_TRAFFIC_SHIFT", 100.0)
    assert [r.stage for r in second.runs] == ["POST_SCALE_UP", "POST_PRODUCTION_TRAFFIC_SHIFT"]
    later = step(hooks, T0 + timedelta(hours=3), second.runs, continues={r.hookId: "CONTINUE" for r in second.runs})
    assert later.position.stage == "CLEAN_UP" and later.failed is None


def test_stages_run_in_ecs_order_whatever_order_the_hook_lists_them() -> None:
    hooks = [pause("POST_PRODUCTION_TRAFFIC_SHIFT", "TEST_TRAFFIC_SHIFT", "POST_SCALE_UP", "PRE_PRODUCTION_TRAFFIC_SHIFT",
                   "POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")]
    runs: list[HookRun] = []
    seen = []
    for minute in range(10):
        out = step(hooks, T0 + timedelta(minutes=minute), runs, continues={r.hookId: "CONTINUE" for r in runs})
        runs = out.runs
        seen.append(out.position.stage)
        if out.position.stage == "CLEAN_UP":
            break
    assert seen == ["POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT",
                    "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "CLEAN_UP"]


def test_pre_scale_up_holds_green_at_zero_tasks() -> None:
    out = step([pause("PRE_SCALE_UP")], T0, ready=False, ready_at=None)
    assert (out.position.stage, out.hold) == ("PRE_SCALE_UP", True)
    done = step([pause("PRE_SCALE_UP")], T0, out.runs, ready=False, ready_at=None, continues={out.runs[0].hookId: "CONTINUE"})
    assert (done.position.stage, done.hold) == ("SCALE_UP", False)


def test_rollback_through_continue_fails_the_deployment() -> None:
    out = step([pause("POST_SCALE_UP")], T0)
    failed = step([pause("POST_SCALE_UP")], T0, out.runs, continues={out.runs[0].hookId: "ROLLBACK"})
    assert failed.failed is not None and failed.failed.status == "FAILED"


def test_timeout_applies_its_action_at_expiry_and_not_before() -> None:
    for action, fails in (("ROLLBACK", True), ("CONTINUE", False)):
        hooks = [pause("POST_SCALE_UP", timeoutInMinutes=5, action=action)]
        first = step(hooks, T0)
        assert first.position.due == T0 + timedelta(minutes=5)  # the reconcile looks again then
        assert step(hooks, T0 + timedelta(minutes=5) - timedelta(seconds=1), first.runs).runs[0].status == "AWAITING_ACTION"
        expired = step(hooks, T0 + timedelta(minutes=5), first.runs)
        assert expired.runs[0].status == "TIMED_OUT"
        assert (expired.failed is not None) is fails
        if not fails:
            assert expired.position.stage == "CLEAN_UP"


def test_the_timeout_unit_follows_the_deployment_minute() -> None:
    fast = HookContext("web", "s", "d", minute_seconds=5)
    out = advance_hooks(record=record(T0), shift=Shift(((100.0, 0.0),), 0.0), hooks=[pause("POST_SCALE_UP", timeoutInMinutes=2)],
                        green_ready=True, reconcile=False, runs=[], targets={}, tasks={}, continues={}, context=fast, now=T0)
    assert out.runs[0].expiresAt == millisecond_stamp(T0 + timedelta(seconds=10))


def test_a_task_hook_runs_its_task_with_the_context_and_succeeds_on_exit_code_0() -> None:
    hooks = [task_hook("POST_SCALE_UP")]
    first = step(hooks, T0)
    (task,) = first.tasks
    env = dict(task.environment)
    assert (task.task_definition, task.containers, task.started_by) == ("check:1", ("check", "sidecar"), "ecs-svc/1")
    assert env["ECS_LIFECYCLE_STAGE"] == "POST_SCALE_UP" and env["ECS_HOOK_DETAILS"] == '{"url": "http://web/health"}'
    assert env["ECS_SERVICE_DEPLOYMENT_ARN"] == CONTEXT.deployment_arn and env["ECS_LIFECYCLE_HOOK_ID"] == first.runs[0].hookId
    assert first.runs[0].status == "IN_PROGRESS" and first.position.stage == "POST_SCALE_UP"
    running = step(hooks, T0 + timedelta(seconds=5), first.runs, tasks={task.name: {"status": {"tasks": [{"lastStatus": "RUNNING"}]}}})
    assert running.runs[0].status == "IN_PROGRESS" and not running.tasks  # started once
    done = step(hooks, T0 + timedelta(seconds=9), first.runs, tasks={task.name: stopped_task(check=0, sidecar=137)})
    assert done.runs[0].status == "SUCCEEDED"  # only essential containers count
    assert done.position.stage == "CLEAN_UP"


def test_a_task_hook_that_exits_non_zero_fails_the_deployment() -> None:
    first = step([task_hook("POST_SCALE_UP")], T0)
    out = step([task_hook("POST_SCALE_UP")], T0, first.runs, tasks={first.tasks[0].name: stopped_task(check=1)})
    assert out.failed is not None and out.failed.status == "FAILED"
    assert "check exit code 1" in (out.failed.reason or "")


def test_a_task_hook_whose_task_definition_is_unknown_fails() -> None:
    out = step([task_hook("POST_SCALE_UP")], T0, targets={"check": "Unable to describe task definition."})
    assert out.failed is not None and "lifecycleHooks[0].hookTargetArn" in (out.failed.reason or "")


def test_the_schedule_clock_stops_while_a_step_hook_waits() -> None:
    """LINEAR 50% steps of 10 minutes: a PRODUCTION_TRAFFIC_SHIFT hook at each step; the wait starts when it is done."""
    shift = Shift(((50.0, 600.0), (100.0, 0.0)), 0.0)
    hooks = [pause("PRODUCTION_TRAFFIC_SHIFT")]
    first = step(hooks, T0, shift=shift)
    assert (first.position.stage, first.position.percent) == ("PRODUCTION_TRAFFIC_SHIFT", 50.0)
    go = {first.runs[0].hookId: "CONTINUE"}
    resumed = step(hooks, T0 + timedelta(minutes=30), first.runs, shift=shift, continues=go)
    assert resumed.position.percent == 50.0 and resumed.position.due == T0 + timedelta(minutes=40)
    second = step(hooks, T0 + timedelta(minutes=40), resumed.runs, shift=shift, continues=go)
    assert (second.position.percent, len(second.runs)) == (100.0, 2)  # the second step's hook waits


def test_task_outcome_reads_a_refused_task_as_failed() -> None:
    refused = {"status": {"conditions": [{"type": "Ready", "status": "False", "message": "forbidden by the policy"}]}}
    assert task_outcome(refused, TARGET) == ("FAILED", "the hook's task was refused: forbidden by the policy")
    assert task_outcome(None, TARGET) is None


def test_continue_requests_from_annotations() -> None:
    got = continue_requests({"continue.x/abc": "ROLLBACK", "continue.x/def": "yes", "other": "CONTINUE"}, "continue.x/")
    assert got == {"abc": "ROLLBACK", "def": "CONTINUE"}


def test_the_models_accept_a_pause_hook_without_target() -> None:
    config = DeploymentConfiguration.model_validate({"strategy": "BLUE_GREEN", "lifecycleHooks": [{"targetType": "PAUSE"}]})
    assert config.lifecycleHooks and config.lifecycleHooks[0].targetType == "PAUSE"


def test_a_lambda_arn_is_refused_naming_the_field() -> None:
    from ecs_operator.models import ServiceSpec, validate

    spec = ServiceSpec.model_validate({"serviceName": "web", "taskDefinition": "web", "desiredCount": 1, "deploymentConfiguration": {
        "strategy": "BLUE_GREEN", "lifecycleHooks": [
            {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]},
            {"hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:check", "lifecycleStages": ["POST_SCALE_UP"]},
            {"lifecycleStages": ["POST_SCALE_UP"]}]}})
    found = {p.path: p.message for p in validate(spec)}
    assert "a Lambda function cannot run here" in found["deploymentConfiguration.lifecycleHooks[1].hookTargetArn"]
    assert "needs a hookTargetArn" in found["deploymentConfiguration.lifecycleHooks[2].hookTargetArn"]
    assert not any("lifecycleHooks[0]" in p for p in found)


def test_a_hook_task_that_is_gone_while_its_hook_runs_is_created_again() -> None:
    first = step([task_hook("POST_SCALE_UP")], T0)
    name = first.tasks[0].name
    again = step([task_hook("POST_SCALE_UP")], T0 + timedelta(seconds=3), first.runs, tasks={name: None})
    assert [t.name for t in again.tasks] == [name] and again.runs[0].status == "IN_PROGRESS"


def test_hooks_of_a_rolling_service_are_reported_unsupported() -> None:
    from ecs_operator.models import ServiceSpec
    from ecs_operator.translate.service import ServicePlan, _report_deployment

    hooks = [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}]
    for strategy, reported in (("ROLLING", True), ("BLUE_GREEN", False)):
        spec = ServiceSpec.model_validate({"serviceName": "web", "taskDefinition": "web", "desiredCount": 1,
                                          "deploymentConfiguration": {"strategy": strategy, "lifecycleHooks": hooks}})
        plan = ServicePlan()
        _report_deployment(spec, plan)
        assert ("deploymentConfiguration.lifecycleHooks" in plan.report.overrides) is reported
