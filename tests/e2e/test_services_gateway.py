"""Blue/green load balancers (`loadBalancers[].advancedConfiguration`) as Gateway API HTTPRoutes on the real
control plane, with the Gateway API's standard CRDs installed (operator_fixtures.crds): the API server admits and
validates every route the operator writes (docs/conversion.md §Blue/green load balancers).

The operator runs with --deployment-minute-seconds 5 (operator_fixtures.py); every HTTPRoute change is recorded by a
watch, so the weights are read at each step.
"""

from __future__ import annotations

import json
import time
from typing import Any

from operator_fixtures import get, wait_for
from service_support import (
    DEPLOYMENT_LABEL,
    ECS_SERVICE,
    Watch,
    api_client,
    apply_all,
    cluster,
    is_live,
    merge_patch,
    pods,
    register,
    service,
    status,
    steady,
    task_definition,
)

from ecs_operator.adapters.kube import RESOURCES

MINUTE = 5.0
SLACK = 1.5
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/edge/50dc6c495c0c9188/f2f7dc8efc522ab2"
ADVANCED = {"alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/green/1",
            "productionListenerRule": f"{ALB}/9683b2d02a6cabee", "testListenerRule": f"{ALB}/1111b2d02a6cabee",
            "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers"}
LB = [{"containerName": "app", "containerPort": 80,
       "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/blue/1",
       "advancedConfiguration": ADVANCED}]
GATEWAY = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "edge"},
           "spec": {"gatewayClassName": "example", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}


def weights(route: dict[str, Any]) -> dict[str, int]:
    """backendRef Service name -> weight."""
    return {b["name"]: b["weight"] for rule in route["spec"]["rules"] for b in rule["backendRefs"]}


def steps(watch: Watch, name: str) -> list[tuple[float, dict[str, int]]]:
    """(when, weights) of the route `name` at each change of its weights, from the watch's start."""
    initial = [(0.0, watch.snapshots[0][name])] if name in watch.snapshots[0] else []
    out: list[tuple[float, dict[str, int]]] = []
    for at, route in [*initial, *((c.at, c.object) for c in watch.since(0) if c.type != "DELETED")]:
        if route["metadata"]["name"] == name and (not out or out[-1][1] != weights(route)):
            out.append((at, weights(route)))
    return out


def test_canary_shifts_route_weights_in_its_steps_and_tests_green(sandbox: Any, namespace: str,
                                                                   running_operator: Any) -> None:
    began = time.monotonic()
    apply_all(sandbox, namespace, cluster(), GATEWAY)
    register(sandbox, namespace, task_definition(), 1)
    config = {"strategy": "CANARY", "bakeTimeInMinutes": 1,
              "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2}}
    apply_all(sandbox, namespace, service(desired=2, loadBalancers=LB, deploymentConfiguration=config))
    steady(sandbox, namespace, "web:1", 2, timeout=60)
    route = wait_for(lambda: get(sandbox, "httproutes.gateway.networking.k8s.io", "web", namespace), 30,
                     what="the production HTTPRoute")
    owner = get(sandbox, ECS_SERVICE, "web", namespace)["metadata"]["uid"]
    [ref] = route["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("Service", owner, True)
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}]
    assert weights(route) == {"web-primary": 10000, "web-alternate": 0}  # web:1 runs in the primary target group

    watch = Watch(api_client(sandbox), RESOURCES["HTTPRoute"].path(namespace)).start()
    try:
        register(sandbox, namespace, task_definition(image="nginx:2"), 2)
        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
        final = steady(sandbox, namespace, "web:2", 2, timeout=90)
    finally:
        watch.stop()

    production = steps(watch, "web")
    assert [w for _, w in production] == [{"web-primary": 10000, "web-alternate": 0},
                                          {"web-primary": 9000, "web-alternate": 1000},  # exactly 10%, with 2 tasks
                                          {"web-primary": 0, "web-alternate": 10000}], production
    assert production[2][0] - production[1][0] >= 2 * MINUTE - SLACK, production  # the canary bake
    test = steps(watch, "web-test")
    assert [w for _, w in test][:2] == [{"web-primary": 10000, "web-alternate": 0},
                                        {"web-primary": 0, "web-alternate": 10000}], test
    assert test[1][0] <= production[1][0] + SLACK, (test, production)  # test traffic on green from the start
    # green's tasks are the alternate target group's, blue's Deployment is gone, the primary lists no task
    green = final["deployments"][0]["id"].removeprefix("ecs-svc/")
    live = {p["metadata"]["name"] for p in pods(sandbox, namespace) if is_live(p)
            and p["metadata"]["labels"][DEPLOYMENT_LABEL] == green}
    slices = {s["metadata"]["name"]: {e["targetRef"]["name"] for e in s.get("endpoints") or []}
              for s in sandbox.kubectl_json("get", "endpointslices", "-n", namespace)["items"]}
    assert slices["web-alternate"] == live and len(live) == 2
    wait_for(lambda: not {e["targetRef"]["name"] for e in (get(sandbox, "endpointslice", "web-primary", namespace)
                                                          .get("endpoints") or [])}, 30, what="no task in the primary")
    assert [d["metadata"]["name"] for d in sandbox.kubectl_json("get", "deployments", "-n", namespace)["items"]] == ["web-b"]
    fidelity = {f["path"]: f["verdict"] for f in (status(sandbox, namespace).get("fidelity") or {}).get("fields") or []}
    assert not any(p.endswith(("productionListenerRule", "alternateTargetGroupArn")) for p in fidelity), fidelity
    print(f"canary through an HTTPRoute: {time.monotonic() - began:.1f} s")


def test_a_tenants_route_of_that_name_is_not_taken_over(sandbox: Any, namespace: str, running_operator: Any) -> None:
    foreign = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "web"},
               "spec": {"parentRefs": [{"name": "edge"}], "rules": [{"backendRefs": [{"name": "mine", "port": 8080}]}]}}
    apply_all(sandbox, namespace, cluster(), foreign)
    before = get(sandbox, "httproutes.gateway.networking.k8s.io", "web", namespace)
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=1, loadBalancers=LB,
                                          deploymentConfiguration={"strategy": "BLUE_GREEN"}))

    def refused() -> str | None:
        ready = next((c for c in status(sandbox, namespace).get("conditions") or [] if c["type"] == "Ready"), {})
        ok = ready.get("status") == "False" and ready.get("reason") == "ResourceConflict"
        return ready["message"] if ok and f"HTTPRoute {namespace}/web" in ready["message"] else None

    message = wait_for(refused, 60, what="ResourceConflict naming the HTTPRoute")
    assert "loadBalancers[0].advancedConfiguration.productionListenerRule" in message, message
    after = get(sandbox, "httproutes.gateway.networking.k8s.io", "web", namespace)
    assert (after["metadata"]["resourceVersion"], json.dumps(after["spec"], sort_keys=True)) == \
        (before["metadata"]["resourceVersion"], json.dumps(before["spec"], sort_keys=True))
    assert not after["metadata"].get("ownerReferences")


def test_a_blue_green_failure_during_the_bake_puts_all_weight_back_on_blue(sandbox: Any, namespace: str,
                                                                          running_operator: Any) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 4,
              "deploymentCircuitBreaker": {"enable": True, "rollback": True,
                                           "thresholdConfiguration": {"type": "COUNT", "value": 1}}}
    apply_all(sandbox, namespace, service(desired=2, loadBalancers=LB, deploymentConfiguration=config))
    first = steady(sandbox, namespace, "web:1", 2, timeout=60)
    watch = Watch(api_client(sandbox), RESOURCES["HTTPRoute"].path(namespace)).start()
    try:
        exiting = {"sim.ecs.operator.dev/exit": "app=1", "sim.ecs.operator.dev/exit-after": "10s"}
        register(sandbox, namespace, task_definition(image="nginx:2", annotations=exiting), 2)
        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
        wait_for(lambda: any(d["taskDefinition"] == "web:2" and d["rolloutState"] == "FAILED"
                             for d in status(sandbox, namespace).get("deployments") or []), 60, what="green FAILED")
        final = steady(sandbox, namespace, "web:1", 2, timeout=60)
    finally:
        watch.stop()
    assert final["deployments"][0]["id"] == first["deployments"][0]["id"]  # the rollback
    # all at once to green, then back to blue, whose target group (primary) never lost its tasks
    assert [w for _, w in steps(watch, "web")] == [{"web-primary": 10000, "web-alternate": 0},
                                                   {"web-primary": 0, "web-alternate": 10000},
                                                   {"web-primary": 10000, "web-alternate": 0}]
    assert [w for _, w in steps(watch, "web-test")][-1] == {"web-primary": 10000, "web-alternate": 0}


def test_service_connect_test_traffic_rules_and_timeout_become_an_admitted_gamma_route(
        sandbox: Any, namespace: str, running_operator: Any) -> None:
    """What a GAMMA mesh would apply; the API server's validation of the route is the check here (no mesh runs)."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(portMappings=[{"containerPort": 9000, "name": "api"}]), 1)
    connect = {"enabled": True, "namespace": "shop", "services": [
        {"portName": "api", "discoveryName": "orders", "timeout": {"perRequestTimeoutSeconds": 15},
         "clientAliases": [{"port": 80, "dnsName": "orders.internal",
                            "testTrafficRules": {"header": {"name": "x-green", "value": {"exact": "1"}}}}]}]}
    apply_all(sandbox, namespace, service(desired=1, serviceConnectConfiguration=connect,
                                          deploymentConfiguration={"strategy": "CANARY"}))
    steady(sandbox, namespace, "web:1", 1, timeout=60)
    route = wait_for(lambda: get(sandbox, "httproutes.gateway.networking.k8s.io", "orders-internal-mesh", namespace),
                     30, what="the GAMMA route")
    assert route["spec"]["parentRefs"] == [{"group": "", "kind": "Service", "name": "orders-internal", "port": 80}]
    test, rest = route["spec"]["rules"]
    assert test["matches"][0]["headers"] == [{"type": "Exact", "name": "x-green", "value": "1"}]
    assert test["timeouts"] == rest["timeouts"] == {"request": "15s"}
    # no deployment: the rest and the test header all on production (the primary target Service)
    assert [{b["name"]: b["weight"] for b in r["backendRefs"]} for r in (test, rest)] == \
        [{"orders-primary": 10000, "orders-alternate": 0}] * 2
    live = {p["metadata"]["name"] for p in pods(sandbox, namespace) if is_live(p)}
    primary = get(sandbox, "endpointslice", "orders-primary", namespace)
    assert {e["targetRef"]["name"] for e in primary.get("endpoints") or []} == live
    fidelity = {f["path"]: f["verdict"] for f in (status(sandbox, namespace).get("fidelity") or {}).get("fields") or []}
    assert fidelity["serviceConnectConfiguration.services[0].timeout.perRequestTimeoutSeconds"] == "approximated"
