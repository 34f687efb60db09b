"""The scheduler's "0/3 nodes are available: ..." as ECS's placement failure reasons (RESOURCE:MEMORY, ...)."""

from __future__ import annotations

import re

# Scheduler phrases -> ECS failure reasons (docs/ecs-semantics.md §A task is started once it is placed).
_REASONS: tuple[tuple[str, str], ...] = (
    (r"Insufficient memory", "RESOURCE:MEMORY"),
    (r"Insufficient cpu", "RESOURCE:CPU"),
    (r"Insufficient nvidia\.com/gpu", "RESOURCE:GPU"),
    (r"Insufficient pods|Too many pods", "RESOURCE:ENI"),  # EKS sizes max pods by ENIs
    (r"free ports", "RESOURCE:PORTS"),
    (r"node affinity/selector|didn't match Pod's node affinity|node\(s\) didn't match", "ATTRIBUTE"),
    (r"anti-affinity|pod affinity", "ATTRIBUTE"),
    (r"untolerated taint|unschedulable", "INACTIVE"),
)


def placement_failure_reasons(message: str) -> list[str]:
    """ECS reasons found in a scheduler message, most specific first; `MISSING` when no node exists."""
    if re.search(r"\b0/0 nodes\b|no nodes available", message):
        return ["MISSING"]
    found: list[str] = []
    for pattern, reason in _REASONS:
        if re.search(pattern, message) and reason not in found:
            found.append(reason)
    return found or ["ATTRIBUTE"]


def unable_to_place_event(name: str, message: str, kind: str = "service") -> str:
    """ECS's service event text for a task no container instance can take."""
    reasons = placement_failure_reasons(message)
    if reasons == ["MISSING"]:
        return (f"({kind} {name}) was unable to place a task because no container instance met all of its requirements. "
                "Reason: No Container Instances were found in your cluster.")
    return (
        f"({kind} {name}) was unable to place a task because no container instance met all of its requirements. "
        f"Reason: {', '.join(reasons)} ({message.strip()})"
    )
