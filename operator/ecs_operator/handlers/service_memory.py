"""What this process remembers of the Services between reconciles: what Pod events saw since the last
one (consumed by the reconcile that reports it), and what last woke each worker. One instance per
process, held by the runtime's Context (`memo.state(ServiceMemory)`).

Process-local on purpose: a restart lists every Pod again (placed ones are not reported again) and the
status is read back from the Service.
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
        # By (namespace, service UID): a re-created Service of the same name never reports its predecessor's tasks.
        self._started: defaultdict[Key, list[str]] = defaultdict(list)
        self._stopped: defaultdict[Key, list[dict[str, Any]]] = defaultdict(list)
        """The Pods the scheduler stopped, as last seen (their records are made at the reconcile)."""
        self._placed: set[str] = set()
        """Pods seen on a node: ECS reports a task started once it is placed, never one that waits for an
        instance (docs/ecs-semantics.md §A task is started once it is placed), and reports each once."""
        self._stopping: set[str] = set()
        """Pods this process deletes as failed: a second look before the deletion shows must not count
        them again, and their DELETED event is no stop of the scheduler's."""
        self._triggers: dict[Key, Trigger] = {}
        """By (namespace, name): what last woke the Service's worker (generation, force-new-deployment,
        stop-task annotations)."""
        self._draining: set[str] = set()
        """Nodes seen labelled DRAINING (a change of that wakes the services with tasks there)."""

    def pod_gone(self, uid: str) -> tuple[bool, bool]:
        """A Pod's DELETED event: whether this process stopped it, and whether it had been placed."""
        with self._guard:
            failed, placed = uid in self._stopping, uid in self._placed
            self._stopping.discard(uid)
            self._placed.discard(uid)
        return failed, placed

    def stopped(self, key: Key, pod: dict[str, Any]) -> None:
        with self._guard:
            self._stopped[key].append(copy.deepcopy(pod))

    def placed(self, key: Key, uid: str, report: bool) -> None:
        """A Pod seen on a node: reported as started once (`report` False: placed before this process)."""
        with self._guard:
            if uid not in self._placed:
                self._placed.add(uid)
                if report:
                    self._started[key].append(uid.replace("-", ""))

    def pending(self, key: Key) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...], frozenset[str]]:
        """The tasks started and stopped since the last report, and the Pods this process is stopping."""
        with self._guard:
            return tuple(self._started.get(key, ())), tuple(self._stopped.get(key, ())), frozenset(self._stopping)

    def reported(self, key: Key, started: int, stopped: int) -> None:
        """The first `started` and `stopped` pending tasks are in the status now (more may have come since)."""
        with self._guard:
            del self._started[key][:started]
            del self._stopped[key][:stopped]
            if not self._started[key]:
                del self._started[key]
            if not self._stopped[key]:
                del self._stopped[key]

    def drop_pending(self, key: Key) -> None:
        """A Service being deleted reports no more tasks."""
        with self._guard:
            self._started.pop(key, None)
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
