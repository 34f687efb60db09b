"""memberOf placement constraints as Kubernetes scheduling terms.

What Kubernetes can enforce itself it gets: attribute comparisons become required node affinity (the
expression in disjunctive normal form: `or` -> several nodeSelectorTerms, `and` -> matchExpressions of
one term), and `task:group` terms at the top level of the expression become required pod affinity or
anti-affinity. The rest (`=~`, agentVersion, registeredAt, runningTasksCount, agentConnected, a
task:group under an `or`, a DNF of more than MAX_NODE_SELECTOR_TERMS terms) is evaluated by the
operator: each such part becomes a node label `memberof.ecs.operator.dev/<hash>` = "true" that the
operator keeps on the container instances where it holds (handlers/member_of.py), and the Pods require
it. The translation never names nodes, so instances that join or leave change no Pod template and
replace no task: ECS evaluates memberOf at placement time (docs/ecs-semantics.md §memberOf is
evaluated at placement time).

ec2InstanceId is the node name; it is matched through the `kubernetes.io/hostname` label, which kubelet
and the operator's node pools set to the node name (a node field selector on metadata.name takes only
one name per term).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ecs_operator import labels

from .podspec import HOSTNAME, Fidelity, PlacementFragment, is_label_key, is_label_value
from .query import NEGATED, ORDERING, And, Expr, Instance, Not, Operator, Or, Term, combine, depends_on_tasks, evaluate

MAX_NODE_SELECTOR_TERMS = 32
"""Beyond this many terms the DNF is not worth it: the node part is evaluated by the operator as a whole."""
MAX_MAINTAINED_LABELS = 16
"""Operator-maintained memberOf labels one namespace may use (distinct expressions). A tenant must not grow
every Node without bound: each label (~46 bytes) sits on every matching Node, and each change of one is a
Node write that every Node watcher receives. 16 is more than a task needs (ECS allows 10 placement
constraints per task, the task definition's included, and most parts of an expression need no label) and
adds under 1 KiB per namespace to a Node."""
MAINTAINED = "true"
"""The value of an operator-maintained memberOf label on the nodes where its expression holds."""

_Requirement = tuple[str, str, tuple[str, ...]]
"""A NodeSelectorRequirement: key, operator (In, NotIn, Exists, DoesNotExist, Gt, Lt), values."""
_Conjunction = tuple[_Requirement, ...]
"""One nodeSelectorTerm: its requirements all hold."""

_NEVER: _Conjunction = ((HOSTNAME, "Exists", ()), (HOSTNAME, "DoesNotExist", ()))
"""A valid nodeSelectorTerm no node matches (Kubernetes refuses an empty term list or an empty In)."""

_COMPLEMENT: dict[Operator, Operator] = {**NEGATED, **{v: k for k, v in NEGATED.items()}}
_FLIPPED: dict[Operator, Operator] = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}
_POSITIVE_GROUP: dict[Operator, str] = {"==": "In", "in": "In", "exists": "Exists"}
_NEGATIVE_GROUP: dict[Operator, str] = {"!=": "In", "!in": "In", "!exists": "Exists"}

_INTEGER = re.compile(r"[+-]?\d+")
_SELECTOR_OPERATORS: dict[Operator, str] = {
    "==": "In", "in": "In", "!=": "NotIn", "!in": "NotIn", "exists": "Exists", "!exists": "DoesNotExist",
}  # fmt: skip
_INTEGER_BOUNDS: dict[Operator, tuple[str, int]] = {">": ("Gt", 0), ">=": ("Gt", -1), "<": ("Lt", 0), "<=": ("Lt", 1)}
"""Kubernetes' Gt/Lt take one integer and are strict: `>= n` is `Gt n-1`, `<= n` is `Lt n+1`."""


@dataclass(frozen=True)
class MemberOfAffinity:
    """The Kubernetes form of memberOf constraints, and how faithful it is."""

    node_affinity: dict[str, Any] | None
    """The pod's `affinity.nodeAffinity` (required terms only), or None when no node condition remains."""
    pod_affinity: tuple[dict[str, Any], ...]
    """Required PodAffinityTerms: a task of the group must already run on the node."""
    pod_anti_affinity: tuple[dict[str, Any], ...]
    """Required PodAffinityTerms of anti-affinity: no task of the group may run on the node."""
    exact: bool
    note: str
    unsatisfiable: bool
    """No node can match: the caller emits ECS's "unable to place a task" event (or keeps the task PROVISIONING)."""
    maintained: Mapping[str, Expr] = field(default_factory=dict)
    """Node label -> the expression the operator evaluates on each container instance to set it "true"."""

    def fragment(self, item: str = "memberOf") -> PlacementFragment:
        """As a pod-spec fragment with its fidelity verdict."""
        affinity: dict[str, Any] = {}
        if self.node_affinity:
            affinity["nodeAffinity"] = self.node_affinity
        if self.pod_affinity:
            affinity["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": list(self.pod_affinity)}
        if self.pod_anti_affinity:
            affinity["podAntiAffinity"] = {
                "requiredDuringSchedulingIgnoredDuringExecution": list(self.pod_anti_affinity)
            }
        verdict = Fidelity(item, "exact" if self.exact else "approximated", self.note)
        return PlacementFragment({"affinity": affinity} if affinity else {}, (verdict,))


def member_of_affinity(
    expressions: Expr | Sequence[Expr],
    instances: Sequence[Instance] = (),
    own_group: str | None = None,
    namespace: str = "",
) -> MemberOfAffinity:
    """Translate parsed memberOf expressions (several are ANDed, as ECS requires all of them to hold).

    The result depends on the expressions alone (and `namespace`, which scopes the labels of expressions
    about tasks); `instances` (the container instances now) only decide `unsatisfiable`. `own_group`
    is the task group of the pods being placed (see the pod-affinity caveat in the note).
    """
    exprs = [expressions] if isinstance(expressions, (Term, And, Or, Not)) else list(expressions)
    normal = _negation_normal(combine(And, exprs))
    affinity: list[Term] = []
    anti: list[Term] = []
    rest: list[Expr] = []
    for conjunct in normal.items if isinstance(normal, And) else (normal,):
        if isinstance(conjunct, Term) and conjunct.subject == "task:group" and conjunct.operator in _POSITIVE_GROUP:
            affinity.append(conjunct)
        elif isinstance(conjunct, Term) and conjunct.subject == "task:group" and conjunct.operator in _NEGATIVE_GROUP:
            anti.append(conjunct)
        else:
            rest.append(conjunct)

    nodes = _NodeTerms(namespace)
    terms = nodes.translate(combine(And, rest)) if rest else None
    forbidden = {group for t in anti for group in t.values}
    contradiction = terms == [] or any(
        any(t.operator == "!exists" for t in anti) or (t.operator != "exists" and set(t.values) <= forbidden)
        for t in affinity
    )
    # what the operator evaluates holds on no instance now (it may later: the labels follow)
    nowhere = bool(nodes.maintained) and not any(evaluate(combine(And, rest), i) for i in instances)

    caveats = list(nodes.caveats)
    if own_group is not None:
        caveats += [
            f"{t}: Kubernetes places the first task of {own_group} even though no instance runs it yet "
            "(pod affinity to the pod's own group); ECS places none"
            for t in affinity
            if t.operator == "exists" or own_group in t.values
        ]
    if any(depends_on_tasks(e) for e in nodes.maintained.values()):
        caveats.append(
            "a label about tasks follows their starts and stops within about a second: tasks placed in one "
            "burst see the instances as they were before it (ECS places them one after another)"
        )
    exact = not caveats
    notes: list[str] = []
    if exact:
        text = " and ".join(f"({e})" if isinstance(e, Or) and len(exprs) > 1 else str(e) for e in exprs)
        kinds = [
            k
            for k, used in (
                ("node affinity", terms is not None),
                ("pod affinity", affinity),
                ("pod anti-affinity", anti),
            )
            if used
        ]
        notes.append(f"{text}: required {' and '.join(kinds)}")
    if nodes.maintained:
        notes.append(_maintained_note(nodes))
    notes += caveats
    if contradiction:
        notes.append("no node can satisfy it")

    node_affinity = None
    if terms is not None:
        selector_terms = [_selector_term(c) for c in (terms or [_NEVER])]
        node_affinity = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": selector_terms}}
    return MemberOfAffinity(
        node_affinity=node_affinity,
        pod_affinity=tuple(_group_term(t, _POSITIVE_GROUP) for t in affinity),
        pod_anti_affinity=tuple(_group_term(t, _NEGATIVE_GROUP) for t in anti),
        exact=exact,
        note="; ".join(notes),
        unsatisfiable=contradiction or nowhere,
        maintained=dict(nodes.maintained),
    )


def _maintained_note(nodes: _NodeTerms) -> str:
    labels_ = ", ".join(f"{e} -> node label {k}={MAINTAINED}" for k, e in nodes.maintained.items())
    return (
        f"evaluated by the operator at placement time ({labels_}{nodes.complexity}): it keeps the label on the "
        "container instances where the expression holds as they join, change and leave, and no running task is "
        "replaced, as in ECS; without the operator no node carries the label"
    )


def _negation_normal(expr: Expr, negate: bool = False) -> Expr:
    """Push `not` down to the terms (De Morgan). Terms are complemented by operator; an ordering on an
    attribute has no complement (a missing or non-numeric value passes neither `>` nor `<=`) and stays Not(term)."""
    if isinstance(expr, Not):
        return _negation_normal(expr.operand, not negate)
    if isinstance(expr, (And, Or)):
        kind = type(expr) if not negate else Or if isinstance(expr, And) else And
        return combine(kind, [_negation_normal(item, negate) for item in expr.items])
    if not negate:
        return expr
    if expr.operator in _COMPLEMENT:
        return replace(expr, operator=_COMPLEMENT[expr.operator])
    if expr.attribute is None:  # agentVersion, registeredAt, runningTasksCount: total orders
        return replace(expr, operator=_FLIPPED[expr.operator])
    return Not(expr)


class _NodeTerms:
    """Builds the nodeSelectorTerms of the node part; remembers what the operator must evaluate."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.maintained: dict[str, Expr] = {}
        self.caveats: list[str] = []
        self.complexity = ""

    def translate(self, expr: Expr) -> list[_Conjunction]:
        """The DNF, or the whole expression as one operator-maintained label when the DNF gets too large."""
        try:
            return self.dnf(expr)
        except _TooComplex:
            self.maintained.clear()
            self.caveats.clear()
            self.complexity = f"; as a whole: more than {MAX_NODE_SELECTOR_TERMS} node selector terms needed"
            return self.pinned(expr)

    def dnf(self, expr: Expr) -> list[_Conjunction]:
        if isinstance(expr, Or):
            terms = [t for item in expr.items for t in self.dnf(item)]
        elif isinstance(expr, And):
            terms = [()]
            for item in expr.items:
                alternatives = self.dnf(item)
                terms = [c for t in terms for a in alternatives if (c := _conjoin(t, a)) is not None]
                if len(terms) > MAX_NODE_SELECTOR_TERMS:
                    raise _TooComplex
        else:
            terms = self.literal(expr)
        terms = list(dict.fromkeys(terms))
        if len(terms) > MAX_NODE_SELECTOR_TERMS:
            raise _TooComplex
        return terms

    def literal(self, literal: Term | Not) -> list[_Conjunction]:
        negated = isinstance(literal, Not)
        term = literal.operand if isinstance(literal, Not) else literal
        assert isinstance(term, Term)  # negation normal form: Not only wraps a term
        requirement = _requirement(term, negated)
        if requirement is None:
            return self.pinned(literal)
        if not negated:
            return [(requirement,)]
        self.caveats.append(f"{literal}: nodes whose {requirement[0]} is not an integer never match")
        return [(requirement,), ((requirement[0], "DoesNotExist", ()),)]

    def pinned(self, expr: Expr) -> list[_Conjunction]:
        """`expr` evaluated by the operator: the node label it keeps where `expr` holds. Scoped to the
        namespace when it depends on tasks (each namespace's clusters have their own tasks)."""
        key = labels.member_of_label(str(expr), self.namespace if depends_on_tasks(expr) else None)
        self.maintained[key] = expr
        return [((key, "In", (MAINTAINED,)),)]


class _TooComplex(Exception):
    pass


def _requirement(term: Term, negated: bool) -> _Requirement | None:
    """The NodeSelectorRequirement of one term (of its negation's main alternative if `negated`), or None
    when Kubernetes cannot express it."""
    if term.subject == "ec2InstanceId":
        key, values = HOSTNAME, term.values
    elif term.attribute is not None:
        key = labels.attribute_label(term.attribute)
        values = term.values
        if term.attribute == "ecs.cpu-architecture":
            values = tuple(labels.ARCH_FROM_ECS.get(v, v) for v in values)
    else:
        return None
    if not is_label_key(key):
        return None
    operator = _FLIPPED[term.operator] if negated else term.operator
    if operator in ORDERING:
        if not _INTEGER.fullmatch(values[0]):
            return None
        selector, offset = _INTEGER_BOUNDS[operator]
        return key, selector, (str(int(values[0]) + offset),)
    if not all(is_label_value(v) for v in values):
        return None
    match = _SELECTOR_OPERATORS.get(operator)
    return None if match is None else (key, match, tuple(dict.fromkeys(values)))


def _conjoin(left: _Conjunction, right: _Conjunction) -> _Conjunction | None:
    """Both terms' requirements together, simplified per key; None if they contradict (an empty In, say)."""
    requirements = list(dict.fromkeys(left + right))
    out: list[_Requirement] = []
    for key in dict.fromkeys(r[0] for r in requirements):
        mine = [r for r in requirements if r[0] == key]
        operators = {r[1] for r in mine}
        if "DoesNotExist" in operators and operators & {"In", "Exists", "Gt", "Lt"}:
            return None
        ins = [set(r[2]) for r in mine if r[1] == "In"]
        if not ins:
            out.extend(mine)
            continue
        excluded = {v for r in mine if r[1] == "NotIn" for v in r[2]}
        first = next(r[2] for r in mine if r[1] == "In")
        allowed = tuple(v for v in first if all(v in s for s in ins) and v not in excluded)
        if not allowed:
            return None
        out.append((key, "In", allowed))
        out.extend(r for r in mine if r[1] in ("Gt", "Lt"))
    return tuple(out)


def _selector_term(conjunction: _Conjunction) -> dict[str, Any]:
    expressions = []
    for key, operator, values in conjunction:
        requirement: dict[str, Any] = {"key": key, "operator": operator}
        if values:
            requirement["values"] = list(values)
        expressions.append(requirement)
    return {"matchExpressions": expressions}


def _group_term(term: Term, operators: dict[Operator, str]) -> dict[str, Any]:
    """A PodAffinityTerm on the task group label, per node (ECS's task:group is about the instance). Its
    namespace defaults to the pod's: the ECS cluster, the scope of ECS task groups."""
    requirement: dict[str, Any] = {"key": labels.GROUP, "operator": operators[term.operator]}
    if term.values:
        requirement["values"] = list(dict.fromkeys(labels.group_label_value(v) for v in term.values))
    return {"labelSelector": {"matchExpressions": [requirement]}, "topologyKey": HOSTNAME}
