"""Service Connect across a namespace's services: the dotted names each service's tasks resolve (hostAliases
to the ClusterIPs of the Services other ECS Services control; docs/ecs-semantics.md §Service Connect)."""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from ecs_operator.models import ServiceSpec
from ecs_operator.translate.service_connect import connect_namespace, endpoints, host_aliases

from .lookups import find_cluster


def cluster_connect_default(cluster: dict[str, Any]) -> str | None:
    """The cluster's serviceConnectDefaults.namespace: the namespace of services that name none."""
    return ((cluster.get("spec") or {}).get("serviceConnectDefaults") or {}).get("namespace")


def connect_hosts(namespace: str, name: str, connect: str, services: kopf.Index, clusters: kopf.Index,
                  owned_services: kopf.Index) -> list[dict[str, Any]]:
    """The hostAliases of service `name` in Service Connect namespace `connect`: every dotted client alias
    of the other ECS Services of that namespace (same Kubernetes namespace: the account), to the ClusterIP of
    the Service that the alias's ECS Service controls (by UID: never a Service found by name alone). Its
    own aliases are left out: their ClusterIPs exist only after its tasks, which would be replaced at once."""
    pairs: list[tuple[str, str]] = []
    for ns, other_name in list(services):
        body = next(iter(services.get((ns, other_name), [])), None)
        if ns != namespace or other_name == name or body is None or body["metadata"].get("deletionTimestamp"):
            continue
        try:
            other = ServiceSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue  # refused with its own condition
        cluster = find_cluster(clusters, ns, other.cluster or "default")
        if cluster is None or connect_namespace(other, cluster_connect_default(cluster)) != connect:
            continue
        addresses = {o["metadata"]["name"]: (o.get("spec") or {}).get("clusterIP")
                     for o in owned_services.get((ns, body["metadata"]["uid"]), [])}
        for endpoint in endpoints(other, connect):
            ip = addresses.get(endpoint.service or "")
            if endpoint.hosts_entry and ip and ip != "None":
                pairs.append((ip, endpoint.dns_name))
    return host_aliases(pairs)
