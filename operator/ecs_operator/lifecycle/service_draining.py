"""A Service's tasks on DRAINING container instances (docs/ecs-semantics.md §Draining).

The ContainerInstance cordons its Node and labels it DRAINING; the Service moves its own tasks, so the
replicas stay the Service's alone. Below minimumHealthyPercent 100 they are evicted (the
PodDisruptionBudget keeps that percentage) and the ReplicaSet starts their replacements elsewhere. At
100 each Deployment runs its desired count plus the replacements of the current batch, the tasks on
DRAINING instances carry the lowest pod-deletion-cost, and once the replacements are healthy the
Deployment goes back to its desired count and the ReplicaSet stops exactly those tasks. Everything
is read from what exists (Pods, Nodes, the live Deployment), so a restart in the middle continues the
same batch.

Pure: the step is a DrainPlan; the handler writes the marks and asks for the evictions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_operator import labels as L
from ecs_operator.instances import is_active
from ecs_operator.models import ServiceSpec
from ecs_operator.scaling.draining import (
    DELETION_COST,
    DRAINING_COST,
    REPLACING_MESSAGE,
    STOPPING_MESSAGE,
    STUCK_MESSAGE,
    drain_step,
    replaces_first,
)
from ecs_operator.scaling.rolling import deployment_bounds
from ecs_operator.translate.service import DRAINING_LABEL

from .service_events import ServiceEvent, normal, warning

TEMPLATE_HASH = "pod-template-hash"


@dataclass(frozen=True)
class Mark:
    """Set (DRAINING_COST) or remove (None) a task's pod-deletion-cost."""

    pod: dict[str, Any]
    cost: str | None


@dataclass(frozen=True)
class Eviction:
    """Stop these tasks first; the event names how many the PodDisruptionBudget let go."""

    pods: tuple[dict[str, Any], ...]
    service: str
    instances: str
    minimum: int

    def event(self, stopped: int) -> ServiceEvent | None:
        if not stopped:
            return None
        return normal(STOPPING_MESSAGE.format(service=self.service, count=stopped, instances=self.instances,
                                              minimum=self.minimum))


@dataclass
class DrainPlan:
    workloads: list[dict[str, Any]]
    """The planned workloads with each Deployment's replicas for this moment (copies where changed)."""
    marks: list[Mark] = field(default_factory=list)
    evictions: list[Eviction] = field(default_factory=list)
    events: list[ServiceEvent] = field(default_factory=list)


def draining_nodes(nodes: Mapping[str, Any], pods: list[dict[str, Any]]) -> set[str]:
    """The nodes of these Pods whose ContainerInstance is DRAINING (the label comes with the cordon)."""
    names: set[str] = {n for p in pods if (n := (p.get("spec") or {}).get("nodeName"))}
    return {n for n in names if any((node["metadata"].get("labels") or {}).get(DRAINING_LABEL) == "true"
                                    for node in nodes.get(n, []))}


def drain(svc: ServiceSpec, ecs_name: str, workloads: list[dict[str, Any]], pods: list[dict[str, Any]],
          draining: set[str], live: Mapping[str, dict[str, Any]], healthy: Callable[[dict[str, Any]], bool]) -> DrainPlan:
    """Each Deployment's replicas for this moment, the tasks to mark or unmark, the evictions when only
    stopping first is allowed, and ECS's service events."""
    out = DrainPlan([])
    for workload in workloads:
        if workload["kind"] != "Deployment":
            out.workloads.append(workload)
            continue  # DAEMON tasks leave by the DaemonSet's node affinity
        selector = workload["spec"]["selector"]["matchLabels"]
        mine = [p for p in pods if is_active(p)
                and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        leaving = [p for p in mine if p["spec"].get("nodeName") in draining]
        bounds = deployment_bounds(workload["spec"]["replicas"], svc.deploymentConfiguration)
        out.marks += _marks(mine, leaving if replaces_first(bounds) else [])
        if not leaving or _rolling_out(workload, mine):
            out.workloads.append(workload)
            continue  # a rollout replaces them anyway, never onto a cordoned node
        others = [p for p in mine if p not in leaving]
        step = drain_step(bounds, len(leaving), len(others), sum(1 for p in others if healthy(p)),
                          marked=all(_marked(p) for p in leaving))
        out.workloads.append({**workload, "spec": {**workload["spec"], "replicas": step.replicas}})
        instances = ", ".join(sorted({p["spec"]["nodeName"] for p in leaving}))
        if step.stuck:
            out.events.append(warning(STUCK_MESSAGE.format(service=ecs_name, count=len(leaving), instances=instances,
                                                           minimum=bounds.minimumHealthyPercent, maximum=bounds.maximumPercent)))
        elif step.evict:  # each refused while it would take the service below minimumHealthyPercent
            out.evictions.append(Eviction(tuple(leaving), ecs_name, instances, bounds.minimumHealthyPercent))
        elif step.batch and ((live.get(workload["metadata"]["name"]) or {}).get("spec") or {}).get("replicas", 0) < step.replicas:
            out.events.append(normal(REPLACING_MESSAGE.format(service=ecs_name, count=len(leaving), instances=instances,
                                                              batch=step.batch, maximum=bounds.maximumPercent)))
    return out


def _marked(pod: dict[str, Any]) -> bool:
    return (pod["metadata"].get("annotations") or {}).get(DELETION_COST) == DRAINING_COST


def _marks(pods: list[dict[str, Any]], leaving: list[dict[str, Any]]) -> list[Mark]:
    """DRAINING_COST on the tasks to stop, off any other (an instance ACTIVE again)."""
    chosen = {p["metadata"]["uid"] for p in leaving}
    return [Mark(p, DRAINING_COST if p["metadata"]["uid"] in chosen else None)
            for p in pods if (p["metadata"]["uid"] in chosen) != _marked(p)]


def _rolling_out(workload: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    """Tasks of more than one template, or of another than the one applied now: a deployment is under way."""
    wanted = workload["spec"]["template"]["metadata"]["labels"].get(L.DEPLOYMENT)
    labels = [p["metadata"].get("labels") or {} for p in pods]
    return len({pl.get(TEMPLATE_HASH) for pl in labels}) > 1 or any(pl.get(L.DEPLOYMENT) != wanted for pl in labels)
