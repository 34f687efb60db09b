"""The indexes of the CapacityProvider's rounds and of its deletion (kopf keeps them current from its watches)."""

from __future__ import annotations

import copy
from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.runtime.context import Context

from .common import kopf_callback
from .resources import CLUSTERS, DEPLOYMENTS, NODES, PODS, SERVICES


@kopf.index(*NODES, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
async def provider_nodes(body: kopf.Body, labels: kopf.Labels, memo: Context, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: memo.snapshots.of(body)}


@kopf.index(*PODS, labels={L.CAPACITY_PROVIDER: kopf.PRESENT})
async def provider_pods(body: kopf.Body, labels: kopf.Labels, memo: Context, **_: Any) -> dict[str, dict[str, Any]]:
    return {labels[L.CAPACITY_PROVIDER]: memo.snapshots.of(body)}


@kopf.index(*CLUSTERS)
@kopf_callback
async def provider_clusters(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, str]:
    """provider -> the clusters that list it (PutClusterCapacityProviders), as namespace/cluster."""
    cluster = spec.get("clusterName") or name
    return {p: f"{namespace}/{cluster}" for p in spec.get("capacityProviders") or []}


@kopf.index(*SERVICES)
@kopf_callback
async def provider_services(name: str, namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, tuple[str, str, str]]:
    """provider -> the services whose strategy names it, as (namespace, service, cluster)."""
    cluster = spec.get("cluster") or "default"
    return {i["capacityProvider"]: (namespace, name, cluster) for i in spec.get("capacityProviderStrategy") or []}


@kopf.index(*DEPLOYMENTS)
@kopf_callback
async def provider_workloads(namespace: str, spec: kopf.Spec, **_: Any) -> dict[str, dict[str, Any]]:
    """provider -> the service Deployments whose tasks it places: what they want, and the task template."""
    template = spec.get("template") or {}
    provider = ((template.get("metadata") or {}).get("labels") or {}).get(L.CAPACITY_PROVIDER)
    if not provider:
        return {}
    cluster = ((template.get("metadata") or {}).get("labels") or {}).get(L.CLUSTER, "")
    return {provider: {"namespace": namespace, "cluster": cluster,
                       "selector": dict((spec.get("selector") or {}).get("matchLabels") or {}),
                       "replicas": int(spec.get("replicas") or 0), "spec": copy.deepcopy(dict(template.get("spec") or {}))}}
