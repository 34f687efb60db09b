"""Stopped service tasks as DescribeTasks shows them, kept in the Service's status
(docs/ecs-semantics.md §Stopped service tasks)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator import labels as L
from ecs_operator.lifecycle.service_tasks import MAX_STOPPED_TASKS, keep, scaling_stop, stopped_record
from ecs_operator.lifecycle.task_state import ESSENTIAL_EXITED

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:000000000000:task/default/abc"


def service_pod(app: dict[str, Any], phase: str = "Running", deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web-1", "uid": "abc", "creationTimestamp": "2026-01-01T11:59:00Z",
                            "annotations": {L.ESSENTIAL_CONTAINERS: "app", L.CONTAINER_NAMES: json.dumps({"app": "app"})}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [{"name": "app", "image": "web:2"}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "app", "state": app}]}}


def record(pod: dict[str, Any], deployment: str = "ecs-svc/2") -> Any:
    return stopped_record(pod, scaling_stop("ecs-svc/1"), T0, task_arn=ARN, started_by=deployment,
                          group="service:web", task_definition_arn=None)


def test_a_task_whose_essential_container_exited_keeps_its_own_code_reason_and_exit_code() -> None:
    exited = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": "2026-01-01T11:59:10Z",
                             "finishedAt": "2026-01-01T11:59:11Z"}}
    r = record(service_pod(exited, phase="Failed"))
    assert (r.lastStatus, r.desiredStatus, r.stopCode, r.stoppedReason) == ("STOPPED", "STOPPED", "EssentialContainerExited", ESSENTIAL_EXITED)
    assert [(c.name, c.lastStatus, c.exitCode) for c in r.containers] == [("app", "STOPPED", 1)]
    assert (r.taskArn, r.startedBy, r.group, r.stoppedAt) == (ARN, "ecs-svc/2", "service:web", "2026-01-01T11:59:11Z")


def test_a_task_the_scheduler_stopped_names_the_deployment_that_scaled() -> None:
    r = record(service_pod({"running": {"startedAt": "2026-01-01T11:59:10Z"}}, deleting=True))
    assert (r.lastStatus, r.stopCode, r.stoppedReason) == (
        "STOPPED", "ServiceSchedulerInitiated", "Scaling activity initiated by (deployment ecs-svc/1)")
    assert r.startedAt == "2026-01-01T11:59:10Z" and [c.lastStatus for c in r.containers] == ["STOPPED"]


def test_records_newest_first_within_the_ttl_and_bounded() -> None:
    pod = service_pod({"running": {"startedAt": "2026-01-01T11:59:10Z"}}, deleting=True)
    old = record(pod).to_json() | {"taskArn": "old", "stoppedAt": "2026-01-01T10:59:00Z"}
    recent = record(pod).to_json() | {"taskArn": "recent"}
    new = [record(pod).model_copy(update={"taskArn": f"n{i}"}) for i in range(2)]
    assert [r["taskArn"] for r in keep([recent, old], new, T0, 3600)] == ["n1", "n0", "recent"]
    many = [record(pod).model_copy(update={"taskArn": str(i)}) for i in range(MAX_STOPPED_TASKS + 5)]
    kept = keep([], many, T0 + timedelta(seconds=1), 3600)
    assert len(kept) == MAX_STOPPED_TASKS and kept[0]["taskArn"] == str(MAX_STOPPED_TASKS + 4)
