"""BLUE_GREEN, LINEAR and CANARY deployments on the real control plane (docs/ecs-semantics.md §Blue/green, linear
and canary deployments).

The operator under test runs with --deployment-minute-seconds 5 (operator_fixtures.py): a bake time of N minutes
lasts 5N seconds. Every Pod, EndpointSlice and Service change is recorded by a watch; the production traffic a
deployment gets is its share of the tasks the Service's EndpointSlice lists.
"""

from __future__ import annotations

import time
from typing import Any

from operator_fixtures import wait_for
from service_support import (
    DEPLOYMENT_LABEL,
    ECS_SERVICE,
    Watch,
    api_client,
    apply_all,
    cluster,
    is_live,
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

from ecs_operator.adapters.kube import RESOURCES

MINUTE = 5.0
"""Seconds of one bake minute in these tests (operator_fixtures.TEST_SETTINGS)."""
SLACK = 1.5
"""What a measured interval may lose to the watches' delivery (a status write is seen a moment after it happened)."""
LB = [{"containerName": "app", "containerPort": 80}]
EXITING_LATER = {"sim.ecs.operator.dev/exit": "app=1", "sim.ecs.operator.dev/exit-after": "10s"}


def watch_slices(sandbox: Any, namespace: str) -> Watch:
    return Watch(api_client(sandbox), RESOURCES["EndpointSlice"].path(namespace)).start()


def start(sandbox: Any, namespace: str, desired: int, config: dict[str, Any],
          green_annotations: dict[str, str] | None = None) -> tuple[dict[str, Any], Watch, Watch, Watch]:
    """web:1 steady behind a load balancer, then the update to web:2, watched from before it."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=desired, loadBalancers=LB, deploymentConfiguration=config))
    first = steady(sandbox, namespace, "web:1", desired, timeout=60)
    register(sandbox, namespace, task_definition(image="nginx:2", annotations=green_annotations), 2)
    watches = watch_pods(sandbox, namespace), watch_services(sandbox, namespace), watch_slices(sandbox, namespace)
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    return first, *watches


def shares(pod_watch: Watch, slice_watch: Watch, green: str) -> list[tuple[float, float]]:
    """(when, green's share of the tasks the Service "web" lists) at each change of that share, from the watch's start."""
    seen_pods = [*pod_watch.snapshots[0].values(), *(c.object for c in pod_watch.since(0))]
    deployment = {p["metadata"]["name"]: (p["metadata"].get("labels") or {}).get(DEPLOYMENT_LABEL) for p in seen_pods}
    initial = [(0.0, slice_watch.snapshots[0]["web"])] if "web" in slice_watch.snapshots[0] else []
    out: list[tuple[float, float]] = []
    for at, obj in [*initial, *((c.at, c.object) for c in slice_watch.since(0) if c.type != "DELETED")]:
        listed = [e["targetRef"]["name"] for e in obj.get("endpoints") or []]
        if obj["metadata"]["name"] != "web" or not listed:
            continue
        share = round(sum(1 for n in listed if deployment.get(n) == green.removeprefix("ecs-svc/")) / len(listed), 3)
        if not out or out[-1][1] != share:
            out.append((at, share))
    return out


def stages(service_watch: Watch, deployment: str) -> list[tuple[float, str]]:
    """(when, lifecycleStage) of `deployment` at each change of its stage."""
    out: list[tuple[float, str]] = []
    for change in service_watch.since(0):
        for d in (change.object.get("status") or {}).get("deployments") or []:
            if d["id"] == deployment and d.get("lifecycleStage") and (not out or out[-1][1] != d["lifecycleStage"]):
                out.append((change.at, d["lifecycleStage"]))
    return out


def green_id(sandbox: Any, namespace: str) -> str:
    return str(wait_for(lambda: next((d["id"] for d in status(sandbox, namespace).get("deployments") or []
                                      if d["taskDefinition"] == "web:2"), None), 30, what="the web:2 deployment"))


def stop_all(*watches: Watch) -> None:
    for w in watches:
        w.stop()


def test_blue_green_keeps_blue_until_the_bake_ends_then_removes_it(sandbox: Any, namespace: str,
                                                                    running_operator: Any) -> None:
    began = time.monotonic()
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2}
    first, pod_watch, service_watch, slice_watch = start(sandbox, namespace, 2, config)
    blue = first["deployments"][0]["id"]
    blue_pods = {n for n, p in pod_watch.snapshots[0].items() if is_live(p)}  # before the update: green may start at once
    try:
        green = green_id(sandbox, namespace)
        final = steady(sandbox, namespace, "web:2", 2, timeout=75)
    finally:
        stop_all(pod_watch, service_watch, slice_watch)

    seen = stages(service_watch, green)
    assert [s for _, s in seen] == ["SCALE_UP", "BAKE_TIME", "CLEAN_UP"], seen
    baked_at = seen[1][0]
    # blue's tasks all stay until the bake ends: no blue task stops before baked_at + 2 minutes
    stopped = [c.at for c in pod_watch.since(0) if c.object["metadata"]["name"] in blue_pods
               and (c.type == "DELETED" or c.object["metadata"].get("deletionTimestamp"))]
    assert stopped, "blue's tasks never stopped"
    assert min(stopped) - baked_at >= 2 * MINUTE - SLACK, (min(stopped) - baked_at, seen)
    for snapshot, change in zip(pod_watch.snapshots[1:], pod_watch.changes, strict=True):
        if change.at < baked_at + 2 * MINUTE - SLACK:
            assert {n for n, p in snapshot.items() if n in blue_pods and is_live(p)} == blue_pods
    # production traffic moved at once: the Service listed blue's tasks, then green's, never both
    assert [s for _, s in shares(pod_watch, slice_watch, green)] == [0.0, 1.0]
    assert abs(shares(pod_watch, slice_watch, green)[1][0] - baked_at) < 3  # the Service and the status change together
    now = [p for p in pods(sandbox, namespace) if is_live(p)]
    assert len(now) == 2 and {p["metadata"]["labels"][DEPLOYMENT_LABEL] for p in now} == {green.removeprefix("ecs-svc/")}
    assert [d["metadata"]["name"] for d in sandbox.kubectl_json("get", "deployments", "-n", namespace)["items"]] == ["web-b"]
    assert f"(service web) (deployment {green}) deployment completed." in messages(final)
    assert blue not in {d["id"] for d in final["deployments"]}
    print(f"blue/green with a 10 s bake: {time.monotonic() - began:.1f} s")


def test_a_failure_during_the_bake_rolls_back_to_blue(sandbox: Any, namespace: str, running_operator: Any) -> None:
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 4,
              "deploymentCircuitBreaker": {"enable": True, "rollback": True,
                                           "thresholdConfiguration": {"type": "COUNT", "value": 1}}}
    first, pod_watch, service_watch, slice_watch = start(sandbox, namespace, 2, config, green_annotations=EXITING_LATER)
    blue = first["deployments"][0]["id"]
    blue_pods = {n for n, p in pod_watch.snapshots[0].items() if is_live(p)}  # before the update: green may start at once
    try:
        green = green_id(sandbox, namespace)
        wait_for(lambda: any(d["id"] == green and d["rolloutState"] == "FAILED"
                             for d in status(sandbox, namespace).get("deployments") or []), 60, what="green FAILED")
        final = steady(sandbox, namespace, "web:1", 2, timeout=60)
    finally:
        stop_all(pod_watch, service_watch, slice_watch)

    seen = [s for _, s in stages(service_watch, green)]
    assert "BAKE_TIME" in seen, seen  # the failure came during the bake
    assert final["deployments"][0]["id"] == blue  # the same deployment again, as a circuit breaker rollback
    assert {p["metadata"]["name"] for p in pods(sandbox, namespace) if is_live(p)} == blue_pods  # blue's never stopped
    said = messages(final)
    assert f"(service web) (deployment {green}) deployment failed: tasks failed to start." in said
    assert f"(service web) rolling back to deployment {blue}." in said
    assert [s for _, s in shares(pod_watch, slice_watch, green)] == [0.0, 1.0, 0.0]  # traffic back to blue
    assert final["lastCompletedDeployment"]["id"] == blue
    assert [d["metadata"]["name"] for d in sandbox.kubectl_json("get", "deployments", "-n", namespace)["items"]] == ["web"]


def shifted(sandbox: Any, namespace: str, desired: int, config: dict[str, Any]) -> tuple[list[tuple[float, float]], Watch, str]:
    """An update to web:2 under `config` until steady: green's share at each change, the Service watch, green's id."""
    _, pod_watch, service_watch, slice_watch = start(sandbox, namespace, desired, config)
    try:
        green = green_id(sandbox, namespace)
        steady(sandbox, namespace, "web:2", desired, timeout=75)
    finally:
        stop_all(pod_watch, service_watch, slice_watch)
    return shares(pod_watch, slice_watch, green), service_watch, green


def test_canary_10_percent_then_the_rest_after_the_canary_bake(sandbox: Any, namespace: str, running_operator: Any) -> None:
    config = {"strategy": "CANARY", "bakeTimeInMinutes": 0,
              "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2}}
    seen, _, _ = shifted(sandbox, namespace, 10, config)
    assert [s for _, s in seen] == [0.0, 0.1, 1.0], seen  # 1 of 10 listed tasks, then all
    assert seen[2][0] - seen[1][0] >= 2 * MINUTE - SLACK, seen


def test_linear_25_percent_steps(sandbox: Any, namespace: str, running_operator: Any) -> None:
    config = {"strategy": "LINEAR", "bakeTimeInMinutes": 0,
              "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}}
    seen, service_watch, green = shifted(sandbox, namespace, 4, config)
    # 4 green and 4 blue tasks: 1 of 4 listed, 4 of 8, 3 of 4, all
    assert [s for _, s in seen] == [0.0, 0.25, 0.5, 0.75, 1.0], seen
    for (at, _), (after, _) in zip(seen[1:], seen[2:], strict=False):
        assert after - at >= MINUTE - SLACK, seen
    percents = [d["productionTrafficPercent"] for c in service_watch.since(0)
                for d in (c.object.get("status") or {}).get("deployments") or []
                if d["id"] == green and d.get("productionTrafficPercent") is not None]
    assert sorted(set(percents)) == [0.0, 25.0, 50.0, 75.0, 100.0]


def test_operator_killed_during_the_bake_keeps_its_timer(sandbox: Any, namespace: str, running_operator: Any) -> None:
    """The bake's start is in the status: an operator killed in the middle of the bake and back after its end
    removes blue as soon as it is back, not a whole bake time after it came back. (Back after the end, so that the
    criterion does not depend on how fast a loaded machine restarts the operator: only a restarted timer takes a
    whole bake.)"""
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 4}
    _, pod_watch, service_watch, slice_watch = start(sandbox, namespace, 2, config)
    blue_pods = {n for n, p in pod_watch.snapshots[0].items() if is_live(p)}  # before the update: green may start at once
    try:
        green = green_id(sandbox, namespace)
        wait_for(lambda: [s for _, s in stages(service_watch, green)][-1:] == ["BAKE_TIME"], 60, what="the bake")
        running_operator.stop(kill=True)
        try:
            time.sleep(5 * MINUTE)  # past the bake's end
            assert {p["metadata"]["name"] for p in pods(sandbox, namespace) if is_live(p)} >= blue_pods
        finally:
            restarted = time.monotonic()
            running_operator.start()
        steady(sandbox, namespace, "web:2", 2, timeout=75)
    finally:
        stop_all(pod_watch, service_watch, slice_watch)
    baked_at = next(at for at, s in stages(service_watch, green) if s == "BAKE_TIME")
    stopped = min(c.at for c in pod_watch.since(0) if c.object["metadata"]["name"] in blue_pods
                  and (c.type == "DELETED" or c.object["metadata"].get("deletionTimestamp")))
    assert stopped - baked_at >= 4 * MINUTE - SLACK, stopped - baked_at
    # a timer started again by the restarted operator would end a whole bake after the restart
    assert stopped - restarted < 4 * MINUTE - SLACK, (stopped - baked_at, restarted - baked_at)
