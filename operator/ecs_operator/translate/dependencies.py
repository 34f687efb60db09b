"""dependsOn as Kubernetes start order: dependency targets become init containers or sidecars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.models.rules import find_cycle

InitKind = Literal["sidecar", "run-to-completion"]


@dataclass(frozen=True)
class StartOrder:
    init: tuple[tuple[str, InitKind], ...]
    """Dependency targets in start order: Kubernetes runs init containers one after the other."""
    main: tuple[str, ...]
    """Containers nothing depends on: they start together after all init containers."""
    healthy_targets: frozenset[str]
    """Sidecars others wait on until HEALTHY: they get a startupProbe."""


def start_order(td: RegisterTaskDefinition) -> StartOrder:
    """COMPLETE/SUCCESS targets run to completion; START/HEALTHY targets stay running as sidecars."""
    names = [c.name for c in td.containerDefinitions]
    conditions: dict[str, set[str]] = {}
    deps: dict[str, list[str]] = {}
    for c in td.containerDefinitions:
        deps[c.name] = [d.containerName for d in c.dependsOn or [] if d.containerName in names]
        for d in c.dependsOn or []:
            conditions.setdefault(d.containerName, set()).add(d.condition)
    if find_cycle(deps):
        raise ValueError("dependsOn forms a cycle")
    targets = [n for n in names if n in conditions]
    ordered: list[str] = []
    while len(ordered) < len(targets):  # definition order among the ready ones: stable output
        ready = next(t for t in targets if t not in ordered and all(d in ordered for d in deps[t]))
        ordered.append(ready)
    init = tuple(
        (t, "run-to-completion" if conditions[t] & {"COMPLETE", "SUCCESS"} else "sidecar") for t in ordered
    )
    healthy = frozenset(t for t, kind in init if kind == "sidecar" and "HEALTHY" in conditions[t])
    return StartOrder(init, tuple(n for n in names if n not in conditions), healthy)
