"""Service Connect's proxy rules as GAMMA HTTPRoutes (Gateway API for service meshes: parentRef a Service).

ECS's Service Connect proxy (Envoy in each task) routes a client's request to the service's tasks; during a
BLUE_GREEN, LINEAR or CANARY deployment it shifts them between blue and green by the strategy's weights, sends
requests matching a client alias's `testTrafficRules` header to green, and gives up on a request after
`timeout.perRequestTimeoutSeconds` (docs/ecs-semantics.md §Service Connect traffic rules). On a cluster that serves
HTTPRoute the operator writes, for each Service Connect client alias whose service has any of these, the HTTPRoute
`<alias Service>-mesh` with the alias's Kubernetes Service (and port) as parentRef:

- a rule matching the test header (exact value; a rule without a value matches any value) to green's target
  Service (`<discovery>-alternate` or `-primary`, as for load balancers: translate/gateway.py) during a deployment,
  to production otherwise;
- a rule for the rest, weighted between the two as the step says;
- `timeouts.request` on both: perRequestTimeoutSeconds (0: none, as ECS's 0 disables it).

Only a service mesh that implements GAMMA (Istio, Linkerd, Cilium, ...) applies such a route, to requests sent to
the Service's ClusterIP; without one the route is admitted and does nothing, and traffic keeps going through the
Services' EndpointSlices (the ratio of tasks they list). Hence approximated, saying so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ecs_operator.models import ServiceSpec

from .endpoints import endpoint_slices
from .fidelity import FidelityReport, leaves
from .gateway import ALTERNATE, API_VERSION, PRIMARY, Routes, Traffic, blue_green, target_group, weights, weights_for_test
from .names import dns_label
from .service_connect import endpoints as connect_endpoints

MESH_NOTE = ("a GAMMA HTTPRoute: only a service mesh that implements GAMMA (Istio, Linkerd, Cilium, ...) applies it, "
             "to requests to the Service's ClusterIP; without one it is admitted and does nothing")


def mesh_routes(svc: ServiceSpec, connect_namespace: str, services: Sequence[dict[str, Any]],
                slot_pods: Mapping[str, Sequence[dict[str, Any]]], traffic: Traffic, *, shifting_strategy: bool,
                second_slot: str, served: bool, report: FidelityReport) -> Routes:
    """The GAMMA routes and target Services of the service's Service Connect services that have test traffic rules,
    a per-request timeout or a shifting strategy (`shifting_strategy`), when the cluster serves HTTPRoute."""
    out = Routes()
    connect = svc.serviceConnectConfiguration
    if connect is None or not connect.enabled:
        return out
    aliases = {e.path: e for e in connect_endpoints(svc, connect_namespace)}
    for i, s in enumerate(connect.services or []):
        path = f"serviceConnectConfiguration.services[{i}]"
        timeout = s.timeout.perRequestTimeoutSeconds if s.timeout is not None else None
        if timeout is not None and not served:
            report.unsupported(f"{path}.timeout.perRequestTimeoutSeconds",
                               "the cluster serves no HTTPRoute (Gateway API CRDs): no route to a mesh")
        rules = {j: a.testTrafficRules for j, a in enumerate(s.clientAliases or []) if a.testTrafficRules}
        if not served:
            for j, value in rules.items():
                for leaf, _ in leaves(dict(value), f"{path}.clientAliases[{j}].testTrafficRules"):
                    report.unsupported(leaf, "the cluster serves no HTTPRoute (Gateway API CRDs): no route to a mesh")
            continue
        base = next((x for x in services if x["metadata"]["name"] == dns_label(s.discoveryName or s.portName)), None)
        if base is None or not (rules or timeout is not None or shifting_strategy):
            continue
        name = base["metadata"]["name"]
        backends = {PRIMARY: target_group(base, f"{name}-{PRIMARY}"), ALTERNATE: target_group(base, f"{name}-{ALTERNATE}")}
        for group, slot in ((PRIMARY, ""), (ALTERNATE, second_slot)):
            out.objects.append(backends[group])
            out.origins[("Service", backends[group]["metadata"]["name"])] = path
            for piece in endpoint_slices(backends[group], slot_pods.get(slot, [])):
                out.objects.append(piece)
                out.origins[("EndpointSlice", piece["metadata"]["name"])] = path
        ports = base["spec"]["ports"]  # the entry's own port (the Service may also be a load balancer's)
        port = next((p["port"] for p in ports if p["name"] == dns_label(s.portName, 15)), ports[0]["port"])
        for j, alias in enumerate(s.clientAliases or []):
            endpoint = aliases.get(f"{path}.clientAliases[{j}].dnsName")
            if endpoint is None or endpoint.service is None:
                continue
            route = _route(base, dns_label(f"{endpoint.service}-mesh"), endpoint.service, alias.port,
                           rules.get(j), timeout, backends, port, traffic, second_slot)
            out.objects.append(route)
            out.origins[("HTTPRoute", route["metadata"]["name"])] = f"{path}.clientAliases[{j}]"
            for leaf, _ in leaves(dict(rules.get(j) or {}), f"{path}.clientAliases[{j}].testTrafficRules"):
                report.approximated(leaf, f"HTTPRoute {route['metadata']['name']} header match to green", MESH_NOTE)
        if timeout is not None:
            report.approximated(f"{path}.timeout.perRequestTimeoutSeconds", "HTTPRoute timeouts.request", MESH_NOTE)
    return out


def header_match(rules: Mapping[str, Any]) -> dict[str, Any] | None:
    """The HTTPHeaderMatch of ECS's testTrafficRules ({"header": {"name": ..., "value": {"exact": ...}}})."""
    header = rules.get("header") or {}
    if not isinstance(header, Mapping) or not header.get("name"):
        return None
    exact = (header.get("value") or {}).get("exact")
    if exact is None:  # any value: ECS matches the header's presence
        return {"type": "RegularExpression", "name": str(header["name"]), "value": ".*"}
    return {"type": "Exact", "name": str(header["name"]), "value": str(exact)}


def _route(base: dict[str, Any], name: str, parent: str, parent_port: int, rules: Mapping[str, Any] | None,
           timeout: int | None, backends: Mapping[str, dict[str, Any]], port: int, traffic: Traffic,
           second_slot: str) -> dict[str, Any]:
    meta = base["metadata"]

    def refs(weight: Mapping[str, int]) -> list[dict[str, Any]]:
        return [{"group": "", "kind": "Service", "name": b["metadata"]["name"], "port": port, "weight": weight[group]}
                for group, b in backends.items()]

    extra = {"timeouts": {"request": f"{timeout}s"}} if timeout is not None else {}
    match = header_match(rules) if rules else None
    http_rules = ([{"matches": [{"headers": [match]}], "backendRefs": refs(weights_for_test(traffic, second_slot)),
                    **extra}] if match else [])
    http_rules.append({"backendRefs": refs(weights(traffic, second_slot)), **extra})
    return {"apiVersion": API_VERSION, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": dict(meta.get("labels") or {}),
                         **({"ownerReferences": meta["ownerReferences"]} if "ownerReferences" in meta else {})},
            "spec": {"parentRefs": [{"group": "", "kind": "Service", "name": parent, "port": parent_port}],
                     "rules": http_rules}}


def needs_http_routes(svc: ServiceSpec) -> bool:
    """Whether the service would write HTTPRoutes where the cluster serves them (the operator asks only then)."""
    connect = svc.serviceConnectConfiguration
    strategy = svc.deploymentConfiguration.strategy if svc.deploymentConfiguration else None
    meshed = connect is not None and connect.enabled and any(
        s.timeout is not None or strategy in ("BLUE_GREEN", "LINEAR", "CANARY")
        or any(a.testTrafficRules for a in s.clientAliases or []) for s in connect.services or [])
    return bool(blue_green(svc)) or meshed
