"""The operator's per-process context, given to every handler as kopf's memo (kopf copies the memo
shallowly for each object, so all of them share the one API client, settings and workers)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from ecs_operator.adapters.kube import Kube
from ecs_operator.settings import Settings

from .created import Unindexed
from .snapshots import Snapshots
from .status import StatusWriter
from .workers import Workers

T = TypeVar("T")
POSTERS = 8
"""Events posted at once: one at a time kept up with neither a thousand services coming up at once nor an API
server answering slowly."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    kube: Kube
    settings: Settings
    workers: Workers = field(default_factory=Workers)
    clock: Callable[[], datetime] = utc_now
    """The time the pure plans are given."""
    writers: dict[str, StatusWriter] = field(default_factory=dict)
    unindexed: Unindexed = field(default_factory=Unindexed)
    """Objects created by this process that kopf's indexes have not shown yet."""
    states: dict[type, Any] = field(default_factory=dict)
    snapshots: Snapshots = field(default_factory=Snapshots)
    """The copies of objects the indexes keep, one per object version."""
    posting: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(POSTERS, thread_name_prefix="events"))
    """Posts the Events (handlers/notices.py), side by side and never holding a round up."""
    parallel: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="requests"))
    """Runs a round's independent API requests side by side (a Service's task stops)."""
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def status(self, kind: str) -> StatusWriter:
        """The status writer of `kind` (one per kind and process)."""
        with self._guard:
            if kind not in self.writers:
                self.writers[kind] = StatusWriter(self.kube, kind)
            return self.writers[kind]

    def state(self, cls: type[T]) -> T:
        """The process's one instance of `cls`: what a kind's handlers remember between events (e.g. the
        Service's ServiceMemory), made on first use, so no handler module keeps state of its own."""
        with self._guard:
            if cls not in self.states:
                self.states[cls] = cls()
            instance: T = self.states[cls]
            return instance
