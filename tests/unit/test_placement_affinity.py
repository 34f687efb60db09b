"""memberOf -> node affinity / pod (anti-)affinity, and a check that Kubernetes' reading of the result agrees
with `evaluate` on a grid of fake nodes."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest
from ecs_operator import labels
from ecs_operator.placement.affinity import MAX_NODE_SELECTOR_TERMS, MemberOfAffinity, member_of_affinity
from ecs_operator.placement.query import Expr, Instance, evaluate, parse

HOST = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
GROUP = labels.GROUP
NEVER = [{"matchExpressions": [{"key": HOST, "operator": "Exists"}, {"key": HOST, "operator": "DoesNotExist"}]}]


def translate(text: str, instances: list[Instance] | None = None, own_group: str | None = None) -> MemberOfAffinity:
    return member_of_affinity(parse(text), instances or [], own_group)


def terms(result: MemberOfAffinity) -> list[dict[str, Any]]:
    assert result.node_affinity is not None
    return result.node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]  # type: ignore[no-any-return]


def req(key: str, operator: str, *values: str) -> dict[str, Any]:
    out: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        out["values"] = list(values)
    return out


# --- attribute comparisons ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "requirement"),
    [
        ("attribute:ecs.instance-type == t2.small", req("node.kubernetes.io/instance-type", "In", "t2.small")),
        ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", req(ZONE, "In", "us-east-1a", "us-east-1b")),
        ("attribute:ecs.availability-zone != us-east-1d", req(ZONE, "NotIn", "us-east-1d")),
        ("attribute:ecs.os-type !in [windows]", req("kubernetes.io/os", "NotIn", "windows")),
        ("attribute:stack exists", req("attributes.ecs.operator.dev/stack", "Exists")),
        ("attribute:stack !exists", req("attributes.ecs.operator.dev/stack", "DoesNotExist")),
        ("attribute:ecs.cpu-architecture == x86_64", req("kubernetes.io/arch", "In", "amd64")),
        ("attribute:ecs.cpu-architecture in [arm64, x86_64]", req("kubernetes.io/arch", "In", "arm64", "amd64")),
        ("attribute:gen > 4", req("attributes.ecs.operator.dev/gen", "Gt", "4")),
        ("attribute:gen >= 4", req("attributes.ecs.operator.dev/gen", "Gt", "3")),
        ("attribute:gen < 4", req("attributes.ecs.operator.dev/gen", "Lt", "4")),
        ("attribute:gen <= 4", req("attributes.ecs.operator.dev/gen", "Lt", "5")),
        ("not(attribute:stack == prod)", req("attributes.ecs.operator.dev/stack", "NotIn", "prod")),
        ("not(attribute:stack exists)", req("attributes.ecs.operator.dev/stack", "DoesNotExist")),
        ("ec2InstanceId in [i-1, i-2]", req(HOST, "In", "i-1", "i-2")),
        ("ec2InstanceId != i-1", req(HOST, "NotIn", "i-1")),
    ],
)
def test_single_comparisons_are_exact_node_affinity(text: str, requirement: dict[str, Any]) -> None:
    result = translate(text)
    assert terms(result) == [{"matchExpressions": [requirement]}]
    assert result.exact and not result.unsatisfiable
    assert (result.pod_affinity, result.pod_anti_affinity) == ((), ())
    assert result.note == f"{text}: required node affinity"


def test_and_is_one_term_or_is_several() -> None:
    result = translate(
        "attribute:ecs.availability-zone == us-east-1a and attribute:ecs.instance-type == t2.small "
        "or attribute:stack exists"
    )
    assert terms(result) == [
        {
            "matchExpressions": [
                req(ZONE, "In", "us-east-1a"),
                req("node.kubernetes.io/instance-type", "In", "t2.small"),
            ]
        },
        {"matchExpressions": [req("attributes.ecs.operator.dev/stack", "Exists")]},
    ]
    assert result.exact


def test_and_over_or_distributes() -> None:
    result = translate("(attribute:a == 1 or attribute:b == 2) and (attribute:c == 3 or attribute:d == 4)")
    pairs = [[e["key"].rsplit("/", 1)[1] for e in t["matchExpressions"]] for t in terms(result)]
    assert pairs == [["a", "c"], ["a", "d"], ["b", "c"], ["b", "d"]]


def test_de_morgan() -> None:
    stack, tier = "attributes.ecs.operator.dev/stack", "attributes.ecs.operator.dev/tier"
    assert terms(translate("not(attribute:stack == prod or attribute:tier exists)")) == [
        {"matchExpressions": [req(stack, "NotIn", "prod"), req(tier, "DoesNotExist")]}
    ]
    assert terms(translate("not(attribute:stack == prod and attribute:tier exists)")) == [
        {"matchExpressions": [req(stack, "NotIn", "prod")]},
        {"matchExpressions": [req(tier, "DoesNotExist")]},
    ]
    assert terms(translate("not(not(attribute:stack in [a, b]))")) == [
        {"matchExpressions": [req(stack, "In", "a", "b")]}
    ]


def test_negated_ordering_keeps_nodes_without_the_attribute_but_says_it_is_approximate() -> None:
    result = translate("not(attribute:gen >= 4)")
    assert terms(result) == [
        {"matchExpressions": [req("attributes.ecs.operator.dev/gen", "Lt", "4")]},
        {"matchExpressions": [req("attributes.ecs.operator.dev/gen", "DoesNotExist")]},
    ]
    assert not result.exact
    assert (
        result.note
        == "not(attribute:gen >= 4): nodes whose attributes.ecs.operator.dev/gen is not an integer never match"
    )


def test_same_key_requirements_are_merged_and_contradictions_found() -> None:
    assert terms(translate("attribute:a in [x, y, z] and attribute:a in [z, y] and attribute:a != y")) == [
        {"matchExpressions": [req("attributes.ecs.operator.dev/a", "In", "z")]}
    ]
    result = translate("attribute:a == x and attribute:a == y")
    assert result.unsatisfiable and result.exact
    assert terms(result) == NEVER
    assert result.note == "attribute:a == x and attribute:a == y: required node affinity; no node can satisfy it"
    assert translate("attribute:a exists and attribute:a !exists").unsatisfiable
    # A contradictory branch of an `or` just drops out.
    assert terms(translate("(attribute:a == x and attribute:a == y) or attribute:b exists")) == [
        {"matchExpressions": [req("attributes.ecs.operator.dev/b", "Exists")]}
    ]


# --- task:group -----------------------------------------------------------------------------------


def group_term(operator: str, *groups: str) -> dict[str, Any]:
    values = [labels.group_label_value(g) for g in groups]
    return {"labelSelector": {"matchExpressions": [req(GROUP, operator, *values)]}, "topologyKey": HOST}


def test_task_group_affinity_and_anti_affinity() -> None:
    result = translate("task:group == service:production")
    assert result.pod_affinity == (group_term("In", "service:production"),)
    assert result.node_affinity is None and result.pod_anti_affinity == ()
    assert result.exact

    for text in ("not(task:group == database)", "task:group != database"):
        result = translate(text)
        assert result.pod_anti_affinity == (group_term("In", "database"),)
        assert result.pod_affinity == () and result.exact

    assert translate("task:group in [service:a, service:b]").pod_affinity == (
        group_term("In", "service:a", "service:b"),
    )
    assert translate("task:group !in [service:a]").pod_anti_affinity == (group_term("In", "service:a"),)
    assert translate("task:group exists").pod_affinity == (group_term("Exists"),)
    assert translate("not(task:group exists)").pod_anti_affinity == (group_term("Exists"),)


def test_task_group_with_attributes_at_top_level() -> None:
    result = translate("task:group == service:db and attribute:ecs.availability-zone == us-east-1a")
    assert result.exact
    assert result.pod_affinity == (group_term("In", "service:db"),)
    assert terms(result) == [{"matchExpressions": [req(ZONE, "In", "us-east-1a")]}]
    assert result.fragment("placementConstraints[0]").pod_spec == {
        "affinity": {
            "nodeAffinity": result.node_affinity,
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [group_term("In", "service:db")]},
        }
    }


def test_pod_affinity_to_the_pods_own_group_is_approximate() -> None:
    result = translate("task:group == service:web", own_group="service:web")
    assert not result.exact
    assert "Kubernetes places the first task of service:web" in result.note
    assert translate("task:group == service:db", own_group="service:web").exact


def test_conflicting_group_terms_are_unsatisfiable() -> None:
    assert translate("task:group == a and task:group != a").unsatisfiable
    assert translate("task:group in [a, b] and task:group !in [b, a]").unsatisfiable
    assert translate("task:group == a and not(task:group exists)").unsatisfiable
    assert not translate("task:group in [a, b] and task:group != a").unsatisfiable


# --- evaluated by the operator: a node label it maintains ---------------------------------------------

NODES = [
    Instance("n1", {"ecs.instance-type": "g2.2xlarge"}, agentVersion="1.14.5", task_groups={"service:db"}),
    Instance("n2", {"ecs.instance-type": "m5.large"}, agentVersion="1.9.0"),
    Instance("n3", {"ecs.instance-type": "g2.8xlarge"}, agentVersion="1.20.0", runningTasksCount=3),
]


def maintained(result: MemberOfAffinity, text: str) -> dict[str, Any]:
    """The requirement on the operator-maintained label of `text` (which the result must maintain)."""
    [key] = [k for k, e in result.maintained.items() if e == parse(text)]
    assert key.startswith(labels.MEMBER_OF_PREFIX)
    return req(key, "In", "true")


def test_regex_becomes_a_label_the_operator_maintains_and_no_node_is_named() -> None:
    text = "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d"
    result = translate(text, NODES)
    regex = maintained(result, "attribute:ecs.instance-type =~ g2.*")
    assert terms(result) == [{"matchExpressions": [regex, req(ZONE, "NotIn", "us-east-1d")]}]
    assert result.exact and not result.unsatisfiable
    assert result.note.startswith(f"{text}: required node affinity; evaluated by the operator at placement time "
                                  f"(attribute:ecs.instance-type =~ g2.* -> node label {regex['key']}=true)")
    assert "without the operator no node carries the label" in result.note
    assert result.fragment().fidelity[0].verdict == "exact"
    # the instances there are decide nothing but `unsatisfiable`: joining or leaving changes no Pod template
    for instances in ([], NODES[:1], NODES, [*NODES, Instance("n4", {"ecs.instance-type": "g2.large"})]):
        other = translate(text, instances)
        assert (other.node_affinity, other.maintained, other.note) == (result.node_affinity, result.maintained, result.note)
        assert other.unsatisfiable == (not instances)


def test_labels_are_stable_hashes_of_the_expression_scoped_to_the_namespace_when_about_tasks() -> None:
    node_only = [member_of_affinity(parse("attribute:ecs.instance-type matches g2.*"), namespace=ns) for ns in ("a", "b")]
    assert node_only[0].maintained.keys() == node_only[1].maintained.keys()  # =~ and `matches` are one expression
    assert node_only[0].maintained == translate("attribute:ecs.instance-type =~ g2.*").maintained
    about_tasks = [member_of_affinity(parse("runningTasksCount == 0"), namespace=ns) for ns in ("a", "b")]
    assert about_tasks[0].maintained.keys() != about_tasks[1].maintained.keys()
    for result in (*node_only, *about_tasks):
        [(key, expr)] = result.maintained.items()
        assert parse(str(expr)) == expr and len(key.split("/")[1]) <= 63  # the annotation's text reads back


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("agentVersion >= 1.14", ["n1", "n3"]),
        ("registeredAt < 2018-01-01", ["n1", "n2", "n3"]),
        ("runningTasksCount == 0", ["n1", "n2"]),
        ("agentConnected == true", ["n1", "n2", "n3"]),
        ("ec2InstanceId =~ n[12]", ["n1", "n2"]),
        ("attribute:gen > 1.5", []),  # not an integer: Kubernetes' Gt can't take it
    ],
)
def test_what_kubernetes_cannot_express_is_evaluated_by_the_operator(text: str, names: list[str]) -> None:
    result = translate(text, NODES)
    assert terms(result) == [{"matchExpressions": [maintained(result, text)]}]
    assert [n.ec2InstanceId for n in NODES if kubernetes_allows(result, n)] == names
    assert result.unsatisfiable == (not names)
    assert result.exact == (text != "runningTasksCount == 0")
    if not result.exact:
        assert "tasks placed in one burst see the instances as they were before it" in result.note


def test_task_group_under_or_is_evaluated_by_the_operator() -> None:
    result = translate("task:group == service:db or attribute:ecs.instance-type == m5.large", NODES)
    assert result.pod_affinity == ()
    assert terms(result) == [
        {"matchExpressions": [maintained(result, "task:group == service:db")]},
        {"matchExpressions": [req("node.kubernetes.io/instance-type", "In", "m5.large")]},
    ]
    assert not result.exact and "task:group == service:db -> node label" in result.note


def test_unsatisfiable_when_no_instance_qualifies_now() -> None:
    result = translate("agentVersion >= 1.14 and runningTasksCount == 0", NODES)
    assert len(terms(result)[0]["matchExpressions"]) == 2 and not result.unsatisfiable
    result = translate("agentVersion < 1.10 and runningTasksCount > 0", NODES)
    assert result.unsatisfiable and len(terms(result)[0]["matchExpressions"]) == 2
    assert "no node can satisfy it" not in result.note  # about now, not about the expression
    assert translate("agentVersion > 1.0", []).unsatisfiable  # no instances at all
    # the native parts count too: no g2 instance is in us-east-1d
    zone = [Instance(n.ec2InstanceId, {**n.attributes, "ecs.availability-zone": "us-east-1d"}) for n in NODES]
    assert translate("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone == us-east-1d", zone[1:2]).unsatisfiable


def test_values_or_names_kubernetes_refuses_as_labels_are_evaluated_by_the_operator() -> None:
    nodes = [Instance("n1", {"owner": "a b", "team/name": "x"}), Instance("n2", {"owner": "c"})]
    for text in ("attribute:owner == 'a b'", "attribute:team/name exists"):
        result = translate(text, nodes)
        assert terms(result) == [{"matchExpressions": [maintained(result, text)]}]
        assert [n.ec2InstanceId for n in nodes if kubernetes_allows(result, n)] == ["n1"]


def test_several_expressions_are_anded() -> None:
    exprs = [parse("attribute:a == x or attribute:b == y"), parse("attribute:c exists")]
    result = member_of_affinity(exprs)
    assert len(terms(result)) == 2
    assert all(t["matchExpressions"][-1] == req("attributes.ecs.operator.dev/c", "Exists") for t in terms(result))
    assert result.note == "(attribute:a == x or attribute:b == y) and attribute:c exists: required node affinity"


def test_a_dnf_too_large_is_one_label_for_the_whole() -> None:
    text = " and ".join(f"(attribute:a{i} == x or attribute:b{i} == y)" for i in range(6))  # 2**6 terms
    nodes = [Instance("n1", {f"a{i}": "x" for i in range(6)}), Instance("n2", {"a0": "x"})]
    result = translate(text, nodes)
    assert 2**6 > MAX_NODE_SELECTOR_TERMS
    [(key, expr)] = result.maintained.items()
    assert expr == parse(text) and terms(result) == [{"matchExpressions": [req(key, "In", "true")]}]
    assert [n.ec2InstanceId for n in nodes if kubernetes_allows(result, n)] == ["n1"]
    assert result.exact
    assert f"as a whole: more than {MAX_NODE_SELECTOR_TERMS} node selector terms needed" in result.note


# --- property: Kubernetes' reading of the translation agrees with evaluate ---------------------------


def grid() -> list[Instance]:
    nodes = []
    combos = itertools.product(
        ["us-east-1a", "us-east-1b", None], ["prod", "dev", None], ["1", "2", "3", None], ["x86_64", "arm64"]
    )
    for n, (zone, stack, gen, arch) in enumerate(combos):
        attributes = {"ecs.cpu-architecture": arch}
        for name, value in (("ecs.availability-zone", zone), ("stack", stack), ("gen", gen)):
            if value is not None:
                attributes[name] = value
        groups = [set(), {"service:db"}, {"service:web"}, {"service:db", "service:web"}][n % 4]
        nodes.append(
            Instance(
                f"node-{n}",
                attributes,
                agentVersion=["1.9.0", "1.14.5", "1.20.1"][n % 3],
                runningTasksCount=n % 5,
                task_groups=groups,
            )
        )
    return nodes


def node_labels(node: Instance, maintained: dict[str, Expr] | None = None) -> dict[str, str]:
    """The node's labels; with the operator-maintained ones of `maintained` where their expression holds."""
    out = {HOST: node.ec2InstanceId}
    out.update({key: "true" for key, expr in (maintained or {}).items() if evaluate(expr, node)})
    for name, value in node.attributes.items():
        out[labels.attribute_label(name)] = (
            labels.ARCH_FROM_ECS.get(value, value) if name == "ecs.cpu-architecture" else value
        )
    return out


def requirement_holds(requirement: dict[str, Any], node_label_map: dict[str, str]) -> bool:
    """Kubernetes' NodeSelectorRequirement / LabelSelectorRequirement semantics."""
    value = node_label_map.get(requirement["key"])
    operator, values = requirement["operator"], requirement.get("values", [])
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if value is None or not value.lstrip("-").isdigit():
        return False
    return int(value) > int(values[0]) if operator == "Gt" else int(value) < int(values[0])


def kubernetes_allows(result: MemberOfAffinity, node: Instance) -> bool:
    """The scheduler's verdict, the operator having labelled the node as the result asks."""
    node_label_map = node_labels(node, dict(result.maintained))
    if result.node_affinity is not None and not any(
        all(requirement_holds(r, node_label_map) for r in term["matchExpressions"]) for term in terms(result)
    ):
        return False
    pods = [{GROUP: labels.group_label_value(g)} for g in node.task_groups]

    def some_pod_matches(term: dict[str, Any]) -> bool:
        return any(all(requirement_holds(r, pod) for r in term["labelSelector"]["matchExpressions"]) for pod in pods)

    return all(some_pod_matches(t) for t in result.pod_affinity) and not any(
        some_pod_matches(t) for t in result.pod_anti_affinity
    )


LITERALS = [
    "attribute:ecs.availability-zone == us-east-1a",
    "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
    "attribute:ecs.availability-zone exists",
    "attribute:stack != prod",
    "attribute:stack !in [dev]",
    "attribute:stack exists",
    "attribute:ecs.cpu-architecture == x86_64",
    "attribute:gen > 1",
    "attribute:gen >= 2",
    "attribute:gen < 3",
    "attribute:gen <= 1",
    "attribute:stack =~ p.*",
    "agentVersion >= 1.14",
    "runningTasksCount < 2",
    "task:group == service:db",
    "task:group != service:web",
    "task:group in [service:web]",
    "task:group exists",
    "ec2InstanceId in [node-1, node-2, node-40]",
]


def random_expression(rng: random.Random, depth: int) -> str:
    roll = rng.random()
    if depth == 0 or roll < 0.3:
        return rng.choice(LITERALS)
    if roll < 0.45:
        return f"not({random_expression(rng, depth - 1)})"
    joiner = rng.choice([" and ", " or "])
    return "(" + joiner.join(random_expression(rng, depth - 1) for _ in range(rng.randint(2, 3))) + ")"


def test_translation_agrees_with_evaluate_on_a_grid_of_nodes() -> None:
    nodes = grid()
    rng = random.Random(20240613)
    checked = 0
    for _ in range(400):
        expr: Expr = parse(random_expression(rng, 3))
        result = member_of_affinity(expr, nodes)
        assert member_of_affinity(expr, nodes[:5]).node_affinity == result.node_affinity  # no node is named
        for node in nodes:
            assert kubernetes_allows(result, node) == evaluate(expr, node), (str(expr), node.ec2InstanceId)
            checked += 1
        if result.unsatisfiable:  # sound: only said when no node qualifies
            assert not any(evaluate(expr, n) for n in nodes)
    assert checked == 400 * len(nodes)


@pytest.mark.parametrize("literal", LITERALS)
def test_each_literal_and_its_negation_agree_with_evaluate(literal: str) -> None:
    nodes = grid()
    for text in (literal, f"not({literal})"):
        expr = parse(text)
        result = member_of_affinity(expr, nodes)
        assert [kubernetes_allows(result, n) for n in nodes] == [evaluate(expr, n) for n in nodes], text
