"""Service Connect endpoints: the name and port each client alias is reached by, the Kubernetes Service that
serves it, and the /etc/hosts entries (Pod hostAliases) that give dotted names to the tasks of a Service
Connect namespace (docs/ecs-semantics.md §Service Connect)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ecs_operator.models import ServiceSpec

from .names import dns_label

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Endpoint:
    path: str
    """The ECS field that names it (`...clientAliases[j].dnsName`)."""
    dns_name: str
    """As client tasks write it (DNS is case-insensitive: lowercased)."""
    port: int
    service: str | None
    """The Kubernetes Service that serves it; None: no name Kubernetes can serve."""

    @property
    def hosts_entry(self) -> bool:
        """A dotted name is no Service name: the client tasks' /etc/hosts maps it to the Service's ClusterIP."""
        return self.service is not None and "." in self.dns_name


def connect_namespace(svc: ServiceSpec, cluster_default: str | None) -> str | None:
    """The Cloud Map namespace of the service's Service Connect (None: Service Connect is off)."""
    connect = svc.serviceConnectConfiguration
    if connect is None or not connect.enabled:
        return None
    return connect.namespace or cluster_default or ""


def endpoints(svc: ServiceSpec, namespace: str) -> list[Endpoint]:
    """Every client alias of the service. A dnsName left out is ECS's default `discoveryName.namespace`
    (`portName.namespace` without a discoveryName), which needs the namespace's name, not an ARN."""
    connect = svc.serviceConnectConfiguration
    out: list[Endpoint] = []
    for i, s in enumerate(connect.services or [] if connect is not None and connect.enabled else []):
        for j, alias in enumerate(s.clientAliases or []):
            name = alias.dnsName or (f"{s.discoveryName or s.portName}.{namespace}"
                                     if namespace and not namespace.startswith("arn:") else "")
            name = name.lower().rstrip(".")
            out.append(Endpoint(f"serviceConnectConfiguration.services[{i}].clientAliases[{j}].dnsName",
                                name, alias.port, _service_name(name)))
    return out


def _service_name(dns_name: str) -> str | None:
    """A label-shaped name is the Service's own name; a dotted one a Service named with '-' for the dots.
    A name that is no DNS-1123 subdomain (e.g. with '_') cannot be a hostAliases entry either."""
    labels = dns_name.split(".")
    if not dns_name or len(dns_name) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return dns_name if len(labels) == 1 else dns_label(dns_name)


def host_aliases(entries: Iterable[tuple[str, str]]) -> list[dict[str, object]]:
    """(ClusterIP, dnsName) pairs as Pod hostAliases, in a stable order (the template changes only when they do)."""
    by_ip: dict[str, set[str]] = {}
    for ip, name in entries:
        by_ip.setdefault(ip, set()).add(name)
    return [{"ip": ip, "hostnames": sorted(names)} for ip, names in sorted(by_ip.items())]
