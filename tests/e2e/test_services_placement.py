"""Where service tasks run: DAEMON over the container instances, capacity provider strategies,
placement constraints and strategies (docs/ecs-semantics.md §Placement, §DAEMON services).

Tests that need more instances add kwok nodes (build_node) and delete them afterwards.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from operator_fixtures import get, wait_for
from service_support import (
    ECS_SERVICE,
    Nodes,
    apply_all,
    cluster,
    cluster_nodes,
    is_live,
    manifest,
    merge_patch,
    messages,
    pods,
    register,
    service,
    status,
    steady,
    task_definition,
    watch_pods,
    watch_services,
)
from tenant_support import make_tenant

from ecs_operator import API_GROUP
from ecs_operator import labels as L
from ecs_operator.instances import registration_labels
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.placement.affinity import MAX_MAINTAINED_LABELS
from ecs_operator.scaling.strategy_split import split

UNABLE = "(service web) was unable to place a task because no container instance met all of its requirements."


@pytest.fixture
def nodes(sandbox: Any) -> Iterator[Nodes]:
    added = Nodes(sandbox)
    try:
        yield added
    finally:
        added.remove_all()


def placed(sandbox: Any, namespace: str) -> Counter[str]:
    """Running tasks per node."""
    return Counter(p["spec"].get("nodeName") for p in pods(sandbox, namespace) if is_live(p) and p["spec"].get("nodeName"))


def daemon_on(sandbox: Any, namespace: str, expected: set[str]) -> dict[str, Any] | None:
    """The DAEMON service's status once it runs exactly one task on each of `expected`."""
    state = status(sandbox, namespace)
    on = placed(sandbox, namespace)
    if set(on) == expected and set(on.values()) == {1} and state.get("desiredCount") == state.get("runningCount") == len(expected):
        return state
    return None


def test_daemon_runs_one_task_per_container_instance_and_follows_them(sandbox: Any, namespace: str, running_operator: Any,
                                                                        nodes: Nodes) -> None:
    instances = {n["metadata"]["name"] for n in cluster_nodes(sandbox)}
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=None, schedulingStrategy="DAEMON"))
    first = wait_for(lambda: daemon_on(sandbox, namespace, instances), 120, what="one task per instance")
    assert first["schedulingStrategy"] == "DAEMON"
    said = messages(steady(sandbox, namespace, "web:1", len(instances)))
    started = next(i for i, m in enumerate(said) if " has started " in m)
    assert not [m for m in said[:started] if "deployment completed" in m or "steady state" in m], said  # not before a task
    assert get(sandbox, "daemonset", "web", namespace), "a DAEMON service is a DaemonSet"

    joined = nodes.add("us-east-1a", registration_labels(namespace, "default"))  # instances of this namespace's cluster
    leaving = nodes.add("us-east-1b", registration_labels(namespace, "default"))
    wait_for(lambda: daemon_on(sandbox, namespace, instances | {joined, leaving}), 120, what="tasks on the joined instances")

    sandbox.kubectl("patch", f"containerinstances.{API_GROUP}", joined, "--type=merge", "-p", '{"spec":{"status":"DRAINING"}}')
    wait_for(lambda: daemon_on(sandbox, namespace, instances | {leaving}), 120, what="the DRAINING instance left")
    nodes.remove(leaving)
    final = wait_for(lambda: daemon_on(sandbox, namespace, instances), 180, what="the deleted instance's task gone")
    assert final["deployments"][0]["rolloutState"] == "COMPLETED"
    assert "(service web) has reached a steady state." in messages(final)


def test_a_daemon_service_whose_tasks_cannot_be_placed_stays_in_progress(sandbox: Any, namespace: str,
                                                                          running_operator: Any) -> None:
    """A DAEMON deployment completes when a task runs on every eligible instance: pending tasks keep it
    IN_PROGRESS, with no steady state, and a deployment that never ran is no rollback target."""
    instances = {n["metadata"]["name"] for n in cluster_nodes(sandbox)}
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(memory=64 * 1024 * 1024), 1)  # 64 TiB: no instance has it
    apply_all(sandbox, namespace, service(desired=None, schedulingStrategy="DAEMON"))
    stuck = wait_for(lambda: (s := status(sandbox, namespace)).get("pendingCount") == len(instances)
                     and any(m.startswith(UNABLE) for m in messages(s)) and s, 120, what="a pending task per instance")
    assert (stuck["desiredCount"], stuck["runningCount"], stuck["rolloutState"]) == (len(instances), 0, "IN_PROGRESS"), stuck
    assert [(d["desiredCount"], d["pendingCount"], d["rolloutState"]) for d in stuck["deployments"]] == [
        (len(instances), len(instances), "IN_PROGRESS")]
    assert not [m for m in messages(stuck) if "deployment completed" in m or "steady state" in m], messages(stuck)
    assert "lastCompletedDeployment" not in stuck

    register(sandbox, namespace, task_definition(), 2)
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    done = steady(sandbox, namespace, "web:2", len(instances))
    assert done["lastCompletedDeployment"]["taskDefinition"] == "web:2"
    assert len([m for m in messages(done) if "deployment completed" in m]) == 1, messages(done)


def provider_pools(nodes: Nodes, namespace: str) -> tuple[str, str, dict[str, str]]:
    """Two capacity providers with two kwok nodes each (labelled ecs.operator.dev/capacity-provider), registered
    with the cluster default of `namespace`."""
    suffix = uuid.uuid4().hex[:5]
    first, second = f"pool-a-{suffix}", f"pool-b-{suffix}"
    owner = {}
    for provider, zones in ((first, ("us-east-1a", "us-east-1b")), (second, ("us-east-1b", "us-east-1c"))):
        for zone in zones:
            # instances of the provider, registered with the cluster (ECS places tasks only on registered ones)
            owner[nodes.add(zone, {L.CAPACITY_PROVIDER: provider, **registration_labels(namespace, "default")})] = provider
    return first, second, owner


def test_capacity_provider_strategy_base_and_weight_and_the_cluster_default(
    sandbox: Any, namespace: str, running_operator: Any, nodes: Nodes
) -> None:
    first, second, owner = provider_pools(nodes, namespace)
    strategy = [{"capacityProvider": first, "base": 1, "weight": 1}, {"capacityProvider": second, "weight": 3}]
    default = [{"capacityProvider": second, "weight": 1}]
    apply_all(sandbox, namespace, manifest("Cluster", "default", {
        "clusterName": "default", "capacityProviders": [first, second], "defaultCapacityProviderStrategy": default}))
    register(sandbox, namespace, task_definition(), 1)
    items = [CapacityProviderStrategyItem.model_validate(i) for i in strategy]

    def per_provider() -> dict[str, int]:
        counts: Counter[str] = Counter()
        for node, n in placed(sandbox, namespace).items():
            counts[owner.get(node, "elsewhere")] += n
        return dict(counts)

    apply_all(sandbox, namespace, service(desired=9, capacityProviderStrategy=strategy))
    steady(sandbox, namespace, "web:1", 9)
    assert split(items, 9) == {first: 3, second: 6}  # base 1 first, then 8 by weight 1:3
    assert per_provider() == {first: 3, second: 6}

    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"desiredCount": 5}})
    wait_for(lambda: per_provider() == {first: 2, second: 3}, 120, what="the split recomputed for 5 tasks")
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"capacityProviderStrategy": [{"capacityProvider": first, "weight": 1}]}})
    wait_for(lambda: per_provider() == {first: 5}, 120, what="every task on the only provider left")
    assert status(sandbox, namespace)["deployments"][0]["taskDefinition"] == "web:1"

    apply_all(sandbox, namespace, service(name="plain", desired=2))  # neither launchType nor strategy
    steady(sandbox, namespace, "web:1", 2, name="plain")
    plain = [p for p in pods(sandbox, namespace, f"{L.SERVICE}=plain") if is_live(p)]
    assert [owner.get(p["spec"]["nodeName"]) for p in plain] == [second, second]  # the cluster's default strategy

    both = service(name="both", desired=1, launchType="EC2", capacityProviderStrategy=strategy)
    refused = sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(both), check=False)
    assert refused.returncode != 0
    assert "spec.capacityProviderStrategy" in refused.stderr
    assert "launchType and capacityProviderStrategy are mutually exclusive" in refused.stderr


def test_distinct_instance_places_one_task_per_instance_and_reports_the_rest(sandbox: Any, namespace: str,
                                                                             running_operator: Any) -> None:
    instances = {n["metadata"]["name"] for n in cluster_nodes(sandbox)}
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=len(instances) + 1, placementConstraints=[{"type": "distinctInstance"}]))
    state = wait_for(lambda: (s := status(sandbox, namespace)).get("runningCount") == len(instances)
                     and any(m.startswith(UNABLE) for m in messages(s)) and s, 120, what="one task per instance, one unplaced")
    assert placed(sandbox, namespace) == Counter({node: 1 for node in instances})
    assert state["pendingCount"] == 1 and state["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    events = sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=web")["items"]
    assert any(e["type"] == "Warning" and e["message"].startswith(UNABLE) for e in events)
    # ECS reports a task started once it is placed: the unplaced one is in no "has started" event
    started = {t for m in messages(state) if " has started " in m for t in re.findall(r"\(task ([0-9a-f]+)\)", m)}
    unplaced = [p["metadata"]["uid"].replace("-", "") for p in pods(sandbox, namespace) if is_live(p) and not p["spec"].get("nodeName")]
    assert len(unplaced) == 1 and unplaced[0] not in started, (unplaced, messages(state))


def test_spread_by_zone_balances_the_zones(sandbox: Any, namespace: str, running_operator: Any) -> None:
    zones = {n["metadata"]["name"]: n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in cluster_nodes(sandbox)}
    per_zone = 2
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=per_zone * len(set(zones.values())),
                                          placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"}]))
    steady(sandbox, namespace, "web:1", per_zone * len(set(zones.values())))
    by_zone: Counter[str] = Counter()
    for node, n in placed(sandbox, namespace).items():
        by_zone[zones[node]] += n
    assert by_zone == Counter({zone: per_zone for zone in zones.values()})


def test_impossible_member_of_leaves_tasks_unplaced_with_ecs_event(sandbox: Any, namespace: str, running_operator: Any) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=2, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type == t2.micro"}]))
    state = wait_for(lambda: (s := status(sandbox, namespace)) and any(m.startswith(UNABLE) for m in messages(s)) and s, 120,
                     what="the placement failure event")
    assert state["runningCount"] == 0 and state["pendingCount"] == 2
    assert all(not p["spec"].get("nodeName") for p in pods(sandbox, namespace))
    unable = [m for m in messages(state) if m.startswith(UNABLE)]
    assert len(unable) == 1 and "ATTRIBUTE" in unable[0]


def member_of_label(deployment: dict[str, Any]) -> str | None:
    """The operator-maintained node label the Deployment's Pods require (None if the template names none)."""
    required = (((deployment["spec"]["template"]["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    keys = {r["key"] for t in required.get("nodeSelectorTerms") or [] for r in t.get("matchExpressions") or []}
    return next((k for k in sorted(keys) if k.startswith(L.MEMBER_OF_PREFIX)), None)


def labelled(sandbox: Any, key: str) -> set[str]:
    """The nodes that carry `key` = "true"."""
    return {n["metadata"]["name"] for n in sandbox.kubectl_json("get", "nodes", "-l", f"{key}=true")["items"]}


def test_member_of_the_operator_evaluates_follows_instances_without_replacing_tasks(
        sandbox: Any, namespace: str, running_operator: Any, nodes: Nodes) -> None:
    """ECS evaluates memberOf when it places a task: instances joining or leaving replace no task
    (docs/ecs-semantics.md §memberOf is evaluated at placement time). A regex is no node affinity
    Kubernetes has: the Pods require a node label the operator keeps on the matching instances."""
    member = registration_labels(namespace, "default")
    first, second = (nodes.add(zone, member, kind="t3.medium") for zone in ("us-east-1a", "us-east-1b"))
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=9, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]))
    steady(sandbox, namespace, "web:1", 9)
    assert set(placed(sandbox, namespace)) <= {first, second}
    before = get(sandbox, "deployment", "web", namespace)
    key = member_of_label(before)
    assert key is not None, before["spec"]["template"]["spec"].get("affinity")
    assert labelled(sandbox, key) == {first, second}
    [replica_set] = sandbox.kubectl_json("get", "replicasets", "-n", namespace)["items"]
    original = {p["metadata"]["uid"] for p in pods(sandbox, namespace) if is_live(p)}
    pod_watch, service_watch = watch_pods(sandbox, namespace), watch_services(sandbox, namespace)
    try:
        joined = nodes.add("us-east-1c", member, kind="t3.medium")
        other = nodes.add("us-east-1c", member, kind="m5.large")
        leaving = nodes.add("us-east-1a", member, kind="t3.medium")
        wait_for(lambda: labelled(sandbox, key) == {first, second, joined, leaving}, 60, what="the joined t3 instances labelled")
        assert not placed(sandbox, namespace)[leaving]
        nodes.remove(leaving)
        wait_for(lambda: sandbox.kubectl("get", "node", leaving, check=False).returncode != 0, 60, what=f"node {leaving} gone")
        assert other not in labelled(sandbox, key)

        merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"desiredCount": 12}})  # a reconcile with the new instances
        steady(sandbox, namespace, "web:1", 12)
        on = placed(sandbox, namespace)
        assert on[joined] >= 1 and set(on) <= {first, second, joined}
    finally:
        pod_watch.stop()
        service_watch.stop()
    after = get(sandbox, "deployment", "web", namespace)
    assert after["spec"]["template"] == before["spec"]["template"]
    assert [r["metadata"]["uid"] for r in sandbox.kubectl_json("get", "replicasets", "-n", namespace)["items"]] == \
        [replica_set["metadata"]["uid"]]
    assert [c.object["metadata"]["uid"] for c in pod_watch.changes if c.type == "DELETED"] == []
    added = {c.object["metadata"]["uid"] for c in pod_watch.changes if c.type == "ADDED"}
    assert len(added) == 3 and not added & original
    assert all(len(((s.get("web") or {}).get("status") or {}).get("deployments") or []) <= 1 for s in service_watch.snapshots)

    # an instance that stops matching loses the label (its task stays, as in ECS); no user, no label
    sandbox.kubectl("label", "node", joined, "node.kubernetes.io/instance-type=m5.large", "--overwrite")
    wait_for(lambda: labelled(sandbox, key) == {first, second}, 60, what=f"the label gone from {joined}")
    assert placed(sandbox, namespace)[joined] >= 1
    sandbox.kubectl("delete", ECS_SERVICE, "web", "-n", namespace, "--wait=false")
    wait_for(lambda: not labelled(sandbox, key), 120, what="the label removed with the last service using it")


def test_a_namespace_gets_a_bounded_number_of_member_of_labels(sandbox: Any, namespace: str, running_operator: Any,
                                                               tmp_path: Any) -> None:
    """Each expression the operator evaluates is a label on every matching Node: a tenant may not grow
    Nodes without bound. Past MAX_MAINTAINED_LABELS per namespace the Service is refused, naming the
    expression, and nothing of it is applied (docs/ecs-semantics.md §memberOf is evaluated at placement time)."""
    tenant = make_tenant(sandbox, namespace, tmp_path)
    node = cluster_nodes(sandbox)[0]["metadata"]["name"]  # an m5.xlarge: every expression below holds on it
    expressions = [f"attribute:ecs.instance-type =~ m5[.]xlarge|n{i}" for i in range(MAX_MAINTAINED_LABELS + 1)]
    constraints = [{"type": "memberOf", "expression": e} for e in expressions]
    tenant.apply(cluster(), task_definition())
    wait_for(lambda: (get(sandbox, f"taskdefinitions.{API_GROUP}", "web", namespace).get("status") or {}).get("revision") == 1,
             60, what="web:1 registered")
    tenant.apply(service(desired=0, placementConstraints=constraints[:10]))
    first = wait_for(lambda: get(sandbox, "deployment", "web", namespace), 60, what="the first service's Deployment")
    keys = {k for k in first["spec"]["template"]["metadata"]["annotations"] if k.startswith(L.MEMBER_OF_PREFIX)}
    assert len(keys) == 10
    wait_for(lambda: {k for k in sandbox.kubectl_json("get", "node", node)["metadata"]["labels"]
                      if k.startswith(L.MEMBER_OF_PREFIX)} == keys, 60, what=f"the ten labels on {node}")

    tenant.apply(service(name="more", desired=0, placementConstraints=constraints[10:]))
    refused = wait_for(lambda: next((c for c in (status(sandbox, namespace, "more").get("conditions") or [])
                                     if c["type"] == "Ready" and c["status"] == "False"), None), 60, what="the refusal")
    assert refused["reason"] == "InvalidParameterException"
    assert refused["message"].startswith(f"placementConstraints[{MAX_MAINTAINED_LABELS - 10}].expression: ")
    assert f"more than the {MAX_MAINTAINED_LABELS} it may use" in refused["message"]
    assert not get(sandbox, "deployment", "more", namespace)
    labels = sandbox.kubectl_json("get", "node", node)["metadata"]["labels"]
    assert {k for k in labels if k.startswith(L.MEMBER_OF_PREFIX)} == keys

    tenant.kubectl("delete", ECS_SERVICE, "web", "-n", namespace)
    wait_for(lambda: not any(k.startswith(L.MEMBER_OF_PREFIX) for k in sandbox.kubectl_json("get", "node", node)["metadata"]["labels"]),
             120, what="the labels removed with the service")


def test_a_task_s_member_of_labels_follow_its_tasks(sandbox: Any, namespace: str, running_operator: Any, nodes: Nodes) -> None:
    """A standalone task's expressions get labels too; one about tasks (runningTasksCount) follows the
    tasks of the namespace's cluster on the instance, and the labels go when the task is gone."""
    t3 = nodes.add("us-east-1a", registration_labels(namespace, "default"), kind="t3.medium")
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, manifest("Task", "job", {"cluster": "default", "taskDefinition": "web:1", "placementConstraints": [
        {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.* and runningTasksCount == 0"}]}))
    pod = wait_for(lambda: next((p for p in pods(sandbox, namespace) if p["spec"].get("nodeName")), None), 60, what="the task placed")
    assert pod["spec"]["nodeName"] == t3
    keys = {k: v for k, v in pod["metadata"]["annotations"].items() if k.startswith(L.MEMBER_OF_PREFIX)}
    assert sorted(keys.values()) == ["attribute:ecs.instance-type =~ t3.*", "runningTasksCount == 0"]
    regex, idle = sorted(keys, key=keys.__getitem__)
    assert idle == L.member_of_label("runningTasksCount == 0", namespace)  # about tasks: this namespace's own label
    wait_for(lambda: labelled(sandbox, regex) == {t3} and t3 not in labelled(sandbox, idle), 60,
             what=f"{t3} still t3, no longer idle")
    sandbox.kubectl("delete", f"tasks.{API_GROUP}", "job", "-n", namespace)
    wait_for(lambda: not labelled(sandbox, regex) and not labelled(sandbox, idle), 120, what="the labels gone with the task")


def test_a_daemon_service_s_member_of_label_brings_its_task_to_a_joining_instance(
        sandbox: Any, namespace: str, running_operator: Any, nodes: Nodes) -> None:
    """A DAEMON service's DaemonSet creates Pods only for nodes that already match: the label comes from
    the template, not from a Pod, so the first matching instance gets its task."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=None, schedulingStrategy="DAEMON", placementConstraints=[
        {"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}]))
    daemon_set = wait_for(lambda: get(sandbox, "daemonset", "web", namespace), 60, what="the DaemonSet")
    assert member_of_label(daemon_set) is not None
    t3 = nodes.add("us-east-1b", registration_labels(namespace, "default"), kind="t3.medium")
    wait_for(lambda: daemon_on(sandbox, namespace, {t3}), 120, what=f"the daemon task on {t3} only")
    assert get(sandbox, "daemonset", "web", namespace)["spec"]["template"] == daemon_set["spec"]["template"]


def packing_cluster(nodes: Nodes, namespace: str, per_zone: int) -> dict[str, str]:
    """Container instances of cluster "packing" only (no shared sandbox node): node -> zone, `per_zone` in each of three zones."""
    zones = ("us-east-1a", "us-east-1b", "us-east-1c")
    return {nodes.add(zone, registration_labels(namespace, "packing")): zone for zone in zones for _ in range(per_zone)}


@pytest.mark.parametrize(("strategy", "per_zone"), [
    ([{"type": "binpack", "field": "memory"}], 1),
    ([{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "memory"}], 2),
], ids=["binpack", "spread-az-then-binpack"])
def test_binpack_fills_the_instance_with_the_least_memory_left_first(sandbox: Any, namespace: str, running_operator: Any,
                                                                     nodes: Nodes, strategy: list[dict[str, str]], per_zone: int) -> None:
    """ECS's binpack(memory) puts each task on the instance with the least memory left that still holds it:
    six 1 GiB tasks on empty m5.large instances (8 GiB) all go to one instance; after spread(AZ) they go
    two per zone, both on one instance of the zone. (The default scheduler would spread them one per node.)"""
    zones = packing_cluster(nodes, namespace, per_zone)
    apply_all(sandbox, namespace, manifest("Cluster", "packing", {}))
    register(sandbox, namespace, task_definition(memory=1024), 1)
    apply_all(sandbox, namespace, service(cluster="packing", desired=6, placementStrategy=strategy))
    steady(sandbox, namespace, "web:1", 6)
    on = placed(sandbox, namespace)
    if per_zone == 1:
        assert sorted(on.values()) == [6], on
    else:
        by_zone = Counter(zones[node] for node in on.elements())
        assert by_zone == Counter({zone: 2 for zone in set(zones.values())}), on
        assert sorted(on.values()) == [2, 2, 2], on  # one instance per zone
    assert {p["spec"].get("schedulerName") for p in pods(sandbox, namespace)} == {"ecs-binpack-memory"}
