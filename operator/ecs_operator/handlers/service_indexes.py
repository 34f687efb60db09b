"""The indexes a Service's reconcile reads: the Services themselves and the children each controls
(ownership, never a label, says whose)."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.ownership import controller_of
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.snapshots import stripped

from .common import kopf_callback
from .resources import DAEMON_SETS, DEPLOYMENTS, SERVICES

MANAGED = {L.MANAGED_BY: L.MANAGED_BY_VALUE}


def controlling_service(body: kopf.Body) -> str | None:
    """The UID of the ECS Service that controls the object (not the core Service kind of the same name)."""
    ref = controller_of(body)
    ours = ref is not None and ref.get("kind") == "Service" and ref.get("apiVersion") == f"{API_GROUP}/{API_VERSION}"
    return ref["uid"] if ref is not None and ours else None


@kopf.index(*SERVICES)
@kopf_callback
async def services(body: kopf.Body, name: str, namespace: str, memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace, name): memo.snapshots.of(body)}


@kopf.index(*DEPLOYMENTS, labels=MANAGED)
@kopf_callback
async def service_deployments(body: kopf.Body, namespace: str, memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, ECS Service UID) -> the Deployments it controls."""
    owner = controlling_service(body)
    return {(namespace, owner): memo.snapshots.of(body)} if owner else {}


@kopf.index(*DAEMON_SETS, labels=MANAGED)
@kopf_callback
async def service_daemon_sets(body: kopf.Body, namespace: str, memo: Context, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    owner = controlling_service(body)
    return {(namespace, owner): memo.snapshots.of(body)} if owner else {}


def _owned(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    owner = controlling_service(body)
    return {(namespace, owner): {"kind": body["kind"], "metadata": stripped({"metadata": body.metadata})["metadata"]}} \
        if owner else {}


@kopf.index("v1", "services", labels=MANAGED, id="owned_services")
@kopf_callback
async def owned_services(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """With the ClusterIP: the Service Connect names of the namespace's tasks point at it."""
    owned = _owned(body, namespace)
    for entry in owned.values():
        entry["spec"] = {"clusterIP": (body.get("spec") or {}).get("clusterIP")}
    return owned


async def _owned_index(body: kopf.Body, namespace: str, **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return _owned(body, namespace)


owned_budgets = kopf.index("policy", "v1", "poddisruptionbudgets", labels=MANAGED,
                           id="owned_budgets")(kopf_callback(_owned_index))
owned_policies = kopf.index("networking.k8s.io", "v1", "networkpolicies", labels=MANAGED,
                            id="owned_policies")(kopf_callback(_owned_index))
owned_config_maps = kopf.index("v1", "configmaps", labels=MANAGED, id="owned_config_maps")(kopf_callback(_owned_index))
"""FireLens router configurations (translate/firelens.py)."""
owned_endpoint_slices = kopf.index("discovery.k8s.io", "v1", "endpointslices", labels=MANAGED,
                                   id="owned_endpoint_slices")(kopf_callback(_owned_index))
owned_http_routes = kopf.index("gateway.networking.k8s.io", "v1", "httproutes", labels=MANAGED,
                               id="owned_http_routes")(kopf_callback(_owned_index))
"""The production and test routes of blue/green load balancers (translate/gateway.py); served only on a cluster
with the Gateway API CRDs (kopf starts watching when they are installed)."""
