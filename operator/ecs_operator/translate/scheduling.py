"""Merging scheduling constraints from several sources (launch type, runtime platform, placement)."""

from __future__ import annotations

import copy
from typing import Any

NodeTerms = list[dict[str, Any]]
"""nodeSelectorTerms: OR of terms, each an AND of matchExpressions/matchFields."""


def and_terms(a: NodeTerms | None, b: NodeTerms | None) -> NodeTerms | None:
    """Both constraints at once: the cross product of the two ORs (None means "no constraint")."""
    if a is None:
        return copy.deepcopy(b)
    if b is None:
        return copy.deepcopy(a)
    out: NodeTerms = []
    for x in a:
        for y in b:
            term: dict[str, Any] = {}
            for key in ("matchExpressions", "matchFields"):
                items = [*x.get(key, []), *y.get(key, [])]
                if items:
                    term[key] = copy.deepcopy(items)
            out.append(term)
    return out


def add_scheduling(
    spec: dict[str, Any],
    *,
    node_selector: dict[str, str] | None = None,
    node_terms: NodeTerms | None = None,
    pod_affinity: list[dict[str, Any]] | None = None,
    pod_anti_affinity: list[dict[str, Any]] | None = None,
    preferred_pod_affinity: list[dict[str, Any]] | None = None,
    spread: list[dict[str, Any]] | None = None,
) -> None:
    """Adds constraints to a Pod spec in place, keeping what is already there."""
    if node_selector:
        spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **node_selector}
    affinity = spec.get("affinity", {})
    if node_terms is not None:
        required = affinity.setdefault("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        existing = required["nodeSelectorTerms"] if required else None
        affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": and_terms(existing, node_terms)
        }
    for key, kind, items in (
        ("podAffinity", "requiredDuringSchedulingIgnoredDuringExecution", pod_affinity),
        ("podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution", pod_anti_affinity),
        ("podAffinity", "preferredDuringSchedulingIgnoredDuringExecution", preferred_pod_affinity),
    ):
        if items:
            affinity.setdefault(key, {}).setdefault(kind, []).extend(copy.deepcopy(items))
    if affinity:
        spec["affinity"] = affinity
    if spread:
        spec.setdefault("topologySpreadConstraints", []).extend(copy.deepcopy(spread))
