"""A deleted service's INACTIVE record (docs/ecs-semantics.md §Deleted services)."""

from __future__ import annotations

from datetime import UTC, datetime

from ecs_operator.lifecycle.service_deletion import inactive_services_patch

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


def test_the_record_keeps_what_describe_services_shows_and_old_records_expire() -> None:
    service = {"metadata": {"name": "web-svc", "creationTimestamp": "2026-12-07T10:00:00Z"},
               "spec": {"serviceName": "web", "desiredCount": 2, "kubernetes": {"x": 1}},
               "status": {"taskDefinition": "web:3", "events": [{"id": str(i)} for i in range(12)]}}
    recorded = {"old": "2026-12-07T08:00:00Z", "recent": "2026-12-07T11:30:00Z"}
    patch = inactive_services_patch(service, recorded, NOW, ttl_seconds=3600)["inactiveServices"]
    assert patch["old"] is None and "recent" not in patch  # expired records are removed; the others are left alone
    record = patch["web"]
    assert record["spec"] == {"serviceName": "web", "desiredCount": 2}  # the Kubernetes-only part is not ECS's
    assert (record["deletedAt"], record["taskDefinition"], len(record["events"])) == ("2026-12-07T12:00:00Z", "web:3", 10)
