"""A container instance's round as a pure plan (lifecycle/instance_reconcile.py): ECS's accounting of
the node and what DRAINING and ACTIVE ask of it (docs/ecs-semantics.md §Draining)."""

from __future__ import annotations

from typing import Any

from ecs_operator import labels as L
from ecs_operator.lifecycle.instance_reconcile import CORDONED_BY_US, Evict, InstanceObserved, PatchNode, plan_instance
from ecs_operator.nodepool.instance_types import build_node, instance_type
from ecs_operator.settings import Settings
from ecs_operator.translate.service import DRAINING_LABEL


def node(cordoned: bool = False, draining_label: bool = False, ours: bool = False) -> dict[str, Any]:
    n = build_node("i-1", instance_type("m5.large"), "us-east-1a",
                   labels={L.CLUSTER: "default", L.CLUSTER_NAMESPACE: "team", **({DRAINING_LABEL: "true"} if draining_label else {})})
    n["metadata"].update(uid="node-uid", creationTimestamp="2026-12-07T12:00:00Z")
    n["metadata"]["annotations"].update({CORDONED_BY_US: "true"} if ours else {})
    n["spec"]["unschedulable"] = cordoned
    n["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return n


def pod(name: str, owner: str | None = None, service: bool = False, phase: str = "Running") -> dict[str, Any]:
    refs = [{"kind": owner, "name": "x", "uid": "o", "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": "team", "uid": f"{name}-uid", "ownerReferences": refs,
                         "labels": {L.SERVICE: "web"} if service else {}},
            "spec": {"nodeName": "i-1", "containers": [{"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]},
            "status": {"phase": phase}}


def test_the_status_is_ecs_accounting_of_the_node_and_its_tasks() -> None:
    plan = plan_instance(InstanceObserved("i-1", "ACTIVE", {}, node(), [pod("a"), pod("b", phase="Succeeded")]), Settings())
    assert plan.actions == [] and plan.events == []
    status = plan.status
    assert (status["status"], status["runningTasksCount"], status["clusterName"], status["clusterNamespace"]) == ("ACTIVE", 1, "default", "team")
    assert status["remainingCpu"] == 2048 - 512 and status["agentConnected"] is True


def test_draining_cordons_the_node_and_evicts_only_daemon_service_tasks() -> None:
    pods = [pod("standalone", owner="Task"), pod("replica", owner="ReplicaSet", service=True), pod("daemon", owner="DaemonSet", service=True)]
    plan = plan_instance(InstanceObserved("i-1", "DRAINING", {"status": "ACTIVE"}, node(), pods), Settings())
    assert plan.actions == [
        PatchNode({"metadata": {"labels": {DRAINING_LABEL: "true"}, "annotations": {CORDONED_BY_US: "true"}},
                   "spec": {"unschedulable": True}}),
        Evict("team", "daemon", "daemon-uid"),
    ]
    assert [e.reason for e in plan.events] == ["Draining"] and plan.status["status"] == "DRAINING"
    again = plan_instance(InstanceObserved("i-1", "DRAINING", plan.status, node(True, True, True), []), Settings())
    assert again.actions == [] and again.events == []  # done: nothing more to do, no second Event


def test_active_again_uncordons_only_a_node_the_operator_cordoned() -> None:
    ours = plan_instance(InstanceObserved("i-1", "ACTIVE", {"status": "DRAINING"}, node(True, True, True), []), Settings())
    assert ours.actions == [PatchNode({"metadata": {"labels": {DRAINING_LABEL: None}, "annotations": {CORDONED_BY_US: None}},
                                       "spec": {"unschedulable": False}})]
    assert [e.reason for e in ours.events] == ["Active"]
    theirs = plan_instance(InstanceObserved("i-1", "ACTIVE", {"status": "DRAINING"}, node(True, True, False), []), Settings())
    assert theirs.actions == [PatchNode({"metadata": {"labels": {DRAINING_LABEL: None}, "annotations": {CORDONED_BY_US: None}}})]
