"""DeleteCapacityProvider: ECS refuses it while a service's strategy uses the provider, a cluster lists it,
or its tasks still run (docs/ecs-semantics.md §Capacity providers). Only those the provider allows can hold
its deletion back: a tenant naming it cannot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ecs_operator import labels as L
from ecs_operator.instances import is_active
from ecs_operator.translate.provider_access import allows


def deletion_blocker(ecs_name: str, spec: dict[str, Any], pods: Iterable[dict[str, Any]],
                     services: Iterable[tuple[str, str, str]], clusters: Iterable[str]) -> str | None:
    """ECS's ResourceInUseException message naming what uses the provider, or None when nothing does.
    `services`: (namespace, service, cluster); `clusters`: namespace/cluster."""
    allowed = (spec.get("kubernetes") or {}).get("allowedNamespaces")
    tasks = [p for p in pods if is_active(p)
             and allows(allowed, p["metadata"].get("namespace", ""), (p["metadata"].get("labels") or {}).get(L.CLUSTER, ""))]
    using = {f"{n}/{s}" for n, s, c in services if allows(allowed, n, c)}
    listing = {c for c in clusters if allows(allowed, *c.split("/", 1))}
    users = ([f"service {s}" for s in sorted(using)] + [f"cluster {c}" for c in sorted(listing)]
             + ([f"{len(tasks)} task(s)"] if tasks else []))
    return f"The capacity provider {ecs_name} is in use by {', '.join(users)}: remove it from them first" if users else None
