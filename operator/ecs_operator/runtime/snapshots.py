"""What kopf's indexes keep of an object: one copy per object version, shared by every index that keeps it.

A Pod sits in five indexes (by task, service, node, cluster, capacity provider) and a Node in two: a copy each
made a Pod cost five times its size, and its `managedFields` (the server-side apply bookkeeping, about as large
as the rest of the object and read by no handler) made each copy twice what the handlers use. kopf calls every
index of a kind with the same event one after another, so a short memory of the latest versions is enough to
hand them all the same copy.

The copies' strings are interned: the watch decodes each object's keys and values anew, yet most of them
("metadata", "containerStatuses", a Service's labels, the TaskDefinition's annotations, "True") are the same
in every Pod of a kind; interned, each is held once, which halves what a kept Pod costs (23 kB to 11 kB of
Python objects for a bench_scale.py Pod). A Pod's copy also leaves out the fields no reader of the Pod indexes
uses (POD_UNREAD: the service account's token volume, the default tolerations, ...): 11 kB to 7 kB.
"""

from __future__ import annotations

import copy
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

POD_UNREAD = {
    "spec": frozenset({"volumes", "tolerations", "dnsPolicy", "enableServiceLinks", "preemptionPolicy", "priority",
                       "securityContext", "serviceAccountName", "serviceAccount"}),
    "containers": frozenset({"volumeMounts", "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy"}),
    "status": frozenset({"podIPs", "hostIPs", "qosClass"}),
}
"""What the Pod copies leave out: set by the API server or the translation and read by no handler, plan or
translation of a live Pod (the ECS fields they carry are read from the TaskDefinition). Reading one of them from
an index needs it taken out of here."""
RECENT = 512
"""Object versions remembered: kopf indexes one event at a time per object, so this only needs to outlast the
indexes of one event while other objects' events interleave."""


def shared(value: Any) -> Any:
    """A deep copy of decoded JSON whose strings, keys and values, are interned (held once per process while
    any copy uses them)."""
    if isinstance(value, dict):
        return {sys.intern(k) if type(k) is str else k: shared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shared(v) for v in value]
    if type(value) is str:
        return sys.intern(value)
    return copy.deepcopy(value)


def stripped(body: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the object without metadata.managedFields, its strings interned."""
    out = {sys.intern(k): shared(v) for k, v in body.items() if k != "metadata"}
    meta = body.get("metadata")
    if meta is not None:
        out["metadata"] = {sys.intern(k): shared(v) for k, v in meta.items() if k != "managedFields"}
    return out


def pod_view(pod: dict[str, Any]) -> dict[str, Any]:
    """The Pod copy without POD_UNREAD (in place: the copy is new)."""
    spec, status = pod.get("spec"), pod.get("status")
    if isinstance(spec, dict):
        for key in POD_UNREAD["spec"] & spec.keys():
            del spec[key]
        for containers in (spec.get("containers"), spec.get("initContainers")):
            for container in containers or []:
                for key in POD_UNREAD["containers"] & container.keys():
                    del container[key]
    if isinstance(status, dict):
        for key in POD_UNREAD["status"] & status.keys():
            del status[key]
    return pod


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
        made = pod_view(stripped(body)) if key[0] == "Pod" else stripped(body)
        with self._lock:
            found = self._recent.setdefault(key, made)
            self._recent.move_to_end(key)
            while len(self._recent) > self._size:
                self._recent.popitem(last=False)
        return found
