"""`ecs-operator api` on the real control plane with the operator running: boto3 and aws-cli speak
ECS to it, and every answer agrees with the custom resources `kubectl get` shows.

Each test runs its own API process, with a key Secret binding its access keys to the test's namespace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from api_support import Api, free_port, listening, api  # noqa: F401  (api: the fixture)
from operator_fixtures import wait_for
from service_support import ECS_SERVICE

from ecs_operator.sandbox.pki import create as create_pki

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

TARGET = "AmazonEC2ContainerServiceV20141113."
ARN = "arn:aws:ecs:us-east-1:000000000000"
FAST = {"Delay": 1, "MaxAttempts": 120}


def kubectl_get(sandbox: Cluster, kind: str, namespace: str, name: str | None = None) -> Any:
    found = sandbox.kubectl_json("get", kind, *([name] if name else []), "-n", namespace)
    return found if name else found["items"]


def container(image: str) -> list[dict[str, Any]]:
    return [{"name": "web", "image": image, "memory": 128, "portMappings": [{"containerPort": 80}]}]


def test_a_service_and_tasks_through_boto3_agree_with_kubectl(sandbox: Cluster, namespace: str, api: Api) -> None:
    ecs = api.client()
    first = ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.28"))["taskDefinition"]
    assert (first["taskDefinitionArn"], first["revision"], first["status"]) == (f"{ARN}:task-definition/web:1", 1, "ACTIVE")
    cluster = ecs.create_cluster(clusterName="default")["cluster"]
    assert (cluster["clusterArn"], cluster["status"]) == (f"{ARN}:cluster/default", "ACTIVE")
    assert kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace, "default")["status"]["clusterArn"] == cluster["clusterArn"]

    created = ecs.create_service(cluster=cluster["clusterArn"], serviceName="web", taskDefinition="web", desiredCount=2)["service"]
    assert created["serviceArn"] == f"{ARN}:service/default/web" and created["desiredCount"] == 2
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    (service,) = ecs.describe_services(cluster="default", services=[created["serviceArn"]])["services"]
    crd = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")
    assert (service["runningCount"], service["desiredCount"], service["status"]) == (2, 2, "ACTIVE")
    assert service["serviceArn"] == crd["status"]["serviceArn"]
    assert [d["id"] for d in service["deployments"]] == [d["id"] for d in crd["status"]["deployments"]]
    assert service["taskDefinition"] == f"{ARN}:task-definition/web:1"
    assert ecs.list_services(cluster="default")["serviceArns"] == [created["serviceArn"]]
    service_tasks = ecs.list_tasks(cluster="default", serviceName="web")["taskArns"]
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", "ecs.operator.dev/service=web")["items"]
    assert sorted(service_tasks) == sorted(f"{ARN}:task/default/{p['metadata']['uid'].replace('-', '')}" for p in pods)
    described = ecs.describe_tasks(cluster="default", tasks=service_tasks)["tasks"]
    assert {(t["lastStatus"], t["startedBy"], t["group"]) for t in described} == {("RUNNING", service["deployments"][0]["id"], "service:web")}
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.list_tasks(cluster="default", serviceName="nothing")

    # revision 2, then a forced new deployment of it
    second = ecs.register_task_definition(family="web", containerDefinitions=container("nginx:1.29"))["taskDefinition"]
    assert second["revision"] == 2
    assert kubectl_get(sandbox, "taskdefinitions.ecs.operator.dev", namespace, "web")["status"]["revision"] == 2
    updated = ecs.update_service(cluster="default", service="web", taskDefinition=second["taskDefinitionArn"],
                                 deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 50})["service"]
    assert updated["deployments"][0]["taskDefinition"] == second["taskDefinitionArn"]
    assert updated["deployments"][0]["status"] == "PRIMARY" and len(updated["deployments"]) == 2
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    rolled = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")
    assert rolled["status"]["taskDefinition"] == "web:2" and rolled["spec"]["deploymentConfiguration"]["minimumHealthyPercent"] == 50
    before = rolled["status"]["deployments"][0]["id"]
    forced = ecs.update_service(cluster="default", service=created["serviceArn"], forceNewDeployment=True)["service"]
    assert forced["deployments"][0]["id"] != before
    assert forced["deployments"][0]["taskDefinition"] == second["taskDefinitionArn"]
    assert "ecs.operator.dev/force-new-deployment" in kubectl_get(sandbox, ECS_SERVICE, namespace, "web")["metadata"]["annotations"]
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    assert ecs.update_service(service="web", desiredCount=3)["service"]["desiredCount"] == 3  # the default cluster
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    scaled = kubectl_get(sandbox, ECS_SERVICE, namespace, "web")
    assert (scaled["spec"]["desiredCount"], scaled["status"]["runningCount"]) == (3, 3)

    # RunTask count 2, StopTask one of them
    run = ecs.run_task(cluster="default", taskDefinition="web:1", count=2, startedBy="api-e2e", group="batch",
                       overrides={"containerOverrides": [{"name": "web", "environment": [{"name": "MODE", "value": "batch"}]}]})
    assert run["failures"] == [] and len(run["tasks"]) == 2
    arns = [t["taskArn"] for t in run["tasks"]]
    ecs.get_waiter("tasks_running").wait(cluster="default", tasks=arns, WaiterConfig=FAST)
    tasks = {t["taskArn"]: t for t in ecs.describe_tasks(cluster="default", tasks=arns)["tasks"]}
    assert {(t["lastStatus"], t["startedBy"], t["group"], t["taskDefinitionArn"]) for t in tasks.values()} == {
        ("RUNNING", "api-e2e", "batch", f"{ARN}:task-definition/web:1")}
    resources = [t for t in kubectl_get(sandbox, "tasks.ecs.operator.dev", namespace) if t["spec"].get("startedBy") == "api-e2e"]
    assert sorted(r["status"]["tasks"][0]["taskArn"] for r in resources) == sorted(arns)
    assert set(ecs.list_tasks(cluster="default", startedBy="api-e2e")["taskArns"]) == set(arns)

    task_id = arns[0].rsplit("/", 1)[-1]
    stopping = ecs.stop_task(cluster="default", task=task_id, reason="finished by the e2e test")["task"]
    assert (stopping["taskArn"], stopping["desiredStatus"]) == (arns[0], "STOPPED")
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[arns[0]], WaiterConfig=FAST)
    stopped, running = (next(t for t in ecs.describe_tasks(cluster="default", tasks=arns)["tasks"] if t["taskArn"] == a) for a in arns)
    assert (stopped["lastStatus"], stopped["stoppedReason"], stopped["stopCode"]) == ("STOPPED", "finished by the e2e test", "UserInitiated")
    assert running["lastStatus"] == "RUNNING"  # its sibling runs on
    stopped_resource = next(r for r in resources if r["status"]["tasks"][0]["taskArn"] == arns[0])
    assert kubectl_get(sandbox, "tasks.ecs.operator.dev", namespace, stopped_resource["metadata"]["name"])["spec"]["desiredStatus"] == "STOPPED"
    assert ecs.list_tasks(cluster="default", startedBy="api-e2e", desiredStatus="STOPPED")["taskArns"] == [arns[0]]

    # DeleteCluster is refused while the service exists; DeleteService drains it
    with pytest.raises(ecs.exceptions.ClusterContainsServicesException):
        ecs.delete_cluster(cluster="default")
    assert "deletionTimestamp" not in kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace, "default")["metadata"]
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="scaled above 0"):
        ecs.delete_service(cluster="default", service="web")
    deleted = ecs.delete_service(cluster="default", service="web", force=True)["service"]
    assert (deleted["status"], deleted["desiredCount"]) == ("DRAINING", 0)
    wait_for(lambda: not ecs.list_services(cluster="default")["serviceArns"], timeout=60, what="the service to go")
    ecs.get_waiter("services_inactive").wait(cluster="default", services=["web"], WaiterConfig=FAST)
    wait_for(lambda: sandbox.kubectl("get", ECS_SERVICE, "web", "-n", namespace, check=False).returncode != 0,
             timeout=60, what="the Service resource to go")
    # gone from Kubernetes, still INACTIVE to describe-services (for the stopped-task TTL), as in ECS
    (inactive,) = ecs.describe_services(cluster="default", services=[created["serviceArn"]])["services"]
    assert (inactive["status"], inactive["desiredCount"], inactive["serviceArn"]) == ("INACTIVE", 0, created["serviceArn"])
    with pytest.raises(ecs.exceptions.ServiceNotActiveException):
        ecs.update_service(cluster="default", service="web", desiredCount=1)


def test_task_definitions_and_clusters_by_name_and_arn(sandbox: Cluster, namespace: str, api: Api) -> None:
    ecs = api.client()
    for image in ("nginx:1.27", "nginx:1.28"):
        ecs.register_task_definition(family="Batch_Job", containerDefinitions=container(image), tags=[{"key": "team", "value": "a"}])
    arns = ecs.list_task_definitions(familyPrefix="Batch")["taskDefinitionArns"]
    assert arns == [f"{ARN}:task-definition/Batch_Job:1", f"{ARN}:task-definition/Batch_Job:2"]
    assert ecs.list_task_definitions(sort="DESC")["taskDefinitionArns"] == arns[::-1]
    described = ecs.describe_task_definition(taskDefinition=arns[0], include=["TAGS"])
    assert described["taskDefinition"]["containerDefinitions"][0]["image"] == "nginx:1.27"
    assert described["tags"] == [{"key": "team", "value": "a"}]
    assert ecs.describe_task_definition(taskDefinition="Batch_Job")["taskDefinition"]["revision"] == 2
    (resource,) = kubectl_get(sandbox, "taskdefinitions.ecs.operator.dev", namespace)
    assert resource["spec"]["family"] == "Batch_Job" and resource["status"]["taskDefinitionArn"] == arns[1]
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.describe_task_definition(taskDefinition="Batch_Job:7")

    made = ecs.create_cluster(clusterName="Team_Cluster", tags=[{"key": "team", "value": "a"}])["cluster"]
    assert made["clusterArn"] == f"{ARN}:cluster/Team_Cluster"
    (cluster,) = ecs.describe_clusters(clusters=[made["clusterArn"]], include=["TAGS"])["clusters"]
    assert cluster["tags"] == [{"key": "team", "value": "a"}] and cluster["status"] == "ACTIVE"
    assert ecs.list_clusters()["clusterArns"] == [made["clusterArn"]]
    assert ecs.deregister_task_definition(taskDefinition=arns[0])["taskDefinition"]["status"] == "INACTIVE"
    assert ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"] == arns[:1]
    assert ecs.list_task_definitions()["taskDefinitionArns"] == arns[1:]
    assert kubectl_get(sandbox, "taskdefinitions.ecs.operator.dev", namespace)[0]["spec"]["kubernetes"]["deregisteredRevisions"] == [1]
    with pytest.raises(ecs.exceptions.ClientException, match="inactive"):
        ecs.run_task(cluster="Team_Cluster", taskDefinition="Batch_Job:1")
    assert api.client(api.other_key_id, "other").list_clusters()["clusterArns"] == []  # another namespace, another account
    assert ecs.delete_cluster(cluster="Team_Cluster")["cluster"]["status"] == "INACTIVE"
    wait_for(lambda: ecs.describe_clusters(clusters=["Team_Cluster"])["failures"] == [
        {"arn": made["clusterArn"], "reason": "MISSING"}], timeout=30, what="the cluster to go")


def test_error_paths(api: Api) -> None:
    ecs = api.client()
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.describe_services(cluster="nowhere", services=["web"])
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.run_task(cluster="nowhere", taskDefinition="web")
    ecs.create_cluster(clusterName="default")
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.update_service(cluster="default", service="ghost", desiredCount=1)
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.run_task(cluster="default", taskDefinition="ghost")
    assert ecs.describe_tasks(cluster="default", tasks=["0123456789abcdef0123456789abcdef"])["failures"] == [
        {"arn": f"{ARN}:task/default/0123456789abcdef0123456789abcdef", "reason": "MISSING"}]
    with pytest.raises(ecs.exceptions.ClientException, match=r"containerDefinitions\[0\].memory"):
        ecs.register_task_definition(family="bad", containerDefinitions=[{"name": "c", "image": "nginx", "memory": -1}])
    ecs.register_task_definition(family="one", containerDefinitions=container("nginx:1.29"))
    (task,) = ecs.run_task(cluster="default", taskDefinition="one")["tasks"]
    with pytest.raises(ecs.exceptions.ClusterContainsTasksException):
        ecs.delete_cluster(cluster="default")
    ecs.stop_task(cluster="default", task=task["taskArn"])
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[task["taskArn"]], WaiterConfig=FAST)
    assert ecs.describe_tasks(cluster="default", tasks=[task["taskArn"]])["tasks"][0]["stoppedReason"] == "Task stopped by user"
    assert ecs.delete_cluster(cluster="default")["cluster"]["status"] == "INACTIVE"

    for client, code in ((api.client("AKIDNOBODY", "x"), "UnrecognizedClientException"),
                         (api.client(secret="wrong"), "InvalidSignatureException")):
        with pytest.raises(client.exceptions.ClientError) as raised:
            client.list_clusters()
        assert (raised.value.response["Error"]["Code"], raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (code, 403)

    status, answer = api.post(TARGET + "LaunchRocket", b"{}")
    assert (status, answer["__type"]) == (400, "UnknownOperationException")
    status, answer = api.post(TARGET + "ListClusters", b'{"maxResults": ')
    assert (status, answer["__type"]) == (400, "SerializationException")


def test_a_key_removed_from_the_secret_is_refused_within_a_second(sandbox: Cluster, namespace: str, api: Api) -> None:
    """The API looks keys up in its watch of the Secret (api/keys.py): a removal reaches it within a second
    (README), and a key added back works at its first request."""
    other = api.client(api.other_key_id, "other")
    assert other.list_clusters()["clusterArns"] == []
    entry = sandbox.kubectl_json("get", "secret", "ecs-api-keys", "-n", namespace)["data"][api.other_key_id]

    def refused() -> bool:
        try:
            other.list_clusters()
        except other.exceptions.ClientError as e:
            assert e.response["Error"]["Code"] == "UnrecognizedClientException"
            return True
        return False

    sandbox.kubectl("patch", "secret", "ecs-api-keys", "-n", namespace, "--type=json",
                    "-p", json.dumps([{"op": "remove", "path": f"/data/{api.other_key_id}"}]))
    removed = time.monotonic()
    while not refused():
        assert time.monotonic() - removed < 1.0, "the removed key still works a second after its removal"
        time.sleep(0.02)
    assert api.client().list_clusters()["clusterArns"] is not None  # the other keys still work
    sandbox.kubectl("patch", "secret", "ecs-api-keys", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"data": {api.other_key_id: entry}}))
    assert other.list_clusters()["clusterArns"] == []  # added back: works at once


def test_aws_cli(sandbox: Cluster, namespace: str, api: Api) -> None:
    env = {**sandbox.env, "AWS_ACCESS_KEY_ID": api.key_id, "AWS_SECRET_ACCESS_KEY": api.secret, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_ECS": api.endpoint, "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    aws = [str(Path(sys.executable).parent / "aws"), "ecs", "--output", "json"]

    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sandbox.run(*aws, *args, env=env, check=check, timeout=60)

    made = json.loads(cli("create-cluster", "--cluster-name", "default").stdout)["cluster"]
    assert made["clusterArn"] == f"{ARN}:cluster/default"
    assert json.loads(cli("list-clusters").stdout)["clusterArns"] == [made["clusterArn"]]
    registered = json.loads(cli("register-task-definition", "--family", "cli",
                                "--container-definitions", json.dumps(container("nginx:1.29"))).stdout)
    assert registered["taskDefinition"]["taskDefinitionArn"] == f"{ARN}:task-definition/cli:1"
    cli("create-service", "--cluster", "default", "--service-name", "cli", "--task-definition", "cli", "--desired-count", "1")
    started = time.monotonic()
    cli("wait", "services-stable", "--cluster", "default", "--services", "cli")
    assert time.monotonic() - started < 120
    (service,) = json.loads(cli("describe-services", "--cluster", "default", "--services", "cli").stdout)["services"]
    assert service["runningCount"] == kubectl_get(sandbox, ECS_SERVICE, namespace, "cli")["status"]["runningCount"] == 1
    run = json.loads(cli("run-task", "--cluster", "default", "--task-definition", "cli:1", "--started-by", "cli").stdout)
    (arn,) = [t["taskArn"] for t in run["tasks"]]
    cli("wait", "tasks-running", "--cluster", "default", "--tasks", arn)
    cli("stop-task", "--cluster", "default", "--task", arn, "--reason", "stopped with aws-cli")
    cli("wait", "tasks-stopped", "--cluster", "default", "--tasks", arn)
    (task,) = json.loads(cli("describe-tasks", "--cluster", "default", "--tasks", arn).stdout)["tasks"]
    assert (task["lastStatus"], task["stoppedReason"]) == ("STOPPED", "stopped with aws-cli")
    refused = cli("delete-cluster", "--cluster", "default", check=False)
    assert refused.returncode != 0 and "ClusterContainsServicesException" in refused.stderr, refused.stderr
    missing = cli("describe-services", "--cluster", "nowhere", "--services", "cli", check=False)
    assert missing.returncode != 0 and "ClusterNotFoundException" in missing.stderr, missing.stderr


def test_aws_cli_over_https(sandbox: Cluster, namespace: str, api: Api, tmp_path: Path) -> None:
    """`--tls-cert`/`--tls-key`: aws-cli with the CA bundle talks to it; without the CA it refuses the server."""
    pki = create_pki(tmp_path / "pki")  # a CA and a serving certificate for 127.0.0.1
    port = free_port()
    log = open(tmp_path / "api-tls.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "ecs_operator.cli", "api", "--port", str(port), "--namespace", namespace,
                                "--tls-cert", str(pki.cert("apiserver")), "--tls-key", str(pki.key("apiserver"))],
                               env=sandbox.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: listening(port), timeout=30, what="the HTTPS API to listen")
        env = {**sandbox.env, "AWS_ACCESS_KEY_ID": api.key_id, "AWS_SECRET_ACCESS_KEY": api.secret, "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_ENDPOINT_URL_ECS": f"https://127.0.0.1:{port}", "AWS_CONFIG_FILE": "/dev/null",
               "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        aws = [str(Path(sys.executable).parent / "aws"), "ecs", "--output", "json"]
        made = sandbox.run(*aws, "create-cluster", "--cluster-name", "secure", env={**env, "AWS_CA_BUNDLE": str(pki.ca_cert)}, timeout=60)
        assert json.loads(made.stdout)["cluster"]["clusterArn"] == f"{ARN}:cluster/secure"
        assert kubectl_get(sandbox, "clusters.ecs.operator.dev", namespace, "secure")["metadata"]["name"] == "secure"
        untrusted = sandbox.run(*aws, "list-clusters", env=env, check=False, timeout=60)
        assert untrusted.returncode != 0 and "SSL" in untrusted.stderr, untrusted.stderr
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "https://" in (tmp_path / "api-tls.log").read_text()
