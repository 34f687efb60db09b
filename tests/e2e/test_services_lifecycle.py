"""An ECS Service's life: desiredCount through the scale subresource, no API writes at steady
state, DeleteService draining (and its force form), and the events list (docs/ecs-semantics.md §Deleted services, §Rolling deployments)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from operator_fixtures import get, wait_for
from service_support import (
    ECS_SERVICE,
    apply_all,
    cluster,
    is_live,
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

from ecs_operator import API_GROUP
from ecs_operator.lifecycle.service_deployments import MAX_EVENTS

TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"
HEALTH_CHECK = {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "interval": 5, "timeout": 2, "retries": 1}
QUIET_SECONDS = 40
"""Longer than the operator's periodic resync (30 s): the window sees at least one."""


def versions(sandbox: Any, namespace: str) -> dict[str, str]:
    """resourceVersion of the ECS Service and everything it owns (not the Pods: kwok writes those)."""
    kinds = f"{ECS_SERVICE},deployments,replicasets,services,poddisruptionbudgets"
    items = sandbox.kubectl_json("get", kinds, "-n", namespace)["items"]
    return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in items}


def test_scale_subresource_sets_desired_count_and_nothing_is_written_at_steady_state(
    sandbox: Any, namespace: str, running_operator: Any
) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=2, loadBalancers=[
        {"targetGroupArn": TARGET_GROUP, "containerName": "app", "containerPort": 80}]))
    first = steady(sandbox, namespace, "web:1", 2)

    sandbox.kubectl("scale", ECS_SERVICE, "web", "-n", namespace, "--replicas=5")
    scaled = steady(sandbox, namespace, "web:1", 5)
    assert scaled["desiredCount"] == 5 and get(sandbox, ECS_SERVICE, "web", namespace)["spec"]["desiredCount"] == 5
    assert [d["id"] for d in scaled["deployments"]] == [first["deployments"][0]["id"]]  # desiredCount starts no deployment
    scale = json.loads(sandbox.kubectl("get", ECS_SERVICE, "web", "-n", namespace, "--subresource=scale", "-o", "json").stdout)
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (5, 5)
    assert scale["status"]["selector"] == f"{API_GROUP}/service=web"
    said = messages(scaled)[len(messages(first)):]
    assert said[0].startswith("(service web) has started 3 tasks: ") and said[-1] == "(service web) has reached a steady state."

    before = versions(sandbox, namespace)
    sandbox.kubectl("annotate", "pod", pods(sandbox, namespace)[0]["metadata"]["name"], "-n", namespace, "poke=1")  # wakes the worker
    started = time.monotonic()
    wait_for(lambda: time.monotonic() - started > QUIET_SECONDS, QUIET_SECONDS + 10, what="a quiet period")
    assert versions(sandbox, namespace) == before


def test_delete_scales_to_zero_drains_then_removes_the_service_and_its_children(
    sandbox: Any, namespace: str, running_operator: Any
) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=3, loadBalancers=[
        {"targetGroupArn": TARGET_GROUP, "containerName": "app", "containerPort": 80}]))
    steady(sandbox, namespace, "web:1", 3)
    children = [("deployment", "web"), ("service", "web"), ("poddisruptionbudget", "web")]
    assert all(get(sandbox, kind, name, namespace) for kind, name in children)
    service_watch, pod_watch = watch_services(sandbox, namespace), watch_pods(sandbox, namespace)
    try:
        sandbox.kubectl("delete", ECS_SERVICE, "web", "-n", namespace, "--wait=false")
        wait_for(lambda: not get(sandbox, ECS_SERVICE, "web", namespace), 120, what="the service gone")
    finally:
        service_watch.stop()
        pod_watch.stop()
    seen = [((c.object.get("status") or {}).get("status"), (c.object.get("status") or {}).get("desiredCount"))
            for c in service_watch.changes]
    states = [s for n, (s, _) in enumerate(seen) if n == 0 or seen[n - 1][0] != s]
    assert states[-3:] == ["ACTIVE", "DRAINING", "INACTIVE"] or states[-2:] == ["DRAINING", "INACTIVE"], states
    assert ("DRAINING", 0) in seen
    gone = next(c.at for c in service_watch.changes if c.type == "DELETED")
    assert len([c for c in pod_watch.changes if c.type == "DELETED"]) == 3
    assert all(c.at <= gone for c in pod_watch.changes if c.type == "DELETED")  # the tasks stopped first
    assert not [p for p in pods(sandbox, namespace) if is_live(p)]
    wait_for(lambda: not any(get(sandbox, kind, name, namespace) for kind, name in children), 120,
             what="the Deployment, Kubernetes Service and PodDisruptionBudget removed with it")


def test_a_recreated_service_reports_only_its_own_tasks(sandbox: Any, namespace: str, running_operator: Any) -> None:
    """ECS service events belong to the service (its UID): tasks a service stopped just before it was
    deleted are not reported by a new service of the same name."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=3))
    steady(sandbox, namespace, "web:1", 3)
    old_tasks = {p["metadata"]["uid"].replace("-", "") for p in pods(sandbox, namespace)}
    sandbox.kubectl("annotate", ECS_SERVICE, "web", "-n", namespace, f"{API_GROUP}/force-delete=true")
    sandbox.kubectl("scale", ECS_SERVICE, "web", "-n", namespace, "--replicas=1")
    wait_for(lambda: len([p for p in pods(sandbox, namespace) if is_live(p)]) == 1, 60, interval=0.1,
             what="two tasks stopped by the scale-in")
    sandbox.kubectl("delete", ECS_SERVICE, "web", "-n", namespace, "--wait=false")  # before the service reports them
    wait_for(lambda: not get(sandbox, ECS_SERVICE, "web", namespace), 120, what="the first service gone")

    apply_all(sandbox, namespace, service(desired=2))
    state = steady(sandbox, namespace, "web:1", 2)
    new_tasks = {p["metadata"]["uid"].replace("-", "") for p in pods(sandbox, namespace) if is_live(p)}
    said = messages(state)
    assert not [m for m in said if "has stopped" in m or any(t in m for t in old_tasks)], said
    assert [m for m in said if "has started" in m and all(t in m for t in new_tasks)], said


def test_a_refused_service_shows_ready_false_and_the_reason_in_kubectl_get(sandbox: Any, namespace: str,
                                                                           running_operator: Any) -> None:
    apply_all(sandbox, namespace, service(cluster="nowhere"))
    wait_for(lambda: [c for c in status(sandbox, namespace).get("conditions") or [] if c["status"] == "False"],
             what="the service refused")
    header, row = sandbox.kubectl("get", ECS_SERVICE, "web", "-n", namespace).stdout.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    columns = {header[a:b].strip(): row[a:b].strip() for a, b in zip(starts, [*starts[1:], None])}
    assert (columns["READY"], columns["REASON"]) == ("False", "ClusterNotFoundException"), columns


def test_force_delete_annotation_skips_draining(sandbox: Any, namespace: str, running_operator: Any) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=3))
    steady(sandbox, namespace, "web:1", 3)
    sandbox.kubectl("annotate", ECS_SERVICE, "web", "-n", namespace, f"{API_GROUP}/force-delete=true")
    service_watch = watch_services(sandbox, namespace)
    try:
        sandbox.kubectl("delete", ECS_SERVICE, "web", "-n", namespace, "--wait=false")
        wait_for(lambda: not get(sandbox, ECS_SERVICE, "web", namespace), 60, what="the service gone")
    finally:
        service_watch.stop()
    assert "DRAINING" not in {(c.object.get("status") or {}).get("status") for c in service_watch.changes}
    wait_for(lambda: not pods(sandbox, namespace), 120, what="its tasks removed with it")


def test_events_keep_the_newest_100_and_are_posted_as_kubernetes_events(sandbox: Any, namespace: str,
                                                                        running_operator: Any) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(annotations={"sim.ecs.operator.dev/unready": "app"}, healthCheck=HEALTH_CHECK), 1)
    # no circuit breaker: ECS keeps replacing the unhealthy tasks, with an event for each
    apply_all(sandbox, namespace, service(desired=8))

    def posted() -> set[str]:
        items = sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector",
                                     "involvedObject.name=web,reason=ServiceEvent")["items"]
        return {e["message"] for e in items if e["involvedObject"]["kind"] == "Service"}

    # more than 100 events happened (the status reaching 100 may be exactly the 100th)
    wait_for(lambda: len(status(sandbox, namespace).get("events") or []) == MAX_EVENTS and len(posted()) > MAX_EVENTS, 300,
             interval=2, what="100 events in the status, more posted")
    full = status(sandbox, namespace)
    sandbox.kubectl("annotate", ECS_SERVICE, "web", "-n", namespace, f"{API_GROUP}/force-delete=true")
    sandbox.kubectl("delete", ECS_SERVICE, "web", "-n", namespace, "--wait=false")
    stamps = [e["createdAt"] for e in full["events"]]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert len({e["id"] for e in full["events"]}) == MAX_EVENTS

    wait_for(lambda: set(messages(full)) <= posted(), 60, what="every status event posted as a Kubernetes Event")
    assert len(posted()) > MAX_EVENTS  # Kubernetes keeps the older ones the status dropped
