"""Deployment lifecycle hooks of BLUE_GREEN, LINEAR and CANARY deployments (deploymentConfiguration.lifecycleHooks).

Pure, the clock passed in. A deployment passes ECS's lifecycle stages in order; at each stage some hook lists,
it waits until every such hook is done (docs/ecs-semantics.md §Deployment lifecycle hooks):

- PAUSE: AWAITING_ACTION until ContinueServiceDeployment (or the Service's `continue.ecs.operator.dev/HOOK_ID`
  annotation, which is what the API writes) says CONTINUE (SUCCEEDED) or ROLLBACK (FAILED).
- AWS_LAMBDA: there is no Lambda here. hookTargetArn names a task definition of the namespace, run as a standalone
  Task the Service owns (the namespace's workload policy applies to it as to any task), its context in environment
  variables; IN_PROGRESS while it runs, SUCCEEDED when it stops with every essential container's exit code 0,
  FAILED otherwise.
- timeoutConfiguration (ECS's defaults 1440 minutes, ROLLBACK): past expiresAt a hook still waiting is TIMED_OUT
  and its action applies.

A FAILED hook (or a TIMED_OUT one whose action is ROLLBACK) fails the deployment, which rolls back as the circuit
breaker's does. Stages before SCALE_UP (RECONCILE_SERVICE, PRE_SCALE_UP) hold green's tasks at zero; the traffic
schedule's clock (lifecycle/service_strategy.py) stands still while a later stage waits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.arns import service_arn
from ecs_operator.models.service import DeploymentLifecycleHook
from ecs_operator.ownership import owner_reference

from .service_deployments import Advance, Deployment, fail, millisecond_stamp
from .service_strategy import Position, Progress, Shift

if TYPE_CHECKING:
    from ecs_operator.models import ServiceSpec

    from .service_reconcile import ServiceObserved

PRE_SCALE = ("RECONCILE_SERVICE", "PRE_SCALE_UP")
"""Stages before green's tasks start."""
AFTER_SCALE = ("POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT")
"""Stages once green's tasks are all healthy, before production traffic moves (no test listener here: they follow
each other at once)."""
DEFAULT_TIMEOUT_MINUTES = 1440
DEFAULT_TIMEOUT_ACTION = "ROLLBACK"
PENDING = ("AWAITING_ACTION", "IN_PROGRESS")
ACTIONS = ("CONTINUE", "ROLLBACK")


class HookRun(BaseModel):
    """One hook at one stage of one deployment, kept in the deployment's record (`hookRuns`)."""

    model_config = ConfigDict(extra="ignore")

    hookId: str
    gate: str
    """The stage, with `#k` for the k-th traffic step of PRE_/PRODUCTION_TRAFFIC_SHIFT (run at every step)."""
    stage: str
    index: int
    """The hook's position in lifecycleHooks."""
    targetType: str
    targetArn: str | None = None
    status: str
    startedAt: str
    expiresAt: str
    timeoutAction: str
    finishedAt: str | None = None
    task: str | None = None
    """AWS_LAMBDA: the name of the Task that runs it."""
    reason: str | None = None

    def detail(self) -> dict[str, Any]:
        """DescribeServiceDeployments' DeploymentLifecycleHookDetail."""
        out = {"hookId": self.hookId, "targetType": self.targetType, "status": self.status,
               "expiresAt": self.expiresAt, "timeoutAction": self.timeoutAction}
        return {**out, "targetArn": self.targetArn} if self.targetArn else out


@dataclass(frozen=True)
class HookTarget:
    """An AWS_LAMBDA hook's task definition as the service's namespace resolves it."""

    ref: str
    """family:revision."""
    essential: frozenset[str]
    containers: tuple[str, ...]


@dataclass(frozen=True)
class HookContext:
    """What a hook is told and where its task runs."""

    service: str
    service_arn: str
    deployment_arn: str
    """The service deployment's ARN (its id's digits after service-deployment/CLUSTER/SERVICE/)."""
    minute_seconds: float = 60
    """How long one of timeoutInMinutes' minutes lasts (the operator's --deployment-minute-seconds)."""


@dataclass(frozen=True)
class HookTask:
    """A hook's Task to create: its name, task definition and the environment each container gets."""

    name: str
    task_definition: str
    environment: tuple[tuple[str, str], ...]
    containers: tuple[str, ...]
    started_by: str


@dataclass
class HookStep:
    """The outcome of one observation: the deployment's position, its hook runs, what to do."""

    position: Position
    runs: list[HookRun]
    hold: bool = False
    """Green's tasks do not start yet (a stage before SCALE_UP waits)."""
    failed: HookRun | None = None
    """The hook that fails the deployment (it rolls back)."""
    messages: list[str] = field(default_factory=list)
    tasks: list[HookTask] = field(default_factory=list)
    """Hook Tasks to create (those not there yet)."""
    stop: list[str] = field(default_factory=list)
    """Hook Tasks to stop (their hook timed out)."""


def stages_of(hooks: Sequence[DeploymentLifecycleHook]) -> set[str]:
    return {s for h in hooks for s in h.lifecycleStages or []}


def hook_id(deployment: str, gate: str, index: int) -> str:
    """Stable per deployment, stage (and step) and hook: a repeated observation finds the same run."""
    return hashlib.sha256(f"{deployment}/{gate}/{index}".encode()).hexdigest()[:20]


def task_name(service_name: str, hook: str) -> str:
    return f"{service_name[:200]}-hook-{hook[:12]}"


def continue_requests(annotations: Mapping[str, str], prefix: str) -> dict[str, str]:
    """hookId -> CONTINUE or ROLLBACK from the Service's annotations (any other value counts as ECS's default, CONTINUE)."""
    return {k.removeprefix(prefix): (v if v in ACTIONS else "CONTINUE") for k, v in annotations.items() if k.startswith(prefix)}


def task_outcome(task: Mapping[str, Any] | None, target: HookTarget | None) -> tuple[str, str | None] | None:
    """(SUCCEEDED | FAILED, reason) once a hook's Task is done; None while it runs (or before it shows)."""
    if task is None:
        return None
    status = task.get("status") or {}
    records = status.get("tasks") or []
    if not records:
        refused = next((c for c in status.get("conditions") or []
                        if c.get("type") == "Ready" and c.get("status") == "False"), None)
        return ("FAILED", f"the hook's task was refused: {refused.get('message') or refused.get('reason')}") if refused else None
    record = records[0]
    if record.get("lastStatus") != "STOPPED":
        return None
    essential = target.essential if target else frozenset()
    codes = {c.get("name"): c.get("exitCode") for c in record.get("containers") or []}
    bad = {n: codes.get(n) for n in sorted(essential or codes) if codes.get(n) != 0}
    if not bad:
        return "SUCCEEDED", None
    said = ", ".join(f"{n} exit code {c}" for n, c in bad.items())
    return "FAILED", f"the hook's task stopped ({record.get('stoppedReason') or record.get('stopCode') or 'STOPPED'}): {said}"


def advance_hooks(*, record: Deployment, shift: Shift, hooks: Sequence[DeploymentLifecycleHook], green_ready: bool,
                  reconcile: bool, runs: Sequence[HookRun], targets: Mapping[str, HookTarget | str],
                  tasks: Mapping[str, Mapping[str, Any] | None], continues: Mapping[str, str], context: HookContext,
                  now: datetime) -> HookStep:
    """Where a shifting deployment is with its hooks at `now`. `runs`: its hook runs so far; `targets`: each
    AWS_LAMBDA hookTargetArn resolved (str: why it names nothing usable); `tasks`: the hook Tasks by name as observed
    (None: not there); `continues`: hookId -> action asked; `reconcile`: more than one revision was running when the
    deployment started (ECS runs RECONCILE_SERVICE hooks only then)."""
    walk = _Walk(record, hooks, list(runs), targets, tasks, continues, context, now)
    created = _parse(record.createdAt) or now
    for stage in PRE_SCALE:
        if stage == "RECONCILE_SERVICE" and not reconcile:
            continue
        if not walk.gate(stage, stage, created):
            return walk.out(Position(stage, 0.0, walk.due), hold=True)
    since = _parse(record.trafficShiftStartedAt)
    if since is None and green_ready:
        since = now
    if since is None:
        return walk.out(Position("SCALE_UP", 0.0, None))
    moment = since
    for stage in AFTER_SCALE:
        if not walk.gate(stage, stage, moment):
            return walk.out(Position(stage, 0.0, walk.due))
        moment = walk.finished or moment
    percent = 0.0
    for k, (step_percent, wait) in enumerate(shift.steps):
        for stage in ("PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT"):
            if not walk.gate(stage, f"{stage}#{k}", moment):
                return walk.out(Position(stage, percent, walk.due))
            moment = walk.finished or moment
            percent = step_percent
        end = moment + timedelta(seconds=wait)
        if now < end:
            return walk.out(Position("PRODUCTION_TRAFFIC_SHIFT", percent, end))
        moment = end
    if not walk.gate("POST_PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", moment):
        return walk.out(Position("POST_PRODUCTION_TRAFFIC_SHIFT", 100.0, walk.due))
    moment = walk.finished or moment
    end = moment + timedelta(seconds=shift.bake)
    if now < end:
        return walk.out(Position("BAKE_TIME", 100.0, end))
    return walk.out(Position("CLEAN_UP", 100.0, None))


class _Walk:
    """The deployment's stages in order, each a gate its hooks hold closed until they are done."""

    def __init__(self, record: Deployment, hooks: Sequence[DeploymentLifecycleHook], runs: list[HookRun],
                 targets: Mapping[str, HookTarget | str], tasks: Mapping[str, Mapping[str, Any] | None],
                 continues: Mapping[str, str], context: HookContext, now: datetime) -> None:
        self.record, self.hooks, self.runs, self.targets = record, hooks, runs, targets
        self.tasks, self.continues, self.context, self.now = tasks, continues, context, now
        self.messages: list[str] = []
        self.new_tasks: list[HookTask] = []
        self.stop: list[str] = []
        self.failed: HookRun | None = None
        self.due: datetime | None = None
        self.finished: datetime | None = None

    def out(self, position: Position, hold: bool = False) -> HookStep:
        return HookStep(position, self.runs, hold, self.failed, self.messages, self.new_tasks, self.stop)

    def gate(self, stage: str, gate: str, reached: datetime) -> bool:
        """Whether the gate is open: no hook lists the stage, or all of them are done (`finished`: when the last was)."""
        self.finished, self.due = None, None
        mine = [(i, h) for i, h in enumerate(self.hooks) if stage in (h.lifecycleStages or [])]
        if not mine:
            return True
        runs = []
        for index, hook in mine:
            run = next((r for r in self.runs if r.gate == gate and r.index == index), None)
            if run is None:
                run = self._start(stage, gate, index, hook)
                self.runs.append(run)
            self._update(run, hook)
            runs.append(run)
        if self.failed is not None:
            return False
        waiting = [r for r in runs if r.status in PENDING]
        if waiting:
            self.due = min(_parse(r.expiresAt) or self.now for r in waiting)
            return False
        self.finished = max([reached, *(_parse(r.finishedAt) or reached for r in runs)])
        return True

    def _start(self, stage: str, gate: str, index: int, hook: DeploymentLifecycleHook) -> HookRun:
        timeout = hook.timeoutConfiguration
        minutes = timeout.timeoutInMinutes if timeout and timeout.timeoutInMinutes else DEFAULT_TIMEOUT_MINUTES
        action = timeout.action if timeout and timeout.action else DEFAULT_TIMEOUT_ACTION
        kind = hook.targetType or "AWS_LAMBDA"
        hid = hook_id(self.record.id, gate, index)
        run = HookRun(hookId=hid, gate=gate, stage=stage, index=index, targetType=kind,
                      targetArn=hook.hookTargetArn if kind == "AWS_LAMBDA" else None,
                      status="AWAITING_ACTION" if kind == "PAUSE" else "IN_PROGRESS", startedAt=millisecond_stamp(self.now),
                      expiresAt=millisecond_stamp(self.now + timedelta(seconds=minutes * self.context.minute_seconds)),
                      timeoutAction=action)
        where = f"(service {self.context.service}) (deployment {self.record.id}) lifecycle hook {hid}"
        if kind == "PAUSE":
            self.messages.append(f"{where} (PAUSE) at {stage}: awaiting action (ContinueServiceDeployment).")
            return run
        target = self.targets.get(hook.hookTargetArn or "")
        if not isinstance(target, HookTarget):
            run.status, run.finishedAt = "FAILED", run.startedAt
            run.reason = f"deploymentConfiguration.lifecycleHooks[{index}].hookTargetArn: {target or 'missing'}"
            return run
        run.task = task_name(self.context.service, hid)
        self.new_tasks.append(HookTask(run.task, target.ref, self._environment(stage, hid, hook), target.containers,
                                       self.record.id))
        self.messages.append(f"{where} (AWS_LAMBDA) at {stage}: started task {run.task} of {target.ref}.")
        return run

    def _environment(self, stage: str, hid: str, hook: DeploymentLifecycleHook) -> tuple[tuple[str, str], ...]:
        details = json.dumps(hook.hookDetails, sort_keys=True) if hook.hookDetails is not None else ""
        return (("ECS_LIFECYCLE_STAGE", stage), ("ECS_LIFECYCLE_HOOK_ID", hid), ("ECS_HOOK_DETAILS", details),
                ("ECS_SERVICE_ARN", self.context.service_arn), ("ECS_SERVICE_DEPLOYMENT_ARN", self.context.deployment_arn))

    def _update(self, run: HookRun, hook: DeploymentLifecycleHook) -> None:
        where = f"(service {self.context.service}) (deployment {self.record.id}) lifecycle hook {run.hookId} at {run.stage}"
        stamp = millisecond_stamp(self.now)
        if run.status in PENDING:
            outcome: tuple[str, str | None] | None = None
            if run.targetType == "PAUSE":
                action = self.continues.get(run.hookId)
                if action is not None:
                    outcome = ("SUCCEEDED", None) if action == "CONTINUE" else ("FAILED", "ContinueServiceDeployment: ROLLBACK")
            else:
                target = self.targets.get(hook.hookTargetArn or "")
                outcome = task_outcome(self.tasks.get(run.task or ""), target if isinstance(target, HookTarget) else None)
                if (outcome is None and run.task is not None and run.task in self.tasks and self.tasks[run.task] is None
                        and isinstance(target, HookTarget)):
                    # looked for and not there (its creation failed, or it was deleted): created again
                    self.new_tasks.append(HookTask(run.task, target.ref, self._environment(run.stage, run.hookId, hook),
                                                   target.containers, self.record.id))
            if outcome is not None:
                run.status, run.reason, run.finishedAt = outcome[0], outcome[1], stamp
                self.messages.append(f"{where} {run.status.lower()}." if outcome[1] is None
                                     else f"{where} {run.status.lower()}: {outcome[1]}.")
            elif self.now >= (_parse(run.expiresAt) or self.now):
                run.status, run.finishedAt = "TIMED_OUT", stamp
                run.reason = f"timed out after its timeoutInMinutes; timeout action {run.timeoutAction}"
                self.messages.append(f"{where} timed out (timeout action {run.timeoutAction}).")
                if run.task:
                    self.stop.append(run.task)
        if self.failed is None and (run.status == "FAILED" or (run.status == "TIMED_OUT" and run.timeoutAction == "ROLLBACK")):
            self.failed = run


def failure_reason(run: HookRun) -> str:
    """The rolloutStateReason of a deployment a hook failed."""
    return f"lifecycle hook {run.hookId} at {run.stage} {run.status.lower().replace('_', ' ')}: {run.reason or run.status}"


def task_manifest(task: HookTask, *, namespace: str, owner: dict[str, Any], spec: Mapping[str, Any],
                  labels: Mapping[str, str]) -> dict[str, Any]:
    """The hook's Task: RunTask of its task definition in the service's cluster, launch type and network, its context
    in every container's environment (containerOverrides), owned by the Service."""
    env = [{"name": k, "value": v} for k, v in task.environment]
    # not the service's capacityProviderStrategy: the Task's author (the operator) would need `use` on its providers
    # (the reference policy); the cluster's default strategy applies
    carried = {k: spec[k] for k in ("cluster", "launchType", "networkConfiguration", "platformVersion")
               if spec.get(k) is not None}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Task",
        "metadata": {"name": task.name, "namespace": namespace, "labels": dict(labels),
                     "ownerReferences": [{**owner, "controller": True, "blockOwnerDeletion": True}]},
        "spec": {**carried, "taskDefinition": task.task_definition, "startedBy": task.started_by,
                 "overrides": {"containerOverrides": [{"name": c, "environment": env} for c in task.containers]}},
    }


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


@dataclass(frozen=True)
class HookActions:
    """What the handler does for the hooks: Task manifests to create, Task names to stop, hookIds whose
    ContinueServiceDeployment annotation goes."""

    create: tuple[dict[str, Any], ...] = ()
    stop: tuple[str, ...] = ()
    forget: tuple[str, ...] = ()


def with_hooks(o: ServiceObserved, svc: ServiceSpec, step: Advance, shift: Shift, shifting: Progress, green_ready: bool,
               cluster: str, service: str, now: datetime) -> tuple[HookStep, Progress | None]:
    """The shifting deployment's step with its hooks: its record (stage, traffic, hook runs) updated, or, when a hook
    failed, the deployment FAILED and rolled back (None: nothing shifts any more)."""
    record = shifting.primary
    runs = [HookRun.model_validate(r) for r in record.hookRuns or []]
    live = [d for d in step.deployments[1:] if d.runningCount + d.pendingCount > 0]
    annotations = o.service["metadata"].get("annotations") or {}
    base = service_arn(o.settings, cluster, service)
    context = HookContext(service, base, base.replace(":service/", ":service-deployment/", 1) + "/" + record.id.split("/")[-1],
                          o.settings.deployment_minute_seconds)
    hooks = (svc.deploymentConfiguration.lifecycleHooks if svc.deploymentConfiguration else None) or []
    out = advance_hooks(record=record, shift=shift, hooks=hooks, green_ready=green_ready,
                        reconcile=len(live) > 1 or any(r.stage == "RECONCILE_SERVICE" for r in runs), runs=runs,
                        targets=o.hook_targets, tasks=o.hook_tasks, continues=continue_requests(annotations, L.CONTINUE_PREFIX),
                        context=context, now=now)
    at = out.position
    updated = record.model_copy(update={
        "lifecycleStage": at.stage, "productionTrafficPercent": at.percent,
        "trafficShiftStartedAt": None if out.hold or at.stage == "SCALE_UP" else record.trafficShiftStartedAt,
        "hookRuns": [r.model_dump(exclude_none=True) for r in out.runs]})
    step.deployments[0] = updated
    step.messages.extend(out.messages)
    step.warnings.extend(m for m in out.messages if " failed" in m or " timed out" in m)
    if out.failed is not None:
        fail(step, service, failure_reason(out.failed), now)
        return out, None
    return out, replace(shifting, primary=updated, position=at)


def hook_actions(o: ServiceObserved, svc: ServiceSpec, hooked: HookStep | None, step: Advance, cluster: str) -> HookActions:
    """The hook Tasks to create (not there yet) and stop, and the continue annotations no waiting hook needs."""
    annotations = o.service["metadata"].get("annotations") or {}
    asked = continue_requests(annotations, L.CONTINUE_PREFIX)
    waiting = {r["hookId"] for d in step.deployments for r in d.hookRuns or [] if r.get("status") in PENDING}
    # and those the status last written still shows waiting: an annotation goes only once its outcome is written
    waiting |= {r.get("hookId") for d in o.current.get("deployments") or [] for r in d.get("hookRuns") or []
                if r.get("status") in PENDING}
    if hooked is None:
        return HookActions(forget=tuple(sorted(set(asked) - waiting)))
    meta = o.service["metadata"]
    spec = {**svc.to_json(), "cluster": cluster}
    create = tuple(task_manifest(t, namespace=meta["namespace"], owner=owner_reference(o.service), spec=spec,
                                 labels={L.HOOK_DEPLOYMENT: t.started_by.split("/")[-1]})
                   for t in hooked.tasks if o.hook_tasks.get(t.name) is None)
    return HookActions(create, tuple(hooked.stop), tuple(sorted(set(asked) - waiting)))
