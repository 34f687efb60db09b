"""Service Connect as ECS clients use it: every client alias resolves by its dnsName on its port in the tasks
of the services that share the Service Connect namespace (docs/ecs-semantics.md §Service Connect).

kwok runs no DNS and no traffic, so resolution is asserted on what Kubernetes holds, which is what a
cluster's DNS and kube-proxy serve from: the Services (name, port -> targetPort), their EndpointSlices (the
ready tasks), and the client Pods' hostAliases (/etc/hosts) pointing at the ClusterIP of the right Service.
A label-shaped dnsName (`orders`) is a Service in the namespace (the Pods' DNS search path finds it); a dotted
one (`orders.internal`) is an /etc/hosts entry of each client task.
"""

from __future__ import annotations

from typing import Any

from ecs_objects import condition, events_seen
from operator_fixtures import get, wait_for
from service_support import (
    ECS_SERVICE,
    apply_all,
    is_live,
    is_ready,
    manifest,
    merge_patch,
    pods,
    register,
    service,
    status,
    steady,
)

from ecs_operator import API_GROUP

TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/orders/0123456789abcdef"


def orders_task_definition() -> dict[str, Any]:
    """The API on 8080 (`api`), an admin port on 9000 (`admin`)."""
    return manifest("TaskDefinition", "orders", {
        "family": "orders",
        "containerDefinitions": [{"name": "app", "image": "orders:1", "memory": 64, "portMappings": [
            {"name": "api", "containerPort": 8080, "appProtocol": "http"},
            {"name": "admin", "containerPort": 9000}]}],
    })


def client_task_definition(image: str = "frontend:1") -> dict[str, Any]:
    return manifest("TaskDefinition", "frontend", {
        "family": "frontend",
        "containerDefinitions": [{"name": "web", "image": image, "memory": 64,
                                  "environment": [{"name": "ORDERS_URL", "value": "http://orders.internal:80"},
                                                  {"name": "ORDERS_ADMIN", "value": "http://orders:80"},
                                                  {"name": "ORDERS_LB", "value": "http://orders:8080"}]}],
    })


def orders_service(**extra: Any) -> dict[str, Any]:
    """The create-service input: an ELB target group on 8080 (Kubernetes Service `orders`) and Service Connect
    endpoints orders.internal:80 (the API) and orders:80 (admin), the latter named like the load balancer's."""
    return service("orders", "orders:1", desired=2,
                   loadBalancers=[{"targetGroupArn": TARGET_GROUP, "containerName": "app", "containerPort": 8080}],
                   serviceConnectConfiguration={"enabled": True, "namespace": "shop", "services": [
                       {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "orders.internal"}]},
                       {"portName": "admin", "discoveryName": "orders-admin", "clientAliases": [{"port": 80, "dnsName": "orders"}]},
                   ]}, **extra)


def ports(svc: dict[str, Any]) -> set[tuple[int, int]]:
    return {(p["port"], p["targetPort"]) for p in svc["spec"]["ports"]}


def slices(sandbox: Any, namespace: str, name: str) -> tuple[set[str], set[int]]:
    """(ready addresses, target ports) of a Service's EndpointSlices: where its traffic goes."""
    items = sandbox.kubectl_json("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={name}")["items"]
    ready = {a for s in items for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready") for a in e["addresses"]}
    return ready, {p["port"] for s in items for p in s.get("ports") or []}


def ready_ips(sandbox: Any, namespace: str, service_name: str) -> set[str]:
    return {p["status"]["podIP"] for p in pods(sandbox, namespace, f"{API_GROUP}/service={service_name}")
            if is_live(p) and is_ready(p) and p["status"].get("podIP")}


def test_client_aliases_resolve_as_ecs_clients_write_them(sandbox: Any, namespace: str, running_operator: Any) -> None:
    apply_all(sandbox, namespace, manifest("Cluster", "default", {
        "clusterName": "default", "serviceConnectDefaults": {"namespace": "shop"}}))
    register(sandbox, namespace, orders_task_definition(), 1)
    register(sandbox, namespace, client_task_definition(), 1)
    # a client that runs before orders exists: its tasks get the names with its next deployment, as in ECS
    apply_all(sandbox, namespace, service("frontend", "frontend:1", desired=2, serviceConnectConfiguration={"enabled": True}))
    steady(sandbox, namespace, "frontend:1", 2, name="frontend")
    first_tasks = {p["metadata"]["uid"] for p in pods(sandbox, namespace, f"{API_GROUP}/service=frontend") if is_live(p)}
    apply_all(sandbox, namespace, orders_service())
    steady(sandbox, namespace, "orders:1", 2, name="orders")

    # orders:8080 (the load balancer's port) and orders:80 (the alias) on one Service: nothing merged away
    orders = get(sandbox, "service", "orders", namespace)
    assert ports(orders) == {(8080, 8080), (80, 9000)}
    # orders.internal:80: a Service of its own (a dotted name is no Service name), port 80 to the API's 8080
    internal = get(sandbox, "service", "orders-internal", namespace)
    assert ports(internal) == {(80, 8080)}
    owner = get(sandbox, ECS_SERVICE, "orders", namespace)["metadata"]["uid"]
    for svc in (orders, internal):
        assert "selector" not in svc["spec"]  # the operator writes its EndpointSlice: only essential containers count
        [ref] = svc["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("Service", owner, True)
    tasks = ready_ips(sandbox, namespace, "orders")
    assert len(tasks) == 2
    wait_for(lambda: slices(sandbox, namespace, "orders") == (tasks, {8080, 9000}), 60,
             what="orders:80 and orders:8080 reach the ready orders tasks")
    wait_for(lambda: slices(sandbox, namespace, "orders-internal") == (tasks, {8080}), 60,
             what="orders.internal:80 reaches the ready orders tasks' 8080")

    # frontend's running tasks are left alone: no task is replaced because an endpoint appeared
    steady(sandbox, namespace, "frontend:1", 2, name="frontend")
    live = [p for p in pods(sandbox, namespace, f"{API_GROUP}/service=frontend") if is_live(p)]
    assert {p["metadata"]["uid"] for p in live} == first_tasks and all("hostAliases" not in p["spec"] for p in live)
    # its next deployment (the namespace from the cluster's serviceConnectDefaults): each task's /etc/hosts
    # maps orders.internal to the ClusterIP of orders-internal
    register(sandbox, namespace, client_task_definition("frontend:2"), 2)
    merge_patch(sandbox, namespace, ECS_SERVICE, "frontend", {"spec": {"taskDefinition": "frontend:2"}})
    expected = [{"ip": internal["spec"]["clusterIP"], "hostnames": ["orders.internal"]}]

    def frontend_resolves() -> list[dict[str, Any]] | None:
        live = [p for p in pods(sandbox, namespace, f"{API_GROUP}/service=frontend") if is_live(p)]
        return live if len(live) == 2 and all(p["spec"].get("hostAliases") == expected for p in live) else None

    wait_for(frontend_resolves, 120, what="both frontend tasks resolve orders.internal")
    steady(sandbox, namespace, "frontend:2", 2, name="frontend")
    # a client started after orders has the name at once; another Service Connect namespace (audit) or none
    # (batch): ECS gives those tasks no names of `shop`
    apply_all(sandbox, namespace,
              service("late", "frontend:1", desired=1, serviceConnectConfiguration={"enabled": True, "namespace": "shop"}),
              service("audit", "frontend:1", desired=1, serviceConnectConfiguration={"enabled": True, "namespace": "audit"}),
              service("batch", "frontend:1", desired=1))
    for name in ("late", "audit", "batch"):
        steady(sandbox, namespace, "frontend:1", 1, name=name)
    [late] = [p for p in pods(sandbox, namespace, f"{API_GROUP}/service=late") if is_live(p)]
    assert late["spec"].get("hostAliases") == expected
    for name in ("audit", "batch"):
        for pod in (p for p in pods(sandbox, namespace, f"{API_GROUP}/service={name}") if is_live(p)):
            assert "hostAliases" not in pod["spec"], name

    report = get(sandbox, ECS_SERVICE, "orders", namespace)["status"]["fidelity"]["fields"]
    [entry] = [f for f in report if f["path"] == "serviceConnectConfiguration.services[0].clientAliases[0].dnsName"]
    assert "orders-internal" in entry["target"] and "hostAliases" in entry["note"]


def test_an_alias_that_needs_a_taken_port_of_the_load_balancer_service_is_refused(
        sandbox: Any, namespace: str, running_operator: Any) -> None:
    """orders:8080 cannot be both the load balancer's port (to 8080) and an alias to 9000: refused, naming the alias."""
    apply_all(sandbox, namespace, manifest("Cluster", "default", {"clusterName": "default"}))
    register(sandbox, namespace, orders_task_definition(), 1)
    clash = orders_service()
    clash["spec"]["serviceConnectConfiguration"]["services"][1]["clientAliases"] = [{"port": 8080, "dnsName": "orders"}]
    apply_all(sandbox, namespace, clash)

    def refused() -> str | None:
        conditions = (get(sandbox, ECS_SERVICE, "orders", namespace).get("status") or {}).get("conditions") or []
        ready = next((c for c in conditions if c["type"] == "Ready"), None)
        return ready["message"] if ready and ready["status"] == "False" else None

    message = wait_for(refused, 60, what="the Service refused")
    assert "serviceConnectConfiguration.services[1].clientAliases[0]" in message and "loadBalancers[0]" in message
    assert get(sandbox, "service", "orders", namespace) == {}  # nothing half-applied
    assert sandbox.kubectl_json("get", "deployments", "-n", namespace)["items"] == []


def test_a_name_kubernetes_cannot_serve_is_a_condition_an_event_and_a_fidelity_entry(
        sandbox: Any, namespace: str, running_operator: Any) -> None:
    """ECS allows '_' in a dnsName; Kubernetes serves no such name (no Service, no hostAliases entry)."""
    apply_all(sandbox, namespace, manifest("Cluster", "default", {"clusterName": "default"}))
    register(sandbox, namespace, orders_task_definition(), 1)
    apply_all(sandbox, namespace, service("orders", "orders:1", desired=1, serviceConnectConfiguration={
        "enabled": True, "namespace": "shop", "services": [
            {"portName": "api", "clientAliases": [{"port": 80, "dnsName": "orders_db.internal"}]}]}))
    steady(sandbox, namespace, "orders:1", 1, name="orders")
    field = "serviceConnectConfiguration.services[0].clientAliases[0].dnsName"
    state = wait_for(lambda: (s := status(sandbox, namespace, "orders")) and condition(s, "ServiceConnect") and s,
                     60, what="the ServiceConnect condition")
    lost = condition(state, "ServiceConnect")
    assert (lost["status"], lost["reason"]) == ("False", "NameNotServed")
    assert lost["message"].startswith(f"{field}: 'orders_db.internal':80 cannot be served")
    assert condition(state)["status"] == "True"  # the service itself runs
    [entry] = [f for f in state["fidelity"]["fields"] if f["path"] == field]
    assert entry["verdict"] == "unsupported" and "orders_db.internal" in entry["note"]
    [event] = events_seen(sandbox, namespace, "orders", "ServiceConnectNameNotServed")
    assert event["type"] == "Warning" and field in event["message"]
    assert {s["metadata"]["name"] for s in sandbox.kubectl_json("get", "services", "-n", namespace)["items"]} == {"api"}
