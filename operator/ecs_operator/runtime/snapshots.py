"""What kopf's indexes keep of an object: one copy per object version, shared by every index that keeps it.

A Pod sits in five indexes (by task, service, node, cluster, capacity provider) and a Node in two: a copy each
made a Pod cost five times its size, and its `managedFields` (the server-side apply bookkeeping, about as large
as the rest of the object and read by no handler) made each copy twice what the handlers use. kopf calls every
index of a kind with the same event one after another, so a short memory of the latest versions is enough to
hand them all the same copy.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

RECENT = 512
"""Object versions remembered: kopf indexes one event at a time per object, so this only needs to outlast the
indexes of one event while other objects' events interleave."""


def stripped(body: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the object without metadata.managedFields."""
    out = {k: copy.deepcopy(v) for k, v in body.items() if k != "metadata"}
    meta = body.get("metadata")
    if meta is not None:
        out["metadata"] = {k: copy.deepcopy(v) for k, v in meta.items() if k != "managedFields"}
    return out


class Snapshots:
    """The index functions run in the event loop (async: no thread hop per index and event); the lock keeps
    it right from any thread all the same."""

    def __init__(self, recent: int = RECENT) -> None:
        self._recent: OrderedDict[tuple[str, str, str], dict[str, Any]] = OrderedDict()
        self._size = recent
        self._lock = threading.Lock()

    def of(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The shared copy of this version of the object (readers must not change it)."""
        meta = body.get("metadata") or {}
        key = (str(body.get("kind")), str(meta.get("uid")), str(meta.get("resourceVersion")))
        with self._lock:
            found = self._recent.get(key)
            if found is not None:
                self._recent.move_to_end(key)
                return found
        made = stripped(body)
        with self._lock:
            found = self._recent.setdefault(key, made)
            self._recent.move_to_end(key)
            while len(self._recent) > self._size:
                self._recent.popitem(last=False)
        return found
