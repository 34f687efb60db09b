"""A service's stopped tasks, as DescribeTasks shows them, kept in the Service's status.

ECS keeps a stopped task describable for an hour; service tasks have no Task object here (their
Pods are the ReplicaSets'), so the Service keeps the records: newest first, within the operator's
stopped-task TTL, and at most MAX_STOPPED_TASKS of them (docs/ecs-semantics.md §Stopped service tasks).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ecs_operator import labels as L

from .pods import parse_time
from .records import TaskRecord
from .task_state import Stop, new_record, observe

MAX_STOPPED_TASKS = 50
"""The status is one object (etcd takes at most 1.5 MiB) written whole: 50 records of up to 10
containers stay under 150 KiB. A crash-looping service keeps its most recent failures."""
HEALTH_CHECKS_FAILED = "Task failed container health checks"


def stop_requests(annotations: dict[str, str]) -> dict[str, str]:
    """StopTask of service tasks, from the Service's annotations: task id -> reason (labels.STOP_TASK_PREFIX)."""
    return {k.removeprefix(L.STOP_TASK_PREFIX): v for k, v in annotations.items() if k.startswith(L.STOP_TASK_PREFIX)}


def scaling_stop(deployment_id: str) -> Stop:
    """The scheduler stopped the task: scale-in, or a deployment replacing it."""
    return Stop("ServiceSchedulerInitiated", f"Scaling activity initiated by (deployment {deployment_id})")


def stopped_record(pod: dict[str, Any], stop: Stop, moment: datetime, *, task_arn: str, started_by: str,
                   group: str | None, task_definition_arn: str | None) -> TaskRecord:
    """The task of a Pod that is stopped or being deleted, as ECS reports it once STOPPED. `stop` is
    the reason unless the Pod shows one of its own (an essential container exited, it could not start)."""
    record = observe(pod, new_record(pod["metadata"]["name"], task_arn), moment)
    if record.stopCode is None:
        record = record.model_copy(update={"stopCode": stop.code, "stoppedReason": stop.reason})
    record = observe(None, record, moment)  # the Pod is gone: STOPPED, every container stopped
    return record.model_copy(update={"startedBy": started_by, "group": group, "taskDefinitionArn": task_definition_arn})


def keep(previous: list[dict[str, Any]], stopped: list[TaskRecord], moment: datetime, ttl_seconds: int) -> list[dict[str, Any]]:
    """The records to keep: the new ones (given oldest first) before the previous, those stopped
    within the TTL, at most MAX_STOPPED_TASKS."""
    cutoff = moment - timedelta(seconds=ttl_seconds)
    records = [r.to_json() for r in reversed(stopped)] + previous
    return [r for r in records if (parse_time(r.get("stoppedAt")) or moment) > cutoff][:MAX_STOPPED_TASKS]
