"""The API's access keys: one Kubernetes Secret, read on every request (a removed key stops working at once).

Secret `ecs-api-keys` (in the API's namespace) has one data entry per access key:
the access key ID -> JSON `{"secretAccessKey": "...", "namespace": "..."}`, plus `"capacityProviders": true`
for a key that may create, update and delete capacity providers (off by default).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, Protocol

from ecs_operator.adapters.kube import Kube

from .auth import AccessKey

DEFAULT_SECRET = "ecs-api-keys"
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
    def __init__(self, kube: Kube, namespace: str, secret: str = DEFAULT_SECRET) -> None:
        self.kube, self.namespace, self.secret = kube, namespace, secret

    async def lookup(self, access_key_id: str) -> AccessKey | None:
        secret = await asyncio.to_thread(self.kube.get, "Secret", self.namespace, self.secret)
        return parse_keys((secret or {}).get("data") or {}).get(access_key_id)
