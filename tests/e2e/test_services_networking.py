"""loadBalancers, serviceRegistries and serviceConnectConfiguration as Kubernetes Services that
select exactly the service's ready tasks, owned by the ECS Service (docs/conversion.md)."""

from __future__ import annotations

from typing import Any

from operator_fixtures import get, wait_for
from service_support import (
    ECS_SERVICE,
    apply_all,
    cluster,
    is_live,
    is_ready,
    merge_patch,
    pods,
    register,
    service,
    steady,
    task_definition,
)

from ecs_operator import API_GROUP

HEALTH_CHECK = {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 5, "timeout": 2, "retries": 1}
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"
REGISTRY = "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-0123456789abcdef"
KUBERNETES_SERVICES = {"web": "ClusterIP", "web-discovery": "None", "web-sc": "ClusterIP", "web-alias-local": "ClusterIP"}


def endpoints(sandbox: Any, namespace: str, name: str) -> tuple[set[str], set[str]]:
    """(ready, not ready) addresses of a Kubernetes Service, from its EndpointSlices."""
    slices = sandbox.kubectl_json("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={name}")["items"]
    ready, unready = set(), set()
    for item in slices:
        for endpoint in item.get("endpoints") or []:
            target = ready if (endpoint.get("conditions") or {}).get("ready") else unready
            target.update(endpoint["addresses"])
    return ready, unready


def selected_exactly(sandbox: Any, namespace: str, expected_ready: int) -> dict[str, tuple[set[str], set[str]]] | None:
    """Every Kubernetes Service's endpoints, once each has exactly the ready tasks' IPs as ready."""
    live = [p for p in pods(sandbox, namespace) if is_live(p) and p["status"].get("podIP")]
    ready = {p["status"]["podIP"] for p in live if is_ready(p)}
    unready = {p["status"]["podIP"] for p in live if not is_ready(p)}
    if len(ready) != expected_ready:
        return None
    seen = {name: endpoints(sandbox, namespace, name) for name in KUBERNETES_SERVICES}
    return seen if all(r == ready and u == unready for r, u in seen.values()) else None


def test_load_balancer_and_discovery_services_select_exactly_the_ready_tasks(sandbox: Any, namespace: str,
                                                                            running_operator: Any) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(healthCheck=HEALTH_CHECK), 1)
    apply_all(sandbox, namespace, service(
        desired=2, healthCheckGracePeriodSeconds=600,
        loadBalancers=[{"targetGroupArn": TARGET_GROUP, "containerName": "app", "containerPort": 80}],
        serviceRegistries=[{"registryArn": REGISTRY, "containerName": "app", "containerPort": 80}],
        serviceConnectConfiguration={"enabled": True, "namespace": "local", "services": [
            {"portName": "http", "discoveryName": "web-sc", "clientAliases": [{"port": 8080, "dnsName": "web-alias.local"}]}]},
    ))
    steady(sandbox, namespace, "web:1", 2)
    owner = get(sandbox, ECS_SERVICE, "web", namespace)["metadata"]["uid"]
    for name, cluster_ip in KUBERNETES_SERVICES.items():
        svc = get(sandbox, "service", name, namespace)
        assert svc, f"Kubernetes Service {name} missing"
        assert (svc["spec"]["clusterIP"] == "None") == (cluster_ip == "None")
        assert "selector" not in svc["spec"]  # the operator writes its EndpointSlice: only essential containers count
        [ref] = svc["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("Service", owner, True)
    assert get(sandbox, "service", "web-alias-local", namespace)["spec"]["ports"][0]["port"] == 8080
    first = wait_for(lambda: selected_exactly(sandbox, namespace, 2), 60, what="endpoints = the 2 ready tasks")
    assert all(not unready for _, unready in first.values())

    # web:2 fails its health check but is inside the grace period: both revisions run, 2 of 4 ready
    register(sandbox, namespace, task_definition(healthCheck=HEALTH_CHECK, annotations={"sim.ecs.operator.dev/unready": "app"}), 2)
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    wait_for(lambda: sum(1 for p in pods(sandbox, namespace) if is_live(p) and p["status"].get("podIP")) == 4, 60,
             what="4 tasks with addresses")
    mixed = wait_for(lambda: selected_exactly(sandbox, namespace, 2), 60, what="endpoints = the ready tasks only")
    for name, (ready, unready) in mixed.items():
        assert len(ready) == 2 and len(unready) == 2, name

    sandbox.kubectl("annotate", ECS_SERVICE, "web", "-n", namespace, f"{API_GROUP}/force-delete=true")
    sandbox.kubectl("delete", ECS_SERVICE, "web", "-n", namespace, "--wait=false")
    wait_for(lambda: not any(get(sandbox, "service", name, namespace) for name in KUBERNETES_SERVICES), 120,
             what="the Kubernetes Services removed with the ECS Service")
