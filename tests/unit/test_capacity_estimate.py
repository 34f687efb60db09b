"""What a capacity provider's estimate takes from the cluster: the scheduler's verdicts (stale once newer
nodes exist) and the tasks a service wants before their Pods exist (ECS creates them all at once)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ecs_operator.handlers.capacity_providers import observe
from ecs_operator.labels import WARMING_UP_TAINT
from ecs_operator.scaling.pool import needing, refused, unborn_tasks, warmup_due
from ecs_operator.models.capacity_provider import ManagedScaling
from ecs_operator.scaling.managed_scaling import ScalingSettings, TaskRequest


def pending(message: str | None, labels: dict[str, str] | None = None, namespace: str = "ns") -> dict[str, Any]:
    conditions = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}] if message else []
    return {"metadata": {"name": "p", "namespace": namespace, "labels": labels or {}}, "spec": {}, "status": {"conditions": conditions}}


def test_a_verdict_counts_only_for_the_nodes_the_scheduler_tried() -> None:
    assert refused(pending("0/5 nodes are available: 5 Insufficient cpu."), node_count=5)
    assert not refused(pending("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."), node_count=5)
    assert refused(pending("no node fits"), node_count=5)  # no count to compare: believe it
    assert refused(pending("0/5 nodes are available: 2 node(s) didn't have free ports for the requested pod ports, "
                            "3 node(s) didn't match Pod's node affinity/selector."), node_count=5)
    assert not refused(pending(None), node_count=5)  # not tried yet


def test_a_verdict_without_a_room_reason_says_nothing_about_the_ready_nodes() -> None:
    """Given while the pool's new nodes were not ready (a taint) or not registered (the cluster label): the
    scheduler tries again once they are; until then the tasks count on their room, not on new instances."""
    not_ready = ("0/8 nodes are available: 3 node(s) had untolerated taint(s), 5 node(s) didn't match Pod's node "
                 "affinity/selector. preemption: 0/8 nodes are available: 3 Insufficient cpu, 5 Preemption is not helpful.")
    assert not refused(pending(not_ready), node_count=8)
    assert refused(pending("0/8 nodes are available: 3 Insufficient cpu, 5 node(s) didn't match Pod's node "
                            "affinity/selector. preemption: 0/8 nodes are available: 8 Preemption is not helpful."), node_count=8)


def test_tasks_a_service_wants_count_before_their_pods_exist() -> None:
    template = {"containers": [{"name": "app", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]}
    workload = {"namespace": "ns", "cluster": "c", "selector": {"svc": "web"}, "replicas": 5, "spec": template}
    pods = [pending(None, {"svc": "web", "x": "y"}), pending(None, {"svc": "web"}), pending(None, {"svc": "other"}),
            pending(None, {"svc": "web"}, namespace="elsewhere")]
    assert unborn_tasks([workload], pods) == [(("ns", "c"), TaskRequest(cpu=256, memory=512))] * 3
    assert unborn_tasks([{**workload, "replicas": 1}], pods) == []  # scaling down: more Pods than wanted


def test_new_nodes_go_to_the_cluster_whose_tasks_wait_most() -> None:
    a, b = ("team-a", "default"), ("team-b", "default")
    waiting = [pending(None, {"ecs.operator.dev/cluster": "default"}, namespace="team-b")]
    placed = {**pending(None, {"ecs.operator.dev/cluster": "default"}, namespace="team-a"), "spec": {"nodeName": "n1"}}
    assert needing([a, b], waiting + [placed], [a]) == a  # one each: ties go to the first
    assert needing([a, b], waiting + [placed], []) == b  # a placed task needs no node
    assert needing([a, b], waiting, [a, a]) == a  # tasks a service wants before their Pods exist count too
    assert needing([a, b], [], []) == a  # nobody waits: the first cluster the provider serves
    assert needing([a], waiting, []) == a  # a cluster the provider does not serve is never chosen
    assert needing([], waiting, []) is None


def test_a_round_sees_its_tasks_and_their_nodes_room_from_one_moment() -> None:
    """The round runs in a thread while kopf updates the indexes: it reads a copy taken at one moment,
    so a task counted as waiting is never also in a node's room (which scaled out for tasks already placed)."""
    node = {"metadata": {"name": "n1"}}
    waiting = pending("0/1 nodes are available: 1 Insufficient cpu.", {"ecs.operator.dev/capacity-provider": "cp"})
    indexes: dict[str, dict[Any, list[Any]]] = {
        "provider_nodes": {"cp": [node]}, "provider_pods": {"cp": [waiting]}, "provider_clusters": {"cp": ["ns/c"]},
        "provider_workloads": {"cp": []}, "node_pods": {}, "nodes": {"n1": [node]}, "container_instances": {"n1": [{"desired": "ACTIVE"}]}}
    view = observe("cp", {}, body={"metadata": {"name": "cp"}, "spec": {}}, **indexes)  # type: ignore[arg-type]  # kopf's types

    placed = {**waiting, "spec": {"nodeName": "n1"}}  # the scheduler binds it while the round runs
    indexes["provider_pods"]["cp"][0] = placed
    indexes["node_pods"]["n1"] = [placed]
    assert (view.pods, view.node_pods, view.nodes, view.clusters) == ([waiting], {"n1": []}, [node], ["ns/c"])
    assert (view.instances, view.node_count) == ({"n1": [{"desired": "ACTIVE"}]}, 1)


def test_the_next_evaluation_comes_when_a_warm_up_ends() -> None:
    now = datetime(2026, 12, 7, 12, 0, 10, tzinfo=timezone.utc)
    warming = {"metadata": {"creationTimestamp": "2026-12-07T12:00:05Z"}, "spec": {"taints": [{"key": WARMING_UP_TAINT}]}}
    warm = {"metadata": {"creationTimestamp": "2026-12-07T11:00:00Z"}, "spec": {}}
    assert warmup_due([warming, warm], now, ScalingSettings.of(ManagedScaling(instanceWarmupPeriod=20)), launched=False) == 15.0
    assert warmup_due([warm], now, ScalingSettings.of(ManagedScaling(instanceWarmupPeriod=20)), launched=True) == 20.0  # launched this round
    assert warmup_due([warm], now, ScalingSettings.of(ManagedScaling(instanceWarmupPeriod=20)), launched=False) is None
    assert warmup_due([warm], now, ScalingSettings.of(ManagedScaling(instanceWarmupPeriod=0)), launched=True) is None  # no warm-up: nothing to wait for
