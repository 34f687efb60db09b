"""Deployment alarms (`deploymentConfiguration.alarms`) against a real Alertmanager (docs/ecs-semantics.md §Deployment
alarms).

Alertmanager is built from its Go module (sandbox/alertmanager.py, cached per machine) and runs on 127.0.0.1 for this
module; the operator under test is restarted with --alertmanager-url pointing at it. An alarm goes to ALARM as a
Prometheus alert fires: POST /api/v2/alerts, the alert labelled with its namespace. The operator runs with
--deployment-minute-seconds 5 (operator_fixtures.py): a rolling deployment's 5-minute alarm bake lasts 25 s. The four
scenarios run side by side, each in its own namespace (one test: about the time of the longest one).
"""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from operator_fixtures import Operator, wait_for
from service_support import (
    ECS_SERVICE,
    apply_all,
    cluster,
    deployment_of,
    is_live,
    merge_patch,
    messages,
    pods,
    register,
    service,
    status,
    steady,
    task_definition,
)

from ecs_operator.sandbox import alertmanager

ALARM = "HighErrorRate"
LB = [{"containerName": "app", "containerPort": 80}]


@pytest.fixture(scope="module")
def alerts(running_operator: Operator) -> Iterator[alertmanager.Running]:
    """Alertmanager on loopback, and the operator restarted to read it (restored afterwards)."""
    binary = alertmanager.ensure_built()
    with alertmanager.running(binary) as manager:
        running_operator.stop()
        running_operator.start("--alertmanager-url", manager.url)
        try:
            yield manager
        finally:
            running_operator.stop()
            running_operator.extra_args = ()
            running_operator.start()


def alarmed(rollback: bool, enable: bool = True, **config: Any) -> dict[str, Any]:
    """Two tasks, one replaced at a time (ECS's 100/200 would start both at once)."""
    return {"minimumHealthyPercent": 50, "maximumPercent": 100, **config,
            "alarms": {"alarmNames": [ALARM, "HighLatency"], "enable": enable, "rollback": rollback}}


def update(sandbox: Any, namespace: str, rollback: bool, **config: Any) -> dict[str, Any]:
    """web:1 steady (alarms not enabled yet: no bake to wait for), then the update to web:2 with them enabled."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    extra = {"loadBalancers": LB} if config else {}
    apply_all(sandbox, namespace, service(desired=2, deploymentConfiguration=alarmed(rollback, False, **config), **extra))
    first = steady(sandbox, namespace, "web:1", 2, timeout=90)
    assert "alarms" not in first["deployments"][0]  # not enabled: not watched
    register(sandbox, namespace, task_definition(image="nginx:2"), 2)
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2",
                                                                  "deploymentConfiguration": alarmed(rollback, **config)}})
    return first


def new_deployment(sandbox: Any, namespace: str) -> dict[str, Any]:
    return wait_for(lambda: next((d for d in status(sandbox, namespace).get("deployments") or []
                                  if d["taskDefinition"] == "web:2"), None), 30, what="the web:2 deployment")


def web2_tasks(sandbox: Any, namespace: str, deployment: str) -> int:
    return sum(1 for p in pods(sandbox, namespace) if is_live(p) and deployment_of(p) == deployment)


def alarm_mid_rollout_fails_the_deployment_and_rolls_back(sandbox: Any, namespace: str,
                                                          alerts: alertmanager.Running) -> None:
    first = update(sandbox, namespace, rollback=True)
    old = first["deployments"][0]["id"]
    new = new_deployment(sandbox, namespace)["id"]
    wait_for(lambda: web2_tasks(sandbox, namespace, new) >= 1, 60, what="a web:2 task started")
    alerts.fire(ALARM, {"namespace": namespace, "severity": "page"})
    final = steady(sandbox, namespace, "web:1", 2, timeout=90)
    assert final["deployments"][0]["id"] == old  # the last COMPLETED deployment itself
    said = messages(final)
    failure = f"(service web) (deployment {new}) deployment failed: alarm detected."
    back = f"(service web) rolling back to deployment {old}."
    assert said.index(failure) < said.index(back) < len(said) - said[::-1].index(
        f"(service web) (deployment {old}) deployment completed.") - 1
    assert {deployment_of(p) for p in pods(sandbox, namespace) if is_live(p)} == {old}
    events = sandbox.kubectl_json("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=web")["items"]
    assert failure in {e["message"] for e in events if e["reason"] == "ServiceEvent" and e["type"] == "Warning"}
    condition = next(c for c in final["conditions"] if c["type"] == "DeploymentAlarms")
    assert condition["status"] == "True", condition


def same_alert_in_another_namespace_does_not_touch_the_deployment(sandbox: Any, namespace: str,
                                                                  alerts: alertmanager.Running) -> None:
    update(sandbox, namespace, rollback=True)
    new = new_deployment(sandbox, namespace)["id"]
    wait_for(lambda: web2_tasks(sandbox, namespace, new) >= 1, 60, what="a web:2 task started")
    alerts.fire(ALARM, {"namespace": f"other-{uuid.uuid4().hex[:6]}"})  # another tenant's
    alerts.fire(ALARM, {"service": "web"})  # no namespace label: nobody's
    final = steady(sandbox, namespace, "web:2", 2, timeout=90)  # after the 25 s bake
    primary = final["deployments"][0]
    assert primary["id"] == new
    assert primary["alarms"] == {"status": "MONITORING_COMPLETE", "alarmNames": [ALARM, "HighLatency"]}
    assert not any("alarm detected" in m or "rolling back" in m for m in messages(final))
    assert sum(1 for a in alerts.alerts() if (a.get("labels") or {}).get("alertname") == ALARM) >= 2  # they did fire


def alarm_without_rollback_fails_the_deployment_and_keeps_it(sandbox: Any, namespace: str,
                                                             alerts: alertmanager.Running) -> None:
    update(sandbox, namespace, rollback=False)
    new = new_deployment(sandbox, namespace)["id"]

    def baking() -> dict[str, Any] | None:  # all web:2 tasks run, web:1's are gone: IN_PROGRESS for the bake
        state = status(sandbox, namespace)
        deployments = state.get("deployments") or []
        ok = [(d["id"], d["rolloutState"]) for d in deployments] == [(new, "IN_PROGRESS")] and deployments[0].get("alarmBakeStartedAt")
        return state if ok else None

    wait_for(baking, 60, what="web:2 in its alarm bake")
    alerts.fire(ALARM, {"namespace": namespace})
    failed = wait_for(lambda: next((d for d in status(sandbox, namespace).get("deployments") or []
                                    if d["id"] == new and d["rolloutState"] == "FAILED"), None), 30, what="web:2 FAILED")
    assert failed["status"] == "PRIMARY"
    assert failed["rolloutStateReason"] == f"ECS deployment alarms: alarm(s) in ALARM state: {ALARM}."
    assert failed["alarms"] == {"status": "TRIGGERED", "alarmNames": [ALARM, "HighLatency"], "triggeredAlarmNames": [ALARM]}
    # no rollback: web:2 stays the service's deployment and keeps the tasks it runs (it launches none)
    wait_for(lambda: web2_tasks(sandbox, namespace, new) == 2, 10, what="web:2's tasks kept")
    later = status(sandbox, namespace)
    assert [(d["id"], d["rolloutState"]) for d in later["deployments"]] == [(new, "FAILED")]
    assert later["taskDefinition"] == "web:2" and not any("rolling back" in m for m in messages(later))
    assert f"(service web) (deployment {new}) deployment failed: alarm detected." in messages(later)


def alarm_in_a_blue_green_bake_rolls_back_to_blue(sandbox: Any, namespace: str, alerts: alertmanager.Running) -> None:
    """BLUE_GREEN: all traffic on green, both running for the 4-minute (20 s) bake; the alarm then fails green and
    blue, never stopped, is PRIMARY again and serves."""
    first = update(sandbox, namespace, rollback=True, strategy="BLUE_GREEN", bakeTimeInMinutes=4)
    blue = first["deployments"][0]["id"]
    green = new_deployment(sandbox, namespace)["id"]
    wait_for(lambda: next((d for d in status(sandbox, namespace).get("deployments") or []
                           if d["id"] == green and d.get("lifecycleStage") == "BAKE_TIME"), None), 60, what="green baking")
    alerts.fire(ALARM, {"namespace": namespace})
    final = steady(sandbox, namespace, "web:1", 2, timeout=60)
    assert final["deployments"][0]["id"] == blue
    said = messages(final)
    assert said.index(f"(service web) (deployment {green}) deployment failed: alarm detected.") < said.index(
        f"(service web) rolling back to deployment {blue}.")
    assert {deployment_of(p) for p in pods(sandbox, namespace) if is_live(p)} == {blue}
    endpoints = sandbox.kubectl_json("get", "endpointslices", "-n", namespace)["items"]
    served = {e["targetRef"]["name"] for s in endpoints for e in s.get("endpoints") or []}
    assert served == {p["metadata"]["name"] for p in pods(sandbox, namespace) if is_live(p)}  # blue's, all of them


SCENARIOS: dict[str, Callable[[Any, str, alertmanager.Running], None]] = {
    "rollback": alarm_mid_rollout_fails_the_deployment_and_rolls_back,
    "other-namespace": same_alert_in_another_namespace_does_not_touch_the_deployment,
    "no-rollback": alarm_without_rollback_fails_the_deployment_and_keeps_it,
    "blue-green": alarm_in_a_blue_green_bake_rolls_back_to_blue,
}


def test_deployment_alarms(sandbox: Any, alerts: alertmanager.Running) -> None:
    """(1) an alarm mid-rollout fails a ROLLING deployment and rolls back; (2) the same alert in another namespace (or
    without one) does not touch it; (3) without rollback the deployment is FAILED and kept; (4) BLUE_GREEN rolls back
    from its bake. Each in its own namespace, side by side."""
    suffix = uuid.uuid4().hex[:5]
    namespaces = {name: f"e2e-alarms-{name}-{suffix}" for name in SCENARIOS}
    for ns in namespaces.values():
        sandbox.kubectl("create", "namespace", ns)
    try:
        with ThreadPoolExecutor(len(SCENARIOS)) as pool:
            running = {name: pool.submit(run, sandbox, namespaces[name], alerts) for name, run in SCENARIOS.items()}
        failed = {name: f.exception() for name, f in running.items() if f.exception() is not None}
        assert not failed, "\n\n".join(f"scenario {name}:\n" + "".join(traceback.format_exception(e))
                                        for name, e in failed.items() if e is not None)
    finally:
        for ns in namespaces.values():
            sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)
