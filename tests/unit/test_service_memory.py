"""What the Service handlers remember between reconciles is forgotten with the Pods it is about."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.handlers.service_memory import ServiceMemory
from ecs_operator.handlers.services import service_pod_changed
from ecs_operator.runtime.context import Context
from ecs_operator.settings import Settings

MEMO = Context(kube=None, settings=Settings())  # type: ignore[arg-type]  # no API call on this path


def pod_event(type: str | None, uid: str) -> None:
    body = kopf.Body({"metadata": {"name": "web-1", "namespace": "ns", "uid": uid, "labels": {L.SERVICE: "web"},
                                   "creationTimestamp": "2026-01-01T12:00:00Z"}, "spec": {"nodeName": "n1"}})
    services: dict[tuple[str, str], list[dict[str, Any]]] = {}  # the Service is gone
    handler: Any = service_pod_changed  # kopf's protocol lists every kwarg kopf passes; the test passes what it reads
    asyncio.run(handler(type=type, body=body, namespace="ns", labels=body.metadata.labels, services=services, memo=MEMO))


def test_a_pod_deleted_with_its_service_leaves_nothing_behind() -> None:
    memory = MEMO.state(ServiceMemory)
    memory.stopping("pod-uid", True)
    pod_event("DELETED", "pod-uid")
    assert "pod-uid" not in memory._stopping and not memory._stopped
