"""The Cluster's plan: describe-clusters counters, and DeleteCluster held back while services or active tasks
remain (docs/ecs-semantics.md §Deleting a cluster)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecs_operator.lifecycle.cluster_reconcile import ClusterObserved, ClusterPlan, plan_cluster
from ecs_operator.settings import Settings

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
DELETED_AT = "2026-12-07T11:59:00Z"


def cluster(status: dict[str, Any] | None = None, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "prod", "namespace": "team", "uid": "c-uid", "generation": 1}
    if deleting:
        meta["deletionTimestamp"] = DELETED_AT
    return {"metadata": meta, "spec": {"clusterName": "prod", "capacityProviders": ["pool"]}, "status": status or {}}


def service(name: str, status: str = "ACTIVE", created: str = "2026-12-07T10:00:00Z") -> dict[str, Any]:
    return {"name": name, "status": status, "created": created, "launched": False}


def plan(body: dict[str, Any], services: tuple[dict[str, Any], ...] = (), states: tuple[str, ...] = (),
         tasks: tuple[dict[str, Any], ...] = ()) -> ClusterPlan:
    return plan_cluster(ClusterObserved(body, Settings(), ("node-a", "node-b"), services, states, tasks), NOW)


def test_counters_follow_instances_tasks_and_services() -> None:
    p = plan(cluster(), services=(service("web"), service("old", "INACTIVE"), service("gone", "DRAINING")),
             states=("RUNNING", "RUNNING", "PENDING", "PROVISIONING", "STOPPED"))
    s = p.status
    assert (s["status"], s["registeredContainerInstancesCount"], s["runningTasksCount"], s["pendingTasksCount"],
            s["activeServicesCount"]) == ("ACTIVE", 2, 2, 2, 1)
    assert s["clusterArn"].endswith(":cluster/prod") and s["capacityProviders"] == ["pool"]
    assert [(c["type"], c["status"]) for c in s["conditions"]] == [("Ready", "True")]
    assert (p.events, p.blocker, p.stopped_tasks) == ((), None, ())


def test_steady_state_plans_the_same_status() -> None:
    first = plan(cluster(), states=("RUNNING",))
    assert plan(cluster(first.status), states=("RUNNING",)).status == first.status


def test_a_deletion_waits_for_services_then_active_tasks_with_one_warning_each() -> None:
    p = plan(cluster(deleting=True), services=(service("web"),), tasks=({"name": "t1", "lastStatus": "RUNNING"},))
    assert p.blocker is not None and p.blocker[0] == "ClusterContainsServicesException"
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "ClusterContainsServicesException")]
    deleted = next(c for c in p.status["conditions"] if c["type"] == "Deleted")
    assert (deleted["status"], deleted["reason"]) == ("False", "ClusterContainsServicesException")
    assert p.status["status"] == "ACTIVE" and p.stopped_tasks == ()  # ECS keeps it ACTIVE and working
    again = plan(cluster(p.status, deleting=True), services=(service("web"),))
    assert again.events == ()  # the same reason again: no second Event
    tasks = plan(cluster(p.status, deleting=True), tasks=({"name": "t1", "lastStatus": "RUNNING"},))
    assert tasks.blocker is not None and tasks.blocker[0] == "ClusterContainsTasksException" and len(tasks.events) == 1


def test_a_service_created_after_the_deletion_never_joins_and_holds_nothing_back() -> None:
    late = service("late", created="2026-12-07T11:59:30Z")
    p = plan(cluster(deleting=True), services=(late,), tasks=({"name": "done", "lastStatus": "STOPPED"},))
    assert p.blocker is None and p.status["activeServicesCount"] == 0
    assert p.stopped_tasks == ("done",)  # the STOPPED tasks go with the cluster
