"""Ownership, never adoption: the operator writes or deletes only objects controlled by the object
that wants them (a controller ownerReference with its UID). A name taken by anything else is a
conflict to report, never an object to take over. Pure: the adapter and the handlers decide with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ecs_operator import API_GROUP, API_VERSION

CONFLICT_REASON = "ResourceConflict"
"""Ready reason of an ECS object one of whose child names is taken by an object it does not control."""


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object's controller ownerReference (Kubernetes allows at most one), if any."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller") is True), None)


def controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Whether `owner` (an ownerReference: apiVersion, kind, uid) is the object's controller.

    The UID decides: a same-named owner deleted and created again is another owner. apiVersion and
    kind are compared too, because the core Service kind shares its name with ECS's Service."""
    ref = controller_of(obj)
    return ref is not None and all(ref.get(k) == owner.get(k) for k in ("uid", "apiVersion", "kind"))


@dataclass(frozen=True)
class Conflict:
    """A child name the ECS object needs is held by an object it does not control."""

    field: str
    """The ECS field that asked for the name (e.g. loadBalancers[0])."""
    kind: str
    namespace: str | None
    name: str
    holder: str
    """Who controls the object in the way ("no controller", or kind/name of its controller)."""

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def message(self, owner_kind: str) -> str:
        return (f"{self.field}: needs the {self.kind} {self.where}, which exists and is not controlled by this "
                f"{owner_kind} ({self.holder}), so nothing was written to it. Rename this {owner_kind} or remove "
                f"that {self.kind}")


def conflict(field: str, existing: Mapping[str, Any]) -> Conflict:
    meta = existing.get("metadata") or {}
    ref = controller_of(existing)
    holder = f"controlled by {ref.get('kind')} {ref.get('name')}" if ref is not None else "no controller"
    return Conflict(field=field, kind=str(existing.get("kind") or ""), namespace=meta.get("namespace"),
                    name=str(meta.get("name") or ""), holder=holder)


def conflicts_text(conflicts: list[Conflict], owner_kind: str) -> str:
    return "; ".join(c.message(owner_kind) for c in conflicts)


def in_the_way(planned: Mapping[str, Any], live: Mapping[str, Any] | None, field: str) -> Conflict | None:
    """The conflict if the live object of a planned child's name is not controlled by the planned
    child's own controller (None: free, or ours)."""
    owner = controller_of(planned)
    if live is None or (owner is not None and controlled_by(live, owner)):
        return None
    return conflict(field, live)


def owner_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ownerReference of the operator's children to the ECS object `body` (its UID: that very object)."""
    meta = body["metadata"]
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": body["kind"], "name": meta["name"], "uid": meta["uid"]}
