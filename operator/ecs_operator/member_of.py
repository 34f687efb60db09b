"""Operator-maintained memberOf node labels (pure): which Nodes carry which label.

A memberOf part Kubernetes cannot evaluate becomes a node label `memberof.ecs.operator.dev/<hash>`
that the Pods require (placement/affinity.py); the workloads that need it carry the label as an
annotation whose value is the expression. Here the labels each container instance should carry are
computed from those annotations: level-triggered, so the caller only compares and patches
(docs/ecs-semantics.md §memberOf is evaluated at placement time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ecs_operator import labels as L
from ecs_operator.instances import SHARED, cluster_key, instance_for_placement
from ecs_operator.placement.affinity import MAINTAINED, MAX_MAINTAINED_LABELS
from ecs_operator.placement.query import Expr, QuerySyntaxError, depends_on_tasks, evaluate, parse


@dataclass(frozen=True)
class Use:
    """A workload of `namespace`'s cluster (its cluster label value) requires `label`, set where `expression` holds."""

    namespace: str
    cluster: str
    label: str
    expression: str


@lru_cache(maxsize=1024)
def _parsed(expression: str) -> Expr | None:
    try:
        return parse(expression)
    except QuerySyntaxError:
        return None


def uses_of(namespace: str, labels: Mapping[str, str], annotations: Mapping[str, str]) -> tuple[Use, ...]:
    """The labels a Pod (template) asks the operator for. Only a key that is the hash of its expression
    (and namespace) counts: an annotation written by hand can ask for nothing else than the expression
    says, so it can never set another namespace's label."""
    cluster = labels.get(L.CLUSTER)
    if not cluster:
        return ()
    out = []
    for key, text in annotations.items():
        expr = _parsed(text) if key.startswith(L.MEMBER_OF_PREFIX) else None
        if expr is not None and key == L.member_of_label(text, namespace if depends_on_tasks(expr) else None):
            out.append(Use(namespace, cluster, key, text))
    return tuple(out)


def bounded(uses: Iterable[Use]) -> list[Use]:
    """At most MAX_MAINTAINED_LABELS labels per namespace (the first by key; admission of Services and
    Tasks refuses more, this holds even for a race between two of them)."""
    per_namespace: defaultdict[str, set[str]] = defaultdict(set)
    for use in uses:
        per_namespace[use.namespace].add(use.label)
    kept = {ns: set(sorted(keys)[:MAX_MAINTAINED_LABELS]) for ns, keys in per_namespace.items()}
    return [u for u in dict.fromkeys(uses) if u.label in kept[u.namespace]]


def wanted(node: dict[str, Any], pods: Iterable[dict[str, Any]], uses: Iterable[Use]) -> set[str]:
    """The labels the node should carry: those of the uses of a cluster it is a container instance of
    whose expression holds on it now. Expressions about tasks see only the tasks of the use's namespace."""
    key = cluster_key((node.get("metadata") or {}).get("labels") or {})
    if key is None:
        return set()
    pods = list(pods)
    out = set()
    for use in uses:
        expr = _parsed(use.expression)
        if expr is None or use.label in out or use.cluster != key[1] or key[0] not in (use.namespace, SHARED):
            continue
        own = [p for p in pods if p["metadata"].get("namespace") == use.namespace] if depends_on_tasks(expr) else []
        if evaluate(expr, instance_for_placement(node, own)):
            out.add(use.label)
    return out


def label_patch(node: dict[str, Any], labels: set[str]) -> dict[str, Any] | None:
    """The merge patch that makes the node's memberOf labels exactly `labels` (None: they are)."""
    current = {k: v for k, v in ((node.get("metadata") or {}).get("labels") or {}).items() if k.startswith(L.MEMBER_OF_PREFIX)}
    changes: dict[str, str | None] = {k: None for k in current if k not in labels}
    changes.update({k: MAINTAINED for k in labels if current.get(k) != MAINTAINED})
    return {"metadata": {"labels": changes}} if changes else None
