"""Operator-maintained memberOf labels: what a Service's template asks for, the per-namespace bound,
and which Nodes carry which label (ecs_operator/member_of.py)."""

from __future__ import annotations

from typing import Any

from ecs_operator import labels as L
from ecs_operator.instances import registration_labels
from ecs_operator.member_of import Use, bounded, label_patch, uses_of, wanted
from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.placement.affinity import MAX_MAINTAINED_LABELS
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import ServicePlan, service_objects

T3 = "attribute:ecs.instance-type =~ t3.*"
IDLE = "runningTasksCount == 0"


def plan(expressions: list[str], in_use: frozenset[str] = frozenset(), td_expressions: tuple[str, ...] = ()) -> ServicePlan:
    definition = RegisterTaskDefinition.model_validate({
        "family": "web", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64}],
        "placementConstraints": [{"type": "memberOf", "expression": e} for e in td_expressions]})
    spec = ServiceSpec.model_validate({"taskDefinition": "web:1", "desiredCount": 2,
                                       "placementConstraints": [{"type": "memberOf", "expression": e} for e in expressions]})
    return service_objects(spec, name="web", namespace="ns", revision=Revision("web", 1, definition), cluster="default",
                           settings=Settings(), member_of_labels=in_use)


def template(p: ServicePlan) -> dict[str, Any]:
    assert p.problems == []
    return p.workloads[0]["spec"]["template"]  # type: ignore[no-any-return]


def node(name: str, instance_type: str, namespace: str = "ns", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "uid": f"uid-{name}", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "labels": {**registration_labels(namespace, "default"),
                                    "node.kubernetes.io/instance-type": instance_type, **labels}}}


def pod(namespace: str) -> dict[str, Any]:
    return {"metadata": {"namespace": namespace, "annotations": {}}, "status": {"phase": "Running"}}


def test_the_template_requires_the_label_and_names_its_expression_never_a_node() -> None:
    meta = template(plan([T3]))["metadata"]
    key = L.member_of_label(T3, None)
    assert meta["annotations"][key] == T3
    terms = template(plan([T3]))["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert all({"key": key, "operator": "In", "values": ["true"]} in t["matchExpressions"] for t in terms["nodeSelectorTerms"])
    assert "kubernetes.io/hostname" not in str(terms)
    report = {e.path: e for e in plan([T3]).report.entries({"placementConstraints": [{"type": "memberOf", "expression": T3}]})}
    entry = report["placementConstraints[0].expression"]
    assert entry.verdict == "exact" and "without the operator no node carries the label" in entry.note


def test_the_per_namespace_bound_refuses_the_expression_that_exceeds_it() -> None:
    in_use = frozenset(f"{L.MEMBER_OF_PREFIX}{i:020x}" for i in range(MAX_MAINTAINED_LABELS - 1))
    assert plan([T3], in_use).problems == []
    assert plan([T3], in_use | {L.member_of_label(T3, None)}).problems == []  # a label already in use costs nothing
    refused = plan(["attribute:ecs.instance-type == m5.large", T3, IDLE], in_use)
    assert [p.path for p in refused.problems] == ["placementConstraints[2].expression"]
    assert f"more than the {MAX_MAINTAINED_LABELS} it may use" in refused.problems[0].message
    assert refused.workloads == []  # nothing half-applied
    from_definition = plan([T3], in_use, td_expressions=(IDLE,))
    assert [p.path for p in from_definition.problems] == ["placementConstraints[0].expression"]


def test_only_a_key_that_is_the_hash_of_its_expression_is_a_use() -> None:
    cluster = {L.CLUSTER: "default"}
    good = {L.member_of_label(T3, None): T3, L.member_of_label(IDLE, "ns"): IDLE}
    assert {u.label for u in uses_of("ns", cluster, good)} == set(good)
    forged = {L.member_of_label(T3, None): IDLE, L.member_of_label(IDLE, "other"): IDLE, f"{L.MEMBER_OF_PREFIX}x": T3}
    assert uses_of("ns", cluster, forged) == ()
    assert uses_of("ns", {}, good) == ()  # no cluster: no container instance to label


def test_the_labeller_keeps_at_most_the_bound_per_namespace() -> None:
    many = [Use("ns", "default", f"{L.MEMBER_OF_PREFIX}{i:020x}", T3) for i in range(MAX_MAINTAINED_LABELS + 5)]
    other = Use("other", "default", f"{L.MEMBER_OF_PREFIX}{99:020x}", T3)
    kept = bounded([*many, other])
    assert [u for u in kept if u.namespace == "ns"] == many[:MAX_MAINTAINED_LABELS] and other in kept


def test_labels_follow_the_instances_attributes_and_tasks() -> None:
    regex, idle = L.member_of_label(T3, None), L.member_of_label(IDLE, "ns")
    uses = [Use("ns", "default", regex, T3), Use("ns", "default", idle, IDLE)]
    assert wanted(node("a", "t3.medium"), [], uses) == {regex, idle}
    assert wanted(node("b", "m5.large"), [pod("ns")], uses) == set()
    assert wanted(node("c", "t3.medium"), [pod("elsewhere")], uses) == {regex, idle}  # another namespace's tasks
    assert wanted(node("d", "t3.medium", namespace="elsewhere"), [], uses) == set()  # not an instance of ns
    shared = node("e", "t3.medium", **{L.SHARED_INSTANCE: "true"})
    assert wanted(shared, [], uses) == {regex, idle}

    labelled = node("a", "m5.large", **{regex: "true", "team": "x"})
    assert label_patch(labelled, set()) == {"metadata": {"labels": {regex: None}}}  # only our own labels
    assert label_patch(labelled, {regex}) is None
    assert label_patch(labelled, {regex, idle}) == {"metadata": {"labels": {idle: "true"}}}
