"""A Service's observed state: everything its reconcile reads, from the indexes and the few API
reads planning needs (the namespace's workload policy), before the decision is computed."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.adapters.alertmanager import Alertmanager
from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.lifecycle.service_alarms import AlarmReading
from ecs_operator.lifecycle.service_draining import draining_nodes
from ecs_operator.lifecycle.service_hooks import HookTarget
from ecs_operator.lifecycle.service_reconcile import ServiceObserved, key_of, member_of
from ecs_operator.models import ServiceSpec, problems_from_validation_error
from ecs_operator.registry import UnknownTaskDefinition
from ecs_operator.runtime.context import Context
from ecs_operator.settings import Settings
from ecs_operator.translate.gateway import API_VERSION
from ecs_operator.translate.mesh import needs_http_routes
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service_connect import connect_namespace

from .connect import cluster_connect_default, connect_hosts
from .lookups import access_of, cluster_instances, find_cluster, instance_names, resolve_revision
from .member_of import labels_in_use
from .namespaces import workload_policy
from .service_memory import ServiceMemory


@dataclass(frozen=True)
class ServiceIndexes:
    """The kopf indexes a Service's round reads (kopf passes every index to a handler by its name)."""

    services: kopf.Index
    service_pods: kopf.Index
    service_deployments: kopf.Index
    service_daemon_sets: kopf.Index
    owned_services: kopf.Index
    owned_budgets: kopf.Index
    owned_policies: kopf.Index
    owned_endpoint_slices: kopf.Index
    owned_config_maps: kopf.Index
    owned_http_routes: kopf.Index
    clusters: kopf.Index
    cluster_nodes: kopf.Index
    nodes: kopf.Index
    node_pods: kopf.Index
    revisions: kopf.Index
    task_definitions: kopf.Index
    member_of_deployments: kopf.Index
    member_of_daemon_sets: kopf.Index
    member_of_task_pods: kopf.Index
    provider_access: kopf.Index

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> ServiceIndexes:
        return cls(**{f.name: kwargs[f.name] for f in fields(cls)})


def observe(service: dict[str, Any], ix: ServiceIndexes, memo: Context, current: dict[str, Any]) -> ServiceObserved:
    """`current`: the status as last written."""
    settings = memo.settings
    meta = service["metadata"]
    namespace, name, owner = meta["namespace"], meta["name"], (meta["namespace"], meta["uid"])
    try:
        svc: ServiceSpec | None = ServiceSpec.model_validate(service.get("spec") or {})
        invalid: tuple[Any, ...] = ()
    except ValidationError as e:
        svc, invalid = None, tuple(problems_from_validation_error(e))
    deployments = tuple(ix.service_deployments.get(owner, []))
    daemon_sets = tuple(ix.service_daemon_sets.get(owner, []))
    owned = {key_of(w): w for w in (*deployments, *daemon_sets)}
    owned.update({key_of(o): o for index in (ix.owned_services, ix.owned_budgets, ix.owned_policies, ix.owned_endpoint_slices,
                                                   ix.owned_config_maps, ix.owned_http_routes)
                  for o in index.get(owner, [])})
    pods = tuple(ix.service_pods.get((namespace, L.group_label_value(name)), []))
    cluster_name = (svc.cluster if svc else None) or "default"
    cluster = find_cluster(ix.clusters, namespace, cluster_name)
    base = ServiceObserved(service=service, spec=svc, invalid=invalid, current=current, pods=pods, stopping=frozenset(),
                           deployments=deployments, daemon_sets=daemon_sets, owned=owned, cluster=cluster,
                           requested="", revisions={}, settings=settings)
    if svc is None or cluster is None:
        return base
    refs = {d.get("taskDefinition", "") for d in current.get("deployments") or []}
    refs |= {(current.get("lastCompletedDeployment") or {}).get("taskDefinition", "")} - {""}
    revisions = {ref: _resolve(ref, namespace, ix, settings, allow_inactive=True) for ref in refs}
    requested = _resolve(svc.taskDefinition or "", namespace, ix, settings)
    candidates = [r for r in (requested, *revisions.values()) if isinstance(r, Revision)]
    connect = connect_namespace(svc, cluster_connect_default(cluster))
    stopped, stopping = memo.state(ServiceMemory).pending(owner)
    return replace(
        base, stopping=stopping, requested=requested, revisions=revisions,
        policy=workload_policy(memo, namespace),  # cached per namespace there
        instances=tuple(cluster_instances(namespace, cluster_name, ix.cluster_nodes, ix.nodes, ix.node_pods)
                        if any(member_of(svc, r) for r in candidates) else ()),
        daemon_instance_count=len(instance_names(namespace, cluster_name, ix.cluster_nodes)),
        member_of_labels=frozenset(labels_in_use(namespace, ix.member_of_deployments, ix.member_of_daemon_sets,
                                                 ix.member_of_task_pods)),
        provider_access=access_of(ix.provider_access),
        connect_hosts=(connect_hosts(namespace, name, connect, ix.services, ix.clusters, ix.owned_services)
                       if connect is not None else None),
        draining=frozenset(draining_nodes(ix.nodes, list(pods))),
        lost_nodes=lost_nodes(memo.kube, ix.nodes, pods),
        stopped=stopped,
        http_routes=needs_http_routes(svc) and memo.state(GatewayApi).served(memo.kube),
        hook_targets=_hook_targets(svc, namespace, ix, settings),
        hook_tasks=_hook_tasks(memo.kube, namespace, current),
        alarms=alarms(service, svc, current, memo),
    )


class GatewayApi:
    """Whether the cluster serves HTTPRoute: once it does, for good (its CRD is not removed under running
    services); while it does not, asked again at most every RECHECK_SECONDS."""

    RECHECK_SECONDS = 30.0

    def __init__(self) -> None:
        self._served = False
        self._asked = -math.inf
        self._lock = threading.Lock()

    def served(self, kube: Kube) -> bool:
        with self._lock:
            if self._served or time.monotonic() - self._asked < self.RECHECK_SECONDS:
                return self._served
            self._asked = time.monotonic()
        try:
            kube.discover(API_VERSION, "HTTPRoute")
        except ApiError:
            return False
        with self._lock:
            self._served = True
        return True


def _hook_targets(svc: ServiceSpec, namespace: str, ix: ServiceIndexes, settings: Settings) -> dict[str, HookTarget | str]:
    """The task definitions AWS_LAMBDA lifecycle hooks name (lifecycle/service_hooks.py)."""
    out: dict[str, HookTarget | str] = {}
    for hook in (svc.deploymentConfiguration.lifecycleHooks if svc.deploymentConfiguration else None) or []:
        if (hook.targetType or "AWS_LAMBDA") != "AWS_LAMBDA" or not hook.hookTargetArn:
            continue
        resolved = _resolve(hook.hookTargetArn, namespace, ix, settings)
        out[hook.hookTargetArn] = resolved if isinstance(resolved, str) else HookTarget(
            resolved.name, frozenset(c.name for c in resolved.definition.containerDefinitions if c.is_essential),
            tuple(c.name for c in resolved.definition.containerDefinitions))
    return out


def _hook_tasks(kube: Kube, namespace: str, current: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The Tasks of the primary deployment's running hooks, read (a few, only while a hook runs)."""
    primary: dict[str, Any] = next(iter(current.get("deployments") or []), {})
    names = [r["task"] for r in primary.get("hookRuns") or [] if r.get("task") and r.get("status") == "IN_PROGRESS"]
    return {name: kube.get("Task", namespace, name) for name in names}


def alarms(service: dict[str, Any], svc: ServiceSpec, current: dict[str, Any], memo: Context) -> AlarmReading | None:
    """The deployment alarms' states, read while a deployment may be watched: one in progress, or a spec change
    that may start one (a settled service costs Alertmanager nothing: nothing in ALARM, as nothing is watched)."""
    config = svc.deploymentConfiguration.alarms if svc.deploymentConfiguration else None
    if config is None or not config.enable or not config.alarmNames:
        return None
    settled = (current.get("deployments") and current.get("observedGeneration") == service["metadata"].get("generation")
               and all(d.get("rolloutState") != "IN_PROGRESS" for d in current["deployments"]))
    if settled and memo.settings.alertmanager_url:
        return AlarmReading()
    return memo.state(Alertmanager).read(memo.settings.alertmanager_url, service["metadata"]["namespace"], config.alarmNames)


def _resolve(ref: str, namespace: str, ix: ServiceIndexes, settings: Settings, allow_inactive: bool = False) -> Revision | str:
    """The revision, or ECS's words for why the reference names nothing usable."""
    try:
        return resolve_revision(ref, namespace, ix.revisions, ix.task_definitions, settings, allow_inactive=allow_inactive)
    except UnknownTaskDefinition as e:
        return str(e)


def lost_nodes(kube: Kube, nodes: kopf.Index, pods: tuple[dict[str, Any], ...]) -> frozenset[str]:
    """The nodes of `pods` that are gone: missing from the index and, asked, from the API server (the index
    may not show a new Node yet)."""
    missing = {n for p in pods if (n := (p.get("spec") or {}).get("nodeName")) and n not in nodes}
    return frozenset(n for n in missing if kube.get("Node", None, n) is None)
