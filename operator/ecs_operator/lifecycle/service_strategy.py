"""BLUE_GREEN, LINEAR and CANARY deployments: where a deployment is in its schedule, and which tasks get traffic.

Pure, the clock passed in. The new (green) deployment's tasks start in full beside the old (blue) ones and
get no production traffic until all of them are healthy (SCALE_UP). Then production traffic moves to green
by the strategy's steps (PRODUCTION_TRAFFIC_SHIFT): all at once (BLUE_GREEN), canaryPercent then the rest
after canaryBakeTimeInMinutes (CANARY), stepPercent more every stepBakeTimeInMinutes (LINEAR). With all of it
on green, both keep running for bakeTimeInMinutes (BAKE_TIME), then blue's tasks stop (CLEAN_UP) and the
deployment completes. A failure before that (the circuit breaker) rolls back as a rolling deployment does:
blue is PRIMARY again, gets all traffic, green's tasks stop (docs/ecs-semantics.md §Blue/green, linear and
canary deployments).

Traffic is the set of tasks the Kubernetes Services' EndpointSlices list (the operator writes them): a share
is a ratio of blue and green endpoints, which kube-proxy balances per connection (approximated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ecs_operator import labels as L
from ecs_operator.models.service import DeploymentConfiguration
from ecs_operator.translate.service import SECOND_SLOT, SLOT_LABEL

from .service_deployments import Advance, Deployment, millisecond_stamp

SHIFTING = ("BLUE_GREEN", "LINEAR", "CANARY")
"""Strategies whose green tasks run beside blue ones and take traffic by a schedule."""
DEFAULT_LINEAR = (10.0, 6)
"""LinearConfiguration's stepPercent and stepBakeTimeInMinutes when unset (ECS's defaults)."""
DEFAULT_CANARY = (5.0, 10)
"""CanaryConfiguration's canaryPercent and canaryBakeTimeInMinutes when unset (ECS's defaults)."""


@dataclass(frozen=True)
class Shift:
    """A deployment's production traffic schedule once green has scaled up."""

    steps: tuple[tuple[float, float], ...]
    """(percent of production traffic on green, seconds it stays there before the next step)."""
    bake: float
    """Seconds blue and green both run once all production traffic is on green (bakeTimeInMinutes)."""


@dataclass(frozen=True)
class Position:
    """Where a deployment is in its schedule at a moment."""

    stage: str
    """ECS's ServiceDeployment lifecycleStage."""
    percent: float
    """Production traffic on green."""
    due: datetime | None
    """When the position changes next by time alone (None: only an observation changes it)."""

    @property
    def clean_up(self) -> bool:
        """The bake is over: blue's tasks stop."""
        return self.stage == "CLEAN_UP"


def shift_for(config: DeploymentConfiguration | None, minute_seconds: float = 60) -> Shift | None:
    """The schedule `deploymentConfiguration` asks for; None for ROLLING. `minute_seconds`: how long one of its
    minutes lasts (60; the operator's --deployment-minute-seconds shortens it for tests)."""
    if config is None or config.strategy not in SHIFTING:
        return None
    bake = (config.bakeTimeInMinutes or 0) * minute_seconds
    if config.strategy == "CANARY":
        canary = config.canaryConfiguration
        percent = canary.canaryPercent if canary and canary.canaryPercent is not None else DEFAULT_CANARY[0]
        wait = canary.canaryBakeTimeInMinutes if canary and canary.canaryBakeTimeInMinutes is not None else DEFAULT_CANARY[1]
        return Shift(((percent, wait * minute_seconds), (100.0, 0.0)) if percent < 100 else ((100.0, 0.0),), bake)
    if config.strategy == "LINEAR":
        linear = config.linearConfiguration
        step = linear.stepPercent if linear and linear.stepPercent is not None else DEFAULT_LINEAR[0]
        wait = linear.stepBakeTimeInMinutes if linear and linear.stepBakeTimeInMinutes is not None else DEFAULT_LINEAR[1]
        steps: list[tuple[float, float]] = []
        k = 1
        while round(k * step, 6) < 100:
            steps.append((round(k * step, 6), wait * minute_seconds))
            k += 1
        return Shift((*steps, (100.0, 0.0)), bake)  # "not applied after reaching 100 percent"
    return Shift(((100.0, 0.0),), bake)


def position(shift: Shift, shifted_since: datetime | None, now: datetime) -> Position:
    """Where the schedule is at `now`; `shifted_since`: when green's tasks were all healthy (None: not yet)."""
    if shifted_since is None:
        return Position("SCALE_UP", 0.0, None)
    moment = shifted_since
    for percent, wait in shift.steps:
        end = moment + timedelta(seconds=wait)
        if now < end:
            return Position("PRODUCTION_TRAFFIC_SHIFT", percent, end)
        moment = end
    end = moment + timedelta(seconds=shift.bake)
    if now < end:
        return Position("BAKE_TIME", 100.0, end)
    return Position("CLEAN_UP", 100.0, None)


def split(percent: float, green: int, blue: int) -> tuple[int, int]:
    """How many green and blue tasks to list as endpoints so that green's share of them is nearest `percent`
    (ties: more endpoints). 0 and 100 are exact; a share between needs at least one of each."""
    if percent <= 0 or green == 0:
        return 0, blue
    if percent >= 100 or blue == 0:
        return green, 0
    best = (1, blue)
    for g in range(1, green + 1):
        for b in range(1, blue + 1):
            error = abs(g / (g + b) - percent / 100)
            best_error = abs(best[0] / (best[0] + best[1]) - percent / 100)
            if error < best_error - 1e-9 or (abs(error - best_error) <= 1e-9 and g + b > sum(best)):
                best = (g, b)
    return best


@dataclass(frozen=True)
class Progress:
    """A shifting deployment's step: the PRIMARY deployment's record with its stage, and what runs."""

    primary: Deployment
    blue: Deployment | None
    """The deployment green replaces, still running beside it (None: nothing to shift from)."""
    position: Position


def progress(step: Advance, shift: Shift | None, green_ready: bool, now: datetime) -> Progress | None:
    """The step of a shifting deployment, or None when none is in progress (ROLLING, a rollback, a failure, no
    blue tasks left: one workload runs the target deployment). `green_ready`: all green tasks are healthy."""
    primary = step.deployments[0]
    blue = step.last_completed
    if (shift is None or blue is None or blue.id == primary.id or primary.rolloutState != "IN_PROGRESS"
            or primary.rollbackOf is not None):
        return None
    live = next((d for d in step.deployments[1:] if d.id == blue.id), None)
    if live is None:  # blue's tasks are gone (or it was never there): nothing to shift from
        return None
    since = _parse(primary.trafficShiftStartedAt)
    if since is None and green_ready:
        since = now
    at = position(shift, since, now)
    record = primary.model_copy(update={
        "lifecycleStage": at.stage, "productionTrafficPercent": at.percent,
        "trafficShiftStartedAt": millisecond_stamp(since) if since else None})
    return Progress(record, live, at)


def traffic(pods: Sequence[dict[str, Any]], deployment_of: Mapping[str, str], target: str,
            shifting: Progress | None) -> list[dict[str, Any]]:
    """The tasks the Services list: the target deployment's, or green's and blue's by the step's share.
    `deployment_of`: Pod uid -> its deployment id."""
    if shifting is None:
        return [p for p in pods if deployment_of[p["metadata"]["uid"]] == target]
    ordered = sorted(pods, key=lambda p: p["metadata"]["name"])
    green = [p for p in ordered if deployment_of[p["metadata"]["uid"]] == shifting.primary.id]
    blue = [p for p in ordered if shifting.blue is not None and deployment_of[p["metadata"]["uid"]] == shifting.blue.id]
    g, b = split(shifting.position.percent, len(green), len(blue))
    return green[:g] + blue[:b]


def slot_of(workloads: Sequence[dict[str, Any]], running: Sequence[str]) -> str:
    """The name suffix ("" or SECOND_SLOT) of the workload that runs the first of `running` (deployment label
    values) that has one: a rolling update changes that workload; "" when none runs any."""
    for deployment in running:
        for w in workloads:
            if _deployment_label(w) == deployment:
                return SECOND_SLOT if (w["metadata"].get("labels") or {}).get(SLOT_LABEL) == "b" else ""
    return ""


def other_slot(slot: str) -> str:
    """Green's slot: the one blue does not use."""
    return "" if slot else SECOND_SLOT


def _deployment_label(workload: Mapping[str, Any]) -> str | None:
    labels = (((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    value: str | None = labels.get(L.DEPLOYMENT)
    return value


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None
