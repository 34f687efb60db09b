"""A Task resource's status: its tasks (one per Pod) and a describe-tasks style summary on top."""

from __future__ import annotations

from typing import Any

from .records import ORDER, TaskRecord


def summarize_tasks(records: list[TaskRecord]) -> dict[str, Any]:
    """(At least one record.) Top-level fields read like ECS's for one task; with several (RunTask count), the least advanced
    one leads (RUNNING only when all run, STOPPED only when all stopped); desiredCount (tasks meant to
    run) and runningCount show how far the whole RunTask call is."""
    count = len(records)
    lead_status = min(records, key=lambda r: ORDER.index(r.lastStatus)).lastStatus
    stopped = [r for r in records if r.stopped]
    first_stop = next((r for r in records if r.stopCode or r.stoppedReason), None)
    health = {r.healthStatus for r in records if not r.stopped} or {"UNKNOWN"}
    summary: dict[str, Any] = {
        "lastStatus": lead_status,
        "desiredStatus": "STOPPED" if all(r.desiredStatus == "STOPPED" for r in records) else "RUNNING",
        "healthStatus": "UNHEALTHY" if "UNHEALTHY" in health else ("UNKNOWN" if "UNKNOWN" in health else "HEALTHY"),
        "desiredCount": sum(1 for r in records if r.desiredStatus == "RUNNING"),
        "runningCount": sum(1 for r in records if r.lastStatus == "RUNNING"),
        "pendingCount": sum(1 for r in records if r.lastStatus in ("PROVISIONING", "PENDING", "ACTIVATING")),
        "stoppedCount": len(stopped),
        "createdAt": min((r.createdAt for r in records if r.createdAt), default=None),
        "startedAt": max((r.startedAt for r in records if r.startedAt), default=None),
        "stoppingAt": min((r.stoppingAt for r in records if r.stoppingAt), default=None),
        "stoppedAt": max((r.stoppedAt for r in stopped if r.stoppedAt), default=None) if len(stopped) == count else None,
        "stopCode": first_stop.stopCode if first_stop else None,
        "stoppedReason": first_stop.stoppedReason if first_stop else None,
    }
    if count == 1:
        summary["taskArn"] = records[0].taskArn
    return {k: v for k, v in summary.items() if v is not None}
