"""Service Connect endpoints as Kubernetes Services and hostAliases (docs/ecs-semantics.md §Service Connect)."""

from __future__ import annotations

from typing import Any

from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import ServicePlan, service_objects
from ecs_operator.translate.service_connect import connect_namespace, endpoints, host_aliases

OWNER = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "name": "orders", "uid": "u-1"}
REVISION = Revision("orders", 1, RegisterTaskDefinition.model_validate({"family": "orders", "containerDefinitions": [
    {"name": "app", "image": "orders", "memory": 64, "portMappings": [
        {"name": "api", "containerPort": 8080}, {"name": "admin", "containerPort": 9000}]}]}))
LB = [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 8080}]


def connect(*services: dict[str, Any], namespace: str | None = "shop") -> dict[str, Any]:
    return {"enabled": True, **({"namespace": namespace} if namespace else {}), "services": list(services)}


def plan(spec: dict[str, Any], hosts: list[dict[str, Any]] | None = None) -> ServicePlan:
    svc = ServiceSpec.model_validate({"taskDefinition": "orders:1", "desiredCount": 1, **spec})
    return service_objects(svc, name="orders", namespace="ns", revision=REVISION, cluster="default", settings=Settings(),
                           owner=OWNER, connect_namespace=connect_namespace(svc, "shop") or "", host_aliases=hosts)


def ports(p: ServicePlan) -> dict[str, set[tuple[int, int]]]:
    return {s["metadata"]["name"]: {(x["port"], x["targetPort"]) for x in s["spec"]["ports"]} for s in p.services}


def test_an_alias_named_like_the_load_balancer_service_shares_it_and_a_dotted_one_gets_its_own() -> None:
    out = plan({"loadBalancers": LB, "serviceConnectConfiguration": connect(
        {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "orders.internal"}]},
        {"portName": "admin", "discoveryName": "orders-admin", "clientAliases": [{"port": 80, "dnsName": "orders"}]})})
    assert not out.problems
    assert ports(out) == {"orders": {(8080, 8080), (80, 9000)}, "api": {(80, 8080)}, "orders-internal": {(80, 8080)},
                          "orders-admin": {(80, 9000)}}
    [orders] = [s for s in out.services if s["metadata"]["name"] == "orders"]
    assert len({p["name"] for p in orders["spec"]["ports"]}) == 2  # Kubernetes wants distinct port names
    entries = {e.path: e for e in out.report.entries(ServiceSpec.model_validate(
        {"taskDefinition": "orders:1", "serviceConnectConfiguration": connect(
            {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "orders.internal"}]})}).to_json())}
    assert entries["serviceConnectConfiguration.services[0].clientAliases[0].dnsName"].verdict == "approximated"


def test_a_port_both_need_for_different_container_ports_is_refused_naming_both_fields() -> None:
    out = plan({"loadBalancers": LB, "serviceConnectConfiguration": connect(
        {"portName": "admin", "clientAliases": [{"port": 8080, "dnsName": "orders"}]})})
    [problem] = out.problems
    assert problem.path == "serviceConnectConfiguration.services[0].clientAliases[0].dnsName"
    assert "loadBalancers[0]" in problem.message and "8080" in problem.message and "9000" in problem.message


def test_an_alias_on_the_headless_discovery_service_is_refused() -> None:
    out = plan({"serviceRegistries": [{"registryArn": "arn:sd", "containerName": "app", "containerPort": 8080}],
                "serviceConnectConfiguration": connect(
                    {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "orders-discovery"}]})})
    assert [p.path for p in out.problems] == ["serviceConnectConfiguration.services[0].clientAliases[0].dnsName"]
    assert "headless" in out.problems[0].message


def test_a_name_kubernetes_cannot_serve_is_reported_not_silently_dropped() -> None:
    out = plan({"serviceConnectConfiguration": connect(
        {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "orders_db.internal"}]})})
    assert not out.problems
    [lost] = out.unserved
    assert lost.startswith("serviceConnectConfiguration.services[0].clientAliases[0].dnsName: 'orders_db.internal':80")
    assert "orders-db-internal" not in ports(out)


def test_default_dns_name_is_discovery_name_dot_namespace() -> None:
    svc = ServiceSpec.model_validate({"taskDefinition": "orders:1", "serviceConnectConfiguration": connect(
        {"portName": "api", "clientAliases": [{"port": 80}]}, {"portName": "admin", "discoveryName": "ops", "clientAliases": [{"port": 90}]})})
    assert [(e.dns_name, e.port, e.service, e.hosts_entry) for e in endpoints(svc, "shop")] == [
        ("api.shop", 80, "api-shop", True), ("ops.shop", 90, "ops-shop", True)]
    # an ARN names no namespace: the default name is unknown
    assert [e.service for e in endpoints(svc, "arn:aws:servicediscovery:us-east-1:1:namespace/ns-1")] == [None, None]


def test_namespace_comes_from_the_service_or_the_cluster_default() -> None:
    def ns(config: dict[str, Any] | None) -> str | None:
        return connect_namespace(ServiceSpec.model_validate(
            {"taskDefinition": "x:1", **({"serviceConnectConfiguration": config} if config else {})}), "shop")
    assert ns(None) is None and ns({"enabled": False}) is None
    assert ns({"enabled": True}) == "shop" and ns({"enabled": True, "namespace": "audit"}) == "audit"


def test_host_aliases_reach_every_task_template_in_a_stable_order() -> None:
    hosts = host_aliases([("10.0.0.9", "b.internal"), ("10.0.0.1", "orders.internal"), ("10.0.0.9", "a.internal")])
    assert hosts == [{"ip": "10.0.0.1", "hostnames": ["orders.internal"]}, {"ip": "10.0.0.9", "hostnames": ["a.internal", "b.internal"]}]
    out = plan({}, hosts)
    assert out.workloads[0]["spec"]["template"]["spec"]["hostAliases"] == hosts
    assert "hostAliases" not in plan({}).workloads[0]["spec"]["template"]["spec"]


def test_a_client_gets_the_dotted_names_of_the_other_services_of_its_namespace_from_services_they_control() -> None:
    from ecs_operator.handlers.connect import connect_hosts

    def ecs(name: str, uid: str, config: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"name": name, "uid": uid}, "spec": {"taskDefinition": "x:1", "serviceConnectConfiguration": config}}

    alias = {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "Orders.Internal"}]}
    ix: dict[str, Any] = dict(
        services={("ns", "orders"): [ecs("orders", "u-o", connect(alias))],
                  ("ns", "audit"): [ecs("audit", "u-a", connect({**alias, "clientAliases": [{"port": 80, "dnsName": "audit.internal"}]},
                                                                namespace="audit"))],
                  ("ns", "frontend"): [ecs("frontend", "u-f", {"enabled": True})],
                  ("other", "orders"): [ecs("orders", "u-x", connect(alias))]},
        clusters={("ns", "default"): [{"spec": {"serviceConnectDefaults": {"namespace": "shop"}}}],
                  ("other", "default"): [{"spec": {}}]},
        owned_services={("ns", "u-o"): [{"metadata": {"name": "orders-internal"}, "spec": {"clusterIP": "10.0.0.7"}}],
                        ("ns", "u-a"): [{"metadata": {"name": "audit-internal"}, "spec": {"clusterIP": "10.0.0.8"}}],
                        ("ns", "u-f"): [{"metadata": {"name": "orders-internal"}, "spec": {"clusterIP": "10.6.6.6"}}]},
    )
    assert connect_hosts("ns", "frontend", "shop", **ix) == [{"ip": "10.0.0.7", "hostnames": ["orders.internal"]}]
    assert connect_hosts("ns", "orders", "shop", **ix) == []  # its own names: not in its own tasks
    assert connect_hosts("ns", "frontend", "audit", **ix) == [{"ip": "10.0.0.8", "hostnames": ["audit.internal"]}]
