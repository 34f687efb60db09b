"""The API's access keys: one Kubernetes Secret, kept current by a watch (a removed key stops working
as soon as the watch delivers the change: milliseconds, well within a second).

Secret `ecs-api-keys` (in the API's namespace) has one data entry per access key:
the access key ID -> JSON `{"secretAccessKey": "...", "namespace": "..."}`, plus `"capacityProviders": true`
for a key that may create, update and delete capacity providers (off by default).

Reading the Secret on every request cost a round trip to the API server per call, in a row before the
operation's own reads. While the watch runs, keys are looked up in its copy; while it does not (not started,
broken, refused by RBAC), the Secret is read on every request as before, so a stale copy is never used.
A key the copy lacks is read from the Secret too: a key added a moment ago works at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from typing import Any, Protocol

from ecs_operator.adapters.kube import ApiError, Kube

from .auth import AccessKey

DEFAULT_SECRET = "ecs-api-keys"
WATCH_SECONDS = 60
"""Each watch request's length (then a new list and watch): bounds how long a silently dead connection
could keep a removed key working."""
RETRY_SECONDS = 1.0
log = logging.getLogger(__name__)


def parse_keys(data: dict[str, str]) -> dict[str, AccessKey]:
    """Secret data (base64 values) -> the valid keys by ID; a malformed entry is skipped and logged, never fatal."""
    keys: dict[str, AccessKey] = {}
    for key_id, encoded in (data or {}).items():
        try:
            entry: Any = json.loads(base64.b64decode(encoded))
            keys[key_id] = AccessKey(key_id, str(entry["secretAccessKey"]), str(entry["namespace"]),
                                     entry.get("capacityProviders") is True)
        except (ValueError, TypeError, KeyError):
            log.warning("access key %s: the entry is not JSON with secretAccessKey and namespace; ignored", key_id)
    return keys


class KeyLookup(Protocol):
    async def lookup(self, access_key_id: str) -> AccessKey | None: ...


class KeyStore:
    """The keys of Secret `secret`: from the watch's copy while it runs, else read per request."""

    def __init__(self, kube: Kube, namespace: str, secret: str = DEFAULT_SECRET) -> None:
        self.kube, self.namespace, self.secret = kube, namespace, secret
        self._keys: dict[str, AccessKey] | None = None
        """The watched Secret's keys; None while no watch is known to be current."""
        self._data: dict[str, str] | None = None
        self._stop = threading.Event()

    async def lookup(self, access_key_id: str) -> AccessKey | None:
        keys = self._keys
        key = keys.get(access_key_id) if keys is not None else None
        if key is None:  # not watching, or a key the watch has not delivered yet
            key = (await asyncio.to_thread(self.read)).get(access_key_id)
        return key

    def read(self) -> dict[str, AccessKey]:
        """The Secret's keys now (a GET)."""
        secret = self.kube.get("Secret", self.namespace, self.secret)
        return parse_keys((secret or {}).get("data") or {})

    def start(self) -> threading.Thread:
        """Watches the Secret in a daemon thread until stop()."""
        thread = threading.Thread(target=self._run, name="api-keys-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        self._keys = None

    def _run(self) -> None:
        warned = False
        while not self._stop.is_set():
            try:
                self._watch_once()
                warned = False
            except (ApiError, ValueError, KeyError) as e:
                self._keys = None  # per-request reads until the watch is back
                if not warned:
                    log.warning("watch of Secret %s/%s failed (%s): reading it on every request until it works",
                                self.namespace, self.secret, e)
                    warned = True
                self._stop.wait(RETRY_SECONDS)

    def _watch_once(self) -> None:
        """One list, then its watch until the API server ends it; the copy follows every event."""
        selector = f"metadata.name={self.secret}"
        items, version = self.kube.collection("Secret", self.namespace, selector)
        self._set(items[0] if items else None)
        for kind, obj in self.kube.watch("Secret", self.namespace, version, selector, WATCH_SECONDS):
            if self._stop.is_set():
                return
            if kind in ("ADDED", "MODIFIED"):
                self._set(obj)
            elif kind == "DELETED":
                self._set(None)

    def _set(self, secret: dict[str, Any] | None) -> None:
        data = (secret or {}).get("data") or {}
        if data != self._data or self._keys is None:
            self._data, self._keys = data, parse_keys(data)
