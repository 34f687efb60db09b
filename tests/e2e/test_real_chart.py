"""The operator's own image, built from the Dockerfile (`sandbox image build`: debootstrap + buildah, no Docker,
no container registry), installed with the Helm chart on a real node and run there as a user's cluster would.

A sandbox of its own (module-scoped: one kwok node, one real node). The chart gets only the image settings
(repository, tag, pullPolicy Never: the image must have been imported, nothing is pulled). How its Pods reach
the tainted real node without a chart setting: the release namespace carries an administrator's placement
policy, the annotations of the API server's PodNodeSelector and PodTolerationRestriction admission plugins
(node selector ecs.operator.dev/real-node=true and the taint's toleration), beside the Pod Security label
`restricted`. The operator in those Pods reaches the API server as in-cluster clients do (its ServiceAccount
token, the `kubernetes` Service), elects a leader, and reconciles examples/01-nginx.yaml: its Task reaches RUNNING
on the kwok node. Then `helm upgrade` rolls the Pods and the new leader reconciles again; `helm uninstall`
stops the containers.

Needs root and the Debian packages `.ci/run` installs (the real nodes' and buildah debootstrap); set
ECS_OPERATOR_SKIP_REAL_NODES=1 to skip instead. The image build is cached per source
(~/.cache/ecs-operator/images): the first run on a machine builds it (a few minutes), later runs import it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ecs_objects import wait_task
from operator_fixtures import REPO, wait_for

from conftest import Cluster, _environment, _sandbox_cli
from ecs_operator.sandbox import build, image_build, realnodes
from ecs_operator.sandbox.launcher import Sandbox

CHART = REPO / "charts" / "ecs-operator"
NODE = "sandbox-real-1"
RELEASE = "ecs-operator"
NAMESPACE = "ecs-system"
PLACEMENT = {  # the namespace's policy: its Pods go to the real nodes (PodNodeSelector, PodTolerationRestriction)
    "scheduler.alpha.kubernetes.io/node-selector": f"{realnodes.REAL_NODE_LABEL}=true",
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([realnodes.REAL_NODE_TOLERATION]),
}
NON_ROOT = 10001  # the Dockerfile's USER
pytestmark = pytest.mark.timeout(1500)  # the first test's set-up may build the image cold (minutes on a busy machine)


@dataclass
class Release:
    sandbox: Cluster
    image: image_build.Image
    node: realnodes.RealNode

    def pods(self) -> list[dict[str, Any]]:
        return self.sandbox.kubectl_json("get", "pods", "-n", NAMESPACE, "-l",
                                         f"app.kubernetes.io/instance={RELEASE}")["items"]

    def ready_pods(self, count: int) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            pods = [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")]
            ok = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                         for c in p["status"].get("conditions", []))]
            return ok if len(ok) == len(pods) == count else None
        return wait_for(ready, timeout=180, what=f"{count} Ready operator Pods")

    def leader(self) -> str:
        lease = self.sandbox.kubectl_json("get", "lease", f"{RELEASE}", "-n", NAMESPACE)
        return str(lease["spec"].get("holderIdentity") or "")

    def logs(self, pod: str) -> str:
        return self.sandbox.kubectl("logs", "-n", NAMESPACE, pod, check=False).stdout


def healthz(ip: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://{ip}:8080/healthz", timeout=5) as response:
            return int(response.status)
    except OSError:
        return None


def _down(state_dir: Path) -> None:
    state = Sandbox(state_dir).read_state()
    stopped = _sandbox_cli("down", "--state-dir", str(state_dir))
    left = realnodes.leftovers(state.real_nodes, state.host) if state else []
    assert stopped.returncode == 0 and not left, f"`sandbox down` left {left}:\n{stopped.stderr}{stopped.stdout}"


def _sandbox_image_build(*args: str) -> subprocess.CompletedProcess[str]:
    started_at = time.monotonic()
    built = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", "image", "build", *args],
                           capture_output=True, text=True, timeout=1500)
    sys.stderr.write(f"`sandbox image build {' '.join(args)}` in {time.monotonic() - started_at:.1f}s:\n{built.stderr}")
    assert built.returncode == 0, f"`sandbox image build` failed:\n{built.stderr}{built.stdout}"
    return built


@pytest.fixture(scope="module")
def operator_image() -> image_build.Image:
    """The operator's image built from the Dockerfile, or found cached (before any sandbox: a cold build is minutes)."""
    problems = realnodes.missing_requirements() + image_build.missing_requirements()
    if problems:
        message = "real-node chart test: " + "; ".join(problems)
        if os.environ.get("ECS_OPERATOR_SKIP_REAL_NODES"):
            pytest.skip(message)
        pytest.fail(message + " (or set ECS_OPERATOR_SKIP_REAL_NODES=1)", pytrace=False)
    reference = _sandbox_image_build("--no-import").stdout.strip().splitlines()[0]
    image = image_build.cached()
    assert image is not None and image.reference == reference, (reference, image)
    return image


@pytest.fixture(scope="module")
def chart_sandbox(operator_image: image_build.Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One kwok node and one real node, the operator's image imported into the real one (`sandbox image build`)."""
    state_dir = tmp_path_factory.mktemp("chart-sandbox")
    started_at = time.monotonic()
    started = _sandbox_cli("up", "--no-build", "--nodes", "1", "--real-nodes", "1", "--state-dir", str(state_dir))
    if started.returncode != 0:
        _sandbox_cli("down", "--state-dir", str(state_dir))
        pytest.fail(f"the chart's real-node sandbox did not start:\n{started.stderr}{started.stdout}", pytrace=False)
    sys.stderr.write(f"chart real-node sandbox up in {time.monotonic() - started_at:.1f}s\n")
    kubeconfig = str(state_dir / "kubeconfig")
    bin_dir = build.binaries_dir()
    try:
        assert _sandbox_image_build("--state-dir", str(state_dir)).stdout.split()[0] == operator_image.reference
        yield Cluster(kubeconfig, bin_dir, _environment(kubeconfig, bin_dir, tmp_path_factory.mktemp("chart-helm")))
    finally:
        _down(state_dir)


@pytest.fixture(scope="module")
def release(chart_sandbox: Cluster, operator_image: image_build.Image) -> Iterator[Release]:
    """The chart with only the image settings, in a namespace placed on the real node and labelled `restricted`."""
    image = operator_image
    state = Sandbox(Path(chart_sandbox.kubeconfig).parent).read_state()
    assert state is not None
    (node,) = state.real_nodes
    chart_sandbox.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "annotations": PLACEMENT,
                     "labels": {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn")}}}))
    installed = chart_sandbox.helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE,
                                   "--set", f"image.repository={image.repository}", "--set", f"image.tag={image.tag}",
                                   "--set", "image.pullPolicy=Never", "--wait", "--timeout", "300s")
    assert "violate PodSecurity" not in installed.stderr, installed.stderr
    yield Release(chart_sandbox, image, node)
    chart_sandbox.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", check=False)


def test_the_charts_pods_run_the_built_image_on_the_real_node_as_non_root(release: Release) -> None:
    pods = release.ready_pods(2)
    for pod in pods:
        assert pod["spec"]["nodeName"] == NODE
        (status,) = pod["status"]["containerStatuses"]
        assert status["image"] == release.image.reference and status["restartCount"] == 0
        assert status["containerID"].startswith("containerd://")
        name = pod["metadata"]["name"]
        # a real process: the image's ENTRYPOINT as PID 1, as the Dockerfile's non-root user
        proc = release.sandbox.kubectl("exec", "-n", NAMESPACE, name, "--", "sh", "-c",
                                       "id -u; id -g; tr '\\0' ' ' < /proc/1/cmdline").stdout.split("\n", 2)
        assert proc[:2] == [str(NON_ROOT), str(NON_ROOT)], proc
        assert proc[2].startswith("/usr/bin/python3 /usr/local/bin/ecs-operator run "), proc[2]
        assert "--leader-elect" in proc[2]
        # what in-cluster clients use: the kubernetes Service's variables and the ServiceAccount's token
        env = release.sandbox.kubectl("exec", "-n", NAMESPACE, name, "--", "sh", "-c",
                                      "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT; "
                                      "ls /var/run/secrets/kubernetes.io/serviceaccount").stdout.split()
        assert env[0] == f"{realnodes.KUBERNETES_SERVICE_IP}:443" and {"token", "ca.crt"} <= set(env[1:]), env
        # readOnlyRootFilesystem really holds (/var/tmp is world-writable in the image), /tmp is the chart's emptyDir
        writes = release.sandbox.kubectl("exec", "-n", NAMESPACE, name, "--", "sh", "-c",
                                         "touch /var/tmp/x 2>&1; touch /tmp/x && echo tmp-ok", check=False).stdout
        assert "Read-only file system" in writes and "tmp-ok" in writes, writes


def test_the_liveness_endpoint_answers_and_one_replica_leads(release: Release) -> None:
    pods = release.ready_pods(2)
    for pod in pods:  # from the host, over the node's bridge, as the kubelet's probe does (once the process listens)
        ip = pod["status"]["podIP"]
        wait_for(lambda ip=ip: healthz(ip) == 200, timeout=90, what=f"{pod['metadata']['name']}'s /healthz")
    names = {p["metadata"]["name"] for p in pods}
    leader = wait_for(lambda: release.leader() in names and release.leader(), timeout=60, what="a leader")
    assert leader in names
    unhealthy = [e for e in release.sandbox.kubectl_json("get", "events", "-n", NAMESPACE)["items"]
                 if e["reason"] in ("Unhealthy", "BackOff", "Failed")]
    assert not unhealthy, [e["message"] for e in unhealthy]


def test_the_operator_in_the_pod_reconciles_an_example(release: Release) -> None:
    sandbox = release.sandbox
    sandbox.kubectl("create", "namespace", "example")
    sandbox.kubectl("apply", "-n", "example", "-f", str(REPO / "examples" / "01-nginx.yaml"))
    task = wait_task(sandbox, "example", "nginx-demo", "RUNNING", timeout=180)
    (pod,) = sandbox.kubectl_json("get", "pods", "-n", "example")["items"]
    kwok = sandbox.kubectl_json("get", "node", pod["spec"]["nodeName"])
    assert kwok["metadata"]["labels"]["ecs.operator.dev/cluster"] == "default" and pod["spec"]["nodeName"] != NODE
    assert task["lastStatus"] == "RUNNING"
    leader = release.leader()
    assert "nginx-demo" in release.logs(leader), "the leader's log does not mention the task it reconciled"


def test_helm_upgrade_rolls_the_pods_and_uninstall_stops_the_containers(release: Release) -> None:
    sandbox = release.sandbox
    before = {p["metadata"]["name"] for p in release.ready_pods(2)}
    upgraded = sandbox.helm("upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "--reuse-values",
                            "--set", "logLevel=DEBUG", "--wait", "--timeout", "300s")
    assert "REVISION: 2" in upgraded.stdout
    after = wait_for(lambda: (names := {p["metadata"]["name"] for p in release.ready_pods(2)}).isdisjoint(before)
                     and names, timeout=180, what="the upgraded Pods to replace the old ones")
    for name in after:
        assert "--log-level=DEBUG" in sandbox.kubectl("exec", "-n", NAMESPACE, name, "--", "cat",
                                                      "/proc/1/cmdline").stdout.replace("\0", " ")
    leader = wait_for(lambda: release.leader() in after and release.leader(), timeout=90, what="a new leader")
    sandbox.kubectl("apply", "-n", "example", "-f", "-", input=json.dumps({
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task", "metadata": {"name": "after-upgrade"},
        "spec": {"cluster": "default", "taskDefinition": "nginx-demo"}}))
    wait_task(sandbox, "example", "after-upgrade", "RUNNING", timeout=180)
    assert "after-upgrade" in release.logs(leader)

    sandbox.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "180s")
    wait_for(lambda: not release.pods(), timeout=120, what="the operator Pods to go")

    def operator_containers() -> list[str]:
        listed = realnodes.ctr(release.node, "containers", "ls").splitlines()[1:]
        return [line for line in listed if release.image.reference in line]
    wait_for(lambda: not operator_containers(), timeout=60, what="the node's containers of the image to be removed")
