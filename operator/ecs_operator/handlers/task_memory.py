"""What the Task handlers remember between events (the process's one instance: `memo.state(Unlaunched)`)."""

from __future__ import annotations

import threading


class Unlaunched:
    """The Tasks of each namespace that have not launched (waiting for a revision or a cluster, or refused):
    a registration or a Cluster change wakes only these."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.keys: dict[str, set[tuple[str, str]]] = {}

    def mark(self, key: tuple[str, str], waiting: bool) -> None:
        with self.guard:
            if waiting:
                self.keys.setdefault(key[0], set()).add(key)
            elif key[0] in self.keys:
                self.keys[key[0]].discard(key)
                if not self.keys[key[0]]:
                    del self.keys[key[0]]

    def of(self, namespace: str) -> list[tuple[str, str]]:
        with self.guard:
            return list(self.keys.get(namespace, ()))
