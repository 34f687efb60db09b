"""fabfuel/ecs-deploy's `ecs` CLI, run as a pipeline runs it, against `ecs-operator api` on the real
control plane with the operator running: `ecs deploy`, `ecs scale` and `ecs run` succeed, and what
they changed is what `kubectl get` shows; a deployment that cannot place its tasks fails and rolls
back; the mistakes a pipeline makes end with a non-zero exit and ECS's message, never a traceback.

ecspresso (issue 16's first choice) is not here: the Go module proxy refuses it (403), see README.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api_support import Api, api  # noqa: F401  (api: the fixture)
from operator_fixtures import wait_for
from service_support import ECS_SERVICE
from test_ecs_api import ARN, FAST, container, kubectl_get

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

ECS_CLI = str(Path(sys.executable).parent / "ecs")


def ecs_cli(sandbox: Cluster, api: Api, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`ecs ARGS` with only the environment a pipeline gives it: every AWS endpoint is the local API (so
    nothing it calls can reach AWS), no profile, config file or instance metadata of this machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ENDPOINT_URL": api.endpoint, "AWS_ENDPOINT_URL_ECS": api.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ACCESS_KEY_ID": api.key_id, "AWS_SECRET_ACCESS_KEY": api.secret, "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    return sandbox.run(ECS_CLI, *args, env=env, check=False, timeout=timeout)


def succeeded(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}{result.stderr}"
    return result.stdout


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """A clean failure: exit 1 and a message, no traceback of the CLI."""
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output, f"exit {result.returncode}:\n{output}"
    return result.stderr


def service_pods(sandbox: Cluster, namespace: str) -> list[dict[str, Any]]:
    """The service's pods that are not on their way out."""
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", "ecs.operator.dev/service=web")["items"]
    return [p for p in pods if "deletionTimestamp" not in p["metadata"]]


def images(sandbox: Cluster, namespace: str) -> list[str]:
    return sorted(c["image"] for p in service_pods(sandbox, namespace) if p["status"].get("phase") == "Running"
                  for c in p["spec"]["containers"])


@pytest.fixture
def web(sandbox: Cluster, namespace: str, api: Api) -> Any:
    """Cluster `default` (the sandbox's nodes are its shared instances), task definition web:1 (nginx:1.28) and
    service `web` with 2 tasks, made with boto3: the boto3 client."""
    ecs = api.client()
    ecs.create_cluster(clusterName="default")
    ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.28"))
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web", desiredCount=2)
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    return ecs


def test_deploy_scale_and_run(sandbox: Cluster, namespace: str, api: Api, web: Any) -> None:
    out = succeeded(ecs_cli(sandbox, api, "deploy", "default", "web", "--image", "web", "nginx:1.29", "--timeout", "240"))
    assert "Successfully created revision: 2" in out and "Deployment successful" in out, out
    assert "Successfully deregistered revision: 1" in out, out
    service = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")
    assert (service["spec"]["taskDefinition"], service["status"]["taskDefinition"]) == (f"{ARN}:task-definition/web:2", "web:2")
    assert [d["taskDefinition"] for d in service["status"]["deployments"]] == ["web:2"]
    wait_for(lambda: images(sandbox, namespace) == ["nginx:1.29"] * 2, timeout=60, what="2 pods of nginx:1.29 only")
    assert web.describe_task_definition(taskDefinition="web:1")["taskDefinition"]["status"] == "INACTIVE"
    assert kubectl_get(sandbox, "taskdefinitions.ecs.operator.dev", namespace, "web")["spec"]["kubernetes"]["deregisteredRevisions"] == [1]

    out = succeeded(ecs_cli(sandbox, api, "scale", "default", "web", "3", "--timeout", "240"))
    assert "Successfully changed desired count to: 3" in out and "Scaling successful" in out, out
    assert kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["spec"]["desiredCount"] == 3
    # ecs-deploy counted the RUNNING tasks; the Service's status counts them at its next update
    wait_for(lambda: kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["status"]["runningCount"] == 3, timeout=30,
             what="the Service status's runningCount 3")
    wait_for(lambda: images(sandbox, namespace) == ["nginx:1.29"] * 3, timeout=60, what="3 pods of nginx:1.29")

    # a redeploy that changes nothing (to pull the images again) registers web:3, as ECS numbers every
    # registration, rolls the service onto it and deregisters web:2
    def names() -> set[str]:
        return {p["metadata"]["name"] for p in service_pods(sandbox, namespace)}

    before = names()
    out = succeeded(ecs_cli(sandbox, api, "deploy", "default", "web", "--timeout", "240"))
    assert "Successfully changed task definition to: web:3" in out and "Deployment successful" in out, out
    assert kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["status"]["deployments"][0]["taskDefinition"] == "web:3"
    wait_for(lambda: len(images(sandbox, namespace)) == 3 and not before & names(), timeout=120, what="3 new pods in place of the 3 before")
    assert [web.describe_task_definition(taskDefinition=f"web:{n}")["taskDefinition"]["status"] for n in (2, 3)] == ["INACTIVE", "ACTIVE"]

    out = succeeded(ecs_cli(sandbox, api, "run", "default", "web", "-c", "web", "sleep 300"))
    assert "Successfully started 1 instances of task: web:3" in out, out
    (arn,) = [line.removeprefix("- ") for line in out.splitlines() if line.startswith(f"- {ARN}:task/default/")]
    web.get_waiter("tasks_running").wait(cluster="default", tasks=[arn], WaiterConfig=FAST)
    (task,) = [t for t in kubectl_get(sandbox, "tasks.ecs.operator.dev", namespace) if t["spec"].get("startedBy") == "ECS Deploy"]
    assert task["status"]["tasks"][0]["taskArn"] == arn
    assert task["spec"]["overrides"]["containerOverrides"] == [{"name": "web", "command": ["sleep", "300"]}]
    (described,) = web.describe_tasks(cluster="default", tasks=[arn])["tasks"]
    assert (described["lastStatus"], described["taskDefinitionArn"]) == ("RUNNING", f"{ARN}:task-definition/web:3")


def test_unplaceable_deployment_fails_and_rolls_back(sandbox: Cluster, namespace: str, api: Api, web: Any) -> None:
    """A revision no container instance has the memory for: the deployment fails, and `--rollback` deploys
    web:1 again and deregisters web:2. ecs-deploy fails it on the service's "was unable to place a task" event,
    which it takes only when stamped strictly after the deployment's createdAt: both have milliseconds, as
    ECS's, so the event of the deployment's own second counts too."""
    result = ecs_cli(sandbox, api, "deploy", "default", "web", "--memory", "web", "400000", "--rollback", "--timeout", "60")
    err = failed(result)
    assert "Rollback successful" in result.stdout and "Successfully deregistered revision: 2" in result.stdout, result.stdout
    assert "rolled back to previous task definition: web:1" in err, err
    (shown,) = web.describe_services(cluster="default", services=["web"])["services"]
    unplaceable = [e["message"] for e in shown["events"] if "was unable to place a task" in e["message"]]
    assert unplaceable and all("RESOURCE:MEMORY" in m for m in unplaceable), shown["events"]
    assert "was unable to place a task" in err and "Deployment failed due to timeout" not in err, err
    service = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")
    assert (service["status"]["taskDefinition"], service["status"]["runningCount"]) == ("web:1", 2)
    assert [d["taskDefinition"] for d in service["status"]["deployments"]] == ["web:1"]
    wait_for(lambda: images(sandbox, namespace) == ["nginx:1.28"] * 2, timeout=60, what="the 2 pods of web:1 alone")
    assert web.describe_task_definition(taskDefinition="web:2")["taskDefinition"]["status"] == "INACTIVE"


def test_pipeline_mistakes_fail_cleanly(sandbox: Cluster, namespace: str, api: Api, web: Any) -> None:
    err = failed(ecs_cli(sandbox, api, "deploy", "default", "nothing", "--image", "web", "nginx:1.29"))
    assert "DescribeServices operation: Service not found." in err, err
    err = failed(ecs_cli(sandbox, api, "scale", "nowhere", "web", "2"))
    assert "(ClusterNotFoundException)" in err and "Cluster not found" in err, err
    err = failed(ecs_cli(sandbox, api, "run", "default", "ghost"))
    assert "Unknown task definition arn: ghost" in err, err
    err = failed(ecs_cli(sandbox, api, "deploy", "default", "web", "--image", "sidecar", "nginx:1.29"))
    assert 'Unknown container: sidecar' in err, err
    wrong = Api(api.endpoint, api.key_id, "not-the-secret", api.other_key_id)
    err = failed(ecs_cli(sandbox, wrong, "scale", "default", "web", "5"))
    assert "(InvalidSignatureException)" in err, err
    assert kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["spec"]["desiredCount"] == 2
    assert web.list_task_definitions(familyPrefix="web")["taskDefinitionArns"] == [f"{ARN}:task-definition/web:1"]
