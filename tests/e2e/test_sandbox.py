"""The sandbox is a real Kubernetes control plane: workloads run on kwok nodes, controllers,
the scheduler, RBAC, TokenRequest, kubectl and helm all behave as on a cluster, and the pod
simulation annotations produce the statuses a kubelet would report."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ecs_operator.nodepool.instance_types import KWOK_ANNOTATION, build_node, instance_type, zone_for
from operator_fixtures import kubectl_wait

if TYPE_CHECKING:
    from conftest import Cluster


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60, interval: float = 0.5) -> Any:
    """Poll until `probe` returns something truthy; fail naming `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {value!r}")
        time.sleep(interval)


def deployment(name: str, replicas: int, node_selector: dict[str, str] | None = None) -> str:
    pod_spec: dict[str, Any] = {"containers": [{"name": "web", "image": "nginx:1.29",
                                                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}},
    })


def running_pods(sandbox: Cluster, namespace: str, selector: str) -> list[dict]:
    pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def pod(sandbox: Cluster, namespace: str, name: str) -> dict:
    return sandbox.kubectl_json("get", "pod", name, "-n", namespace)


def container(pod_object: dict, name: str) -> dict:
    return next(s for s in pod_object["status"].get("containerStatuses", []) if s["name"] == name)


def condition(pod_object: dict, kind: str) -> str | None:
    return next((c["status"] for c in pod_object["status"].get("conditions", []) if c["type"] == kind), None)


def apply_pod(sandbox: Cluster, namespace: str, name: str, annotations: dict[str, str],
              containers: tuple[str, ...] = ("app", "logger"), init_containers: list[dict] | None = None) -> None:
    spec: dict[str, Any] = {"restartPolicy": "Never",
                            "containers": [{"name": c, "image": f"example.com/{c}:1"} for c in containers]}
    if init_containers:
        spec["initContainers"] = init_containers
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations}, "spec": spec}
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))


def test_version_is_the_built_kubernetes(sandbox: Cluster) -> None:
    version = json.loads(sandbox.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == "v1.37.2"
    client = json.loads(sandbox.kubectl("version", "-o", "json").stdout)["clientVersion"]
    assert client["minor"] == "37"


def test_nodes_look_like_ec2_instances(sandbox: Cluster) -> None:
    nodes = [n for n in sandbox.kubectl_json("get", "nodes", "-l", "ecs.operator.dev/cluster=default")["items"]
             if n["metadata"]["name"].startswith("sandbox-node-")]
    assert len(nodes) == 3
    assert {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes} == {
        "us-east-1a", "us-east-1b", "us-east-1c"}
    for node in nodes:
        assert node["metadata"]["annotations"][KWOK_ANNOTATION] == "fake"
        assert node["metadata"]["labels"]["node.kubernetes.io/instance-type"] == "m5.xlarge"
        # shared instances of the cluster "default" of every namespace, open to FARGATE tasks
        assert {k: node["metadata"]["labels"].get(k) for k in ("ecs.operator.dev/shared-instance", "ecs.operator.dev/fargate")} == {
            "ecs.operator.dev/shared-instance": "true", "ecs.operator.dev/fargate": "true"}
        assert node["status"]["allocatable"]["pods"] == "58"
        assert any(a["type"] == "InternalIP" and a["address"].startswith("10.0.") for a in node["status"]["addresses"])
        assert condition(node, "Ready") == "True"


def test_deployment_runs_three_pods_on_kwok_nodes(sandbox: Cluster, namespace: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web", 3))
    sandbox.kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=60s")
    pods = running_pods(sandbox, namespace, "app=web")
    assert len(pods) == 3
    kwok_nodes = {n["metadata"]["name"] for n in sandbox.kubectl_json("get", "nodes")["items"]
                  if n["metadata"]["annotations"].get(KWOK_ANNOTATION) == "fake"}
    for p in pods:
        assert p["spec"]["nodeName"] in kwok_nodes
        assert p["status"]["podIP"] and p["status"]["hostIP"].startswith("10.0.")
        assert container(p, "web")["ready"] is True
        assert condition(p, "Ready") == "True"


def test_deleting_a_node_reschedules_its_pods(sandbox: Cluster, namespace: str) -> None:
    """Two nodes of the test's own (so the shared nodes stay), a Deployment pinned to them; the
    node with most pods is deleted and the pod garbage collector (orphaned pods are collected
    ~40-60 s after their node disappears) lets the ReplicaSet replace them on the other node."""
    pool = {"e2e.ecs.operator.dev/pool": namespace}
    names = [f"{namespace}-a", f"{namespace}-b"]
    for index, name in enumerate(names):
        sandbox.kubectl("create", "-f", "-", input=json.dumps(
            build_node(name, instance_type("m5.large"), zone_for(index), labels=pool)))
    try:
        wait_for("both pool nodes Ready", lambda: all(
            condition(sandbox.kubectl_json("get", "node", n), "Ready") == "True" for n in names), timeout=30)
        sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("pinned", 4, node_selector=pool))
        sandbox.kubectl("rollout", "status", "deployment/pinned", "-n", namespace, "--timeout=60s")
        placement = [p["spec"]["nodeName"] for p in running_pods(sandbox, namespace, "app=pinned")]
        doomed = max(names, key=placement.count)
        survivor = next(n for n in names if n != doomed)
        assert placement.count(doomed) >= 1
        sandbox.kubectl("delete", "node", doomed)
        wait_for(f"4 Running pods on {survivor}", lambda: [
            p["spec"]["nodeName"] for p in running_pods(sandbox, namespace, "app=pinned")] == [survivor] * 4,
            timeout=120, interval=2)
    finally:
        sandbox.kubectl("delete", "node", *names, "--ignore-not-found", "--wait=false")


def test_kubectl_and_helm_install_a_chart(sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    chart = tmp_path / "hello"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: hello\nversion: 0.1.0\nkubeVersion: '>=1.37.0-0'\n")
    (chart / "values.yaml").write_text("replicas: 2\n")
    (chart / "templates" / "deployment.yaml").write_text(deployment("hello", 2).replace(
        "replicas: 2", "replicas: {{ .Values.replicas }}"))
    (chart / "templates" / "service.yaml").write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata: {name: hello}
        spec:
          selector: {app: hello}
          ports: [{port: 80}]
        """))
    sandbox.helm("install", "hello", str(chart), "-n", namespace, "--wait", "--timeout", "90s")
    releases = json.loads(sandbox.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("hello", "deployed")]
    assert sandbox.kubectl_json("get", "deployment", "hello", "-n", namespace)["status"]["readyReplicas"] == 2
    service = sandbox.kubectl_json("get", "service", "hello", "-n", namespace)
    assert service["spec"]["clusterIP"].startswith("10.96.")
    sandbox.helm("uninstall", "hello", "-n", namespace, "--wait")


def test_rbac_refuses_a_service_account_without_rights(sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    sandbox.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    token = sandbox.kubectl("create", "token", "nobody", "-n", namespace).stdout.strip()
    admin = yaml.safe_load(Path(sandbox.kubeconfig).read_text())
    as_sa = tmp_path / "sa.kubeconfig"
    as_sa.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "sandbox", "cluster": admin["clusters"][0]["cluster"]}],
        "users": [{"name": "nobody", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "sandbox", "user": "nobody", "namespace": namespace}}],
    }))
    refused = sandbox.kubectl("--kubeconfig", str(as_sa), "get", "pods", check=False)
    assert refused.returncode != 0
    assert "Forbidden" in refused.stderr
    assert f"system:serviceaccount:{namespace}:nobody" in refused.stderr
    # the same token works once RBAC grants the right: authentication was fine, authorization refused
    sandbox.kubectl("create", "role", "pod-reader", "--verb=list", "--resource=pods", "-n", namespace)
    sandbox.kubectl("create", "rolebinding", "nobody-reads", "--role=pod-reader",
                    f"--serviceaccount={namespace}:nobody", "-n", namespace)
    wait_for("the RoleBinding to take effect", lambda: sandbox.kubectl(
        "--kubeconfig", str(as_sa), "get", "pods", check=False).returncode == 0, timeout=10)


def test_job_pods_complete(sandbox: Cluster, namespace: str) -> None:
    sandbox.kubectl("create", "job", "once", "--image=busybox:1.37", "-n", namespace)
    kubectl_wait(sandbox, "job/once", "--for=condition=Complete", "-n", namespace)


def test_native_sidecars_run_and_init_containers_complete_first(sandbox: Cluster, namespace: str) -> None:
    apply_pod(sandbox, namespace, "with-init", {}, init_containers=[
        {"name": "migrate", "image": "example.com/migrate:1"},
        {"name": "proxy", "image": "example.com/proxy:1", "restartPolicy": "Always"}])
    running = wait_for("the pod to run", lambda: (p := pod(sandbox, namespace, "with-init"))["status"].get(
        "phase") == "Running" and p)
    init = {s["name"]: s for s in running["status"]["initContainerStatuses"]}
    assert init["migrate"]["state"]["terminated"]["exitCode"] == 0
    assert init["proxy"]["started"] is True and "running" in init["proxy"]["state"]
    assert all("running" in s["state"] for s in running["status"]["containerStatuses"])
    assert condition(running, "Ready") == "True"


def test_simulated_exit_code(sandbox: Cluster, namespace: str) -> None:
    apply_pod(sandbox, namespace, "one-exits", {"sim.ecs.operator.dev/exit": "app=3"})
    exited = wait_for("app to exit", lambda: "terminated" in container(
        p := pod(sandbox, namespace, "one-exits"), "app")["state"] and p, timeout=30)
    assert container(exited, "app")["state"]["terminated"]["exitCode"] == 3
    assert container(exited, "app")["state"]["terminated"]["reason"] == "Error"
    assert "running" in container(exited, "logger")["state"]
    assert exited["status"]["phase"] == "Running"
    assert condition(exited, "Ready") == "False"

    apply_pod(sandbox, namespace, "all-exit", {"sim.ecs.operator.dev/exit": "app=0,logger=0",
                                               "sim.ecs.operator.dev/exit-after": "2s"})
    apply_pod(sandbox, namespace, "one-fails", {"sim.ecs.operator.dev/exit": "app=0,logger=137"})
    for name, phase in (("all-exit", "Succeeded"), ("one-fails", "Failed")):
        wait_for(f"{name} to be {phase}", lambda name=name, phase=phase: pod(
            sandbox, namespace, name)["status"].get("phase") == phase, timeout=30)
    assert container(pod(sandbox, namespace, "one-fails"), "logger")["state"]["terminated"]["exitCode"] == 137


def test_simulated_exit_of_a_native_sidecar(sandbox: Cluster, namespace: str) -> None:
    """Each listed container exits, native sidecars (init containers with restartPolicy Always) too."""
    apply_pod(sandbox, namespace, "proxy-exits", {"sim.ecs.operator.dev/exit": "proxy=2"}, init_containers=[
        {"name": "proxy", "image": "example.com/proxy:1", "restartPolicy": "Always"}])
    exited = wait_for("the sidecar to exit", lambda: (p := pod(sandbox, namespace, "proxy-exits"))["status"].get(
        "initContainerStatuses") and "terminated" in p["status"]["initContainerStatuses"][0]["state"] and p, timeout=30)
    (proxy,) = exited["status"]["initContainerStatuses"]
    assert (proxy["state"]["terminated"]["exitCode"], proxy["state"]["terminated"]["reason"]) == (2, "Error")
    assert (proxy["ready"], proxy["started"]) == (False, False)
    assert all("running" in s["state"] for s in exited["status"]["containerStatuses"])
    assert exited["status"]["phase"] == "Running"
    assert condition(exited, "Ready") == "False"


def test_simulated_unready_container(sandbox: Cluster, namespace: str) -> None:
    apply_pod(sandbox, namespace, "half-ready", {"sim.ecs.operator.dev/unready": "app"})
    running = wait_for("the pod to run", lambda: (p := pod(sandbox, namespace, "half-ready"))["status"].get(
        "phase") == "Running" and p)
    assert container(running, "app")["ready"] is False
    assert container(running, "logger")["ready"] is True
    assert condition(running, "Ready") == "False"
    assert condition(running, "ContainersReady") == "False"


def test_simulated_image_pull_failure(sandbox: Cluster, namespace: str) -> None:
    apply_pod(sandbox, namespace, "no-image", {"sim.ecs.operator.dev/fail-start": "app"})
    failing = wait_for("ErrImagePull", lambda: (p := pod(sandbox, namespace, "no-image"))["status"].get(
        "containerStatuses") and "waiting" in container(p, "app")["state"] and p, timeout=30)
    assert container(failing, "app")["state"]["waiting"]["reason"] == "ErrImagePull"
    assert "example.com/app:1" in container(failing, "app")["state"]["waiting"]["message"]
    time.sleep(2)  # and it stays that way
    assert pod(sandbox, namespace, "no-image")["status"]["phase"] == "Pending"
