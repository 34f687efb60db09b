"""A capacity provider's round as a pure plan (scaling/pool.py), from the shapes the e2e scenarios make:
a kwok pool of m5.large Nodes, service tasks of 1 vCPU / 1 GiB, ECS's managed-scaling rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ecs_operator import labels as L
from ecs_operator.lifecycle.conditions import Notify
from ecs_operator.nodepool.instance_types import build_node, instance_type
from ecs_operator.scaling.pool import (
    Activity,
    DrainInstance,
    EndWarmup,
    Grow,
    MarkLeaving,
    PoolFacts,
    PoolObserved,
    PoolPlan,
    PoolView,
    Register,
    RemoveNodes,
    parse,
    plan_pool,
)
from ecs_operator.settings import Settings

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
OWNER_UID = "cp-uid"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def provider(status: dict[str, Any] | None = None, protection: str = "DISABLED", **managed_scaling: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "CapacityProvider",
        "metadata": {"name": "cp", "uid": OWNER_UID, "generation": 1},
        "spec": {"name": "cp", "autoScalingGroupProvider": {"managedScaling": {"status": "ENABLED", **managed_scaling},
                                                            "managedTerminationProtection": protection},
                 "kubernetes": {"allowedNamespaces": ["team"],
                                "nodePool": {"backend": "kwok", "instanceType": "m5.large", "minSize": 0, "maxSize": 10}}},
        "status": status or {},
    }


def node(name: str, age: timedelta = timedelta(hours=1), cluster: bool = True, warming: bool = False,
         annotations: dict[str, str] | None = None) -> dict[str, Any]:
    labels = {L.CAPACITY_PROVIDER: "cp", **({L.CLUSTER: "default", L.CLUSTER_NAMESPACE: "team"} if cluster else {})}
    taints = [{"key": L.WARMING_UP_TAINT, "value": "true", "effect": "NoSchedule"}] if warming else []
    n = build_node(name, instance_type("m5.large"), "us-east-1a", labels=labels, taints=taints)
    n["metadata"].update(creationTimestamp=stamp(NOW - age), uid=f"{name}-uid")
    n["metadata"]["annotations"].update(annotations or {})
    n["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastTransitionTime": stamp(NOW - age)}]
    return n


def task(name: str, node_name: str | None = None, service: bool = True, namespace: str = "team") -> dict[str, Any]:
    labels = {L.CAPACITY_PROVIDER: "cp", L.CLUSTER: "default", **({L.SERVICE: "web"} if service else {})}
    status: dict[str, Any] = {"phase": "Running" if node_name else "Pending"}
    if not node_name:
        status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                 "message": "0/0 nodes are available: 1 Insufficient cpu."}]
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"nodeName": node_name, "containers": [{"name": "app", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]},
            "status": status}


def plan(body: dict[str, Any], nodes: list[dict[str, Any]] = [], pods: list[dict[str, Any]] = [], joining: int = 0,
         instances: dict[str, list[dict[str, Any]]] | None = None, now: datetime = NOW, cluster_count: int | None = None) -> PoolPlan:
    names = [n["metadata"]["name"] for n in nodes]
    view = PoolView(body=body, nodes=nodes, pods=pods, clusters=["team/default"], workloads=[],
                    node_pods={n: [p for p in pods if p["spec"]["nodeName"] == n] for n in names},
                    instances=instances or {n: [{"desired": "ACTIVE"}] for n in names},
                    node_count=len(nodes) if cluster_count is None else cluster_count)
    spec, problems = parse("cp", body)
    facts = PoolFacts(members=nodes, gone=frozenset(), size=len(nodes) + joining, joining=joining)
    return plan_pool(PoolObserved("cp", view, spec, problems, facts, None, Settings()), now)


def of(p: PoolPlan, kind: type) -> list[Any]:
    return [a for a in p.actions if isinstance(a, kind)]


def test_a_burst_of_waiting_tasks_scales_out_in_steps_of_at_most_maximum_scaling_step_size() -> None:
    """10 tasks of 1 vCPU on 2-vCPU instances: M = 5, N = 0 -> 200 %; a step is at most 2 instances."""
    p = plan(provider(maximumScalingStepSize=2, instanceWarmupPeriod=6), pods=[task(f"t{i}") for i in range(10)])
    assert of(p, Grow) == [Grow(2, ("team", "default"), 6)]
    assert p.activity == Activity("scale-out", "scale-out to 2 instances: CapacityProviderReservation 200% (M=5, N=0) "
                                               "is above targetCapacity 100%: 0 -> 2 instances (5 wanted, step 2)")
    assert p.status["desiredSize"] == 2 and p.status["instancesNeeded"] == 5
    assert p.requeue_after == 6.0  # the new instances' warm-up ends then: the next round comes at once


def test_instances_warming_up_hold_the_next_step_until_the_warm_up_passes() -> None:
    body = provider(maximumScalingStepSize=2, instanceWarmupPeriod=6)
    pods = [task(f"t{i}") for i in range(10)]
    young = [node("cp-0", age=timedelta(seconds=2), warming=True), node("cp-1", age=timedelta(seconds=2), warming=True)]
    waiting = plan(body, young, pods)
    assert of(waiting, Grow) == [] and of(waiting, EndWarmup) == []
    assert "waiting for 2 instance(s) to pass instanceWarmupPeriod 6 s" in waiting.status["decision"]
    assert waiting.requeue_after == 4.0

    later = plan(body, young, pods, now=NOW + timedelta(seconds=4))
    assert [a.node for a in of(later, EndWarmup)] == ["cp-0", "cp-1"]
    assert all(a.taints == [] for a in of(later, EndWarmup))
    assert of(later, Grow) == [Grow(4, ("team", "default"), 6)]  # M=5, N=2: the next step


def test_the_ecs_default_warm_up_is_300_seconds() -> None:
    p = plan(provider(), [node("cp-0", age=timedelta(seconds=299), warming=True)], [task(f"t{i}") for i in range(4)])
    assert of(p, EndWarmup) == [] and p.requeue_after == 1.0
    assert plan(provider(), [node("cp-0", age=timedelta(seconds=300), warming=True)])


def test_a_node_of_the_pool_registers_with_the_cluster_whose_tasks_wait() -> None:
    p = plan(provider(), [node("cp-0", cluster=False)], [task("t0")])
    assert of(p, Register) == [Register("cp-0", ("team", "default"))]


def test_a_restart_after_a_partial_step_goes_on_from_the_nodes_that_exist() -> None:
    """Killed between the first step's two Node creates: one node exists (N=1), M=3: one step to 3."""
    body = provider(maximumScalingStepSize=2, instanceWarmupPeriod=6)
    pods = [task(f"t{i}") for i in range(6)]
    p = plan(body, [node("cp-0", age=timedelta(seconds=7))], pods)
    assert of(p, Grow) == [Grow(3, ("team", "default"), 6)]
    assert p.activity is not None and p.activity.text.startswith("scale-out to 3 instances: CapacityProviderReservation 300% (M=3, N=1)")
    # a node the backend was asked for and the index does not show yet counts as joining, never again
    again = plan(body, [node("cp-0", age=timedelta(seconds=7))], pods, joining=2)
    assert of(again, Grow) == [] and again.status["instancesRunning"] == 3


def test_scale_in_waits_15_minutes_below_target_then_removes_empty_instances_first() -> None:
    nodes = [node("cp-0"), node("cp-1"), node("cp-2")]
    pods = [task("t0", "cp-1")]
    first = plan(provider(), nodes, pods)
    assert first.status["belowTargetSince"] == stamp(NOW) and not of(first, RemoveNodes)
    status = {**first.status, "belowTargetSince": stamp(NOW - timedelta(seconds=900))}
    p = plan(provider(status), nodes, pods)
    assert of(p, RemoveNodes) == [RemoveNodes(["cp-0", "cp-2"], 1)]
    assert p.activity is not None and p.activity.text.endswith("(removed cp-0, cp-2)")
    assert p.status["belowTargetSince"] is None


def test_managed_termination_protection_keeps_instances_that_run_tasks() -> None:
    nodes = [node("cp-0"), node("cp-1")]
    pods = [task("t0", "cp-0"), task("t1", "cp-1")]
    long_below = {"belowTargetSince": stamp(NOW - timedelta(hours=1))}
    body = provider(long_below, protection="ENABLED")
    body["spec"]["kubernetes"]["nodePool"]["minSize"] = 0
    # 2 tasks of 1 vCPU fit one m5.large: M=1, N=2 -> 50 %: one instance is not needed, but both run a task
    p = plan(body, nodes, pods)
    assert p.actions == [] and p.activity is None
    assert "managed termination protection keeps the 1 instance(s) above it: they run tasks" in p.status["decision"]


def test_managed_draining_drains_a_busy_instance_before_it_goes_and_then_it_leaves() -> None:
    nodes = [node("cp-0"), node("cp-1")]
    pods = [task("t0", "cp-0"), task("t1", "cp-1")]
    p = plan(provider({"belowTargetSince": stamp(NOW - timedelta(hours=1))}), nodes, pods)
    (leaving,) = of(p, MarkLeaving)
    assert of(p, DrainInstance) == [DrainInstance(leaving.node)] and of(p, RemoveNodes) == []
    assert p.activity is not None and p.activity.text.endswith(f"(draining {leaving.node} first)")

    marked = [node(n["metadata"]["name"], annotations={L.LEAVING: stamp(NOW)} if n["metadata"]["name"] == leaving.node else None)
              for n in nodes]
    still = plan(provider(p.status), marked, pods, instances={n["metadata"]["name"]: [{"desired": "DRAINING"}] for n in nodes})
    assert of(still, RemoveNodes) == [] and still.status["draining"] == [leaving.node]
    moved = [t for t in pods if t["spec"]["nodeName"] != leaving.node]
    gone = plan(provider(p.status), marked, moved, instances={n["metadata"]["name"]: [{"desired": "DRAINING"}] for n in nodes})
    assert of(gone, RemoveNodes) == [RemoveNodes([leaving.node], 1)]
    assert gone.activity == Activity("scale-in", f"drained instance(s) {leaving.node} left the pool: their service tasks moved")


def test_tasks_of_a_namespace_the_provider_does_not_allow_count_for_nothing() -> None:
    body = provider()
    body["spec"]["kubernetes"]["allowedNamespaces"] = ["admins"]
    p = plan(body, pods=[task(f"t{i}") for i in range(4)])
    assert of(p, Grow) == [] and p.status["instancesNeeded"] == 0


def test_a_node_labelled_for_the_provider_by_someone_else_is_reported_once_and_left_alone() -> None:
    foreign = node("intruder")
    view_nodes = [foreign]
    body = provider()
    spec, problems = parse("cp", body)
    view = PoolView(body=body, nodes=view_nodes, pods=[], clusters=["team/default"], workloads=[], node_pods={"intruder": []},
                    instances={}, node_count=1)
    facts = PoolFacts(members=[], gone=frozenset(), size=0, joining=0)
    p = plan_pool(PoolObserved("cp", view, spec, problems, facts, None, Settings()), NOW)
    assert [a.reason for a in of(p, Notify)] == ["ForeignNodes"] and p.status["foreignNodes"] == ["intruder"]
    again = plan_pool(PoolObserved("cp", PoolView(**{**view.__dict__, "body": {**body, "status": p.status}}), spec, problems,
                                   facts, None, Settings()), NOW)
    assert of(again, Notify) == [] and of(again, RemoveNodes) == []


def test_an_invalid_spec_is_a_false_ready_condition_naming_the_field_and_nothing_else() -> None:
    body = provider()
    body["spec"]["kubernetes"]["nodePool"]["instanceType"] = "m5.huge"
    p = plan(body)
    assert [a for a in p.actions if not isinstance(a, Notify)] == [] and p.activity is None
    (ready,) = p.status["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidParameterException")
    assert ready["message"].startswith("kubernetes.nodePool.instanceType: unknown instance type 'm5.huge'")
    assert [a.reason for a in of(p, Notify)] == ["InvalidParameterException"]
    assert of(plan(provider(p.status) | {"spec": body["spec"]}), Notify) == []  # the same reason again: no second Event


def test_at_steady_state_the_status_is_what_it_was_and_nothing_is_done() -> None:
    nodes = [node("cp-0"), node("cp-1")]
    pods = [task("t0", "cp-0"), task("t1", "cp-0"), task("t2", "cp-1"), task("t3", "cp-1")]
    first = plan(provider(), nodes, pods)
    assert first.status["capacityProviderReservation"] == 100 and first.actions == []
    second = plan(provider(first.status), nodes, pods, now=NOW + timedelta(minutes=5))
    assert second.status == first.status and second.actions == [] and second.activity is None


def test_the_status_shows_ecs_defaults_as_describe_capacity_providers_does() -> None:
    p = plan(provider())
    assert p.status["autoScalingGroupProvider"]["managedScaling"] == {
        "status": "ENABLED", "targetCapacity": 100, "minimumScalingStepSize": 1, "maximumScalingStepSize": 10000,
        "instanceWarmupPeriod": 300}
    assert p.status["autoScalingGroupProvider"]["managedDraining"] == "ENABLED"
