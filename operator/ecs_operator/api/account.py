"""One caller's "account": a namespace, its ECS objects as custom resources, read and written through
the operator's Kubernetes adapter in a thread (the API's event loop never blocks on the API server)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.adapters.kube import ApiError as KubeError, Kube
from ecs_operator.settings import Settings

from .errors import ApiError, invalid_parameter, server_error

T = TypeVar("T")
ECS_NAME = {"Cluster": "clusterName", "TaskDefinition": "family", "Service.ecs": "serviceName"}
"""The spec field holding each kind's ECS name (absent: the resource's metadata.name)."""
CONFLICT_RETRIES = 5
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def kube_name(ecs_name: str) -> str:
    """A resource name for an ECS name: itself when Kubernetes allows it, otherwise lowercased and
    cleaned with a hash of the original (ECS names may hold capitals and '_', which Kubernetes refuses)."""
    if len(ecs_name) <= 63 and _DNS_LABEL.match(ecs_name):
        return ecs_name
    head = re.sub(r"[^a-z0-9-]", "-", ecs_name.lower())[:40].strip("-")
    digest = hashlib.sha256(ecs_name.encode()).hexdigest()[:10]
    return f"{head}-{digest}" if head else f"x-{digest}"


def ecs_name(obj: dict[str, Any]) -> str:
    kind = "Service.ecs" if obj.get("kind") == "Service" else obj.get("kind", "")
    return str((obj.get("spec") or {}).get(ECS_NAME.get(kind, "")) or obj["metadata"]["name"])


def resource(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A new custom resource of ours (`kind` as in its manifests: Cluster, Service...)."""
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def paginate(items: list[T], max_results: int | None, next_token: str | None, limit: int = 100,
             default: int | None = None) -> tuple[list[T], str | None]:
    """ECS's nextToken/maxResults over a sorted list: the token is the opaque offset of the next page.
    A page holds `maxResults`, at most `limit`; without it, the operation's `default` (else `limit`)."""
    try:
        start = int(base64.urlsafe_b64decode(next_token.encode()).decode()) if next_token else 0
    except (ValueError, UnicodeDecodeError):
        raise invalid_parameter("Invalid nextToken.") from None
    end = start + min(max_results or default or limit, limit)
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], token


@dataclass(frozen=True)
class Account:
    namespace: str
    kube: Kube
    settings: Settings
    capacity_providers: bool = False
    """The key's right to write CapacityProviders (api/keys.py)."""

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A Kubernetes call in a thread; the API server's failures are ECS's ServerException."""
        try:
            return await asyncio.to_thread(fn, *args)
        except KubeError as e:
            raise _ecs_error(e) from None

    async def items(self, kind: str) -> list[dict[str, Any]]:
        found = await self.call(self.kube.list, kind, self.namespace)
        return [{**o, "kind": kind.split(".")[0]} for o in found]

    async def find(self, kind: str, name: str) -> dict[str, Any] | None:
        """The resource whose ECS name is `name` (its spec's name field, or its metadata.name)."""
        return next((o for o in await self.items(kind) if ecs_name(o) == name), None)

    async def get(self, kind: str, name: str) -> dict[str, Any] | None:
        found = await self.call(self.kube.get, kind, self.namespace, name)
        return {**found, "kind": kind.split(".")[0]} if found else None

    async def with_status(self, kind: str, name: str) -> dict[str, Any] | None:
        """The resource once the operator has written its ECS status (what a Create answers with)."""
        found = await self.get(kind, name)
        return found if found and (found.get("status") or {}).get("status") else None

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj["metadata"]["namespace"] = self.namespace
        created, _ = await self.call(self.kube.create, obj)
        return created

    async def update(self, kind: str, name: str, change: Callable[[dict[str, Any]], dict[str, Any]],
                     missing: ApiError) -> dict[str, Any]:
        """Read the resource, write back `change(it)`; a concurrent write in between (409) makes it
        read and change again. `missing` is raised when the resource is gone."""
        for _ in range(CONFLICT_RETRIES):
            current = await self.get(kind, name)
            if current is None:
                raise missing
            try:
                return await asyncio.to_thread(self.kube.replace, change(current))
            except KubeError as e:
                if e.status != 409:
                    raise _ecs_error(e) from None
        raise server_error(f"{kind} {name} kept changing under {CONFLICT_RETRIES} attempts to update it")

    async def patch(self, kind: str, name: str, patch: dict[str, Any]) -> dict[str, Any] | None:
        return await self.call(self.kube.patch, kind, self.namespace, name, patch)

    async def delete(self, kind: str, name: str) -> bool:
        return await self.call(self.kube.delete, kind, self.namespace, name)


def _ecs_error(e: KubeError) -> ApiError:
    if e.status in (400, 409, 422):  # e.g. the CRD's own validation
        return invalid_parameter(f"Kubernetes refused the change: {e.message}")
    return server_error(f"the Kubernetes API failed: {e}")


async def in_order(*calls: Awaitable[Any]) -> list[Any]:
    """The results of reads run concurrently (one round trip to the API server instead of one each in a
    row); when some fail, the error is the first failed one's in argument order, as if run one by one."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def wait_for(check: Callable[[], Awaitable[T | None]], timeout: float, interval: float = 0.25) -> T | None:
    """Poll `check` until it returns something truthy (returned) or `timeout` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() >= deadline:
            return value or None
        await asyncio.sleep(interval)
