"""Status writes of one kind, consistent with the operator's own earlier writes.

kopf's indexes show an object as its watch delivered it; a reconcile that starts right after the last
one may see the object from before that one's status write (the watch event is still on its way) and,
planning from it, write an older status back (this once rolled a capacity provider's
lastScalingActivity back). The writer remembers each write until the watch shows it, by the
resourceVersion the write returned, as kopf's consistency tracking does for its own patches; after
CONSISTENCY_SECONDS the object is the truth again, whatever it says (level-triggered repair).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecs_operator.adapters.kube import Kube

CONSISTENCY_SECONDS = 5.0


@dataclass(frozen=True)
class _Written:
    uid: str
    status: dict[str, Any]
    version: str
    """The resourceVersion the write produced."""
    at: float


class StatusWriter:
    def __init__(self, kube: Kube, kind: str, clock: Callable[[], float] = time.monotonic,
                 horizon: float = CONSISTENCY_SECONDS) -> None:
        """`kind`: the Kube resource key (e.g. "CapacityProvider", "Service.ecs")."""
        self.kube, self.kind, self.clock, self.horizon = kube, kind, clock, horizon
        self._written: dict[tuple[str | None, str], _Written] = {}
        self._guard = threading.Lock()

    def current(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The object's status (kopf's own bookkeeping left out), or what this writer wrote last if the
        object shown is from before that write."""
        meta = body["metadata"]
        key = (meta.get("namespace"), meta["name"])
        with self._guard:
            written = self._written.get(key)
            if (written is not None and written.uid == meta.get("uid") and meta.get("resourceVersion") != written.version
                    and self.clock() - written.at <= self.horizon):
                return dict(written.status)
            self._written.pop(key, None)
        return {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}

    def write(self, body: Mapping[str, Any], status: dict[str, Any]) -> bool:
        """Write `status` if it differs from the current one (fields it lacks or sets to None are
        removed); True if written."""
        status = {k: v for k, v in status.items() if v is not None}
        current = self.current(body)
        if status == current:
            return False
        meta = body["metadata"]
        patch = {k: status.get(k) for k in set(status) | set(current)}
        result = self.kube.patch_status(self.kind, meta.get("namespace"), meta["name"], patch)
        if result is None:  # the object is gone
            self.forget(body)
            return False
        with self._guard:
            moment = self.clock()
            # entries the watch never confirmed (the object deleted) expire: the dict is in write order
            while self._written:
                oldest = next(iter(self._written))
                if moment - self._written[oldest].at <= self.horizon:
                    break
                del self._written[oldest]
            key = (meta.get("namespace"), meta["name"])
            self._written.pop(key, None)
            self._written[key] = _Written(
                meta.get("uid", ""), dict(status), result["metadata"].get("resourceVersion", ""), moment)
        return True

    def forget(self, body: Mapping[str, Any]) -> None:
        meta = body["metadata"]
        with self._guard:
            self._written.pop((meta.get("namespace"), meta["name"]), None)
