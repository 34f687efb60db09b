"""DeleteCluster rules: what joins a cluster being deleted, and what holds its deletion back."""

from __future__ import annotations

from ecs_operator.lifecycle.cluster_deletion import held_back, too_late

DELETED_AT = "2026-12-07T06:00:10Z"


def test_nothing_is_too_late_for_a_cluster_not_being_deleted() -> None:
    assert not too_late("2026-12-07T06:00:11Z", False, None)


def test_what_is_created_at_or_after_the_deletion_is_too_late_unless_it_started() -> None:
    assert too_late("2026-12-07T06:00:11Z", False, DELETED_AT)
    assert too_late(DELETED_AT, False, DELETED_AT)  # the same second counts as later
    assert not too_late("2026-12-07T06:00:11Z", True, DELETED_AT)  # already running in the cluster
    assert not too_late("2026-12-07T06:00:09Z", False, DELETED_AT)  # created before: it belongs to the cluster


def test_services_hold_the_deletion_back_before_tasks_and_are_named() -> None:
    reason, message = held_back(["web", "api"], ["worker"]) or ("", "")
    assert reason == "ClusterContainsServicesException"
    assert "services api, web" in message and "ACTIVE" in message
    reason, message = held_back([], ["worker"]) or ("", "")
    assert reason == "ClusterContainsTasksException" and "worker" in message
    assert held_back([], []) is None


def test_a_long_list_is_shortened() -> None:
    _, message = held_back([f"s{i:02}" for i in range(12)], []) or ("", "")
    assert "s00, s01, s02, s03, s04 and 7 more" in message
