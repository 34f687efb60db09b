"""Capacity providers scaling node pools on the real control plane, by ECS's managed scaling:
scale-out from zero to ceil(M * 100 / targetCapacity), one decision for a burst, scale-in after the
configured period with managed termination protection and managed draining, step sizes and pool
limits, and an operator killed in the middle of a scale-out.

Tasks reserve 512 CPU units and 1536 MiB unless said otherwise: four fit an m5.large (2 vCPU, 8 GiB),
so 10 tasks need M = 3 instances.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pytest

from capacity_support import (
    NODE_GROUP_CRD,
    PROVIDER_LABEL,
    NodeGroupController,
    Watch,
    activities,
    activities_seen,
    apply_objects,
    capacity_provider,
    ecs_cluster,
    ecs_formula,
    ecs_service,
    new_provider,
    patch,
    pool_node_names,
    pool_nodes,
    provider_events,
    provider_status,
    providers,  # noqa: F401  (fixture)
    running_on,
    service_pods,
    service_running,
    sized_task_definition,
    wait_pool,
)
from ecs_objects import API_GROUP, changes_during, condition, status, unique
from operator_fixtures import kubectl_wait, wait_for
from service_support import is_ready, watch_pods

from ecs_operator import labels as L
from ecs_operator.labels import WARMED_UP_AT

if TYPE_CHECKING:
    from conftest import Cluster
    from operator_fixtures import Operator

pytestmark = pytest.mark.usefixtures("running_operator")

SERVICES = f"services.{API_GROUP}"
CAPACITY_PROVIDERS = f"capacityproviders.{API_GROUP}"


def start_service(sandbox: Cluster, namespace: str, provider: str, tasks: int, cpu: int = 512, memory: int = 1536,
                  service: dict[str, Any] | None = None, **managed: Any) -> str:
    """A provider (its managedScaling/pool settings in `managed`), a cluster of its own and a service on it."""
    cluster = unique("ecs")
    apply_objects(sandbox, namespace, capacity_provider(provider, [namespace], **managed), ecs_cluster(cluster, provider),
                  sized_task_definition("web", cpu=cpu, memory=memory),
                  ecs_service("web", cluster, "web", tasks, provider, **(service or {})))
    return cluster


def scale_service(sandbox: Cluster, namespace: str, tasks: int) -> None:
    patch(sandbox, SERVICES, "web", {"spec": {"desiredCount": tasks}}, namespace)


@pytest.mark.parametrize(("target", "nodes"), [(100, 3), (50, 6)])
def test_a_service_scales_an_empty_pool_out_to_what_ecs_formula_gives(
        sandbox: Cluster, namespace: str, providers: list[str], target: int, nodes: int) -> None:
    provider = new_provider(providers)
    watch = Watch.nodes(sandbox, provider)
    cluster = start_service(sandbox, namespace, provider, 10, targetCapacity=target)

    wait_for(lambda: service_running(sandbox, namespace, "web", 10), timeout=180, what="10 tasks RUNNING")
    assert nodes == ecs_formula(10, per_instance=4, target=target)
    pool = pool_node_names(sandbox, provider)
    assert len(pool) == nodes and watch.most() == nodes  # never more, not even for a moment
    state = wait_for(lambda: (s := provider_status(sandbox, provider)).get("currentSize") == nodes and s, 30,
                     what="the status of the round after the scale-out")  # each round shows what it saw
    assert (state["instancesNeeded"], state["instancesRunning"], state["desiredSize"], state["currentSize"]) == (3, nodes, nodes, nodes)
    assert state["capacityProviderReservation"] == target  # M / N * 100 = targetCapacity: at target
    assert (state["provisioningTasks"], state["status"], state["clusters"]) == (0, "ACTIVE", [f"{namespace}/{cluster}"])
    assert state["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == target
    assert state["autoScalingGroupProvider"]["managedDraining"] == "ENABLED"  # ECS's default
    assert condition(state)["status"] == "True"
    assert state["decision"] == (f"CapacityProviderReservation {target}% (M=3, N={nodes}): "
                                 f"{nodes} instances are what targetCapacity {target}% asks for")

    # one decision, posted as an Event and shown as the last scaling activity
    (activity,) = activities_seen(sandbox, provider, 1)
    assert activity.startswith(f"scale-out to {nodes} instances: CapacityProviderReservation 200% (M=3, N=0) "
                               f"is above targetCapacity {target}%: 0 -> {nodes} instances"), activity
    assert state["lastScalingActivity"]["action"] == "scale-out" and state["lastScalingActivity"]["reason"] == activity
    described = sandbox.kubectl("describe", CAPACITY_PROVIDERS, provider).stdout.split("\nEvents:")[-1]
    assert "ScaleOut" in described and f"scale-out to {nodes} instances" in described, described

    # the tasks run only on the pool's nodes, which are container instances of the cluster of this namespace
    for pod in service_pods(sandbox, namespace, "web"):
        assert pod["spec"]["nodeName"] in pool
        assert pod["spec"]["nodeSelector"] == {PROVIDER_LABEL: provider, L.CLUSTER: cluster}
        assert pod["metadata"]["labels"][PROVIDER_LABEL] == provider
    for node in pool_nodes(sandbox, provider):
        assert (node["metadata"]["labels"][L.CLUSTER], node["metadata"]["labels"][L.CLUSTER_NAMESPACE]) == (cluster, namespace)
        assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "m5.large"
        assert not node["spec"].get("taints")
    wait_for(lambda: status(sandbox, "containerinstances", pool[0]).get("clusterName") == cluster, 60,
             what="the pool's nodes registered as container instances")

    # steady state: the pool is what ECS keeps, and the provider's status is not written again
    assert not changes_during(sandbox, 8, (f"{CAPACITY_PROVIDERS}/{provider}", None))
    assert pool_node_names(sandbox, provider) == pool
    watch.stop()


def test_a_burst_of_100_waiting_tasks_is_one_scale_out_decision(sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    provider = new_provider(providers)
    # 256 CPU units / 512 MiB: 16 fit an m5.xlarge (4 vCPU), so 100 tasks need 7 instances
    start_service(sandbox, namespace, provider, 100, cpu=256, memory=512, instance_type="m5.xlarge", max_size=20)

    wait_for(lambda: service_running(sandbox, namespace, "web", 100), timeout=300, what="100 tasks RUNNING")
    (activity,) = activities_seen(sandbox, provider, 1)  # instanceWarmupPeriod 0: nothing but batching holds a second one
    assert activity.startswith("scale-out to 7 instances: CapacityProviderReservation 200% (M=7, N=0)"), activity
    assert len(pool_node_names(sandbox, provider)) == 7


def test_scaling_the_service_down_shrinks_the_pool_after_the_period_never_removing_a_busy_node(
        sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    provider = new_provider(providers)
    start_service(sandbox, namespace, provider, 10, protection="ENABLED", scale_in_after=6)
    wait_for(lambda: service_running(sandbox, namespace, "web", 10), timeout=180, what="10 tasks RUNNING")
    assert len(pool_node_names(sandbox, provider)) == 3
    watch = Watch.nodes(sandbox, provider)

    asked = datetime.now(timezone.utc)
    scale_service(sandbox, namespace, 2)
    wait_for(lambda: service_running(sandbox, namespace, "web", 2), timeout=120, what="2 tasks RUNNING")
    survivors = service_pods(sandbox, namespace, "web")
    busy = running_on(survivors)
    wait_pool(sandbox, provider, len(busy), timeout=90)

    # M = 1 (two tasks fit one instance), but termination protection keeps every instance that runs a task
    assert sorted(pool_node_names(sandbox, provider)) == sorted(busy)
    assert all(watch.deleted_at(node) is None for node in busy)
    assert {p["metadata"]["uid"] for p in service_pods(sandbox, namespace, "web")} == {p["metadata"]["uid"] for p in survivors}
    activities_seen(sandbox, provider, 1, "scale-in")
    scale_ins = [e for e in provider_events(sandbox, provider) if e["reason"] == "ScaleIn"]
    assert len(scale_ins) == 1
    moment = datetime.fromisoformat((scale_ins[0].get("lastTimestamp") or scale_ins[0]["eventTime"]).replace("Z", "+00:00"))
    assert (moment - asked).total_seconds() >= 6 - 1  # after the period (timestamps have whole seconds)
    wait_for(lambda: provider_status(sandbox, provider)["instancesRunning"] == len(busy), 30, what="the status after the scale-in")
    if len(busy) > 1:  # the two tasks landed on different instances: protection keeps both, after another period
        kept = ("CapacityProviderReservation 50% (M=1, N=2) is below targetCapacity 100%, but managed termination "
                "protection keeps the 1 instance(s) above it: they run tasks")
        wait_for(lambda: provider_status(sandbox, provider)["decision"] == kept, 60, what="the protection holding")
        assert not changes_during(sandbox, 8, (f"{CAPACITY_PROVIDERS}/{provider}", None))  # no write while it holds
    state = provider_status(sandbox, provider)
    assert (state["instancesNeeded"], state["instancesRunning"], state["currentSize"]) == (1, len(busy), len(busy))
    assert len([e for e in provider_events(sandbox, provider) if e["reason"] == "ScaleIn"]) == 1
    watch.stop()


def test_managed_draining_drains_a_busy_node_before_it_leaves_the_pool(
        sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    """1536 CPU units: one task per m5.large, so each of the 3 instances runs a task. Lowering the pool's
    maxSize to 2 makes one of them go: DRAINING, cordoned, its task moved, then removed. (With
    minimumHealthyPercent 100 the task could not move before its replacement runs, and a pool at its
    maxSize has no room for one: ECS waits then too. 50% lets it go first.)"""
    provider = new_provider(providers)
    start_service(sandbox, namespace, provider, 3, cpu=1536, memory=1024, max_size=3,
                  service={"deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}})
    wait_for(lambda: service_running(sandbox, namespace, "web", 3), timeout=180, what="3 tasks RUNNING")
    pool = pool_node_names(sandbox, provider)
    assert running_on(service_pods(sandbox, namespace, "web")) == {node: 1 for node in pool}
    node_watch, pod_watch = Watch.nodes(sandbox, provider), Watch.pods(sandbox, namespace)

    victim = pool[0]  # all run one task: by name
    # read before the change: afterwards a replacement (not yet placed, no nodeName) may be in the list
    (task_on_victim,) = [p["metadata"]["name"] for p in service_pods(sandbox, namespace, "web") if p["spec"]["nodeName"] == victim]
    patch(sandbox, CAPACITY_PROVIDERS, provider, {"spec": {"kubernetes": {"nodePool": {"maxSize": 2}}}})
    wait_pool(sandbox, provider, 2, timeout=90)

    # the node was DRAINING and cordoned, then its task left, then the node went
    drained = [obj for _, kind, obj in node_watch.events(victim)
               if obj["spec"].get("unschedulable") and obj["metadata"]["labels"].get(f"{API_GROUP}/draining") == "true"]
    assert drained, "the node was never cordoned for draining"
    # the watches deliver the deletions a moment after a list shows them: wait for them, never read once
    task_gone = wait_for(lambda: pod_watch.deleted_at(task_on_victim), 30, what="the watch's deletion of the moved task")
    node_gone = wait_for(lambda: node_watch.deleted_at(victim), 30, what="the watch's deletion of the drained node")
    assert task_gone <= node_gone
    (scale_in,) = activities_seen(sandbox, provider, 1, "scale-in")
    assert scale_in.startswith("scale-in to 2 instances: the pool has 3 instances, outside minSize..maxSize 0..2")
    assert scale_in.endswith(f"(draining {victim} first)")
    drained_note = f"drained instance(s) {victim} left the pool: their service tasks moved"
    wait_for(lambda: drained_note in activities(sandbox, provider), 30, what="the activity of the drained instance leaving")
    # its task waits for capacity (the pool is at maxSize) until the pool may grow again
    wait_for(lambda: provider_status(sandbox, provider).get("provisioningTasks") == 1, 60, what="the moved task PROVISIONING")
    assert provider_status(sandbox, provider)["decision"].endswith("but the pool is at maxSize 2")
    patch(sandbox, CAPACITY_PROVIDERS, provider, {"spec": {"kubernetes": {"nodePool": {"maxSize": 3}}}})
    wait_for(lambda: service_running(sandbox, namespace, "web", 3), timeout=120, what="3 tasks RUNNING again")
    node_watch.stop()
    pod_watch.stop()


def test_managed_draining_at_ecs_defaults_replaces_the_task_before_the_node_leaves(
        sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    """No deploymentConfiguration (ECS's minimumHealthyPercent 100, maximumPercent 200): the task of the
    instance chosen for scale-in starts again on the other instance first, then stops, then the instance
    leaves (issue 14.1: it stayed DRAINING forever). 768 CPU units: two tasks fit an m5.large, so 3 tasks
    make 2 instances; at 2 tasks each instance runs one (the ReplicaSet removes a doubled-up task first),
    and maxSize 1 makes one of them go."""
    provider = new_provider(providers)
    start_service(sandbox, namespace, provider, 3, cpu=768, memory=1024)
    wait_for(lambda: service_running(sandbox, namespace, "web", 3), timeout=180, what="3 tasks RUNNING")
    scale_service(sandbox, namespace, 2)
    wait_for(lambda: service_running(sandbox, namespace, "web", 2)
             and sorted(running_on(service_pods(sandbox, namespace, "web")).values()) == [1, 1], 60, what="one task per instance")
    before = {p["spec"]["nodeName"]: p["metadata"]["uid"] for p in service_pods(sandbox, namespace, "web")}
    node_watch, pods_seen = Watch.nodes(sandbox, provider), watch_pods(sandbox, namespace)

    patch(sandbox, CAPACITY_PROVIDERS, provider, {"spec": {"kubernetes": {"nodePool": {"maxSize": 1}}}})
    (scale_in,) = activities_seen(sandbox, provider, 1, "scale-in")
    victim = scale_in.rsplit("(draining ", 1)[1].split(" ")[0]
    assert victim in before, scale_in
    wait_pool(sandbox, provider, 1, timeout=120)
    wait_for(lambda: service_running(sandbox, namespace, "web", 2), 60, what="2 tasks RUNNING on the instance left")

    (survivor,) = pool_node_names(sandbox, provider)
    assert survivor != victim and running_on(service_pods(sandbox, namespace, "web")) == {survivor: 2}
    assert min(sum(1 for p in snapshot.values() if is_ready(p) and not p["metadata"].get("deletionTimestamp"))
               for snapshot in pods_seen.snapshots) == 2  # the replacement ran before the task stopped
    moved = before[victim]
    stopped_at = next(c.at for c in pods_seen.changes if c.object["metadata"]["uid"] == moved and c.object["metadata"].get("deletionTimestamp"))
    node_gone = wait_for(lambda: node_watch.deleted_at(victim), 30, what="the watch's deletion of the drained node")
    pods_seen.stop()
    node_watch.stop()
    assert stopped_at <= node_gone
    drained_note = f"drained instance(s) {victim} left the pool: their service tasks moved"
    wait_for(lambda: drained_note in activities(sandbox, provider), 30, what="the activity of the drained instance leaving")
    state = status(sandbox, SERVICES, "web", namespace)
    assert f"(task {moved.replace('-', '')})" in " ".join(e["message"] for e in state["events"] if "has stopped" in e["message"])


def test_step_sizes_and_pool_limits_are_respected(sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    """One task per instance (1536 CPU units). Steps of 2 to 3 instances, 5 s warm-up, pool 1..6."""
    provider = new_provider(providers)
    cluster = unique("ecs")
    limits = dict(min_size=1, max_size=6, minimumScalingStepSize=2, maximumScalingStepSize=3, instanceWarmupPeriod=5)
    apply_objects(sandbox, namespace, capacity_provider(provider, [namespace], **limits), ecs_cluster(cluster, provider),
                  sized_task_definition("web", cpu=1536, memory=1024))
    wait_pool(sandbox, provider, 1)  # minSize, with no task at all
    assert activities_seen(sandbox, provider, 1)[0].startswith("scale-out to 1 instances: the pool has 0 instances, outside minSize..maxSize 1..6")

    apply_objects(sandbox, namespace, ecs_service("web", cluster, "web", 9, provider))  # M = 9 > maxSize
    wait_for(lambda: service_running(sandbox, namespace, "web", 6, waiting=3), timeout=180, what="6 tasks RUNNING, 3 waiting")
    scale_outs = activities_seen(sandbox, provider, 3)[1:]
    assert [a.split(":")[0] for a in scale_outs] == ["scale-out to 4 instances", "scale-out to 6 instances"], scale_outs
    assert "1 -> 4 instances (9 wanted, step 3)" in scale_outs[0]  # maximumScalingStepSize
    assert "4 -> 6 instances" in scale_outs[1]  # the step of 3 stops at maxSize
    times = [e["firstTimestamp"] or e["eventTime"] for e in provider_events(sandbox, provider) if e["reason"] == "ScaleOut"][1:]
    assert (datetime.fromisoformat(times[1].replace("Z", "+00:00")) - datetime.fromisoformat(times[0].replace("Z", "+00:00"))).total_seconds() >= 5 - 1
    state = wait_for(lambda: (s := provider_status(sandbox, provider)).get("provisioningTasks") == 3 and s, 30,
                     what="the status of the round that saw the 3 waiting tasks")
    assert (state["instancesRunning"], state["instancesNeeded"], state["provisioningTasks"]) == (6, 9, 3)
    assert state["decision"] == "CapacityProviderReservation 150% (M=9, N=6) is above targetCapacity 100%, but the pool is at maxSize 6"
    assert len(pool_node_names(sandbox, provider)) == 6

    # minimumScalingStepSize: one more instance wanted, two launched
    scale_service(sandbox, namespace, 7)
    wait_for(lambda: service_running(sandbox, namespace, "web", 6, waiting=1), timeout=120, what="6 tasks RUNNING, 1 waiting")
    patch(sandbox, CAPACITY_PROVIDERS, provider, {"spec": {"kubernetes": {"nodePool": {"maxSize": 10}}}})
    wait_for(lambda: service_running(sandbox, namespace, "web", 7), timeout=120, what="7 tasks RUNNING")
    wait_pool(sandbox, provider, 8)
    assert "6 -> 8 instances (7 wanted, step 2)" in activities_seen(sandbox, provider, 4, "scale-out")[-1]


def test_a_scale_backend_sets_the_replicas_and_marks_the_chosen_nodes_before_scale_in(
        sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    """A NodeGroup (test CRD with a scale subresource) stands for a MachineDeployment; the test plays its
    controller. 1024 CPU units: two tasks per m5.large."""
    sandbox.kubectl("apply", "--server-side", "-f", str(NODE_GROUP_CRD))
    kubectl_wait(sandbox, "--for=condition=Established", "-f", str(NODE_GROUP_CRD))
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(
        {"apiVersion": "pools.test.ecs.operator.dev/v1", "kind": "NodeGroup", "metadata": {"name": "workers"}, "spec": {"replicas": 0}}))
    provider = new_provider(providers)
    controller = NodeGroupController(sandbox, namespace, "workers", provider).start()
    target = {"apiVersion": "pools.test.ecs.operator.dev/v1", "kind": "NodeGroup", "name": "workers", "namespace": namespace}
    cluster = start_service(sandbox, namespace, provider, 6, cpu=1024, memory=1024, backend="scale", scale_target=target, scale_in_after=5)
    try:
        wait_for(lambda: service_running(sandbox, namespace, "web", 6), timeout=180, what="6 tasks RUNNING")
        assert controller.replicas() == 3 and sorted(pool_node_names(sandbox, provider)) == sorted(controller.created)
        (scale_out,) = activities_seen(sandbox, provider, 1)
        assert scale_out.startswith("scale-out to 3 instances: CapacityProviderReservation 200% (M=3, N=0)")
        assert scale_out.endswith("(added replicas=3)")
        for node in pool_nodes(sandbox, provider):  # registered with the cluster of this namespace before any task ran there
            labels = node["metadata"]["labels"]
            assert (labels.get(L.CLUSTER), labels.get(L.CLUSTER_NAMESPACE)) == (cluster, namespace), node["metadata"]["name"]

        scale_service(sandbox, namespace, 1)
        wait_for(lambda: service_running(sandbox, namespace, "web", 1), timeout=120, what="1 task RUNNING")
        (busy,) = running_on(service_pods(sandbox, namespace, "web"))
        wait_for(lambda: controller.replicas() == 1 and pool_node_names(sandbox, provider) == [busy], 90,
                 what="the NodeGroup at 1 replica, the busy node kept")
        assert controller.deleted_unmarked == [] and sorted(controller.deleted_marked) == sorted(set(controller.created) - {busy})
        (scale_in,) = activities_seen(sandbox, provider, 1, "scale-in")
        assert scale_in.startswith("scale-in to 1 instances:") and scale_in.endswith(f"(removed {', '.join(sorted(controller.deleted_marked))})")
        wait_for(lambda: provider_status(sandbox, provider)["instancesRunning"] == 1, 30, what="the status after the scale-in")
    finally:
        controller.stop()


def test_an_operator_killed_in_the_middle_of_a_scale_out_does_not_over_provision(
        sandbox: Cluster, namespace: str, providers: list[str], running_operator: Operator) -> None:
    """Steps of at most 2 instances and a 6 s warm-up make the scale-out to 3 take two steps; the operator
    is killed (SIGKILL) as soon as the first node shows, and started again: it goes on from what exists."""
    provider = new_provider(providers)
    watch = Watch.nodes(sandbox, provider)
    start_service(sandbox, namespace, provider, 10, maximumScalingStepSize=2, instanceWarmupPeriod=6)
    wait_for(lambda: watch.events(), timeout=60, what="the first node of the scale-out")
    running_operator.stop(kill=True)
    at_kill = watch.most()
    running_operator.start()

    wait_for(lambda: service_running(sandbox, namespace, "web", 10), timeout=180, what="10 tasks RUNNING")
    assert watch.most() == 3, f"{watch.most()} nodes at once ({at_kill} when the operator died)"
    assert len(pool_node_names(sandbox, provider)) == 3
    # The first step launches its 2 Nodes one create at a time: the kill may fall between them, and the
    # restarted operator then counts N=1 and takes the rest in one step (still at most 2).
    def last_reason() -> str:
        return (provider_status(sandbox, provider).get("lastScalingActivity") or {}).get("reason") or ""
    last = wait_for(lambda: last_reason().startswith("scale-out to 3 instances:") and last_reason(), 30,
                    what=f"the last scaling activity in the status (now {last_reason()!r})")
    assert re.match(r"scale-out to 3 instances: CapacityProviderReservation (150% \(M=3, N=2\)|300% \(M=3, N=1\))", last), last
    assert not [line for line in changes_during(sandbox, 8, ("nodes", None)) if provider in line]
    watch.stop()


def test_a_launched_instance_takes_tasks_when_its_warmup_ends_not_at_the_next_evaluation(
        sandbox: Cluster, namespace: str, providers: list[str], running_operator: Operator) -> None:
    """At the operator's default evaluation interval (15 s), an instanceWarmupPeriod of 4 s ends 4 s
    after the launch: the instance is in service then, not at the evaluation after it."""
    running_operator.stop()
    running_operator.start("--capacity-evaluation-seconds", "15")
    try:
        provider = new_provider(providers)
        start_service(sandbox, namespace, provider, 1, instanceWarmupPeriod=4)
        wait_pool(sandbox, provider, 1)
        warmed = wait_for(lambda: (n := pool_nodes(sandbox, provider)[0])["metadata"].get("annotations", {}).get(
            WARMED_UP_AT) and n, 60, what="the warm-up ended")
        created = datetime.fromisoformat(warmed["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
        ended = datetime.fromisoformat(warmed["metadata"]["annotations"][WARMED_UP_AT].replace("Z", "+00:00"))
        assert 3 <= (ended - created).total_seconds() <= 6, (created, ended)  # both in whole seconds
        assert not [t for t in warmed["spec"].get("taints") or [] if t["key"] == f"{API_GROUP}/warming-up"]
        wait_for(lambda: service_running(sandbox, namespace, "web", 1), timeout=60, what="the task RUNNING")
    finally:
        running_operator.stop()
        running_operator.extra_args = ()
        running_operator.start()
