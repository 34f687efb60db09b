"""A Service's tasks on DRAINING container instances (docs/ecs-semantics.md §Draining).

The ContainerInstance cordons its Node and labels it DRAINING; the Service moves its own tasks, so the
replicas stay the Service's alone. Below minimumHealthyPercent 100 they are evicted (the
PodDisruptionBudget keeps that percentage) and the ReplicaSet starts their replacements elsewhere. At
100 each Deployment runs its desired count plus the replacements of the current batch, the tasks on
DRAINING instances carry the lowest pod-deletion-cost, and once the replacements are healthy the
Deployment goes back to its desired count and the ReplicaSet stops exactly those tasks. Everything
is read from what exists (Pods, Nodes, the live Deployment), so a restart in the middle continues the
same batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube
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

TEMPLATE_HASH = "pod-template-hash"


def draining_nodes(nodes: Any, pods: list[dict[str, Any]]) -> set[str]:
    """The nodes of these Pods whose ContainerInstance is DRAINING (the label comes with the cordon)."""
    names: set[str] = {name for p in pods if (name := (p.get("spec") or {}).get("nodeName")) is not None}
    return {n for n in names if any((node["metadata"].get("labels") or {}).get(DRAINING_LABEL) == "true"
                                    for node in nodes.get(n, []))}


def drain(kube: Kube, svc: ServiceSpec, ecs_name: str, workloads: list[dict[str, Any]], pods: list[dict[str, Any]],
          draining: set[str], live: dict[str, dict[str, Any]], healthy: Callable[[dict[str, Any]], bool]) -> list[str]:
    """Sets each Deployment's replicas for this moment (in `workloads`, before they are applied), marks
    or unmarks tasks, evicts when only stopping first is allowed; returns ECS's service events."""
    messages: list[str] = []
    for workload in workloads:
        if workload["kind"] != "Deployment":
            continue  # DAEMON tasks leave by the DaemonSet's node affinity
        selector = workload["spec"]["selector"]["matchLabels"]
        mine = [p for p in pods
                if is_active(p) and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())]
        leaving = [p for p in mine if p["spec"].get("nodeName") in draining]
        bounds = deployment_bounds(workload["spec"]["replicas"], svc.deploymentConfiguration)
        _mark(kube, mine, leaving if replaces_first(bounds) else [])
        if not leaving or _rolling_out(workload, mine):
            continue  # a rollout replaces them anyway, never onto a cordoned node
        others = [p for p in mine if p not in leaving]
        step = drain_step(bounds, len(leaving), len(others), sum(1 for p in others if healthy(p)),
                          marked=all(_marked(p) for p in leaving))
        workload["spec"]["replicas"] = step.replicas
        instances = ", ".join(sorted({p["spec"]["nodeName"] for p in leaving}))
        if step.stuck:
            messages.append(STUCK_MESSAGE.format(service=ecs_name, count=len(leaving), instances=instances,
                                                 minimum=bounds.minimumHealthyPercent, maximum=bounds.maximumPercent))
        elif step.evict:  # each refused while it would take the service below minimumHealthyPercent
            stopped = sum(kube.evict(p["metadata"]["namespace"], p["metadata"]["name"], uid=p["metadata"]["uid"])
                          for p in leaving)
            if stopped:
                messages.append(STOPPING_MESSAGE.format(service=ecs_name, count=stopped, instances=instances,
                                                        minimum=bounds.minimumHealthyPercent))
        elif step.batch and ((live.get(workload["metadata"]["name"]) or {}).get("spec") or {}).get("replicas", 0) < step.replicas:
            messages.append(REPLACING_MESSAGE.format(service=ecs_name, count=len(leaving), instances=instances,
                                                     batch=step.batch, maximum=bounds.maximumPercent))
    return messages


def _marked(pod: dict[str, Any]) -> bool:
    return (pod["metadata"].get("annotations") or {}).get(DELETION_COST) == DRAINING_COST


def _mark(kube: Kube, pods: list[dict[str, Any]], leaving: list[dict[str, Any]]) -> None:
    """DRAINING_COST on the tasks to stop, off any other (an instance ACTIVE again)."""
    chosen = {p["metadata"]["uid"] for p in leaving}
    for pod in pods:
        meta = pod["metadata"]
        if (meta["uid"] in chosen) != _marked(pod):
            kube.patch("Pod", meta["namespace"], meta["name"],
                       {"metadata": {"annotations": {DELETION_COST: DRAINING_COST if meta["uid"] in chosen else None}}},
                       uid=meta["uid"])


def _rolling_out(workload: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    """Tasks of more than one template, or of another than the one applied now: a deployment is under way."""
    wanted = workload["spec"]["template"]["metadata"]["labels"].get(L.DEPLOYMENT)
    labels = [p["metadata"].get("labels") or {} for p in pods]
    return len({lbl.get(TEMPLATE_HASH) for lbl in labels}) > 1 or any(lbl.get(L.DEPLOYMENT) != wanted for lbl in labels)
