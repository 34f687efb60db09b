"""Status writes of one kind, consistent with the operator's own earlier writes, and coalesced when
nobody waits for them.

kopf's indexes show an object as its watch delivered it; a reconcile that starts right after the last
one may see the object from before that one's status write (the watch event is still on its way) and,
planning from it, write an older status back (this once rolled a capacity provider's
lastScalingActivity back). The writer remembers each write until the watch shows it, by the
resourceVersion the write returned, as kopf's consistency tracking does for its own patches; after
CONSISTENCY_SECONDS the object is the truth again, whatever it says (level-triggered repair).

A write nobody waits for (`urgent=False`: a task passing PROVISIONING, PENDING, ACTIVATING in a moment)
is held for the flush window and then written with whatever came after it: steps decided within the
window cost one write. The writer holds such a status as the current one (the next round plans from
it); the object's worker flushes it when `due` says so (`flush`, or any later write); an urgent write
includes a held one (the patch is the difference from what was persisted). No timer per object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ecs_operator import metrics
from ecs_operator.adapters.kube import Kube

CONSISTENCY_SECONDS = 5.0
FLUSH_SECONDS = 2.0
"""How long a status nobody waits for may be held before it is written."""

Key = tuple[str | None, str]


@dataclass(frozen=True)
class _Written:
    uid: str
    status: dict[str, Any]
    version: str
    """The resourceVersion the write produced."""
    at: float


@dataclass(frozen=True)
class _Held:
    uid: str
    status: dict[str, Any]
    since: float
    """When the oldest change it holds was decided."""
    base: dict[str, Any]
    """What was persisted when it was first held (a caller may show the writer an object whose status is
    already the current one, as the plans see it)."""


class StatusWriter:
    def __init__(self, kube: Kube, kind: str, clock: Callable[[], float] = time.monotonic,
                 horizon: float = CONSISTENCY_SECONDS, window: float = FLUSH_SECONDS) -> None:
        """`kind`: the Kube resource key (e.g. "CapacityProvider", "Service.ecs")."""
        self.kube, self.kind, self.clock, self.horizon, self.window = kube, kind, clock, horizon, window
        self._written: dict[Key, _Written] = {}
        self._held: dict[Key, _Held] = {}
        self._guard = threading.Lock()

    def current(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The object's status (kopf's own bookkeeping left out), or what this writer holds or wrote last
        if the object shown is from before that."""
        meta = body["metadata"]
        with self._guard:
            held = self._held.get(_key(meta))
            if held is not None and held.uid == meta.get("uid"):
                return dict(held.status)
        return self._persisted(body)

    def _persisted(self, body: Mapping[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        key = _key(meta)
        with self._guard:
            written = self._written.get(key)
            if (written is not None and written.uid == meta.get("uid") and meta.get("resourceVersion") != written.version
                    and self.clock() - written.at <= self.horizon):
                return dict(written.status)
            self._written.pop(key, None)
        return {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}

    def write(self, body: Mapping[str, Any], status: dict[str, Any], urgent: bool = True) -> bool:
        """Write `status` if it differs from the current one (fields it lacks or sets to None are
        removed): at once if `urgent` (with any held status: the patch is the difference from what was
        persisted), else held until the flush window of the oldest held change ends. True if written."""
        status = {k: v for k, v in status.items() if v is not None}
        meta = body["metadata"]
        key = _key(meta)
        changed = status != self.current(body)
        persisted = self._persisted(body)
        with self._guard:
            held = self._held.get(key)
            if held is not None and held.uid != meta.get("uid"):
                held = None
            if changed:
                held = (_Held(meta.get("uid", ""), status, held.since, held.base) if held is not None
                        else _Held(meta.get("uid", ""), status, self.clock(), persisted))
                self._held[key] = held
        if held is None or not (urgent and changed or self.clock() - held.since >= self.window):
            return False
        return self._write(body, held.status, held.base, urgent and changed)

    def due(self, body: Mapping[str, Any]) -> float | None:
        """Seconds until the status held for `body` must be written (None: nothing held)."""
        with self._guard:
            held = self._held.get(_key(body["metadata"]))
        return None if held is None else max(0.0, held.since + self.window - self.clock())

    def flush(self, body: Mapping[str, Any]) -> bool:
        """Write the status held for `body` if its window has ended; True if written."""
        return self.write(body, self.current(body), urgent=False)

    def _write(self, body: Mapping[str, Any], status: dict[str, Any], persisted: dict[str, Any], urgent: bool) -> bool:
        meta = body["metadata"]
        if status == persisted:
            with self._guard:
                self._held.pop(_key(meta), None)
            return False
        # only what changed: a merge patch leaves the other fields (and other writers' fields) as they are
        patch = {k: status.get(k) for k in set(status) | set(persisted) if status.get(k) != persisted.get(k)}
        result = self.kube.patch_status(self.kind, meta.get("namespace"), meta["name"], patch)
        if result is None:  # the object is gone
            self.forget(body)
            return False
        metrics.status_written(self.kind, urgent)
        with self._guard:
            moment = self.clock()
            # entries the watch never confirmed (the object deleted) expire: the dict is in write order
            while self._written:
                oldest = next(iter(self._written))
                if moment - self._written[oldest].at <= self.horizon:
                    break
                del self._written[oldest]
            key = _key(meta)
            self._held.pop(key, None)
            self._written.pop(key, None)
            self._written[key] = _Written(
                meta.get("uid", ""), dict(status), result["metadata"].get("resourceVersion", ""), moment)
        return True

    def forget(self, body: Mapping[str, Any]) -> None:
        key = _key(body["metadata"])
        with self._guard:
            self._written.pop(key, None)
            self._held.pop(key, None)


def _key(meta: Mapping[str, Any]) -> Key:
    return (meta.get("namespace"), meta["name"])
