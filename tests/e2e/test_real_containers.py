"""Real containers: a sandbox of its own with two real nodes (`sandbox up --real-nodes 2`: each a kubelet with
containerd and runc) beside one kwok node, and an operator of its own. Every assertion is about what a real
process did: its output (`kubectl logs`), a command run in it (`kubectl exec`), its exit code (3, a
non-essential 1, an OOM kill's 137, a SIGTERM trap's 7, a SIGKILL after stopTimeout), its health check's
verdicts and the timestamps it wrote to a shared volume, the variables it sees, the files it shares or may not
write, its user, directory, argv and PID 1, its tmpfs, and Pods on the two nodes talking. The scenarios of the
second half (ECS container settings, a Service, the examples) start together with the module and run beside the
first half's tests. Last, `sandbox down` after a crash leaves nothing.

A separate sandbox (module-scoped: about 12 s to start, the real nodes Ready about 1 s later) keeps the rest of the suite
exactly as it was: its tests delete and count nodes, and none of them can land a Pod on a real node. Here
the real nodes are the ECS cluster `real`'s only container instances, and their taint is tolerated through the
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
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from ecs_objects import apply_all, cluster, container, pods, status, task, task_definition, wait_task
from operator_fixtures import REPO, Operator, kubectl_wait, wait_for

from ecs_operator import labels as L
from ecs_operator.sandbox import images, realnodes
from ecs_operator.sandbox.launcher import Sandbox

if TYPE_CHECKING:
    from conftest import Cluster

BUSYBOX = images.BUSYBOX_IMAGE
NODE = "sandbox-real-1"
REAL_NODES = (NODE, "sandbox-real-2")
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
    assert report["real_nodes_ready"] == "2/2" and report["real_nodes"][NODE]["node_ip"] == addresses["InternalIP"]
    assert report["components"][f"kubelet-{NODE}"]["alive"] and report["components"][f"containerd-{NODE}"]["alive"]
    # kwok nodes keep the ECS cluster "default" and no taint
    (kwok,) = [n for n in real_sandbox.kubectl_json("get", "nodes")["items"] if n["metadata"]["name"] not in REAL_NODES]
    assert kwok["metadata"]["labels"]["ecs.operator.dev/cluster"] == "default" and not kwok["spec"].get("taints")


def test_a_busybox_pod_runs_a_real_process_with_logs_and_exec(real_sandbox: Cluster, ns: str) -> None:
    script = "echo hello from $(hostname) as $(id -u); trap 'exit 0' TERM; while true; do sleep 1; done"
    real_sandbox.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("hello", script))
    real_sandbox.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/hello", "--timeout=60s")

    pod = real_sandbox.kubectl_json("get", "pod", "hello", "-n", ns)
    assert pod["spec"]["nodeName"] in REAL_NODES
    node_ip = real_sandbox.kubectl_json("get", "node", pod["spec"]["nodeName"])["status"]["addresses"][0]["address"]
    assert pod["status"]["podIP"].rsplit(".", 1)[0] == node_ip.rsplit(".", 1)[0]  # the bridge CNI's subnet
    logs = wait_for(lambda: real_sandbox.kubectl("logs", "-n", ns, "hello").stdout, what="the Pod's output")
    assert logs.strip() == "hello from hello as 0"
    written = real_sandbox.kubectl("exec", "-n", ns, "hello", "--", "sh", "-c",
                                   "echo written > /tmp/proof && cat /tmp/proof && cat /proc/1/cmdline").stdout
    assert written.startswith("written\nsh\0-c\0echo hello from"), written
    routes = real_sandbox.kubectl("exec", "-n", ns, "hello", "--", "ip", "route").stdout
    assert "default" not in routes  # nothing beyond the sandbox's real nodes
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
    assert pod["spec"]["nodeName"] in REAL_NODES and running["tasks"][0]["containerInstance"] == pod["spec"]["nodeName"]
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


# --- ECS container settings on real processes --------------------------------------------------------------------
# Every scenario below is applied at once, in one namespace, by the `batch` fixture when the module starts: they
# run beside the tests above, and their waits overlap, so the module pays little more than their assertions.

LOOP = "trap 'exit 0' TERM; while true; do sleep 1; done"
NOW = "$(cut -d' ' -f1 /proc/uptime)"  # the node's clock, shared by every container
BATCH = "real-batch"
LOG_AGENT = "ecs-log-agent"
CHECK_SCRIPT = f"""cat > /tmp/check <<'EOF'
#!/bin/sh
echo "{NOW} start" >> /tmp/checks
if [ -f /tmp/hang ]; then exec sleep 20; fi
if [ -f /tmp/ok ]; then echo "{NOW} pass" >> /tmp/checks; exit 0; fi
echo "{NOW} fail" >> /tmp/checks; exit 1
EOF
chmod +x /tmp/check
"""
CMD_CHECK = {"command": ["CMD", "/tmp/check"], "interval": 5, "timeout": 2, "retries": 2, "startPeriod": 20}
"""Failing for the first 12 s (three or four failures: more than `retries`, all inside `startPeriod`), passing
from then on, hanging (past `timeout`) from 34 s: UNHEALTHY only after `retries` timed-out checks."""
HEALER_CHECK = {"command": ["CMD-SHELL", "if test -f /tmp/ok; then echo check-pass > /proc/1/fd/1; "
                            "else echo check-fail > /proc/1/fd/1; exit 1; fi"], "interval": 5, "timeout": 2, "retries": 1}
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-creds:password::"
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/app/token"
ENV_FILE_ARN = "arn:aws:s3:::config-bucket/app.env"


def _batch_objects(host_dir: Path) -> list[dict[str, Any]]:
    shared = [{"sourceVolume": "shared", "containerPath": "/shared"}]
    service = {"apiVersion": cluster("x")["apiVersion"], "kind": "Service", "metadata": {"name": "healer"},
               "spec": {"cluster": "real", "serviceName": "healer", "taskDefinition": "healer", "desiredCount": 1,
                        "healthCheckGracePeriodSeconds": 10}}
    return [
        cluster("real"),
        # a CMD (exec form) health check: interval, timeout, retries and startPeriod
        task_definition("cmdcheck", container("app", BUSYBOX, memory=32, healthCheck=CMD_CHECK, command=[
            "sh", "-c", f"{CHECK_SCRIPT}sleep 12; touch /tmp/ok; sleep 22; echo \"{NOW} hang\" >> /tmp/checks; "
                        f"touch /tmp/hang; {LOOP}"]), kubernetes=ON_REAL_NODE),
        task("cmdcheck", "cmdcheck", cluster="real"),
        # a Service whose task turns UNHEALTHY: ECS replaces it
        task_definition("healer", container("app", BUSYBOX, memory=32, healthCheck=HEALER_CHECK, command=[
            "sh", "-c", f"echo started $(hostname); touch /tmp/ok; sleep 6; rm /tmp/ok; {LOOP}"]),
                        kubernetes=ON_REAL_NODE),
        service,
        # dependsOn COMPLETE: setup exits 1, app starts all the same, after it
        task_definition("complete",
                        container("setup", BUSYBOX, memory=32, essential=False, mountPoints=shared,
                                  entryPoint=["sh", "-c"], command=[f"echo {NOW} > /shared/setup-end; exit 1"]),
                        container("app", BUSYBOX, memory=32, mountPoints=shared,
                                  dependsOn=[{"containerName": "setup", "condition": "COMPLETE"}],
                                  command=["sh", "-c", f"echo setup ended $(cat /shared/setup-end) app started {NOW}; {LOOP}"]),
                        volumes=[{"name": "shared"}], kubernetes=ON_REAL_NODE),
        task("complete", "complete", cluster="real"),
        # dependsOn SUCCESS on a container that exits 1: app never starts, the task stops
        task_definition("unsuccessful",
                        container("migrate", BUSYBOX, memory=32, essential=False, mountPoints=shared,
                                  command=["sh", "-c", "echo migrating > /shared/migrate; exit 1"]),
                        container("app", BUSYBOX, memory=32, mountPoints=shared,
                                  dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}],
                                  command=["sh", "-c", f"touch /shared/app-ran; {LOOP}"]),
                        volumes=[{"name": "shared"}], kubernetes=ON_REAL_NODE),
        task("unsuccessful", "unsuccessful", cluster="real"),
        # environment, secrets and environmentFiles
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-creds"}, "stringData": {"password": "s3cr3t pw"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "app-token"}, "stringData": {"value": "tok-123"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "config-bucket-app-env"},
         "data": {"FROM_FILE": "file value", "SHARED": "from the file"}},
        task_definition("env", container(
            "app", BUSYBOX, memory=32, command=["sh", "-c", f"env | sort; {LOOP}"],
            environment=[{"name": "GREETING", "value": "hello world"}, {"name": "SHARED", "value": "from environment"}],
            secrets=[{"name": "DB_PASSWORD", "valueFrom": SECRET_ARN}, {"name": "API_TOKEN", "valueFrom": PARAMETER_ARN}],
            environmentFiles=[{"value": ENV_FILE_ARN, "type": "s3"}]), kubernetes=ON_REAL_NODE),
        task("env", "env", cluster="real"),
        # a host volume, a bind (task-scoped) volume, volumesFrom read-only
        task_definition(
            "volumes",
            container("writer", BUSYBOX, memory=32, mountPoints=[
                {"sourceVolume": "host", "containerPath": "/data"}, {"sourceVolume": "scratch", "containerPath": "/scratch"}],
                command=["sh", "-c", f"echo from writer > /data/written; echo scratch from writer > /scratch/note; {LOOP}"]),
            container("reader", BUSYBOX, memory=32, volumesFrom=[{"sourceContainer": "writer", "readOnly": True}],
                      command=["sh", "-c", "until [ -f /data/written ] && [ -f /scratch/note ]; do sleep 0.2; done; "
                                           "cat /data/written /scratch/note; echo x > /scratch/mine || echo write refused; "
                                           f"{LOOP}"]),
            volumes=[{"name": "host", "host": {"sourcePath": str(host_dir)}}, {"name": "scratch"}],
            kubernetes=ON_REAL_NODE),
        task("volumes", "volumes", cluster="real"),
        # process settings
        task_definition(
            "settings",
            container("ro", BUSYBOX, memory=32, readonlyRootFilesystem=True,
                      command=["sh", "-c", f"touch /probe || echo root read-only; {LOOP}"]),
            container("user", BUSYBOX, memory=32, user="65534:65534",
                      command=["sh", "-c", f"echo uid=$(id -u) gid=$(id -g); {LOOP}"]),
            container("workdir", BUSYBOX, memory=32, workingDirectory="/etc",
                      command=["sh", "-c", f"echo cwd=$(pwd); {LOOP}"]),
            container("entry", BUSYBOX, memory=32, entryPoint=["/bin/sh", "-c"],
                      command=[f"echo argv=$(tr '\\0' ' ' < /proc/$$/cmdline); {LOOP}"]),
            container("limits", BUSYBOX, memory=32, ulimits=[{"name": "nofile", "softLimit": 4321, "hardLimit": 8765}],
                      command=["sh", "-c", f"echo nofile=$(ulimit -n); {LOOP}"]),
            container("init", BUSYBOX, memory=32, linuxParameters={"initProcessEnabled": True},
                      command=["sh", "-c", f"echo me=$$; (sleep 1 &); {LOOP}"]),
            container("tmp", BUSYBOX, memory=64, linuxParameters={"tmpfs": [{"containerPath": "/scratch", "size": 8}]},
                      command=["sh", "-c", "grep ' /scratch ' /proc/mounts; "
                                           "dd if=/dev/zero of=/scratch/big bs=1M count=12 2>&1; "
                                           f"echo written=$(du -k /scratch/big | cut -f1); {LOOP}"]),
            kubernetes=ON_REAL_NODE),
        task("settings", "settings", cluster="real"),
    ]


class HealthRecorder:
    """Every healthStatus a Task reports until it is UNHEALTHY, sampled twice a second from a thread: a value held
    for even one sample (UNHEALTHY inside startPeriod, say) is seen."""

    def __init__(self, sandbox: Cluster, namespace: str, name: str) -> None:
        self.sandbox, self.namespace, self.name = sandbox, namespace, name
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while "UNHEALTHY" not in self.seen and not self._stop.wait(0.5):
            health = status(self.sandbox, "task", self.name, self.namespace).get("healthStatus")
            if health and (not self.seen or self.seen[-1] != health):
                self.seen.append(health)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.seen


EXAMPLES = REPO / "examples"
STAND_INS = {
    # image (without tag) -> a busybox script doing the same job, with the commands the example's checks call
    "nginx": "mkdir -p /usr/local/bin /www && echo '<h1>nginx stand-in</h1>' > /www/index.html && "
             "printf '#!/bin/sh\\nfor a; do url=$a; done\\nexec wget -q -O - \"$url\"\\n' > /usr/local/bin/curl && "
             "chmod +x /usr/local/bin/curl && exec httpd -f -p 80 -h /www",
    "redis": "mkdir -p /usr/local/bin /data && echo PONG > /data/ping && "
             "printf '#!/bin/sh\\nexec wget -q -O - http://127.0.0.1:6379/$1\\n' > /usr/local/bin/redis-cli && "
             "chmod +x /usr/local/bin/redis-cli && exec httpd -f -p 6379 -h /data",
    "aws-for-fluent-bit": "ls -1 /var/log/host; touch /var/log/host/ecs-probe || echo host logs read-only; " + LOOP,
}
"""The examples' images that cannot be pulled here, played by busybox: a web server on port 80 with a `curl` for
the example's CMD-SHELL check, a server on 6379 with the `redis-cli ping` its CMD check runs, a log reader."""
REAL_EXAMPLES = ("01-nginx.yaml", "02-web-app.yaml", "04-log-agent-namespace.yaml", "05-log-agent.yaml")


def on_real_nodes(document: dict[str, Any]) -> dict[str, Any]:
    """An example's object as it runs on the real nodes: ECS cluster `real` (the real nodes' cluster), their taint
    tolerated, local images (busybox stands in for the others, STAND_INS). Nothing else changes."""
    spec = document.get("spec") or {}
    if document["kind"] == "Cluster":
        document["metadata"]["name"] = spec["clusterName"] = "real"
    elif document["kind"] in ("Task", "Service"):
        spec["cluster"] = "real"
    elif document["kind"] == "TaskDefinition":
        spec["kubernetes"] = ON_REAL_NODE
        for c in spec["containerDefinitions"]:
            name = c["image"].rsplit("/", 1)[-1].split(":")[0]
            if name != "busybox":
                c["command"] = ["sh", "-c", STAND_INS[name]]
            c["image"] = BUSYBOX
    return document


def _examples() -> list[dict[str, Any]]:
    return [on_real_nodes(d) for f in REAL_EXAMPLES for d in yaml.safe_load_all((EXAMPLES / f).read_text()) if d]


@pytest.fixture(scope="module", autouse=True)
def batch(real_sandbox: Cluster, real_operator: Operator,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The scenarios, all applied at once when the module starts, in namespace real-batch (the log agent example
    in its own): they run while the tests before theirs do, which then find them done or nearly."""
    host_dir = tmp_path_factory.mktemp("host-volume")
    # the host volume: a namespace's tasks may mount host paths once it opts in (the operator's workload policy)
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": BATCH, "labels": {"ecs.operator.dev/allow-privileged-workloads": "true"}}}
    examples = _examples()
    documents = [namespace, *[d for d in examples if d["kind"] == "Namespace"]]
    for d in [*_batch_objects(host_dir), *[d for d in examples if d["kind"] != "Namespace"]]:
        d["metadata"].setdefault("namespace", BATCH)  # 01 and 02 in the batch's namespace, 05 in its own
        documents.append(d)
    recorder = HealthRecorder(real_sandbox, BATCH, "cmdcheck")  # from the start: the task's first status is seen
    real_sandbox.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))
    try:
        yield {"host_dir": host_dir, "recorder": recorder}
    finally:
        recorder.stop()
        real_sandbox.kubectl("delete", "namespace", BATCH, LOG_AGENT, "--wait=false", check=False)


def done_with(sandbox: Cluster, *objects: str, namespace: str = BATCH) -> None:
    """Delete a scenario's objects once its test has looked (not waiting): their containers stop while the next
    tests run, rather than all at once in `sandbox down`."""
    sandbox.kubectl("delete", "-n", namespace, *objects, "--wait=false", check=False)


def logs(sandbox: Cluster, namespace: str, pod: str, name: str) -> str:
    return sandbox.kubectl("logs", "-n", namespace, pod, "-c", name, check=False).stdout


def logged(sandbox: Cluster, namespace: str, task_name: str, name: str, needle: str, timeout: float = 90) -> str:
    """The container's output once it contains `needle`."""
    seen: dict[str, Any] = {}

    def check() -> str | None:
        found = pods(sandbox, namespace, task_name)
        out = logs(sandbox, namespace, found[0]["metadata"]["name"], name) if found else ""
        seen.update(pods=[(p["metadata"]["name"], p.get("status")) for p in found], output=out)
        return out if needle in out else None
    try:
        return wait_for(check, timeout, what=f"{task_name}/{name} to print {needle!r}")
    except AssertionError as e:  # say where it stood: the Task's status, its Pods' and what the container printed
        task = sandbox.kubectl("get", "task", task_name, "-n", namespace, "-o", "jsonpath={.status}", check=False)
        raise AssertionError(f"{e}\ntask status: {task.stdout}{task.stderr}\nseen: {seen}") from None


def exec_in(sandbox: Cluster, namespace: str, task_name: str, name: str, script: str) -> str:
    (pod,) = pods(sandbox, namespace, task_name)
    return sandbox.kubectl("exec", "-n", namespace, pod["metadata"]["name"], "-c", name, "--", "sh", "-c", script,
                           check=False).stdout


def test_a_cmd_health_check_honours_interval_timeout_retries_and_start_period(
        real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    recorder: HealthRecorder = batch["recorder"]
    wait_for(lambda: "UNHEALTHY" in recorder.seen, timeout=120, what="cmdcheck UNHEALTHY once its checks hang")
    checks = exec_in(real_sandbox, BATCH, "cmdcheck", "app", "cat /tmp/checks; test -f /tmp/ok && echo ok-present")
    seen = recorder.stop()
    events = [(float(line.split()[0]), line.split()[1]) for line in checks.splitlines() if len(line.split()) == 2]

    # startPeriod: more failures than `retries` before the first pass, yet never UNHEALTHY before HEALTHY
    verdicts = [what for _, what in events if what in ("pass", "fail")]
    assert verdicts.index("pass") >= 3, events
    assert seen == ["UNKNOWN", "HEALTHY", "UNHEALTHY"], seen
    # interval: the check runs every 5 s (it is CMD: /tmp/check itself ran, no shell of the operator's around it)
    # (the kubelet also runs the probe at once after a status update while the container is not ready, and again
    # at once after an exec that timed out: only the passing stretch shows the bare period)
    starts = [at for at, what in events if what == "start"]
    first_pass = next(at for at, what in events if what == "pass")
    hang = next(at for at, what in events if what == "hang")
    steady = [at for at in starts if first_pass - 0.5 <= at < hang]
    gaps = [b - a for a, b in zip(steady, steady[1:], strict=False)]
    assert len(gaps) >= 2 and all(4 <= gap <= 6.5 for gap in gaps), (gaps, events)
    # timeout and retries: UNHEALTHY after 2 checks that hung past the 2 s timeout, while /tmp/ok still exists
    assert len([at for at in starts if at > hang]) >= 2, events
    assert not [what for at, what in events if at > hang and what in ("pass", "fail")], events
    assert "ok-present" in checks
    task_status = status(real_sandbox, "task", "cmdcheck", BATCH)
    assert task_status["lastStatus"] == "RUNNING" and containers_of(task_status)["app"]["healthStatus"] == "UNHEALTHY"
    done_with(real_sandbox, "task/cmdcheck")


def test_a_service_replaces_a_task_whose_container_turns_unhealthy(real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    def healer_pods() -> list[dict[str, Any]]:
        return [p for p in real_sandbox.kubectl_json("get", "pods", "-n", BATCH, "-l", f"{L.SERVICE}=healer")["items"]
                if not p["metadata"].get("deletionTimestamp")]

    first = wait_for(lambda: (found := healer_pods()) and found[0], timeout=60, what="the service's first task")
    uid = first["metadata"]["uid"]
    last_logs = ""

    def replaced() -> dict[str, Any] | None:
        nonlocal last_logs
        current = healer_pods()
        if any(p["metadata"]["uid"] == uid for p in current):
            out = logs(real_sandbox, BATCH, first["metadata"]["name"], "app")
            last_logs = out or last_logs
        others = [p for p in current if p["metadata"]["uid"] != uid]
        return others[0] if others else None

    second = wait_for(replaced, timeout=90, what="a replacement task")
    state = wait_for(lambda: (s := (real_sandbox.kubectl_json("get", "services.ecs.operator.dev", "healer", "-n", BATCH)
                                    .get("status") or {})).get("stoppedTasks") and s, timeout=30,
                     what="the stopped task in the service's status")
    task_id = uid.replace("-", "")
    said = [e["message"] for e in state.get("events") or []]
    assert f"(service healer) (task {task_id}) failed container health checks." in said, said
    assert f"(service healer) has stopped 1 running tasks: (task {task_id}). Reason: Task failed container health checks" \
        in said, said
    (stopped,) = [t for t in state["stoppedTasks"] if t["taskArn"].endswith(task_id)]
    assert (stopped["stopCode"], stopped["stoppedReason"]) == ("ServiceSchedulerInitiated",
                                                               "Task failed container health checks")
    # what the first task's process and its check did: started, passed, then failed
    lines = last_logs.split("\n")
    assert lines[0].startswith("started ") and "check-pass" in lines and "check-fail" in lines, last_logs
    # (a check may also fail before the shell's `touch`: the kubelet probes at once; the grace period covers it)
    assert len(lines) - 1 - lines[::-1].index("check-fail") > lines.index("check-pass"), last_logs
    # the replacement is a new process
    started = wait_for(lambda: logs(real_sandbox, BATCH, second["metadata"]["name"], "app").startswith("started ")
                       and logs(real_sandbox, BATCH, second["metadata"]["name"], "app"), timeout=60,
                       what="the replacement's process")
    assert started.split()[1] != lines[0].split()[1]  # another Pod: another hostname
    done_with(real_sandbox, "services.ecs.operator.dev/healer")


def test_depends_on_complete_starts_the_dependent_after_a_failed_target(
        real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    out = logged(real_sandbox, BATCH, "complete", "app", "app started")
    words = out.split()
    setup_end, app_start = float(words[2]), float(words[-1])
    assert setup_end <= app_start, out  # COMPLETE: the target had exited before app started
    running = wait_task(real_sandbox, BATCH, "complete", "RUNNING", timeout=60)
    setup = containers_of(running)["setup"]
    assert setup["lastStatus"] == "STOPPED" and setup["exitCode"] == 1, setup  # its real exit code, as ECS shows it
    done_with(real_sandbox, "task/complete")


def test_a_success_dependency_exiting_1_stops_the_task_and_its_dependent_never_runs(
        real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    stopped = wait_task(real_sandbox, BATCH, "unsuccessful", "STOPPED", timeout=90)
    assert stopped["stopCode"] == "TaskFailedToStart", stopped
    assert stopped["stoppedReason"] == \
        "Task failed to start: container migrate exited with code 1 before its dependents started", stopped
    by_name = containers_of(stopped)
    assert (by_name["migrate"]["lastStatus"], by_name["migrate"]["exitCode"]) == ("STOPPED", 1), by_name
    assert by_name["app"].get("exitCode") is None, by_name  # never ran
    found = pods(real_sandbox, BATCH, "unsuccessful")
    if found:  # while the Pod is still there: the app container never started
        statuses = {c["name"]: c for c in found[0]["status"].get("containerStatuses") or []}
        assert "running" not in statuses.get("app", {}).get("state", {}) and \
            "terminated" not in statuses.get("app", {}).get("lastState", {}) | statuses.get("app", {}).get("state", {})


def test_environment_secrets_and_environment_files_reach_the_process(
        real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    out = logged(real_sandbox, BATCH, "env", "app", "GREETING=")
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env["GREETING"] == "hello world"
    assert env["DB_PASSWORD"] == "s3cr3t pw"  # Secrets Manager ARN with a JSON key: Secret db-creds, key password
    assert env["API_TOKEN"] == "tok-123"  # SSM parameter /app/token: Secret app-token, key value
    assert env["FROM_FILE"] == "file value"  # the S3 environment file: ConfigMap config-bucket-app-env
    assert env["SHARED"] == "from environment"  # ECS: `environment` wins over an environment file
    done_with(real_sandbox, "task/env")


def test_host_and_bind_volumes_are_shared_and_volumes_from_is_read_only(
        real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    out = logged(real_sandbox, BATCH, "volumes", "reader", "write")
    stdout = [line for line in out.splitlines() if not line.startswith("sh: ")]  # the log interleaves stderr
    assert stdout == ["from writer", "scratch from writer", "write refused"], out
    assert "sh: can't create /scratch/mine: Read-only file system" in out.splitlines(), out
    host_file = batch["host_dir"] / "written"
    assert host_file.read_text() == "from writer\n"  # the host volume is the node's directory: this machine's
    (batch["host_dir"] / "from-host").write_text("hello from the host\n")
    assert exec_in(real_sandbox, BATCH, "volumes", "reader", "cat /data/from-host") == "hello from the host\n"
    assert exec_in(real_sandbox, BATCH, "volumes", "writer", "echo more > /scratch/more && cat /scratch/more") == "more\n"
    done_with(real_sandbox, "task/volumes")


def test_process_settings_take_effect(real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    wait_task(real_sandbox, BATCH, "settings", "RUNNING", timeout=90)
    (pod,) = pods(real_sandbox, BATCH, "settings")
    name = pod["metadata"]["name"]

    def out(container_name: str, needle: str) -> str:
        return wait_for(lambda: needle in (o := logs(real_sandbox, BATCH, name, container_name)) and o, timeout=30,
                        what=f"{container_name}'s output")

    assert "Read-only file system" in out("ro", "root read-only")
    assert out("user", "uid=").strip() == "uid=65534 gid=65534"
    assert out("workdir", "cwd=").strip() == "cwd=/etc"
    assert out("entry", "argv=").strip().startswith("argv=/bin/sh -c echo argv=")  # entryPoint, then command
    # ulimits: Kubernetes has no per-container setting; the report says so and the runtime's limit applies
    nofile = int(out("limits", "nofile=").strip().split("=")[1])
    assert nofile != 4321
    fidelity = {f["path"]: f for f in status(real_sandbox, "taskdefinition", "settings", BATCH)["fidelity"]["fields"]}
    assert fidelity["containerDefinitions[4].ulimits[0].softLimit"]["verdict"] == "unsupported"
    # initProcessEnabled: PID 1 is an init (the Pod's), not the app; the orphan it inherited was reaped
    me = int(out("init", "me=").strip().split("=")[1])
    assert me != 1
    pid1 = exec_in(real_sandbox, BATCH, "settings", "init", "tr '\\0' ' ' < /proc/1/cmdline")
    assert "wait" in pid1 and "sleep 1" not in pid1, pid1
    zombies = exec_in(real_sandbox, BATCH, "settings", "init", "sleep 2; grep -l '^State:.*Z' /proc/[0-9]*/status")
    assert zombies.strip() == "", zombies
    # tmpfs: a memory file system of 8 MiB at /scratch; writing 12 MiB stops at 8
    tmp = out("tmp", "written=")
    assert "tmpfs /scratch tmpfs" in tmp and "size=8192k" in tmp, tmp
    assert "No space left on device" in tmp and int(tmp.split("written=")[1].split()[0]) <= 8192, tmp
    done_with(real_sandbox, "task/settings")


def test_pods_on_different_real_nodes_reach_each_other(real_sandbox: Cluster, ns: str) -> None:
    serve = "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"
    for name, node, script in (("server", "sandbox-real-2", serve), ("client", NODE, "exec sleep 3600")):
        manifest = json.loads(pod_manifest(name, script))
        manifest["spec"]["nodeName"] = node
        real_sandbox.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(manifest))
    real_sandbox.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/server", "pod/client", "--timeout=60s")
    server_ip = real_sandbox.kubectl_json("get", "pod", "server", "-n", ns)["status"]["podIP"]
    client_ip = real_sandbox.kubectl_json("get", "pod", "client", "-n", ns)["status"]["podIP"]
    assert server_ip.split(".")[2] != client_ip.split(".")[2]  # two nodes' subnets
    got = real_sandbox.kubectl("exec", "-n", ns, "client", "--", "wget", "-q", "-O", "-",
                               f"http://{server_ip}:8080/").stdout
    assert got == "hello from server\n"
    ping = real_sandbox.kubectl("exec", "-n", ns, "client", "--", "ping", "-c", "2", "-W", "3", server_ip, check=False)
    assert ping.returncode == 0 and "2 packets received" in ping.stdout, ping.stdout + ping.stderr
    routes = real_sandbox.kubectl("exec", "-n", ns, "client", "--", "ip", "route").stdout
    assert "default" not in routes and f"{server_ip.rsplit('.', 2)[0]}.0.0/16" in routes, routes


def service_state(sandbox: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return status(sandbox, "services.ecs.operator.dev", name, namespace)


def test_the_examples_reach_their_goal_on_real_nodes(real_sandbox: Cluster, batch: dict[str, Any]) -> None:
    """01 (a Task), 02 (a Service whose task runs a migration, a HEALTHY-gated cache and a checked web server) and
    05 (a DAEMON reading the host's /var/log read-only), each with busybox standing in for images not here."""
    nginx = wait_task(real_sandbox, BATCH, "nginx-demo", "RUNNING", timeout=120)
    assert nginx["taskDefinition"] == "nginx-demo:1" and nginx["tasks"][0]["containerInstance"] in REAL_NODES
    page = exec_in(real_sandbox, BATCH, "nginx-demo", "nginx", "wget -q -O - http://localhost/")
    assert page == "<h1>nginx stand-in</h1>\n"

    def goal(namespace: str, name: str, running: int) -> dict[str, Any]:
        return wait_for(lambda: (s := service_state(real_sandbox, namespace, name)).get("rolloutState") == "COMPLETED"
                        and s.get("runningCount") == running and s, timeout=180, what=f"{name} COMPLETED with {running}")

    web = goal(BATCH, "web-app", 2)
    assert web["taskDefinition"] == "web-app:1"
    tasks = real_sandbox.kubectl_json("get", "pods", "-n", BATCH, "-l", f"{L.SERVICE}=web-app")["items"]
    for pod in [p for p in tasks if not p["metadata"].get("deletionTimestamp")]:
        name = pod["metadata"]["name"]
        assert real_sandbox.kubectl("logs", "-n", BATCH, name, "-c", "migrate").stdout == "applying migrations\n"
        # both health checks really pass: the cache answers `redis-cli ping`, the server answers curl
        assert real_sandbox.kubectl("exec", "-n", BATCH, name, "-c", "redis", "--", "redis-cli", "ping").stdout == "PONG\n"
        statuses = {c["name"]: c for c in pod["status"]["containerStatuses"]}
        assert statuses["redis"]["ready"] and statuses["app"]["ready"], statuses
        started = {n: s["state"]["running"]["startedAt"] for n, s in statuses.items()}
        migrated = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
        assert migrated["exitCode"] == 0 and migrated["finishedAt"] <= started["redis"] <= started["app"]

    agent = goal(LOG_AGENT, "log-agent", len(REAL_NODES))
    assert agent["schedulingStrategy"] == "DAEMON"
    for pod in real_sandbox.kubectl_json("get", "pods", "-n", LOG_AGENT)["items"]:
        listed = logs(real_sandbox, LOG_AGENT, pod["metadata"]["name"], "fluent-bit").splitlines()
        assert set(listed) & set(os.listdir("/var/log")), listed  # the host's /var/log
        assert "host logs read-only" in listed, listed
    assert not Path("/var/log/ecs-probe").exists()
    done_with(real_sandbox, "task/nginx-demo", "services.ecs.operator.dev/web-app")
    done_with(real_sandbox, "services.ecs.operator.dev/log-agent", namespace=LOG_AGENT)


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
