"""Objects the operator created that kopf's index has not shown yet.

Without this, a reconcile that runs between the creation and the object's first watch event (another
Pod's event, say) would take the object for deleted. The first watch event of the object, whatever it
says, ends the entry: from then on the index knows the object, or its deletion.
"""

from __future__ import annotations

import threading
from typing import Any

Key = tuple[str, str, str]
"""(kind, namespace, name)"""


class Unindexed:
    def __init__(self) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        self._guard = threading.Lock()

    def creating(self, kind: str, obj: dict[str, Any]) -> None:
        """Before the create request, so that a watch event however early ends the entry."""
        with self._guard:
            self._objects[(kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj

    def created(self, kind: str, obj: dict[str, Any], fresh: bool) -> None:
        """The API's answer: the object as created (fresh), or ours from before (the index has it)."""
        key = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        with self._guard:
            if not fresh:
                self._objects.pop(key, None)
            elif key in self._objects:
                self._objects[key] = obj

    def seen(self, kind: str, namespace: str, name: str) -> None:
        """A watch event of the object (or the creation failed)."""
        with self._guard:
            self._objects.pop((kind, namespace, name), None)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._guard:
            return self._objects.get((kind, namespace, name))
