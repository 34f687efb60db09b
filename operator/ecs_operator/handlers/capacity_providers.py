"""CapacityProvider: ECS managed scaling of a node pool (target tracking on CapacityProviderReservation),
managed termination protection and managed draining, and the provider's deletion.

A worker per provider (runtime/workers.py) observes the indexes, asks the pure plan of scaling/pool.py
what to do and acts: ordered node and node-pool changes, Events, one status write.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import replace
from typing import Any

import kopf

from ecs_operator import labels as L, metrics
from ecs_operator.adapters.kube import ApiError
from ecs_operator.adapters.nodepools import LaunchedNodes, NodePoolBackend, backend_for, pool_facts
from ecs_operator.lifecycle.conditions import Notify
from ecs_operator.ownership import controlled_by, owner_reference
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence
from ecs_operator.scaling.pool import (
    DrainInstance,
    EndWarmup,
    Grow,
    MarkLeaving,
    PoolFacts,
    PoolObserved,
    PoolPlan,
    PoolView,
    Register,
    RemoveNodes,
    iso,
    parse,
    plan_pool,
    refusal,
    registration,
)
from ecs_operator.scaling.provider_deletion import deletion_blocker

from .common import kopf_callback
from .notices import notify
from .resources import CAPACITY_PROVIDERS, DEPLOYMENTS, PODS

logger = logging.getLogger(__name__)

KIND = "CapacityProvider"
BATCHING = Batching(idle=1.0, max=10.0)
"""Tasks waiting for capacity are collected until none arrived for a second, at most ten (as Karpenter
batches pending pods): a burst is one decision."""


# --- the worker -----------------------------------------------------------------------------------


@kopf.on.event(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
async def provider_pod_changed(type: str, labels: kopf.Labels, body: kopf.Body, memo: Context, **_: Any) -> None:
    """A task waiting for capacity wakes its provider's worker."""
    if type != "DELETED" and not body.spec.get("nodeName") and not body.metadata.get("deletionTimestamp"):
        memo.workers.wake(KIND, labels[L.CAPACITY_PROVIDER])


@kopf.on.event(*DEPLOYMENTS)
async def provider_workload_changed(type: str, spec: kopf.Spec, memo: Context, **_: Any) -> None:
    """A service asking for more tasks wakes its provider's worker before the Pods even exist."""
    provider = (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).get(L.CAPACITY_PROVIDER)
    if provider and type != "DELETED":
        memo.workers.wake(KIND, provider)


@kopf.daemon(*CAPACITY_PROVIDERS, cancellation_timeout=5)
async def provider_worker(name: str, spec: kopf.Spec, body: kopf.Body, stopped: kopf.DaemonStopped, memo: Context,
                          **indexes: Any) -> None:
    """Evaluates at once, on the evaluation cadence, when the provider's tasks wait for capacity or its
    services ask for more (a burst of them is one decision), and when a warm-up ends."""
    cadence = Cadence(memo.settings.capacity_evaluation_seconds, BATCHING)

    def failed(error: Exception) -> None:
        if isinstance(error, ApiError) and not error.temporary:
            _report_refusal(memo, body, spec, error)
        elif isinstance(error, ApiError):
            logger.warning("capacity provider %s: evaluation failed: %s", name, error)
        else:  # level-triggered: the next round repairs what this one left
            logger.error("capacity provider %s: evaluation failed", name, exc_info=error)

    await memo.workers.run(KIND, L.group_label_value(spec.get("name") or name),
                           lambda: observe(name, spec, body=body, **indexes),
                           lambda view: evaluate(name=name, memo=memo, view=view), stopped, cadence, failed)


def observe(name: str, spec: kopf.Spec, *, body: kopf.Body, provider_nodes: kopf.Index, provider_pods: kopf.Index,
            provider_clusters: kopf.Index, provider_workloads: kopf.Index, node_pods: kopf.Index, nodes: kopf.Index,
            container_instances: kopf.Index, **_: Any) -> PoolView:
    """The provider's state, copied without an await in between (kopf updates the indexes only between them)."""
    ecs_name = spec.get("name") or name
    label = L.group_label_value(ecs_name)
    pool_nodes = list(provider_nodes.get(label, []))
    names = [n["metadata"]["name"] for n in pool_nodes]
    return PoolView(
        body=copy.deepcopy(dict(body)), nodes=pool_nodes, pods=list(provider_pods.get(label, [])),
        clusters=list(provider_clusters.get(ecs_name, [])), workloads=list(provider_workloads.get(label, [])),
        node_pods={n: list(node_pods.get(n, [])) for n in names},
        instances={n: list(container_instances.get(n, [])) for n in names}, node_count=len(nodes))


def evaluate(*, name: str, memo: Context, view: PoolView) -> float | None:
    """One round of managed scaling: what the node pool's backend says, the plan, then its actions and one
    status write. Returns the seconds until an instance's warm-up ends, when that is due."""
    kube = memo.kube
    view = replace(view, body={**view.body, "status": memo.status(KIND).current(view.body)})
    spec, problems = parse(name, view.body)
    pool_spec = spec.kubernetes.nodePool if spec and spec.kubernetes else None
    backend, facts, error = None, None, None
    if spec is not None and pool_spec is not None:
        try:
            backend = backend_for(kube, spec.name or name, pool_spec, owner_reference(view.body), memo.state(LaunchedNodes))
            facts = pool_facts(backend, view.nodes)
        except ApiError as e:
            error = str(e)
    plan = plan_pool(PoolObserved(name, view, spec, problems, facts, error, memo.settings), memo.clock())
    # the reservation is computed only with a spec and the node pool's facts (else the status keeps an old one)
    reservation = plan.status.get("capacityProviderReservation") if spec is not None and facts is not None else None
    metrics.scaling_decision(spec.name or name if spec else name, plan.activity.action if plan.activity else None, reservation)
    act(memo, view.body, plan, backend, facts)
    return plan.requeue_after


def act(memo: Context, provider: dict[str, Any], plan: PoolPlan, backend: NodePoolBackend | None,
        facts: PoolFacts | None) -> None:
    """The plan's actions in order, the scaling activity (its Event and status), then one status write."""
    kube, moment = memo.kube, iso(memo.clock())
    added: list[str] = []
    for action in plan.actions:
        match action:
            case Register(node, cluster):
                kube.patch("Node", None, node, registration(cluster, memo.clock()))
            case EndWarmup(node, taints):
                kube.patch("Node", None, node,
                           {"metadata": {"annotations": {L.WARMED_UP_AT: moment}}, "spec": {"taints": taints}})
            case DrainInstance(node):
                kube.patch("ContainerInstance", None, node, {"spec": {"status": "DRAINING"}})
            case MarkLeaving(node):
                kube.patch("Node", None, node, {"metadata": {"annotations": {L.LEAVING: moment}}})
            case RemoveNodes(names, size):
                assert backend is not None and facts is not None
                backend.remove(facts.members, names, size)
            case Grow(size, cluster, warmup_seconds):
                assert backend is not None and facts is not None
                added = backend.grow(facts.members, size, memo.clock(), warmup_seconds, cluster)
            case Notify(type_, reason, message):
                notify(memo, provider, type=type_, reason=reason, message=message)
    status = plan.status
    if plan.activity is not None:
        text = f"{plan.activity.text} (added {', '.join(added)})" if plan.activity.action == "scale-out" else plan.activity.text
        reason = "ScaleOut" if plan.activity.action == "scale-out" else "ScaleIn"
        notify(memo, provider, type="Normal", reason=reason, message=text)
        status = {**status, "lastScalingActivity": {"time": moment, "action": plan.activity.action, "reason": text}}
    memo.status(KIND).write(provider, status)


def _report_refusal(memo: Context, body: kopf.Body, spec: kopf.Spec, error: ApiError) -> None:
    """A node-pool change the API server refused (typically RBAC: the chart grants Node writes only
    with the kwok backend enabled) is a condition and an Event, retried every round."""
    backend = ((spec.get("kubernetes") or {}).get("nodePool") or {}).get("backend")
    message = f"kubernetes.nodePool.backend {backend}: the API server refused a node-pool change: {error}"
    if error.status == 403:
        message += "; allow it in the chart's values (nodePools.kwok.enabled or nodePools.scaleTargets)"
    provider = dict(body)
    provider["status"] = memo.status(KIND).current(provider)
    act(memo, provider, refusal(provider, "NodePoolRefused", message, memo.clock()), None, None)


# --- deletion -------------------------------------------------------------------------------------


@kopf.on.delete(*CAPACITY_PROVIDERS)
@kopf_callback
def delete_provider(body: kopf.Body, name: str, spec: kopf.Spec, memo: Context,
                    provider_services: kopf.Index, provider_clusters: kopf.Index, provider_pods: kopf.Index,
                    provider_nodes: kopf.Index, **_: Any) -> None:
    """ECS refuses to delete a provider in use (scaling/provider_deletion.py): the finalizer holds the deletion
    back. A kwok pool's simulated nodes go with the provider; a scale target is left as it is."""
    ecs_name = spec.get("name") or name
    label = L.group_label_value(ecs_name)
    message = deletion_blocker(ecs_name, dict(spec), provider_pods.get(label, []), provider_services.get(ecs_name, []),
                               provider_clusters.get(ecs_name, []))
    if message is not None:
        provider = {**dict(body), "status": memo.status(KIND).current(body)}
        act(memo, provider, refusal(provider, "ResourceInUseException", message, memo.clock()), None, None)
        raise kopf.TemporaryError(message, delay=5)
    if ((spec.get("kubernetes") or {}).get("nodePool") or {}).get("backend") == "kwok":
        owner = owner_reference(body)
        # a copy: each deletion updates the index
        for node in [n for n in provider_nodes.get(label, []) if controlled_by(n, owner)]:
            memo.kube.delete("Node", None, node["metadata"]["name"], uid=node["metadata"]["uid"])
    metrics.forget_provider(ecs_name)
