"""CapacityProvider: ECS managed scaling of a node pool (target tracking on CapacityProviderReservation),
managed termination protection and managed draining; Cluster association (PutClusterCapacityProviders).

A worker per provider evaluates on a fixed cadence and when its tasks wait for capacity or its
services ask for more, collecting the changes until none arrived for a second (at most ten, as
Karpenter batches pending pods); tasks a service wants count before their Pods exist, as ECS creates
them all at once: a burst of waiting tasks is one decision. Everything is recomputed from what exists (nodes, their annotations,
tasks, the scale target's replicas), so a restart in the middle of a scale-out or a drain continues
from there. Status is written only when it changes.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.adapters.nodepools import NodePoolBackend, backend_for, pool_facts
from ecs_operator.instances import is_active
from ecs_operator.lifecycle.conditions import set_condition
from ecs_operator.ownership import controlled_by
from ecs_operator.scaling.pool import (
    DrainInstance,
    EndWarmup,
    Grow,
    MarkLeaving,
    Notify,
    PoolFacts,
    PoolObserved,
    PoolPlan,
    PoolView,
    Register,
    RemoveNodes,
    current_status,
    iso,
    parse,
    plan_pool,
    refusal,
    registration,
)
from ecs_operator.translate.provider_access import access_problems, allows

from .common import now, owner_reference, problems_text, ready
from .lookups import access_of
from .notices import notify
from .resources import CAPACITY_PROVIDERS, CLUSTERS, DEPLOYMENTS, NODES, PODS, SERVICES

logger = logging.getLogger(__name__)

BATCH_IDLE_SECONDS = 1.0
BATCH_MAX_SECONDS = 10.0
ASSOCIATION = "CapacityProviders"
"""Cluster condition: the capacity providers in spec are associated (PutClusterCapacityProviders)."""
IN_USE = "The specified capacity provider is in use and cannot be removed."
_wakeups: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}


# --- indexes --------------------------------------------------------------------------------------


@kopf.index(*NODES, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_nodes(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: copy.deepcopy(dict(body))}


@kopf.index(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_pods(body: kopf.Body, labels: kopf.Labels, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: copy.deepcopy(dict(body))}


@kopf.index(*CLUSTERS)
def provider_clusters(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, str]:
    """provider -> the clusters that list it (PutClusterCapacityProviders), as namespace/cluster."""
    cluster = spec.get("clusterName") or name
    return {p: f"{namespace}/{cluster}" for p in spec.get("capacityProviders") or []}


@kopf.index(*SERVICES)
def provider_services(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, tuple[str, str, str]]:
    """provider -> the services whose strategy names it, as (namespace, service, cluster)."""
    return {i["capacityProvider"]: (namespace, name, spec.get("cluster") or "default") for i in spec.get("capacityProviderStrategy") or []}


@kopf.index(*SERVICES)
def cluster_strategies(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, cluster) -> each service with the providers its strategy names."""
    providers = [i["capacityProvider"] for i in spec.get("capacityProviderStrategy") or []]
    return {(namespace, spec.get("cluster") or "default"): {"service": name, "providers": providers}} if providers else {}


@kopf.index(*DEPLOYMENTS)
def provider_workloads(namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    """provider -> the service Deployments whose tasks it places: what they want, and the task template."""
    template = spec.get("template") or {}
    provider = ((template.get("metadata") or {}).get("labels") or {}).get(L.CAPACITY_PROVIDER)
    if not provider:
        return {}
    cluster = ((template.get("metadata") or {}).get("labels") or {}).get(L.CLUSTER, "")
    return {provider: {"namespace": namespace, "cluster": cluster,
                       "selector": dict((spec.get("selector") or {}).get("matchLabels") or {}),
                       "replicas": int(spec.get("replicas") or 0), "spec": copy.deepcopy(dict(template.get("spec") or {}))}}


# --- the worker -----------------------------------------------------------------------------------


@kopf.on.event(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
def provider_pod_changed(type: str, labels: kopf.Labels, body: kopf.Body, **_: Any) -> None:
    """A task waiting for capacity wakes its provider's worker."""
    if type != "DELETED" and not body.spec.get("nodeName") and not body.metadata.get("deletionTimestamp"):
        _wake(labels[L.CAPACITY_PROVIDER])


@kopf.on.event(*DEPLOYMENTS)
def provider_workload_changed(type: str, spec: kopf.Spec, **_: Any) -> None:
    """A service asking for more tasks wakes its provider's worker before the Pods even exist."""
    provider = (((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}).get(L.CAPACITY_PROVIDER)
    if provider and type != "DELETED":
        _wake(provider)


def _wake(provider_label: str) -> None:
    entry = _wakeups.get(provider_label)
    if entry is not None:
        entry[0].call_soon_threadsafe(entry[1].set)


@kopf.daemon(*CAPACITY_PROVIDERS, cancellation_timeout=5)
async def provider_worker(name: str, spec: kopf.Spec, stopped: kopf.DaemonStopped, memo: Any, **kwargs: Any) -> None:
    wakeup = asyncio.Event()
    label = L.group_label_value(spec.get("name") or name)
    _wakeups[label] = (asyncio.get_running_loop(), wakeup)
    interval: float = memo.settings.capacity_evaluation_seconds
    due: float | None = None
    try:
        while not stopped:
            await _next_round(wakeup, stopped, interval if due is None else max(0.0, min(interval, due)))
            if stopped:
                break
            due = None
            context = contextvars.copy_context()
            view = observe(name, spec, **kwargs)  # here, in the event loop: one moment's state, never torn
            try:
                due = await asyncio.get_running_loop().run_in_executor(
                    None, lambda: context.run(evaluate, name=name, memo=memo, view=view))
            except ApiError as e:
                if e.temporary:
                    logger.warning("capacity provider %s: evaluation failed: %s", name, e)
                else:
                    context.run(_report_refusal, memo.kube, name, kwargs["body"], spec, e)
            except Exception:  # level-triggered: the next round repairs what this one left
                logger.exception("capacity provider %s: evaluation failed", name)
    finally:
        _wakeups.pop(label, None)


async def _next_round(wakeup: asyncio.Event, stopped: kopf.DaemonStopped, interval: float) -> None:
    """The next evaluation: after `interval`, or once tasks waiting for capacity stopped arriving for
    BATCH_IDLE_SECONDS (at most BATCH_MAX_SECONDS after the first): one decision for a burst. A stop
    (the provider deleted, the operator exiting) ends the wait at once, so kopf never has to cancel
    the worker."""
    woken, halted = asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()
    if not wakeup.is_set() or stopped:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BATCH_MAX_SECONDS
    while not stopped and (left := deadline - loop.time()) > 0:
        wakeup.clear()
        try:
            await asyncio.wait_for(wakeup.wait(), timeout=min(BATCH_IDLE_SECONDS, left))
        except asyncio.TimeoutError:
            return
    wakeup.clear()


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


def evaluate(*, name: str, memo: Any, view: PoolView) -> float | None:
    """One round of managed scaling: what the node pool's backend says, the plan, then its actions and one
    status write. Returns the seconds until an instance's warm-up ends, when that is due."""
    kube: Kube = memo.kube
    spec, problems = parse(name, view.body)
    pool_spec = spec.kubernetes.nodePool if spec and spec.kubernetes else None
    backend, facts, error = None, None, None
    if spec is not None and pool_spec is not None:
        try:
            backend = backend_for(kube, spec.name or name, pool_spec, owner_reference(view.body))
            facts = pool_facts(backend, view.nodes)
        except ApiError as e:
            error = str(e)
    plan = plan_pool(PoolObserved(name, view, spec, problems, facts, error, memo.settings), now())
    act(kube, name, view.body, plan, backend, facts)
    return plan.requeue_after


def act(kube: Kube, name: str, provider: dict[str, Any], plan: PoolPlan, backend: NodePoolBackend | None,
        facts: PoolFacts | None) -> None:
    """The plan's actions in order, the scaling activity (its Event and status), then one status write."""
    added: list[str] = []
    for action in plan.actions:
        match action:
            case Register(node, cluster):
                kube.patch("Node", None, node, registration(cluster, now()))
            case EndWarmup(node, taints):
                kube.patch("Node", None, node, {"metadata": {"annotations": {L.WARMED_UP_AT: iso(now())}}, "spec": {"taints": taints}})
            case DrainInstance(node):
                kube.patch("ContainerInstance", None, node, {"spec": {"status": "DRAINING"}})
            case MarkLeaving(node):
                kube.patch("Node", None, node, {"metadata": {"annotations": {L.LEAVING: iso(now())}}})
            case RemoveNodes(names, size):
                assert backend is not None and facts is not None
                backend.remove(facts.members, names, size)
            case Grow(size, cluster, warmup_seconds):
                assert backend is not None and facts is not None
                added = backend.grow(facts.members, size, now(), warmup_seconds, cluster)
            case Notify(type_, reason, message):
                notify(provider, type=type_, reason=reason, message=message)
    status = plan.status
    if plan.activity is not None:
        text = f"{plan.activity.text} (added {', '.join(added)})" if plan.activity.action == "scale-out" else plan.activity.text
        notify(provider, type="Normal", reason="ScaleOut" if plan.activity.action == "scale-out" else "ScaleIn", message=text)
        status = {**status, "lastScalingActivity": {"time": iso(now()), "action": plan.activity.action, "reason": text}}
    _write(kube, name, current_status(provider), status)


def _report_refusal(kube: Kube, name: str, body: kopf.Body, spec: kopf.Spec, error: ApiError) -> None:
    """A node-pool change the API server refused (typically RBAC: the chart grants Node writes only
    with the kwok backend enabled) is a condition and an Event, retried every round."""
    backend = ((spec.get("kubernetes") or {}).get("nodePool") or {}).get("backend")
    message = f"kubernetes.nodePool.backend {backend}: the API server refused a node-pool change: {error}"
    if error.status == 403:
        message += "; allow it in the chart's values (nodePools.kwok.enabled or nodePools.scaleTargets)"
    plan = refusal(dict(body), "NodePoolRefused", message, now())
    act(kube, name, dict(body), plan, None, None)


# --- Cluster association (PutClusterCapacityProviders) --------------------------------------------


@kopf.timer(*CLUSTERS, id="capacity_provider_association", interval=5)
def cluster_association(body: kopf.Body, spec: kopf.Spec, name: str, namespace: str, status: kopf.Status, memo: Any,
                        cluster_strategies: kopf.Index, cluster_pods: kopf.Index, provider_access: kopf.Index, **_: Any) -> None:
    """A provider that does not allow the cluster's namespace is refused: it never scales for the cluster
    (docs/ecs-semantics.md §Capacity providers belong to an administrator). ECS refuses to remove a provider
    from a cluster while a service strategy or a task uses it: the provider stays associated. The
    CapacityProviders condition says which and why."""
    cluster = spec.get("clusterName") or name
    listed = list(spec.get("capacityProviders") or [])
    access = access_of(provider_access)
    denied = access_problems(listed, "capacityProviders[{}]", access, namespace, cluster) + access_problems(
        [i.get("capacityProvider", "") for i in spec.get("defaultCapacityProviderStrategy") or []],
        "defaultCapacityProviderStrategy[{}].capacityProvider", access, namespace, cluster)
    users = _users_in_cluster(cluster_strategies.get((namespace, cluster), []), cluster_pods.get((namespace, L.group_label_value(cluster)), []))
    refused = {p: u for p, u in users.items() if p not in listed}
    previous = next((c for c in status.get("conditions") or [] if c.get("type") == ASSOCIATION), None)
    if denied:
        wanted = ("False", "AccessDeniedException", problems_text(denied))
    elif refused:
        detail = "; ".join(f"{p} is used by {', '.join(u)}" for p, u in sorted(refused.items()))
        wanted = ("False", "ResourceInUseException", f"{IN_USE} {detail}")
    elif listed or previous:
        wanted = ("True", "Associated", f"capacity providers associated: {', '.join(listed) or 'none'}")
    else:
        return
    if previous and (previous["status"], previous["reason"], previous["message"]) == wanted:
        return
    if wanted[0] == "False":
        kopf.event(body, type="Warning", reason=wanted[1], message=wanted[2][:1024])
    conditions = set_condition(status.get("conditions"), ASSOCIATION, wanted[0] == "True", wanted[1], wanted[2],
                               body.metadata.get("generation"), now())
    memo.kube.patch_status("Cluster", namespace, name, {"conditions": conditions})


def _users_in_cluster(services: list[dict[str, Any]], pods: list[dict[str, Any]]) -> dict[str, list[str]]:
    """provider -> what uses it in the cluster: services by strategy, tasks placed by it."""
    users: dict[str, list[str]] = {}
    for s in services:
        for p in s["providers"]:
            users.setdefault(p, []).append(f"service {s['service']}")
    counts: dict[str, int] = {}
    for pod in pods:
        provider = (pod["metadata"].get("labels") or {}).get(L.CAPACITY_PROVIDER)
        if provider and is_active(pod):
            counts[provider] = counts.get(provider, 0) + 1
    for provider, count in counts.items():
        users.setdefault(provider, []).append(f"{count} task(s)")
    return users


# --- deletion -------------------------------------------------------------------------------------


@kopf.on.delete(*CAPACITY_PROVIDERS)
def delete_provider(body: kopf.Body, name: str, spec: kopf.Spec, status: kopf.Status, memo: Any, provider_services: kopf.Index,
                    provider_clusters: kopf.Index, provider_pods: kopf.Index, provider_nodes: kopf.Index, **_: Any) -> None:
    """ECS refuses to delete a provider that a service strategy uses or a cluster lists (or whose tasks
    still run). A kwok pool's simulated nodes go with the provider; a scale target is left as it is."""
    ecs_name = spec.get("name") or name
    label = L.group_label_value(ecs_name)
    allowed = (spec.get("kubernetes") or {}).get("allowedNamespaces")
    # only those the provider allows can hold its deletion back: a tenant naming it cannot
    tasks = [p for p in provider_pods.get(label, []) if is_active(p)
             and allows(allowed, p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))]
    services = {f"{n}/{s}" for n, s, c in provider_services.get(ecs_name, []) if allows(allowed, n, c)}
    clusters = {c for c in provider_clusters.get(ecs_name, []) if allows(allowed, *c.split("/", 1))}
    users = ([f"service {s}" for s in sorted(services)] + [f"cluster {c}" for c in sorted(clusters)]
             + ([f"{len(tasks)} task(s)"] if tasks else []))
    if users:
        message = f"The capacity provider {ecs_name} is in use by {', '.join(users)}: remove it from them first"
        conditions = ready(status, body, False, "ResourceInUseException", message)
        if conditions != status.get("conditions"):
            memo.kube.patch_status("CapacityProvider", None, name, {"conditions": conditions})
        raise kopf.TemporaryError(message, delay=5)
    if ((spec.get("kubernetes") or {}).get("nodePool") or {}).get("backend") == "kwok":
        owner = owner_reference(body)
        for node in [n for n in provider_nodes.get(label, []) if controlled_by(n, owner)]:  # a copy: each deletion updates the index
            memo.kube.delete("Node", None, node["metadata"]["name"], uid=node["metadata"]["uid"])


# --- helpers ---------------------------------------------------------------------------------------


def _write(kube: Kube, name: str, current: dict[str, Any], status: dict[str, Any]) -> None:
    if status != current:
        kube.patch_status("CapacityProvider", None, name, {k: status.get(k) for k in set(status) | set(current)})
