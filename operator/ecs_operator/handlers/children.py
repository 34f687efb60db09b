"""Children of ECS objects, written only where the ECS object controls them (see ownership.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ecs_operator.adapters.kube import Kube
from ecs_operator.ownership import Conflict, in_the_way

Key = tuple[str, str]
"""(kind, name) of a child in the owner's namespace."""


def key_of(obj: Mapping[str, Any]) -> Key:
    return (obj["kind"], obj["metadata"]["name"])


def claim(kube: Kube, planned: Iterable[dict[str, Any]], owned: Mapping[Key, Mapping[str, Any]],
          origins: Mapping[Key, str]) -> tuple[dict[Key, str | None], list[Conflict]]:
    """Before anything is written: the UID each planned child is applied with (None: it is created)
    and the names held by objects the owner does not control. Only children missing from the owned
    index are read (none at steady state), so a conflict refuses the whole plan, not half of it."""
    uids: dict[Key, str | None] = {}
    conflicts: list[Conflict] = []
    for obj in planned:
        key = key_of(obj)
        live = owned.get(key) or kube.get_like(obj)
        found = in_the_way(obj, live, origins.get(key, "metadata.name"))
        if found is not None:
            conflicts.append(found)
        uids[key] = live["metadata"]["uid"] if live is not None else None
    return uids, conflicts
