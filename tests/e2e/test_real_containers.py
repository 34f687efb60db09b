"""Real containers: a sandbox of its own with one real node (`sandbox up --real-nodes 1`: a kubelet with
containerd and runc) beside one kwok node, and an operator of its own. Every assertion is about what a real
process did: its output (`kubectl logs`), a command run in it (`kubectl exec`), its exit code (3, a
non-essential 1, an OOM kill's 137, a SIGTERM trap's 7, a SIGKILL after stopTimeout), its health check's
verdicts and the timestamps it wrote to a shared volume. Last, `sandbox down` after a crash leaves nothing.

A separate sandbox (module-scoped: about 12 s to start, the real node Ready about 1 s later) keeps the rest of the suite
exactly as it was: its tests delete and count nodes, and none of them can land a Pod on a real node. Here
the real node is the ECS cluster `real`'s only container instance, and its taint is tolerated through the
TaskDefinition's `spec.kubernetes.tolerations`.

Needs root and the Debian packages `.ci/run` installs (containerd runc containernetworking-plugins
busybox-static iptables); the session fails with the missing ones named (set ECS_OPERATOR_SKIP_REAL_NODES=1
to skip instead).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ecs_objects import apply_all, cluster, container, pods, status, task, task_definition, wait_task
from ecs_operator.sandbox import images, realnodes
from ecs_operator.sandbox.launcher import Sandbox
from operator_fixtures import REPO, Operator, kubectl_wait, wait_for

if TYPE_CHECKING:
    from conftest import Cluster

BUSYBOX = images.BUSYBOX_IMAGE
NODE = "sandbox-real-1"
ON_REAL_NODE = {"tolerations": [realnodes.REAL_NODE_TOLERATION]}
"""The TaskDefinition's `spec.kubernetes`: its Pods tolerate the real node's taint."""


@pytest.fixture(scope="module")
def real_operator(real_sandbox: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    real_sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl_wait(real_sandbox, "--for=condition=Established", "-f", str(REPO / "crds"))
    handle = Operator(env=real_sandbox.env, log_path=tmp_path_factory.mktemp("real-operator") / "operator.log")
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def ns(real_sandbox: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"real-{request.node.name.lower().replace('_', '-')[5:35].strip('-')}"
    real_sandbox.kubectl("create", "namespace", name)
    yield name
    real_sandbox.kubectl("delete", "namespace", name, "--wait=false", check=False)


def containers_of(task_status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in task_status["tasks"][0]["containers"]}


def pod_manifest(name: str, script: str) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeSelector": {realnodes.REAL_NODE_LABEL: "true"}, "tolerations": [realnodes.REAL_NODE_TOLERATION],
                 "terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "main", "image": BUSYBOX, "command": ["sh", "-c", script]}]}})


def test_the_real_node_is_registered_tainted_and_shown_by_status(real_sandbox: Cluster) -> None:
    node = real_sandbox.kubectl_json("get", "node", NODE)
    labels, addresses = node["metadata"]["labels"], {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert labels[realnodes.REAL_NODE_LABEL] == "true" and labels["ecs.operator.dev/cluster"] == "real"
    assert node["spec"]["taints"] == [realnodes.REAL_NODE_TAINT]
    assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.37.2"
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert not addresses["InternalIP"].startswith("127.")
    report = json.loads(real_sandbox.run(sys.executable, "-m", "ecs_operator.cli", "sandbox", "status", "--json",
                                         "--state-dir", str(Path(real_sandbox.kubeconfig).parent)).stdout)
    assert report["real_nodes_ready"] == "1/1" and report["real_nodes"][NODE]["node_ip"] == addresses["InternalIP"]
    assert report["components"][f"kubelet-{NODE}"]["alive"] and report["components"][f"containerd-{NODE}"]["alive"]
    # kwok nodes keep the ECS cluster "default" and no taint
    (kwok,) = [n for n in real_sandbox.kubectl_json("get", "nodes")["items"] if n["metadata"]["name"] != NODE]
    assert kwok["metadata"]["labels"]["ecs.operator.dev/cluster"] == "default" and not kwok["spec"].get("taints")


def test_a_busybox_pod_runs_a_real_process_with_logs_and_exec(real_sandbox: Cluster, ns: str) -> None:
    script = "echo hello from $(hostname) as $(id -u); trap 'exit 0' TERM; while true; do sleep 1; done"
    real_sandbox.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("hello", script))
    real_sandbox.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/hello", "--timeout=60s")

    pod = real_sandbox.kubectl_json("get", "pod", "hello", "-n", ns)
    assert pod["spec"]["nodeName"] == NODE
    node_ip = real_sandbox.kubectl_json("get", "node", NODE)["status"]["addresses"][0]["address"]
    assert pod["status"]["podIP"].rsplit(".", 1)[0] == node_ip.rsplit(".", 1)[0]  # the bridge CNI's subnet
    logs = wait_for(lambda: real_sandbox.kubectl("logs", "-n", ns, "hello").stdout, what="the Pod's output")
    assert logs.strip() == "hello from hello as 0"
    written = real_sandbox.kubectl("exec", "-n", ns, "hello", "--", "sh", "-c",
                                   "echo written > /tmp/proof && cat /tmp/proof && cat /proc/1/cmdline").stdout
    assert written.startswith("written\nsh\0-c\0echo hello from"), written
    routes = real_sandbox.kubectl("exec", "-n", ns, "hello", "--", "ip", "route").stdout
    assert "default" not in routes  # nothing beyond the node's bridge
    assert real_sandbox.kubectl("exec", "-n", ns, "hello", "--", "cat", "/etc/resolv.conf").stdout.strip() == \
        "nameserver 127.0.0.1"


def test_a_registry_pull_fails_at_once_without_leaving_the_machine(real_sandbox: Cluster, ns: str) -> None:
    manifest = json.loads(pod_manifest("pull", "true"))
    manifest["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1.37"
    real_sandbox.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    failed = wait_for(lambda: [e for e in real_sandbox.kubectl_json("get", "events", "-n", ns)["items"]
                               if e["reason"] == "Failed" and "pull" in e["message"].lower()],
                      timeout=30, what="the pull to fail")
    assert "proxyconnect tcp: dial tcp 127.0.0.1:9: connect: connection refused" in failed[0]["message"], failed[0]


@pytest.mark.usefixtures("real_operator")
def test_an_essential_container_exiting_3_stops_the_task_with_ecs_stop_code(real_sandbox: Cluster, ns: str) -> None:
    """helper (non-essential) exits 1 at once: the task runs on; app (essential) exits 3: the task stops."""
    apply_all(real_sandbox, ns, cluster("real"),
              task_definition("exit3",
                              container("app", BUSYBOX, memory=64, essential=True,
                                        command=["sh", "-c", "echo working; sleep 8; echo failing; exit 3"]),
                              container("helper", BUSYBOX, memory=32, essential=False, command=["sh", "-c", "exit 1"]),
                              container("sidecar", BUSYBOX, memory=32, essential=False,
                                        command=["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]),
                              kubernetes=ON_REAL_NODE),
              task("exit3", "exit3", cluster="real"))
    running = wait_task(real_sandbox, ns, "exit3", "RUNNING", timeout=60)
    (pod,) = pods(real_sandbox, ns, "exit3")
    helper_done = wait_for(lambda: (s := status(real_sandbox, "task", "exit3", ns)).get("tasks")
                           and containers_of(s)["helper"]["lastStatus"] == "STOPPED" and s,
                           timeout=30, what="the non-essential helper STOPPED")
    assert containers_of(helper_done)["helper"]["exitCode"] == 1
    assert helper_done["lastStatus"] == "RUNNING"  # a non-essential container's exit changes nothing
    assert pod["spec"]["nodeName"] == NODE and running["tasks"][0]["containerInstance"] == NODE
    logs = wait_for(lambda: "failing" in (out := real_sandbox.kubectl("logs", "-n", ns, pod["metadata"]["name"],
                                                                      "-c", "app", check=False).stdout) and out,
                    timeout=30, what="the app's output")
    assert logs.split() == ["working", "failing"]
    stopped = wait_task(real_sandbox, ns, "exit3", "STOPPED", timeout=60)

    assert stopped["stopCode"] == "EssentialContainerExited"
    assert stopped["stoppedReason"] == "Essential container in task exited"
    by_name = containers_of(stopped)
    assert (by_name["app"]["lastStatus"], by_name["app"]["exitCode"]) == ("STOPPED", 3)
    assert by_name["sidecar"]["lastStatus"] == "STOPPED"


@pytest.mark.usefixtures("real_operator")
def test_a_cmd_shell_health_check_really_runs_healthy_then_unhealthy(real_sandbox: Cluster, ns: str) -> None:
    check = {"command": ["CMD-SHELL", "test -f /tmp/healthy"], "interval": 5, "timeout": 2, "retries": 1}
    script = "touch /tmp/healthy; sleep 12; rm /tmp/healthy; trap 'exit 0' TERM; while true; do sleep 1; done"
    apply_all(real_sandbox, ns, cluster("real"),
              task_definition("checked", container("app", BUSYBOX, memory=64, healthCheck=check,
                                                   command=["sh", "-c", script]), kubernetes=ON_REAL_NODE),
              task("checked", "checked", cluster="real"))
    healthy = wait_for(lambda: (s := status(real_sandbox, "task", "checked", ns)).get("healthStatus") == "HEALTHY" and s,
                       timeout=60, what="task HEALTHY")
    assert containers_of(healthy)["app"]["healthStatus"] == "HEALTHY"
    unhealthy = wait_for(lambda: (s := status(real_sandbox, "task", "checked", ns)).get("healthStatus") == "UNHEALTHY"
                         and s, timeout=60, what="task UNHEALTHY once /tmp/healthy is gone")
    assert containers_of(unhealthy)["app"]["healthStatus"] == "UNHEALTHY"
    assert unhealthy["lastStatus"] == "RUNNING"  # a standalone task keeps running, as in ECS
    (pod,) = pods(real_sandbox, ns, "checked")
    gone = real_sandbox.kubectl("exec", "-n", ns, pod["metadata"]["name"], "-c", "app", "--", "sh", "-c",
                                "test -f /tmp/healthy; echo $?").stdout.strip()
    assert gone == "1"  # the check's file really is gone: the verdict came from running it


@pytest.mark.usefixtures("real_operator")
def test_depends_on_order_is_proven_by_timestamps_on_a_shared_volume(real_sandbox: Cluster, ns: str) -> None:
    """migrate (SUCCESS) runs to completion, db (HEALTHY) passes its check, log (START) starts: only then app."""
    stamp = "cut -d' ' -f1 /proc/uptime"  # one clock for every container of the node
    shared = [{"sourceVolume": "shared", "containerPath": "/shared"}]
    loop = "trap 'exit 0' TERM; while true; do sleep 1; done"
    apply_all(real_sandbox, ns, cluster("real"),
              task_definition(
                  "ordered",
                  container("migrate", BUSYBOX, memory=32, essential=False, mountPoints=shared,
                            command=["sh", "-c", f"{stamp} > /shared/migrate-start; sleep 2; {stamp} > /shared/migrate-end"]),
                  container("db", BUSYBOX, memory=32, mountPoints=shared,
                            healthCheck={"command": ["CMD-SHELL", "test -f /shared/db-ready"], "interval": 5,
                                         "timeout": 2, "retries": 1},
                            command=["sh", "-c", f"{stamp} > /shared/db-start; sleep 3; {stamp} > /shared/db-ready; {loop}"]),
                  container("log", BUSYBOX, memory=32, essential=False, mountPoints=shared,
                            command=["sh", "-c", f"{stamp} > /shared/log-start; {loop}"]),
                  container("app", BUSYBOX, memory=32, mountPoints=shared,
                            command=["sh", "-c", f"{stamp} > /shared/app-start; {loop}"],
                            dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"},
                                       {"containerName": "db", "condition": "HEALTHY"},
                                       {"containerName": "log", "condition": "START"}]),
                  volumes=[{"name": "shared"}], kubernetes=ON_REAL_NODE),
              task("ordered", "ordered", cluster="real"))
    wait_task(real_sandbox, ns, "ordered", "RUNNING", timeout=90)
    (pod,) = pods(real_sandbox, ns, "ordered")

    def stamps() -> dict[str, float]:
        out = real_sandbox.kubectl("exec", "-n", ns, pod["metadata"]["name"], "-c", "db", "--", "sh", "-c",
                                   "for f in /shared/*; do echo $(basename $f) $(cat $f); done", check=False).stdout
        return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2}

    seen = wait_for(lambda: s if "app-start" in (s := stamps()) else None, timeout=60, what="app's timestamp")
    assert seen["migrate-start"] + 2 <= seen["migrate-end"] <= seen["db-start"], seen  # SUCCESS: ran to completion first
    assert seen["db-ready"] <= seen["app-start"], seen  # HEALTHY: app only after db's check could pass
    assert seen["log-start"] <= seen["app-start"], seen  # START
    done = status(real_sandbox, "task", "ordered", ns)
    assert (containers_of(done)["migrate"]["lastStatus"], containers_of(done)["migrate"]["exitCode"]) == ("STOPPED", 0)


@pytest.mark.usefixtures("real_operator")
def test_a_container_over_its_memory_limit_is_oom_killed_with_ecs_reason(real_sandbox: Cluster, ns: str) -> None:
    grow = "echo growing; x=0123456789; while true; do x=$x$x; done"  # doubles a string until the kernel kills it
    apply_all(real_sandbox, ns, cluster("real"),
              task_definition("hog", container("app", BUSYBOX, memory=32, command=["sh", "-c", grow]),
                              kubernetes=ON_REAL_NODE),
              task("hog", "hog", cluster="real"))
    stopped = wait_task(real_sandbox, ns, "hog", "STOPPED", timeout=90)

    app = containers_of(stopped)["app"]
    assert (app["exitCode"], app["reason"]) == (137, "OutOfMemoryError: Container killed due to memory usage"), app
    assert stopped["stopCode"] == "EssentialContainerExited"


@pytest.mark.usefixtures("real_operator")
def test_stop_task_sends_sigterm_then_sigkill_after_stop_timeout(real_sandbox: Cluster, ns: str) -> None:
    """StopTask: `graceful` traps SIGTERM and exits 7; `stubborn` ignores it and is killed (137) once
    stopTimeout (4 s) has passed."""
    loop = "while true; do sleep 1; done"
    apply_all(real_sandbox, ns, cluster("real"),
              task_definition("stoppable",
                              container("graceful", BUSYBOX, memory=32, stopTimeout=4,
                                        command=["sh", "-c", f"trap 'echo got TERM; exit 7' TERM; {loop}"]),
                              container("stubborn", BUSYBOX, memory=32, stopTimeout=4,
                                        command=["sh", "-c", f"trap '' TERM; {loop}"]),
                              kubernetes=ON_REAL_NODE),
              task("stoppable", "stoppable", cluster="real"))
    wait_task(real_sandbox, ns, "stoppable", "RUNNING", timeout=60)
    asked = time.monotonic()
    real_sandbox.kubectl("patch", "task", "stoppable", "-n", ns, "--type", "merge",
                         "-p", json.dumps({"spec": {"desiredStatus": "STOPPED"}}))
    stopped = wait_task(real_sandbox, ns, "stoppable", "STOPPED", timeout=60)

    by_name = containers_of(stopped)
    assert by_name["graceful"]["exitCode"] == 7, by_name  # its SIGTERM trap ran
    assert by_name["stubborn"]["exitCode"] == 137, by_name  # SIGKILL
    assert time.monotonic() - asked >= 4  # not before stopTimeout
    assert stopped["stopCode"] == "UserInitiated"


def test_down_after_the_kubelet_and_containerd_were_killed_leaves_nothing(
        real_sandbox: Cluster, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A crash: kubelet and containerd killed with SIGKILL while a container runs (its shim and process live
    on). `down` still removes the container, the shim, mounts, the link, the cgroups and the host directories."""
    state_dir = tmp_path_factory.mktemp("crashed")
    cli = (sys.executable, "-m", "ecs_operator.cli", "sandbox")
    real_sandbox.run(*cli, "up", "--no-build", "--nodes", "1", "--real-nodes", "1", "--state-dir", str(state_dir),
                     timeout=180)
    state = Sandbox(state_dir).read_state()
    assert state is not None
    crashed = type(real_sandbox)(str(state_dir / "kubeconfig"), real_sandbox.bin_dir,
                      {**real_sandbox.env, "KUBECONFIG": str(state_dir / "kubeconfig")})
    try:
        crashed.kubectl("apply", "-f", "-", input=pod_manifest("victim", "exec sleep 3600"))
        crashed.kubectl("wait", "--for=condition=Ready", "pod/victim", "--timeout=60s")
        (node,) = state.real_nodes
        assert node.node_ip != real_sandbox.kubectl_json("get", "node", NODE)["status"]["addresses"][0]["address"]
        for process in state.processes:
            if process.name.startswith(("kubelet-", "containerd-")):
                os.kill(process.pid, signal.SIGKILL)
        assert wait_for(lambda: [p for p in Path("/proc").iterdir() if p.name.isdigit()
                                 and b"sleep\0003600" in _cmdline(p)], what="the container's process, still running")
    finally:
        stopped = real_sandbox.run(*cli, "down", "--state-dir", str(state_dir), timeout=180)
    assert realnodes.leftovers(state.real_nodes, state.host) == [], stopped.stderr
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and b"sleep\0003600" in _cmdline(p)]
    assert "left behind" not in stopped.stderr and not state_dir.exists()


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
