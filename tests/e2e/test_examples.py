"""examples/ on the real control plane: each manifest, applied as it is with the operator running,
reaches its goal state; each also converts with `ecs-operator convert` (custom resources are
accepted as input)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ecs_operator import API_GROUP
from ecs_operator.cli import main
from operator_fixtures import Operator, get, wait_for

if TYPE_CHECKING:
    from conftest import Cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMESPACE_ONLY = "04-log-agent-namespace.yaml"
LOG_AGENT_NAMESPACE = "ecs-log-agent"


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == [
        "01-nginx.yaml", "02-web-app.yaml", "03-fargate-web-service.yaml", NAMESPACE_ONLY, "05-log-agent.yaml",
        "06-capacity-provider.yaml"]


@pytest.mark.parametrize("to", ["crs", "k8s"])
@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml") if p.name != NAMESPACE_ONLY))
def test_example_converts(example: str, to: str, tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    assert main(["convert", "--to", to, "--report", "none", "-o", str(out), str(EXAMPLES / example)]) == 0
    written = [d for d in yaml.safe_load_all(out.read_text()) if d]
    if to == "crs":
        given = [d for d in yaml.safe_load_all((EXAMPLES / example).read_text()) if d]
        assert sorted((d["kind"], d["metadata"]["name"]) for d in written) == sorted((d["kind"], d["metadata"]["name"]) for d in given)
        assert [d["spec"] for d in sorted(written, key=_key)] == [d["spec"] for d in sorted(given, key=_key)]
    else:
        assert written and all(not d["apiVersion"].startswith(API_GROUP) for d in written)


def _key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def apply_example(sandbox: Cluster, namespace: str | None, *files: str) -> None:
    args = [arg for f in files for arg in ("-f", str(EXAMPLES / f))]
    sandbox.kubectl("apply", *(["-n", namespace] if namespace else []), *args)


def service_status(sandbox: Cluster, name: str, namespace: str) -> dict[str, Any]:
    return get(sandbox, "services.ecs.operator.dev", name, namespace).get("status") or {}


def completed(sandbox: Cluster, name: str, namespace: str, running: int | None = None) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = service_status(sandbox, name, namespace)
        want = running if running is not None else status.get("desiredCount")
        done = status.get("rolloutState") == "COMPLETED" and status.get("runningCount") == want and want
        return status if done else None
    return wait_for(check, timeout=240, what=f"Service {name} COMPLETED with its tasks running")


def test_nginx_example(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    apply_example(sandbox, namespace, "01-nginx.yaml")
    task = wait_for(lambda: (t := get(sandbox, "tasks.ecs.operator.dev", "nginx-demo", namespace)).get("status", {}).get("lastStatus") == "RUNNING" and t,
                    timeout=120, what="Task nginx-demo RUNNING")
    assert task["status"]["taskDefinition"] == "nginx-demo:1" and task["status"]["launchType"] == "EC2"
    definition = get(sandbox, "taskdefinitions.ecs.operator.dev", "nginx-demo", namespace)
    assert definition["status"]["status"] == "ACTIVE"


def test_web_app_example(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    apply_example(sandbox, namespace, "02-web-app.yaml")
    status = completed(sandbox, "web-app", namespace, running=2)
    assert status["taskDefinition"] == "web-app:1"
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", f"{API_GROUP}/service=web-app")["items"]
    running = [p for p in pods if p["status"]["phase"] == "Running" and not p["metadata"].get("deletionTimestamp")]
    assert len(running) == 2
    (migrate,) = running[0]["spec"]["initContainers"]
    assert migrate["name"] == "migrate" and migrate.get("restartPolicy") is None  # runs to completion (SUCCESS) before app starts
    redis, app = running[0]["spec"]["containers"]
    assert (redis["name"], app["name"]) == ("redis", "app")  # started in this order
    assert "postStart" in redis["lifecycle"]  # app waits for HEALTHY: redis's hook holds it until its check passes


def test_fargate_web_service_example(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    apply_example(sandbox, namespace, "03-fargate-web-service.yaml")
    completed(sandbox, "web", namespace, running=2)
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", f"{API_GROUP}/service=web")["items"]
    assert {p["metadata"]["labels"][f"{API_GROUP}/launch-type"] for p in pods} == {"FARGATE"}
    # the default FARGATE node selection: the nodes set aside for it (besides runtimePlatform's OS and architecture)
    assert [p["spec"].get("nodeSelector", {}).get(f"{API_GROUP}/fargate") for p in pods] == ["true"] * len(pods)
    service = sandbox.kubectl_json("get", "service", "web", "-n", namespace)
    assert service["spec"]["type"] == "ClusterIP"  # the operator's default; LoadBalancer is the workload policy's
    assert [(p["port"], p["protocol"]) for p in service["spec"]["ports"]] == [(80, "TCP")]


@pytest.fixture
def log_agent_namespace(sandbox: Cluster) -> Iterator[str]:
    """The example's own namespace (named in the manifest), gone before and after."""
    sandbox.kubectl("delete", "namespace", LOG_AGENT_NAMESPACE, "--ignore-not-found", "--timeout=180s")
    yield LOG_AGENT_NAMESPACE
    sandbox.kubectl("delete", "namespace", LOG_AGENT_NAMESPACE, "--ignore-not-found", "--timeout=180s", check=False)


def test_log_agent_example(sandbox: Cluster, log_agent_namespace: str, running_operator: Operator) -> None:
    apply_example(sandbox, None, NAMESPACE_ONLY, "05-log-agent.yaml")
    instances = sandbox.kubectl_json("get", "nodes", "-l", f"{API_GROUP}/cluster=default")["items"]
    status = completed(sandbox, "log-agent", log_agent_namespace)
    assert status["schedulingStrategy"] == "DAEMON" and status["runningCount"] == len(instances) >= 3
    [daemon_set] = sandbox.kubectl_json("get", "daemonsets", "-n", log_agent_namespace)["items"]
    volumes = {v["name"]: v for v in daemon_set["spec"]["template"]["spec"]["volumes"]}
    assert volumes["host-logs"]["hostPath"]["path"] == "/var/log"  # allowed: the namespace opted in


def test_capacity_provider_example(sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    documents = [d for d in yaml.safe_load_all((EXAMPLES / "06-capacity-provider.yaml").read_text()) if d]
    (provider,) = [d for d in documents if d["kind"] == "CapacityProvider"]
    assert provider["spec"]["kubernetes"]["allowedNamespaces"] == ["default/capacity-demo"]
    provider["spec"]["kubernetes"]["allowedNamespaces"] = [f"{namespace}/capacity-demo"]  # the test's namespace, not default
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))
    try:
        status = completed(sandbox, "worker", namespace, running=3)
        nodes = sandbox.kubectl_json("get", "nodes", "-l", f"{API_GROUP}/capacity-provider=kwok-pool")["items"]
        assert len(nodes) == 2  # m5.large: 2048 CPU units, two 1024-unit tasks per instance
        assert {(n["metadata"]["labels"][f"{API_GROUP}/cluster"], n["metadata"]["labels"][f"{API_GROUP}/cluster-namespace"])
                for n in nodes} == {("capacity-demo", namespace)}
        provider = sandbox.kubectl_json("get", "capacityproviders.ecs.operator.dev", "kwok-pool")["status"]
        assert (provider["desiredSize"], provider["instancesNeeded"]) == (2, 2)
        assert status["clusterName"] == "capacity-demo"
    finally:
        sandbox.kubectl("delete", "services.ecs.operator.dev", "worker", "-n", namespace, "--timeout=120s", check=False)
        sandbox.kubectl("delete", "clusters.ecs.operator.dev", "capacity-demo", "-n", namespace, "--timeout=120s", check=False)
        sandbox.kubectl("delete", "capacityproviders.ecs.operator.dev", "kwok-pool", "--timeout=120s", check=False)
        sandbox.kubectl("delete", "nodes", "-l", f"{API_GROUP}/capacity-provider=kwok-pool", check=False)
