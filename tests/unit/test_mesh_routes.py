"""Service Connect test traffic rules and per-request timeouts as GAMMA HTTPRoutes (translate/mesh.py)."""

from __future__ import annotations

from typing import Any

from ecs_operator.models import ServiceSpec
from ecs_operator.translate.fidelity import FidelityReport
from ecs_operator.translate.gateway import Traffic
from ecs_operator.translate.mesh import header_match, mesh_routes, needs_http_routes
from ecs_operator.translate.service import SECOND_SLOT


def spec(alias: dict[str, Any], timeout: dict[str, Any] | None = None, strategy: str = "ROLLING") -> ServiceSpec:
    return ServiceSpec.model_validate({
        "taskDefinition": "orders:1", "deploymentConfiguration": {"strategy": strategy},
        "serviceConnectConfiguration": {"enabled": True, "namespace": "shop", "services": [
            {"portName": "api", "discoveryName": "orders", "clientAliases": [alias],
             **({"timeout": timeout} if timeout else {})}]}})


def base(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "ns", "labels": {}},
            "spec": {"ports": [{"name": "api", "port": 80, "targetPort": 9000, "protocol": "TCP"}]}}


RULES = {"header": {"name": "x-canary", "value": {"exact": "yes"}}}


def test_header_rules() -> None:
    assert header_match(RULES) == {"type": "Exact", "name": "x-canary", "value": "yes"}
    assert header_match({"header": {"name": "x-canary"}}) == {"type": "RegularExpression", "name": "x-canary", "value": ".*"}
    assert header_match({}) is None


def test_a_gamma_route_sends_the_test_header_to_green_and_times_out() -> None:
    svc = spec({"port": 80, "dnsName": "orders.internal", "testTrafficRules": RULES}, {"perRequestTimeoutSeconds": 15},
               "CANARY")
    assert needs_http_routes(svc)
    report = FidelityReport("Service")
    out = mesh_routes(svc, "shop", [base("orders"), base("orders-internal")], {}, Traffic("", SECOND_SLOT, 10.0),
                      shifting_strategy=True, second_slot=SECOND_SLOT, served=True, report=report)
    route = next(o for o in out.objects if o["kind"] == "HTTPRoute")
    assert route["metadata"]["name"] == "orders-internal-mesh"
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "orders-internal", "port": 80}]
    test, rest = route["spec"]["rules"]
    assert test["matches"] == [{"headers": [{"type": "Exact", "name": "x-canary", "value": "yes"}]}]
    assert [(b["name"], b["weight"]) for b in test["backendRefs"]] == [("orders-primary", 0), ("orders-alternate", 10000)]
    assert [(b["name"], b["weight"]) for b in rest["backendRefs"]] == [("orders-primary", 9000), ("orders-alternate", 1000)]
    assert test["timeouts"] == rest["timeouts"] == {"request": "15s"}
    verdicts = {e.path: e.verdict for e in report.entries(svc.to_json())}
    assert verdicts["serviceConnectConfiguration.services[0].clientAliases[0].testTrafficRules.header.name"] == "approximated"
    assert verdicts["serviceConnectConfiguration.services[0].timeout.perRequestTimeoutSeconds"] == "approximated"


def test_nothing_without_the_crds_or_anything_to_route() -> None:
    svc = spec({"port": 80, "dnsName": "orders.internal", "testTrafficRules": RULES})
    report = FidelityReport("Service")
    out = mesh_routes(svc, "shop", [base("orders")], {}, Traffic(""), shifting_strategy=False,
                      second_slot=SECOND_SLOT, served=False, report=report)
    assert out.objects == []
    assert not needs_http_routes(spec({"port": 80, "dnsName": "orders"}))
    plain = mesh_routes(spec({"port": 80, "dnsName": "orders"}), "shop", [base("orders")], {}, Traffic(""),
                        shifting_strategy=False, second_slot=SECOND_SLOT, served=True, report=FidelityReport("Service"))
    assert plain.objects == []
