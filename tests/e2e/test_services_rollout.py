"""Rolling updates of an ECS Service on the real control plane (docs/ecs-semantics.md §Rolling deployments).

Every Pod change during a rollout is sampled through a watch: on every sample the service keeps
at least ceil(desired * minimumHealthyPercent / 100) healthy tasks and runs at most
floor(desired * maximumPercent / 100); the rollout ends in ECS's steady state with its events.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from operator_fixtures import wait_for
from service_support import (
    ECS_SERVICE,
    Nodes,
    apply_all,
    cluster,
    deployment_of,
    is_live,
    is_ready,
    merge_patch,
    messages,
    pods,
    register,
    service,
    status,
    steady,
    task_definition,
    watch_pods,
)

from ecs_operator.instances import registration_labels

STUCK = ("(service web) was unable to stop or start tasks during a deployment because of the service deployment "
         "configuration. Update the minimumHealthyPercent or maximumPercent value and try again.")


def task_ids(text: str) -> list[str]:
    return re.findall(r"\(task ([0-9a-f]{32})\)", text)


def uid(pod: dict[str, Any]) -> str:
    return pod["metadata"]["uid"].replace("-", "")


def start(sandbox: Any, namespace: str, desired: int, minimum: int | None, maximum: int | None) -> dict[str, Any]:
    """A service of web:1 at its steady state (web:2 registered too)."""
    config = {k: v for k, v in (("minimumHealthyPercent", minimum), ("maximumPercent", maximum)) if v is not None}
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=desired, deploymentConfiguration=config))
    state = steady(sandbox, namespace, "web:1", desired)
    register(sandbox, namespace, task_definition(image="nginx:2"), 2)
    return state


@pytest.mark.parametrize(
    ("desired", "minimum", "maximum", "min_healthy", "max_tasks"),
    [(4, 50, 200, 2, 8), (4, 100, 200, 4, 8), (4, 0, 100, 0, 4), (1, None, None, 1, 2)],
    ids=["4-tasks-50-200", "4-tasks-100-200", "4-tasks-0-100", "1-task-defaults"],
)
def test_rollout_stays_within_minimum_healthy_and_maximum_percent(
    sandbox: Any, namespace: str, running_operator: Any, desired: int, minimum: int | None, maximum: int | None,
    min_healthy: int, max_tasks: int,
) -> None:
    first = start(sandbox, namespace, desired, minimum, maximum)
    initial = pods(sandbox, namespace)
    started = [m for m in messages(first) if " has started " in m]  # one scheduling pass: one event
    assert len(started) == 1 and started[0].startswith(f"(service web) has started {desired} tasks: (task ")
    assert sorted(task_ids(started[0])) == sorted(uid(p) for p in initial)

    watch = watch_pods(sandbox, namespace)
    try:
        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
        final = steady(sandbox, namespace, "web:2", desired)
    finally:
        watch.stop()

    new_id = final["deployments"][0]["id"]
    assert new_id != first["deployments"][0]["id"]
    for n, snapshot in enumerate(watch.snapshots):
        live = [p for p in snapshot.values() if is_live(p)]
        healthy = [p for p in live if is_ready(p)]
        running = [p for p in live if (p.get("status") or {}).get("phase") == "Running"]  # see the test below
        assert len(healthy) >= min_healthy, f"sample {n}: {len(healthy)} healthy tasks < {min_healthy}"
        assert len(running) <= max_tasks, f"sample {n}: {len(running)} tasks RUNNING > {max_tasks}"
    peak = max(sum(1 for p in s.values() if is_live(p)) for s in watch.snapshots)
    low = min(sum(1 for p in s.values() if is_live(p) and is_ready(p)) for s in watch.snapshots)
    assert peak > desired or low < desired, "the rollout used neither maximumPercent nor minimumHealthyPercent room"
    now_running = pods(sandbox, namespace)
    assert len(now_running) == desired and {deployment_of(p) for p in now_running} == {new_id}

    said = messages(final)[len(messages(first)):]
    started_now = [task for m in said if " has started " in m for task in task_ids(m)]
    stopped_now = [task for m in said if " has stopped " in m for task in task_ids(m)]
    assert sorted(started_now) == sorted(uid(p) for p in now_running)
    assert sorted(stopped_now) == sorted(uid(p) for p in initial)
    for m in said:
        if " has started " in m or " has stopped " in m:
            assert re.fullmatch(r"\(service web\) has (started|stopped) (\d+) (running )?tasks: (\(task [0-9a-f]{32}\) ?)+\.", m), m
            assert int(re.search(r"\d+", m).group()) == len(task_ids(m))  # type: ignore[union-attr]
    assert said[-2:] == [f"(service web) (deployment {new_id}) deployment completed.", "(service web) has reached a steady state."]
    assert final["deployments"][0]["rolloutStateReason"] == f"ECS deployment {new_id} completed."
    assert (final["desiredCount"], final["runningCount"], final["pendingCount"], final["taskDefinition"]) == (desired, desired, 0, "web:2")


def test_minimum_100_maximum_100_is_stuck_with_ecs_event_until_the_configuration_changes(
    sandbox: Any, namespace: str, running_operator: Any
) -> None:
    first = start(sandbox, namespace, 4, 100, 100)
    before = {p["metadata"]["name"] for p in pods(sandbox, namespace)}
    watch = watch_pods(sandbox, namespace)
    try:
        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
        stuck = wait_for(lambda: (s := status(sandbox, namespace)) and STUCK in messages(s) and s, 60, what="the stuck event")
        assert [(d["status"], d["taskDefinition"], d["rolloutState"], d["runningCount"]) for d in stuck["deployments"]] == [
            ("PRIMARY", "web:2", "IN_PROGRESS", 0), ("ACTIVE", "web:1", "COMPLETED", 4)]
        assert [c.type for c in watch.changes if c.type in ("ADDED", "DELETED")] == []  # neither started nor stopped
        assert {p["metadata"]["name"] for p in pods(sandbox, namespace)} == before
        assert messages(stuck).count(STUCK) == 1

        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"deploymentConfiguration": {"minimumHealthyPercent": 50}}})
        final = steady(sandbox, namespace, "web:2", 4)
    finally:
        watch.stop()
    assert final["deployments"][0]["id"] == stuck["deployments"][0]["id"]  # the same deployment, unblocked
    assert first["deployments"][0]["id"] not in {d["id"] for d in final["deployments"]}
    for snapshot in watch.snapshots:
        live = [p for p in snapshot.values() if is_live(p)]
        # RUNNING within maximumPercent: a new ReplicaSet's Pod may be created (PENDING) a moment before the
        # old one's is marked for deletion: both controllers act on the scaled specs (docs/conversion.md)
        running = [p for p in live if (p.get("status") or {}).get("phase") == "Running"]
        assert len(running) <= 4 and sum(1 for p in live if is_ready(p)) >= 2, [p["metadata"]["name"] for p in live]


def test_operator_killed_during_a_rollout_finishes_it_after_restart(sandbox: Any, namespace: str, running_operator: Any) -> None:
    first = start(sandbox, namespace, 4, 100, 200)
    old_id = first["deployments"][0]["id"]
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    rolling = wait_for(lambda: len((s := status(sandbox, namespace)).get("deployments") or []) == 2 and s, 60,
                       what="the new PRIMARY deployment")
    new_id = rolling["deployments"][0]["id"]
    running_operator.stop(kill=True)
    try:
        assert any(deployment_of(p) == old_id and is_live(p) for p in pods(sandbox, namespace)), "the rollout had finished already"
        # Kubernetes finishes replacing the tasks while the operator is down
        wait_for(lambda: {deployment_of(p) for p in pods(sandbox, namespace)} == {new_id}, 120, what="the tasks replaced")
    finally:
        running_operator.start()
    final = steady(sandbox, namespace, "web:2", 4)
    assert [d["id"] for d in final["deployments"]] == [new_id]
    said = messages(final)
    assert said.count(f"(service web) (deployment {new_id}) deployment completed.") == 1
    assert [m for m in said if "(deployment ecs-svc/" in m] == [
        f"(service web) (deployment {old_id}) deployment completed.", f"(service web) (deployment {new_id}) deployment completed."]
    assert final["lastCompletedDeployment"]["id"] == new_id


def test_force_new_deployment_replaces_the_tasks_with_the_same_revision(sandbox: Any, namespace: str, running_operator: Any) -> None:
    """UpdateService --force-new-deployment: a new deployment of the same task definition (new tasks, new
    id) within the bounds; the annotation is how a CR asks for it, a new value each time."""
    first = start(sandbox, namespace, 2, None, None)
    old_id, old_tasks = first["deployments"][0]["id"], {uid(p) for p in pods(sandbox, namespace) if is_live(p)}

    def force(value: str) -> None:
        sandbox.kubectl("annotate", "--overwrite", "-n", namespace, ECS_SERVICE, "web", f"ecs.operator.dev/force-new-deployment={value}")

    force("2026-12-07T06:40:00Z")
    final = wait_for(lambda: (s := steady(sandbox, namespace, "web:1", 2)) and s["deployments"][0]["id"] != old_id and s, 180,
                     what="a new deployment of web:1 at steady state")
    new_id = final["deployments"][0]["id"]
    assert [(d["taskDefinition"], d["rolloutState"]) for d in final["deployments"]] == [("web:1", "COMPLETED")]
    assert f"(service web) (deployment {new_id}) deployment completed." in messages(final)
    assert not old_tasks & {uid(p) for p in pods(sandbox, namespace) if is_live(p)}  # every task replaced

    force("2026-12-07T06:40:00Z")  # the same value again asks for nothing
    assert steady(sandbox, namespace, "web:1", 2)["deployments"][0]["id"] == new_id


def test_early_success_criteria_complete_a_deployment_that_cannot_fully_stabilise(
        sandbox: Any, namespace: str, running_operator: Any) -> None:
    """docs/ecs-semantics.md §Early success criteria: web:2 fits on two r5.large instances only (memberOf,
    distinctInstance), so two of its four tasks stay PENDING and the deployment would never complete; with
    healthyPercent 50 (DEFERRED) it completes once two are healthy, and the service is still not steady."""
    early = {"enable": True, "healthyPercent": 50, "sourceServiceRevisionCleanup": "DEFERRED"}
    first = start(sandbox, namespace, 4, 50, 100)
    nodes = Nodes(sandbox)
    try:
        for _ in range(2):
            nodes.add("us-east-1a", registration_labels(namespace, "default"), kind="r5.large")
        small_only = task_definition(image="nginx:3")
        small_only["spec"]["placementConstraints"] = [{"type": "memberOf", "expression": "attribute:ecs.instance-type == r5.large"}]
        register(sandbox, namespace, small_only, 3)
        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {
            "taskDefinition": "web:3", "placementConstraints": [{"type": "distinctInstance"}],
            "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100, "earlySuccessCriteria": early}}})
        done = wait_for(lambda: (s := status(sandbox, namespace)) and s["deployments"][0]["taskDefinition"] == "web:3"
                        and s["deployments"][0]["rolloutState"] == "COMPLETED" and s, 120, what="web:3 COMPLETED early")
        primary = done["deployments"][0]
        assert primary["runningCount"] >= 2 and primary["desiredCount"] == 4
        assert primary["rolloutStateReason"] == f"ECS deployment {primary['id']} completed."
        said = messages(done)
        completed_at = said.index(f"(service web) (deployment {primary['id']}) deployment completed.")
        assert "(service web) has reached a steady state." not in said[completed_at:]
        final = wait_for(lambda: (s := status(sandbox, namespace)) and s["runningCount"] == 2 and s["pendingCount"] == 2 and s,
                         120, what="two web:3 tasks running, two pending")
        assert [d["id"] for d in final["deployments"]] == [primary["id"]]
        assert final["deployments"][0]["rolloutState"] == "COMPLETED"
        assert first["deployments"][0]["id"] != primary["id"]
    finally:
        nodes.remove_all()
