"""What this process remembers of the Services between reconciles: the last look at Pods that went
since the last one (consumed by the next reconcile: their stopped-task records), and what last woke each
worker. One instance per process, held by the runtime's Context (`memo.state(ServiceMemory)`).

Process-local on purpose, and never the source of an ECS event: which tasks started and stopped is
derived from the Pods and the Service's status (lifecycle/service_reconcile.py, placed_tasks), so a
restart at any moment neither loses nor repeats one.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from typing import Any

Key = tuple[str, str]
Trigger = tuple[int | None, str | None, tuple[str, ...]]


class ServiceMemory:
    def __init__(self) -> None:
        self._guard = threading.Lock()
        # By (namespace, service UID): a re-created Service of the same name never sees its predecessor's tasks.
        self._stopped: defaultdict[Key, list[dict[str, Any]]] = defaultdict(list)
        """The Pods that went, as last seen (their records are made at the reconcile)."""
        self._stopping: set[str] = set()
        """Pods this process deletes as failed: a second look before the deletion shows must not count
        them again, and their DELETED event is no stop of the scheduler's."""
        self._triggers: dict[Key, Trigger] = {}
        """By (namespace, name): what last woke the Service's worker (generation, force-new-deployment,
        stop-task annotations)."""
        self._draining: set[str] = set()
        """Nodes seen labelled DRAINING (a change of that wakes the services with tasks there)."""

    def pod_gone(self, uid: str) -> bool:
        """A Pod's DELETED event: whether this process stopped it."""
        with self._guard:
            failed = uid in self._stopping
            self._stopping.discard(uid)
        return failed

    def stopped(self, key: Key, pod: dict[str, Any]) -> None:
        with self._guard:
            self._stopped[key].append(copy.deepcopy(pod))

    def pending(self, key: Key) -> tuple[tuple[dict[str, Any], ...], frozenset[str]]:
        """The Pods that went since the last reconcile, and the Pods this process is stopping."""
        with self._guard:
            return tuple(self._stopped.get(key, ())), frozenset(self._stopping)

    def reported(self, key: Key, stopped: int) -> None:
        """The first `stopped` gone Pods were looked at (more may have come since)."""
        with self._guard:
            del self._stopped[key][:stopped]
            if not self._stopped[key]:
                del self._stopped[key]

    def drop_pending(self, key: Key) -> None:
        """A Service being deleted reports no more tasks."""
        with self._guard:
            self._stopped.pop(key, None)

    def stopping(self, uid: str, yes: bool) -> None:
        """Before the deletion (its DELETED event may come before the call returns), and undone if it failed."""
        with self._guard:
            if yes:
                self._stopping.add(uid)
            else:
                self._stopping.discard(uid)

    def triggered(self, key: Key, trigger: Trigger) -> bool:
        """Whether `trigger` is new for the Service (it is remembered)."""
        with self._guard:
            if self._triggers.get(key) == trigger:
                return False
            self._triggers[key] = trigger
            return True

    def forget_trigger(self, key: Key) -> None:
        with self._guard:
            self._triggers.pop(key, None)

    def draining_changed(self, node: str, draining: bool) -> bool:
        """Whether the node's DRAINING label changed since last seen (it is remembered)."""
        with self._guard:
            if (node in self._draining) == draining:
                return False
            (self._draining.add if draining else self._draining.discard)(node)
            return True
