"""How fast the operator brings ECS Services to a steady state, what it costs, and that it is quiet.

Not a test (timings depend on the machine). In one run, on its own sandbox:

1. baseline: the equivalent Kubernetes objects (translate.service.service_objects, i.e. what
   `convert --to k8s` writes: a Deployment and a PodDisruptionBudget per service), applied with one
   `kubectl apply --server-side`; timed until every Deployment has all its replicas available.
2. operator: `ecs-operator run`, the same number of ECS Services (one TaskDefinition registered
   beforehand) applied the same way; timed until every Service reports ECS's steady state
   (one PRIMARY deployment, COMPLETED, runningCount = desiredCount, the steady-state event).

Reported: both times and their ratio (goal <= 1.2), the operator's RSS, the write requests of each
phase (all clients, per service), and the API write requests (apiserver_request_total, by verb and
resource) during two quiet minutes at steady state, per service (goal 0; the first minute may
still see Kubernetes Events the operator posts late). Each phase starts on an empty namespace;
the baseline's is deleted first.

    .venv/bin/python benchmarks/bench_services.py [--services 200] [--tasks 2] [--nodes 16] [--quiet 60]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox_support import transport, watch

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.adapters.kube import RESOURCES
from ecs_operator.adapters.transport import Transport
from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import service_objects

ROOT = Path(__file__).resolve().parents[1]
KUBECTL = Path(sys.executable).parent / "kubectl"
READY_SECONDS = 3  # the operator's --service-task-ready-seconds, also the Deployments' minReadySeconds
TASK_DEFINITION = {"family": "bench", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 32}]}
WRITES = {"POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY"}
# Written at steady state by others, never by the operator: kwok's node heartbeats.
NOT_OURS = {"leases", "nodes"}


def sandbox(state: Path, nodes: int) -> dict[str, str]:
    cli = [sys.executable, "-m", "ecs_operator.cli", "sandbox"]
    up = subprocess.run([*cli, "up", "--no-build", "--state-dir", str(state), "--nodes", str(nodes),
                         "--instance-type", "m5.2xlarge", "--timeout", "300"], capture_output=True, text=True)
    if up.returncode != 0:
        raise SystemExit(f"the sandbox did not start:\n{up.stderr}")
    env = {**os.environ, "KUBECONFIG": str(state / "kubeconfig")}
    kubectl(env, "apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl(env, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
    return env


def kubectl(env: dict[str, str], *args: str, input: str | None = None) -> str:
    done = subprocess.run([str(KUBECTL), *args], input=input, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr}")
    return done.stdout


def apply(env: dict[str, str], namespace: str, objects: list[dict[str, Any]]) -> None:
    kubectl(env, "apply", "--server-side", "-n", namespace, "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


class Timer:
    """Watches one kind in a namespace and records when each object first satisfies `done`."""

    def __init__(self, client: Transport, path: str, done: Callable[[dict[str, Any]], bool]):
        self.client, self.path, self.done = client, path, done
        self.finished: dict[str, float] = {}
        self.seen: dict[str, float] = {}
        """When each object was first seen (created)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        version = json.loads(self.client.request("GET", self.path).data)["metadata"]["resourceVersion"]
        while not self._stop.is_set():
            for kind, raw in watch(self.client, self.path, version=version, timeout_seconds=5):
                version = raw["metadata"]["resourceVersion"]
                name = raw["metadata"]["name"]
                self.seen.setdefault(name, time.monotonic())
                if name not in self.finished and kind != "DELETED" and self.done(raw):
                    self.finished[name] = time.monotonic()

    def wait(self, count: int, timeout: float) -> float:
        """When the last of `count` objects finished."""
        deadline = time.monotonic() + timeout
        while len(self.finished) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out: {len(self.finished)}/{count} done")
            time.sleep(0.2)
        self._stop.set()
        return max(self.finished.values())


def available(deployment: dict[str, Any]) -> bool:
    status, spec = deployment.get("status") or {}, deployment["spec"]
    return (status.get("observedGeneration") == deployment["metadata"]["generation"]
            and status.get("updatedReplicas") == status.get("availableReplicas") == spec["replicas"] == status.get("replicas"))


def steady(tasks: int) -> Callable[[dict[str, Any]], bool]:
    def check(service: dict[str, Any]) -> bool:
        status = service.get("status") or {}
        deployments = status.get("deployments") or []
        events = status.get("events") or []
        return (len(deployments) == 1 and deployments[0]["rolloutState"] == "COMPLETED" and status.get("runningCount") == tasks
                and bool(events) and events[0]["message"].endswith("has reached a steady state."))
    return check


def baseline(env: dict[str, str], api: Transport, count: int, tasks: int) -> float:
    """Seconds from `kubectl apply` of the plain objects until every Deployment is available."""
    namespace = "bench-k8s"
    kubectl(env, "create", "namespace", namespace)
    settings = Settings(service_task_ready_seconds=READY_SECONDS)
    revision = Revision("bench", 1, RegisterTaskDefinition.model_validate(TASK_DEFINITION))
    objects = []
    for i in range(count):
        spec = ServiceSpec.model_validate({"taskDefinition": "bench:1", "desiredCount": tasks})
        plan = service_objects(spec, name=f"svc-{i}", namespace=namespace, revision=revision, cluster="default",
                               settings=settings, template_labels={f"{API_GROUP}/deployment": "1"})
        objects += [*plan.workloads, *plan.services, *plan.extra]
    timer = Timer(api, RESOURCES["Deployment"].path(namespace), available)
    start = time.monotonic()
    apply(env, namespace, objects)
    applied = time.monotonic() - start
    done = timer.wait(count, 900) - start
    print(f"  (kubectl apply took {applied:.1f} s; Deployments: all created after {max(timer.seen.values()) - start:.1f} s, "
          f"all available after {done:.1f} s)")
    return done


def delete_namespace(env: dict[str, str], namespace: str) -> None:
    kubectl(env, "delete", "namespace", namespace, "--timeout=600s")


def start_operator(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--log-level", "WARNING",
         "--service-task-ready-seconds", str(READY_SECONDS)],
        env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def with_operator(env: dict[str, str], api: Transport, count: int, tasks: int) -> float:
    """Seconds from `kubectl apply` of the ECS Services until every one is at a steady state."""
    namespace = "bench-ecs"
    kubectl(env, "create", "namespace", namespace)
    cr = lambda kind, name, spec: {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}  # noqa: E731
    apply(env, namespace, [cr("Cluster", "default", {"clusterName": "default"}), cr("TaskDefinition", "bench", TASK_DEFINITION)])
    deadline = time.monotonic() + 120
    while "bench:1" not in kubectl(env, "get", f"taskdefinitions.{API_GROUP}", "bench", "-n", namespace, "-o", "jsonpath={.status.taskDefinition}"):
        if time.monotonic() > deadline:
            raise SystemExit("the operator did not register the task definition")
        time.sleep(0.5)
    services = [cr("Service", f"svc-{i}", {"cluster": "default", "taskDefinition": "bench:1", "desiredCount": tasks}) for i in range(count)]
    timer = Timer(api, RESOURCES["Service.ecs"].path(namespace), steady(tasks))
    workloads = Timer(api, RESOURCES["Deployment"].path(namespace), available)
    start = time.monotonic()
    apply(env, namespace, services)
    done = timer.wait(count, 900) - start
    available_at = workloads.wait(count, 60) - start
    print(f"  (Deployments: all created after {max(workloads.seen.values()) - start:.1f} s, all available after "
          f"{available_at:.1f} s; Services: all steady after {done:.1f} s)")
    return done


def write_requests(env: dict[str, str], verbs: frozenset[str] | set[str] = WRITES) -> Counter[tuple[str, str]]:
    """apiserver_request_total of `verbs` (default: the writes), by (verb, resource[/subresource])."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in kubectl(env, "get", "--raw", "/metrics").splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if labels.get("verb") in verbs and labels.get("resource") not in NOT_OURS:
            resource = labels["resource"] + (f"/{labels['subresource']}" if labels.get("subresource") else "")
            counts[(labels["verb"], resource)] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def report_writes(phase: str, env: dict[str, str], before: Counter[tuple[str, str]], services: int) -> Counter[tuple[str, str]]:
    """Prints the write requests (everyone's) since `before`, per service; returns the new totals."""
    after = write_requests(env)
    delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    print(f"  {phase} writes (all clients): {sum(delta.values()) / services:.1f} per service: "
          + ", ".join(f"{verb} {resource} {n / services:.1f}" for (verb, resource), n in sorted(delta.items(), key=lambda i: -i[1])))
    return after


def rss(pid: int) -> tuple[int, int]:
    """(current, peak) resident set size in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["VmHWM"].split()[0]) // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=16, help="m5.2xlarge kwok nodes (58 pods each)")
    parser.add_argument("--quiet", type=float, default=60, help="seconds of steady state to count writes over")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()

    state = Path(tempfile.mkdtemp(prefix="bench-services-"))
    env = sandbox(state, args.nodes)
    api = transport(env["KUBECONFIG"])
    operator = None
    try:
        counted = write_requests(env)
        plain = baseline(env, api, args.services, args.tasks)
        counted = report_writes("baseline", env, counted, args.services)
        print(f"baseline: {args.services} Deployments x {args.tasks} available in {plain:.1f} s", flush=True)
        delete_namespace(env, "bench-k8s")

        log = Path(tempfile.mkdtemp(prefix="bench-services-log-")) / "operator.log"
        operator = start_operator(env, log)
        counted = write_requests(env)
        ours = with_operator(env, api, args.services, args.tasks)
        report_writes("operator", env, counted, args.services)
        current, peak = rss(operator.pid)
        print(f"operator: {args.services} Services x {args.tasks} steady in {ours:.1f} s", flush=True)
        print(f"ratio: {ours / plain:.2f} (goal <= 1.2)")
        print(f"operator RSS at steady state: {current} MiB (peak {peak} MiB)")

        for window in ("the first", "a second"):  # the first may still carry K8s Events posted late
            before = write_requests(env)
            time.sleep(args.quiet)  # the measurement window itself, not a wait for a condition
            after = write_requests(env)
            delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
            total = sum(delta.values())
            print(f"API writes during {window} {args.quiet:.0f} s at steady state: {total} ({total / args.services:.3f} per service)"
                  + "".join(f"\n  {verb} {resource}: {n}" for (verb, resource), n in sorted(delta.items())))
        print(f"operator log: {log}")
        return 0
    finally:
        if operator is not None:
            operator.send_signal(signal.SIGTERM)
            operator.wait(timeout=30)
        if not args.keep:
            subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", "down", "--state-dir", str(state)],
                           capture_output=True)


if __name__ == "__main__":
    raise SystemExit(main())
