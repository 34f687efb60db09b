"""Service Connect across a namespace's services: the dotted names each service's tasks resolve (hostAliases
to the ClusterIPs of the Services other ECS Services control) and the ServiceConnect condition
(docs/ecs-semantics.md §Service Connect)."""

from __future__ import annotations

from typing import Any, cast

import kopf
from pydantic import ValidationError

from ecs_operator.lifecycle.conditions import set_condition
from ecs_operator.models import ServiceSpec
from ecs_operator.translate.service_connect import connect_namespace, endpoints, host_aliases

from .common import now
from .lookups import find_cluster

CONDITION = "ServiceConnect"


def cluster_connect_default(cluster: dict[str, Any]) -> str | None:
    """The cluster's serviceConnectDefaults.namespace: the namespace of services that name none."""
    return ((cluster.get("spec") or {}).get("serviceConnectDefaults") or {}).get("namespace")


def connect_hosts(namespace: str, name: str, connect: str, ix: Any) -> list[dict[str, Any]]:
    """The hostAliases of service `name` in Service Connect namespace `connect`: every dotted client alias
    of the other ECS Services of that namespace (same Kubernetes namespace: the account), to the ClusterIP of
    the Service that the alias's ECS Service controls (by UID: never a Service found by name alone). Its
    own aliases are left out: their ClusterIPs exist only after its tasks, which would be replaced at once."""
    pairs: list[tuple[str, str]] = []
    for ns, other_name in list(ix.services):
        body = next(iter(ix.services.get((ns, other_name), [])), None)
        if ns != namespace or other_name == name or body is None or body["metadata"].get("deletionTimestamp"):
            continue
        try:
            other = ServiceSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            continue  # refused with its own condition
        cluster = find_cluster(ix.clusters, ns, other.cluster or "default")
        if cluster is None or connect_namespace(other, cluster_connect_default(cluster)) != connect:
            continue
        addresses = {o["metadata"]["name"]: (o.get("spec") or {}).get("clusterIP")
                     for o in ix.owned_services.get((ns, body["metadata"]["uid"]), [])}
        for endpoint in endpoints(other, connect):
            ip = addresses.get(endpoint.service or "")
            if endpoint.hosts_entry and ip and ip != "None":
                pairs.append((ip, endpoint.dns_name))
    return host_aliases(pairs)


def connect_condition(conditions: list[dict[str, Any]], service: dict[str, Any], enabled: bool,
                      unserved: list[str]) -> list[dict[str, Any]]:
    """ServiceConnect False (and a Warning Event when that is new) while an endpoint cannot be served;
    no condition without Service Connect."""
    if not enabled:
        return [c for c in conditions if c.get("type") != CONDITION]
    message = "; ".join(unserved) or "every client alias resolves in the tasks of its namespace"
    previous = next((c for c in conditions if c.get("type") == CONDITION), None)
    if unserved and (previous is None or previous.get("message") != message[:1024]):
        kopf.event(cast(kopf.Body, service), type="Warning", reason="ServiceConnectNameNotServed", message=message[:1024])
    return set_condition(conditions, CONDITION, not unserved, "NameNotServed" if unserved else "NamesServed",
                         message, service["metadata"].get("generation"), now())
