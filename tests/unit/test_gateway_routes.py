"""Blue/green load balancers as HTTPRoutes (translate/gateway.py): parentRefs from listener rule ARNs, weights per
strategy step, the route and target-group objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ecs_operator.lifecycle.service_strategy import position, shift_for
from ecs_operator.models import ServiceSpec
from ecs_operator.models.service import DeploymentConfiguration
from ecs_operator.translate.fidelity import FidelityReport
from ecs_operator.translate.gateway import (
    ALTERNATE,
    PRIMARY,
    WEIGHT_TOTAL,
    Traffic,
    parent_ref,
    pods_by_slot,
    routes,
    weights,
    weights_for_test,
)
from ecs_operator.translate.service import SECOND_SLOT, SLOT_LABEL, WORKLOAD

RULE = ("arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/My-ALB/50dc6c495c0c9188/"
        "f2f7dc8efc522ab2/9683b2d02a6cabee")
TEST_RULE = RULE.replace("9683b2d02a6cabee", "1111b2d02a6cabee")
OWNER = {"apiVersion": "ecs.operator.dev/v1", "kind": "Service", "name": "web", "uid": "u1"}


def test_listener_rule_arn_names_the_gateway_of_its_load_balancer() -> None:
    assert parent_ref(RULE) == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "my-alb"}
    nlb = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/net/edge/50dc6c495c0c9188/f2f7dc8efc522ab2"
    assert parent_ref(nlb)["name"] == "edge"  # type: ignore[index]
    assert parent_ref("public/https") == {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                          "sectionName": "https"}
    assert parent_ref("public")["name"] == "public"  # type: ignore[index]
    for bad in ("arn:aws:s3:::bucket", "Public Gateway", "a/b/c", ""):
        assert isinstance(parent_ref(bad), str), bad


def percents(config: dict[str, Any], seconds: list[float]) -> list[float]:
    shift = shift_for(DeploymentConfiguration.model_validate(config), 60)
    assert shift is not None
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [position(shift, start, start + timedelta(seconds=s)).percent for s in seconds]


@pytest.mark.parametrize(("config", "seconds", "expected"), [
    ({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2}},
     [0, 119, 120], [(9000, 1000), (9000, 1000), (0, 10000)]),
    ({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}},
     [0, 60, 120, 180], [(7500, 2500), (5000, 5000), (2500, 7500), (0, 10000)]),
    ({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 33.3, "stepBakeTimeInMinutes": 1}},
     [0, 60, 120, 180], [(6670, 3330), (3340, 6660), (10, 9990), (0, 10000)]),
    ({"strategy": "BLUE_GREEN"}, [0], [(0, 10000)]),
])
def test_weights_follow_the_strategy_steps_exactly(config: dict[str, Any], seconds: list[float],
                                                   expected: list[tuple[int, int]]) -> None:
    """Blue in the first slot (PRIMARY), green in the second (ALTERNATE)."""
    got = [weights(Traffic("", SECOND_SLOT, p), SECOND_SLOT) for p in percents(config, seconds)]
    assert [(w[PRIMARY], w[ALTERNATE]) for w in got] == expected
    assert all(w[PRIMARY] + w[ALTERNATE] == WEIGHT_TOTAL for w in got)


def test_the_next_deployment_shifts_back_to_the_primary_target_group() -> None:
    assert weights(Traffic(SECOND_SLOT, "", 10.0), SECOND_SLOT) == {PRIMARY: 1000, ALTERNATE: 9000}
    assert weights(Traffic(SECOND_SLOT), SECOND_SLOT) == {PRIMARY: 0, ALTERNATE: WEIGHT_TOTAL}  # no deployment
    assert weights_for_test(Traffic("", SECOND_SLOT, 0.0), SECOND_SLOT) == {PRIMARY: 0, ALTERNATE: WEIGHT_TOTAL}
    assert weights_for_test(Traffic(""), SECOND_SLOT) == {PRIMARY: WEIGHT_TOTAL, ALTERNATE: 0}


def lb_service(name: str = "web") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns", "labels": {"a": "b"},
                         "ownerReferences": [{**OWNER, "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"type": "ClusterIP", "ports": [{"name": "port-80", "port": 80, "targetPort": 80, "protocol": "TCP"}]}}


def pod(name: str, workload: str, ip: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {WORKLOAD: workload}},
            "spec": {"nodeName": "n1"}, "status": {"podIP": ip, "phase": "Running",
                                                   "conditions": [{"type": "Ready", "status": "True"}]}}


def spec(advanced: dict[str, Any]) -> ServiceSpec:
    return ServiceSpec.model_validate({
        "taskDefinition": "web:1", "desiredCount": 1, "deploymentConfiguration": {"strategy": "CANARY"},
        "loadBalancers": [{"containerName": "app", "containerPort": 80, "targetGroupArn": "arn:tg/blue",
                           "advancedConfiguration": advanced}]})


ADVANCED = {"alternateTargetGroupArn": "arn:tg/green", "productionListenerRule": RULE, "testListenerRule": TEST_RULE,
            "roleArn": "arn:aws:iam::123456789012:role/ecs-elb"}


def test_routes_weight_the_two_target_group_services_and_test_goes_to_green() -> None:
    workloads = [{"metadata": {"name": "web", "labels": {}}, "spec": {"selector": {"matchLabels": {WORKLOAD: "web"}}}},
                 {"metadata": {"name": "web-b", "labels": {SLOT_LABEL: "b"}},
                  "spec": {"selector": {"matchLabels": {WORKLOAD: "web-b"}}}}]
    slots = pods_by_slot([pod("blue-1", "web", "10.0.0.1"), pod("green-1", "web-b", "10.0.0.2"),
                          pod("other", "elsewhere", "10.0.0.3")], workloads)
    assert {s: [p["metadata"]["name"] for p in ps] for s, ps in slots.items()} == {"": ["blue-1"], SECOND_SLOT: ["green-1"]}
    report = FidelityReport("Service")
    out = routes(spec(ADVANCED), "web", [lb_service()], slots, Traffic("", SECOND_SLOT, 10.0),
                 second_slot=SECOND_SLOT, served=True, report=report)
    assert out.problems == []
    by_key = {(o["kind"], o["metadata"]["name"]): o for o in out.objects}
    assert set(by_key) == {("Service", "web-primary"), ("Service", "web-alternate"), ("EndpointSlice", "web-primary"),
                           ("EndpointSlice", "web-alternate"), ("HTTPRoute", "web"), ("HTTPRoute", "web-test")}
    production = by_key[("HTTPRoute", "web")]
    assert production["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert production["metadata"]["ownerReferences"][0]["controller"] is True
    assert production["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "my-alb"}]
    assert [(b["name"], b["port"], b["weight"]) for b in production["spec"]["rules"][0]["backendRefs"]] == [
        ("web-primary", 80, 9000), ("web-alternate", 80, 1000)]
    test = by_key[("HTTPRoute", "web-test")]
    assert [(b["name"], b["weight"]) for b in test["spec"]["rules"][0]["backendRefs"]] == [
        ("web-primary", 0), ("web-alternate", WEIGHT_TOTAL)]
    assert [e["addresses"] for e in by_key[("EndpointSlice", "web-alternate")]["endpoints"]] == [["10.0.0.2"]]
    assert by_key[("Service", "web-alternate")]["spec"]["type"] == "ClusterIP"
    assert out.origins[("Service", "web-alternate")] == "loadBalancers[0].advancedConfiguration.alternateTargetGroupArn"
    verdicts = {e.path.rsplit(".", 1)[-1]: e.verdict for e in report.entries(spec(ADVANCED).to_json())
                if ".advancedConfiguration." in e.path}
    assert verdicts == {"alternateTargetGroupArn": "exact", "productionListenerRule": "exact",
                        "testListenerRule": "exact", "roleArn": "approximated"}


def test_without_the_crd_nothing_is_written_and_the_ratio_is_reported() -> None:
    report = FidelityReport("Service")
    out = routes(spec(ADVANCED), "web", [lb_service()], {}, Traffic(""), second_slot=SECOND_SLOT, served=False,
                 report=report)
    assert out.objects == [] and out.problems == []
    entry = next(e for e in report.entries(spec(ADVANCED).to_json())
                 if e.path == "loadBalancers[0].advancedConfiguration.productionListenerRule")
    assert entry.verdict == "approximated" and "ratio" in entry.note


def test_a_listener_rule_that_names_no_gateway_is_refused_naming_the_field() -> None:
    out = routes(spec({**ADVANCED, "testListenerRule": "not a rule"}), "web", [lb_service()], {}, Traffic(""),
                 second_slot=SECOND_SLOT, served=True, report=FidelityReport("Service"))
    assert [p.path for p in out.problems] == ["loadBalancers[0].advancedConfiguration.testListenerRule"]
