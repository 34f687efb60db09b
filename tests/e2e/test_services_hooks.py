"""Deployment lifecycle hooks of a BLUE_GREEN service on the real control plane (docs/ecs-semantics.md §Deployment
lifecycle hooks).

A hook's `hookTargetArn` names a task definition of the namespace, which runs as a Task the Service owns; kwok plays
the ECS agent (`sim.ecs.operator.dev/exit` through the task definition's `kubernetes.podAnnotations` makes its
container exit with a code). A PAUSE hook is continued through the ECS API with boto3. The operator runs with
--deployment-minute-seconds 5 (operator_fixtures.py).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from api_support import Api, Recorder, api  # noqa: F401  (api: the fixture)
from operator_fixtures import wait_for
from service_support import (
    DEPLOYMENT_LABEL,
    ECS_SERVICE,
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
from test_services_strategies import LB, green_id

from ecs_operator import API_GROUP
from ecs_operator.api.account import Account
from ecs_operator.api.deployments import service_deployments
from ecs_operator.settings import Settings

if TYPE_CHECKING:
    from conftest import Cluster

HOOK_LABEL = f"hook.{API_GROUP}/deployment"
CONTINUE_PREFIX = f"continue.{API_GROUP}/"
SERVICE_PODS = DEPLOYMENT_LABEL
"""The service's tasks (a hook's task has no deployment label)."""


def exits(code: int) -> dict[str, str]:
    return {"sim.ecs.operator.dev/exit": f"app={code}", "sim.ecs.operator.dev/exit-after": "2s"}


def deploy(sandbox: Cluster, namespace: str, hooks: list[dict[str, Any]], check_exit: int | None = None) -> tuple[str, set[str]]:
    """web:1 steady (2 tasks, BLUE_GREEN with `hooks`), the hook's task definition `check` registered, then the update
    to web:2; returns blue's deployment id and its tasks."""
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    if check_exit is not None:
        register(sandbox, namespace, task_definition("check", image="acme/smoke:1", annotations=exits(check_exit)), 1)
    config = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 0, "lifecycleHooks": hooks}
    apply_all(sandbox, namespace, service(desired=2, loadBalancers=LB, deploymentConfiguration=config))
    first = steady(sandbox, namespace, "web:1", 2, timeout=60)
    blue_pods = {p["metadata"]["name"] for p in pods(sandbox, namespace, SERVICE_PODS) if is_live(p)}
    register(sandbox, namespace, task_definition(image="nginx:2"), 2)
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    return first["deployments"][0]["id"], blue_pods


def hook_tasks(sandbox: Cluster, namespace: str, green: str) -> list[dict[str, Any]]:
    return list(sandbox.kubectl_json("get", f"tasks.{API_GROUP}", "-n", namespace, "-l",
                                     f"{HOOK_LABEL}={green.removeprefix('ecs-svc/')}")["items"])


def hook_runs(state: dict[str, Any], deployment: str) -> list[dict[str, Any]]:
    records = [*(state.get("deployments") or []), state.get("lastCompletedDeployment") or {}]
    return next((d.get("hookRuns") or [] for d in records if d.get("id") == deployment), [])


def test_a_task_hook_that_exits_0_lets_the_deployment_complete(sandbox: Cluster, namespace: str, running_operator: Any) -> None:
    hooks = [{"hookTargetArn": "check", "lifecycleStages": ["POST_SCALE_UP"], "hookDetails": {"suite": "smoke"},
              "roleArn": "arn:aws:iam::123456789012:role/ecs-hooks"}]
    _, blue_pods = deploy(sandbox, namespace, hooks, check_exit=0)
    pod_watch = watch_pods(sandbox, namespace)
    try:
        green = green_id(sandbox, namespace)
        final = steady(sandbox, namespace, "web:2", 2, timeout=90)
    finally:
        pod_watch.stop()

    (task,) = hook_tasks(sandbox, namespace, green)
    record = task["status"]["tasks"][0]
    assert record["lastStatus"] == "STOPPED" and [c["exitCode"] for c in record["containers"]] == [0], record
    assert task["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert task["spec"]["taskDefinition"] == "check:1" and task["spec"]["startedBy"] == green
    hook_pod = next(c.object for c in pod_watch.changes if c.object["metadata"]["name"].startswith(task["metadata"]["name"]))
    env = {e["name"]: e.get("value") for e in hook_pod["spec"]["containers"][0].get("env") or []}
    assert env["ECS_LIFECYCLE_STAGE"] == "POST_SCALE_UP" and env["ECS_HOOK_DETAILS"] == '{"suite": "smoke"}', env
    assert env["ECS_SERVICE_DEPLOYMENT_ARN"].endswith(f"service-deployment/default/web/{green.removeprefix('ecs-svc/')}")
    (run,) = hook_runs(final, green)
    assert (run["stage"], run["status"], run["targetType"]) == ("POST_SCALE_UP", "SUCCEEDED", "AWS_LAMBDA")
    said = messages(final)
    ran = next(i for i, m in enumerate(said) if f"lifecycle hook {run['hookId']} at POST_SCALE_UP succeeded." in m)
    assert ran < said.index(f"(service web) (deployment {green}) deployment completed.")
    # the hook ran while blue served: no blue task stopped before its task ended
    first_blue_stop = min(c.at for c in pod_watch.changes if c.object["metadata"]["name"] in blue_pods
                          and (c.type == "DELETED" or c.object["metadata"].get("deletionTimestamp")))
    hook_done = min(c.at for c in pod_watch.changes if c.object["metadata"]["name"] == hook_pod["metadata"]["name"]
                    and c.object["status"].get("phase") == "Succeeded")
    assert hook_done < first_blue_stop


def test_a_task_hook_that_exits_1_rolls_back_to_blue(sandbox: Cluster, namespace: str, running_operator: Any) -> None:
    blue, blue_pods = deploy(sandbox, namespace, [{"hookTargetArn": "check", "lifecycleStages": ["POST_SCALE_UP"]}], check_exit=1)
    service_watch = watch_services(sandbox, namespace)
    try:
        green = green_id(sandbox, namespace)
        # from the watch: the FAILED record lasts only until green's tasks are gone
        wait_for(lambda: any(d["id"] == green and d["rolloutState"] == "FAILED" for c in service_watch.since(0)
                             for d in (c.object.get("status") or {}).get("deployments") or []), 120, what="green FAILED")
        final = steady(sandbox, namespace, "web:1", 2, timeout=90)
    finally:
        service_watch.stop()

    assert final["deployments"][0]["id"] == blue  # the same deployment again, as ECS rolls back
    assert {p["metadata"]["name"] for p in pods(sandbox, namespace, SERVICE_PODS) if is_live(p)} == blue_pods  # blue kept serving
    said = messages(final)
    assert any(m.startswith(f"(service web) (deployment {green}) deployment failed: lifecycle hook ") and "exit code 1" in m
               for m in said), said
    assert f"(service web) rolling back to deployment {blue}." in said
    # DescribeServiceDeployments (the API's own code) of the status while it rolled back
    rolling_back = next(c.object for c in service_watch.changes
                        if any(d["id"] == green and d["rolloutState"] == "FAILED" for d in c.object.get("status", {}).get("deployments") or []))
    described = {d["serviceDeploymentArn"].rsplit("/", 1)[-1]: d
                 for d in service_deployments(Account(namespace, None, Settings()), rolling_back)}  # type: ignore[arg-type]
    failed = described[green.removeprefix("ecs-svc/")]
    assert failed["status"] == "ROLLBACK_IN_PROGRESS", failed
    assert [(h["status"], h["targetType"]) for h in failed["lifecycleHookDetails"]] == [("FAILED", "AWS_LAMBDA")]
    assert "lifecycle hook" in failed["statusReason"] and "rollback" in failed, failed


def test_a_pause_hook_waits_for_continue_service_deployment(sandbox: Cluster, namespace: str, running_operator: Any,
                                                              api: Api) -> None:
    hooks = [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"],
              "timeoutConfiguration": {"timeoutInMinutes": 60, "action": "ROLLBACK"}}]
    _, blue_pods = deploy(sandbox, namespace, hooks)
    green = green_id(sandbox, namespace)
    client = api.client()

    def paused() -> dict[str, Any] | None:
        found = client.list_service_deployments(cluster="default", service="web", status=["IN_PROGRESS"])["serviceDeployments"]
        if not found:
            return None
        (d,) = client.describe_service_deployments(serviceDeploymentArns=[found[0]["serviceDeploymentArn"]])["serviceDeployments"]
        return d if d.get("lifecycleStage") == "POST_SCALE_UP" and d.get("lifecycleHookDetails") else None

    deployment = wait_for(paused, 60, what="the deployment paused at POST_SCALE_UP")
    (hook,) = deployment["lifecycleHookDetails"]
    assert (hook["targetType"], hook["status"], hook["timeoutAction"]) == ("PAUSE", "AWAITING_ACTION", "ROLLBACK")
    # it keeps waiting (longer than a whole bake minute) with blue serving and green's tasks up
    wait_for(lambda: len([p for p in pods(sandbox, namespace, SERVICE_PODS) if is_live(p)]) == 4, 30, what="green's tasks")
    time.sleep(6)
    assert [d["lifecycleStage"] for d in status(sandbox, namespace)["deployments"][:1]] == ["POST_SCALE_UP"]
    assert blue_pods <= {p["metadata"]["name"] for p in pods(sandbox, namespace) if is_live(p)}

    recorder = Recorder()  # the answer as sent, validated against botocore's output shape
    client.meta.events.register("after-call.ecs.ContinueServiceDeployment", recorder)
    answer = client.continue_service_deployment(serviceDeploymentArn=deployment["serviceDeploymentArn"], hookId=hook["hookId"],
                                                action="CONTINUE")
    assert answer["serviceDeploymentArn"] == deployment["serviceDeploymentArn"]
    assert [name for name, _ in recorder.answers] == ["ContinueServiceDeployment"] and recorder.problems() == []
    final = steady(sandbox, namespace, "web:2", 2, timeout=60)
    (run,) = hook_runs(final, green)
    assert run["status"] == "SUCCEEDED"
    annotations = sandbox.kubectl_json("get", ECS_SERVICE, "web", "-n", namespace)["metadata"].get("annotations") or {}
    assert not [k for k in annotations if k.startswith(CONTINUE_PREFIX)]  # removed once the hook went on
    # a second continue of a hook that no longer waits is refused as ECS refuses it
    try:
        client.continue_service_deployment(serviceDeploymentArn=deployment["serviceDeploymentArn"], hookId=hook["hookId"])
    except client.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] in ("ClientException", "ServiceDeploymentNotFoundException"), e.response
    else:
        raise AssertionError("ContinueServiceDeployment of a finished hook was accepted")


def test_a_lambda_function_arn_is_refused_naming_the_field(sandbox: Cluster, namespace: str, running_operator: Any) -> None:
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    hooks = [{"hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:smoke", "lifecycleStages": ["POST_SCALE_UP"]}]
    apply_all(sandbox, namespace, service(desired=1, deploymentConfiguration={"strategy": "BLUE_GREEN", "lifecycleHooks": hooks}))
    ready = wait_for(lambda: next((c for c in status(sandbox, namespace).get("conditions") or []
                                   if c["type"] == "Ready" and c["status"] == "False"), None), 30, what="Ready False")
    assert ready["reason"] == "InvalidParameterException"
    assert "deploymentConfiguration.lifecycleHooks[0].hookTargetArn: a Lambda function cannot run here" in ready["message"], ready
    assert not pods(sandbox, namespace)
