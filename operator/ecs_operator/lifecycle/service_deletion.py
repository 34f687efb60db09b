"""A deleted service stays describable as INACTIVE (describe-services, the services_inactive waiter) for the
stopped-task TTL: a record in its Cluster's `status.inactiveServices`, keyed by its name so that concurrent
deletions merge (docs/ecs-semantics.md §Deleted services)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from .pods import parse_time


def inactive_services_patch(service: Mapping[str, Any], recorded: Mapping[str, str | None], now: datetime,
                            ttl_seconds: float) -> dict[str, Any]:
    """The Cluster status patch: this service's record, and None for records older than the TTL.
    `recorded`: the Cluster's inactive services and their deletion times."""
    meta, spec, status = service["metadata"], service.get("spec") or {}, service.get("status") or {}
    oldest = now - timedelta(seconds=ttl_seconds)
    expired: dict[str, Any] = {n: None for n, at in recorded.items() if (parse_time(at) or now) < oldest}
    record = {"spec": {k: v for k, v in spec.items() if k != "kubernetes"}, "createdAt": meta.get("creationTimestamp"),
              "deletedAt": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "taskDefinition": status.get("taskDefinition"),
              "events": (status.get("events") or [])[:10]}
    return {"inactiveServices": {**expired, spec.get("serviceName") or meta["name"]: record}}
