"""ECS at the size of a real account: how long the operator takes to bring it up, what it costs at steady state,
and how fast it answers a change then. Not a test (timings depend on the machine); every figure is printed beside
a baseline measured in the same run, on the same control plane.

1. baseline: the same workload applied as plain Kubernetes objects (the operator's own translation, what
   `convert --to k8s` writes): a Deployment (+ its PodDisruptionBudget) per service and a bare Pod per standalone
   task; timed from the first `kubectl apply` until every Deployment is available and every Pod Running.
2. operator: `ecs-operator run`, then the ECS objects: N Services of T tasks and the standalone tasks as RunTask
   calls of count 10 (Task objects); timed until every Service is at ECS's steady state and every Task RUNNING.
   While it works, probe Tasks (count 1) are created at 2/s: creation -> Pod latency under that load.
3. steady state: the operator's RSS and CPU, and the API writes over a quiet window (goal 0 by the operator);
   then, idle, probe Tasks again and desiredCount changes of some Services (-> the Deployment's replicas).

    .venv/bin/python benchmarks/bench_scale.py [--services 1000] [--tasks 2] [--standalone 2000] [--nodes 100]

Both phases apply with the same parallel `kubectl apply --server-side` (8 at once). The sandbox's control plane
runs on the same machine as the operator and the benchmark: its figures (the baseline) say where it is the limit.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench_services import READY_SECONDS, available, steady
from bench_tasks import (
    GROUP, TASK_DEFINITION, VERSION, Api, baseline_pods, cpu_seconds, key_name, load, operator_owned, percentile,
    rss_kib, wait_until,
)
from sandbox_support import control_plane

from ecs_operator import API_GROUP
from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import service_objects

KUBECTL = Path(sys.executable).parent / "kubectl"
RUN_TASK_COUNT = 10
"""RunTask's largest `count`: the standalone tasks arrive as Task objects of 10 tasks each."""
PROBE_RATE = 2.0


def kubectl(kubeconfig: str, *args: str, input: str | None = None) -> str:
    done = subprocess.run([str(KUBECTL), *args], input=input, env={**os.environ, "KUBECONFIG": kubeconfig},
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def apply_parallel(kubeconfig: str, namespace: str, objects: list[dict[str, Any]], ways: int = 8) -> None:
    """`kubectl apply --server-side` of the objects in `ways` interleaved parts at once."""
    parts = [objects[i::ways] for i in range(ways)]
    with ThreadPoolExecutor(ways) as pool:
        for done in [pool.submit(kubectl, kubeconfig, "apply", "--server-side", "-n", namespace, "-f", "-",
                                 input=json.dumps({"apiVersion": "v1", "kind": "List", "items": part}))
                     for part in parts if part]:
            done.result()


class Seen:
    """Names that reached a condition, and when (local monotonic time), fed by watch events."""

    def __init__(self, done: Callable[[dict[str, Any]], bool]) -> None:
        self.done, self.at, self.first = done, {}, {}
        self.lock = threading.Lock()

    def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        name, now = obj["metadata"]["name"], time.monotonic()
        with self.lock:
            self.first.setdefault(name, now)
            if kind != "DELETED" and name not in self.at and self.done(obj):
                self.at[name] = now

    def count(self, prefix: str = "") -> int:
        with self.lock:
            return sum(1 for n in self.at if n.startswith(prefix))

    def last(self) -> float:
        with self.lock:
            return max(self.at.values())


def running(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def all_running(task: dict[str, Any]) -> bool:
    status = task.get("status") or {}
    return status.get("lastStatus") == "RUNNING" and status.get("runningCount", 1) == (task["spec"].get("count") or 1)


def cr(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def namespace_gone(api: Api, namespace: str) -> None:
    api.kube.delete("Namespace", None, namespace)
    wait_until(lambda: api.kube.get("Namespace", None, namespace) is None, 1200, f"namespace {namespace} gone")


def baseline(api: Api, kubeconfig: str, services: int, tasks: int, standalone: int) -> float:
    namespace = "scale-raw"
    api.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    revision = Revision("bench", 1, RegisterTaskDefinition.model_validate(TASK_DEFINITION))
    settings = Settings(service_task_ready_seconds=READY_SECONDS)
    objects: list[dict[str, Any]] = []
    for i in range(services):
        plan = service_objects(ServiceSpec.model_validate({"taskDefinition": "bench:1", "desiredCount": tasks}),
                               name=f"svc-{i}", namespace=namespace, revision=revision, cluster="default",
                               settings=settings, template_labels={f"{API_GROUP}/deployment": "1"})
        objects += [*plan.workloads, *plan.services, *plan.extra]
    objects += baseline_pods(namespace, standalone)
    deployments, pods, stop = Seen(available), Seen(running), threading.Event()
    api.watch(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployments, stop)
    api.watch(f"/api/v1/namespaces/{namespace}/pods", pods, stop)
    time.sleep(1)
    start = time.monotonic()
    apply_parallel(kubeconfig, namespace, objects)
    applied = time.monotonic() - start
    wait_until(lambda: deployments.count() == services and pods.count() == services * tasks + standalone, 3600,
               "the baseline's Deployments available and Pods Running")
    done = max(deployments.last(), pods.last()) - start
    stop.set()
    print(f"baseline: {services} Deployments x {tasks} available and {standalone} Pods Running {done:.1f} s after the "
          f"first apply (kubectl apply took {applied:.1f} s; Deployments {deployments.last() - start:.1f} s, "
          f"Pods {pods.last() - start:.1f} s); load {load()}", flush=True)
    namespace_gone(api, namespace)
    return done


class Probes:
    """Tasks of count 1 created at PROBE_RATE: creation response -> the Pod seen (watch ADDED)."""

    def __init__(self, api: Api, namespace: str, pods: Seen) -> None:
        self.api, self.namespace, self.pods = api, namespace, pods
        self.created: dict[str, float] = {}

    def run(self, prefix: str, n: int) -> None:
        start = time.monotonic()
        for i in range(n):
            time.sleep(max(0.0, start + i / PROBE_RATE - time.monotonic()))
            name = f"{prefix}-{i}"
            self.api.kube.create({**cr("Task", name, {"taskDefinition": "bench"}),
                                  "metadata": {"name": name, "namespace": self.namespace}})
            self.created[name] = time.monotonic()

    def latencies(self, prefix: str) -> list[float]:
        wait_until(lambda: all(f"{n}-0" in self.pods.first for n in self.created if n.startswith(prefix)), 600,
                   f"the {prefix} probes' Pods")
        return [self.pods.first[f"{n}-0"] - at for n, at in self.created.items() if n.startswith(prefix)]


def summary(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms "
            f"(n={len(values)}, max {max(values) * 1000:.0f} ms)")


def with_operator(api: Api, kubeconfig: str, services: int, tasks: int, standalone: int, quiet: float,
                  probes: int) -> tuple[float, dict[str, Any]]:
    namespace = "scale-ecs"
    api.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    log = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "operator.log"
    operator = subprocess.Popen(
        [sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--metrics", "", "--log-level", "WARNING",
         "--service-task-ready-seconds", str(READY_SECONDS)],
        env={**os.environ, "KUBECONFIG": kubeconfig}, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    out: dict[str, Any] = {"log": log}
    try:
        apply_parallel(kubeconfig, namespace, [cr("Cluster", "default", {"clusterName": "default"}),
                                               cr("TaskDefinition", "bench", TASK_DEFINITION)], ways=1)
        wait_until(lambda: ((api.kube.get("TaskDefinition", namespace, "bench") or {}).get("status") or {})
                   .get("revision") == 1, 120, "the task definition registered")
        time.sleep(12)
        out["idle"] = rss_kib(operator.pid)
        ecs = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
        steady_services, ran, pods, stop = Seen(steady(tasks)), Seen(all_running), Seen(running), threading.Event()
        api.watch(f"{ecs}/services", steady_services, stop)
        api.watch(f"{ecs}/tasks", ran, stop)
        api.watch(f"/api/v1/namespaces/{namespace}/pods", pods, stop)
        time.sleep(1)
        objects = [cr("Service", f"svc-{i}", {"cluster": "default", "taskDefinition": "bench:1", "desiredCount": tasks})
                   for i in range(services)]
        objects += [cr("Task", f"run-{i}", {"taskDefinition": "bench", "count": RUN_TASK_COUNT})
                    for i in range(-(-standalone // RUN_TASK_COUNT))]
        probe = Probes(api, namespace, pods)
        cpu, start = cpu_seconds(operator.pid), time.monotonic()
        under_load = threading.Thread(target=probe.run, args=("load", probes), daemon=True)
        under_load.start()
        apply_parallel(kubeconfig, namespace, objects)
        applied = time.monotonic() - start
        wait_until(lambda: steady_services.count() == services and ran.count("run-") == -(-standalone // RUN_TASK_COUNT),
                   3600, "the Services steady and the Tasks RUNNING")
        done = max(steady_services.last(), ran.last()) - start
        out["cpu_bring_up"] = cpu_seconds(operator.pid) - cpu
        print(f"operator: {services} Services x {tasks} steady and {standalone} standalone tasks RUNNING {done:.1f} s "
              f"after the first apply (kubectl apply took {applied:.1f} s; Services {steady_services.last() - start:.1f} s, "
              f"Tasks {ran.last() - start:.1f} s); load {load()}", flush=True)
        under_load.join()
        out["under_load"] = probe.latencies("load")

        time.sleep(20)  # the last counters and instance status land
        out["steady"] = rss_kib(operator.pid)
        before, cpu = api.writes(), cpu_seconds(operator.pid)
        time.sleep(quiet)  # the measurement window itself
        out["quiet_writes"], out["quiet_cpu"] = api.writes() - before, cpu_seconds(operator.pid) - cpu
        out["after_quiet"] = rss_kib(operator.pid)

        probe.run("idle", probes)
        out["idle_probes"] = probe.latencies("idle")
        changed: dict[str, float] = {}
        scaled = Seen(lambda d: d["spec"].get("replicas") == tasks + 1)
        api.watch(f"/apis/apps/v1/namespaces/{namespace}/deployments", scaled, stop)
        time.sleep(1)
        for i in range(min(probes, services)):
            time.sleep(max(0.0, 1 / PROBE_RATE))
            api.kube.patch("Service.ecs", namespace, f"svc-{i}", {"spec": {"desiredCount": tasks + 1}})
            changed[f"svc-{i}"] = time.monotonic()
        wait_until(lambda: len(scaled.at) >= len(changed), 600, "the Deployments scaled")
        out["idle_scale"] = [min(at for d, at in scaled.at.items() if d == s or d.startswith(f"{s}-")) - t
                             for s, t in changed.items()]
        out["final"] = rss_kib(operator.pid)
        stop.set()
        return done, out
    finally:
        operator.send_signal(signal.SIGTERM)
        operator.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=2, help="desiredCount of each Service")
    parser.add_argument("--standalone", type=int, default=2000, help="standalone tasks (RunTask count 10 each)")
    parser.add_argument("--nodes", type=int, default=100, help="kwok nodes (the sandbox's default type)")
    parser.add_argument("--quiet", type=float, default=60.0, help="seconds of the steady-state window")
    parser.add_argument("--probes", type=int, default=40, help="probe Tasks (and Service changes) per measurement")
    parser.add_argument("--kubeconfig", default=None, help="an existing sandbox (default: a new one)")
    args = parser.parse_args()
    with control_plane(args.kubeconfig, prefix="bench-scale", nodes=args.nodes) as kubeconfig:
        api = Api(kubeconfig)
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", str(Path(__file__).parents[1] / "crds"))
        time.sleep(2)
        print(f"{args.services} services x {args.tasks} + {args.standalone} standalone tasks on {args.nodes} kwok nodes; "
              f"load before: {load()}", flush=True)
        plain = baseline(api, kubeconfig, args.services, args.tasks, args.standalone)
        ours, out = with_operator(api, kubeconfig, args.services, args.tasks, args.standalone, args.quiet, args.probes)
        mib = lambda k: f"{k['VmRSS'] / 1024:.0f} MiB"  # noqa: E731
        print(f"\nratio to the baseline: {ours / plain:.2f} (goal <= 1.1)")
        print(f"operator RSS: idle {mib(out['idle'])}; at steady state {mib(out['steady'])}, after the quiet window "
              f"{mib(out['after_quiet'])}, at the end {mib(out['final'])}; peak {out['final']['VmHWM'] / 1024:.0f} MiB "
              "(goal < 150 MB)")
        print(f"operator CPU: {out['cpu_bring_up']:.0f} s to bring it up; at steady state "
              f"{out['quiet_cpu'] / args.quiet * 100:.1f}% of a CPU")
        by_operator = {k: v for k, v in out["quiet_writes"].items() if operator_owned(k) and v}
        others = {k: v for k, v in out["quiet_writes"].items() if not operator_owned(k) and v}
        print(f"API writes at steady state: {sum(by_operator.values()) * 60 / args.quiet:.1f}/min by the operator "
              f"{ {key_name(k): v for k, v in by_operator.items()} or ''} (goal 0); by others: "
              + ", ".join(f"{key_name(k)} {v}" for k, v in sorted(others.items())))
        print(f"Task -> Pod under load (while it brought the rest up): {summary(out['under_load'])}")
        print(f"Task -> Pod at steady state (idle):                    {summary(out['idle_probes'])}")
        print(f"Service desiredCount -> Deployment replicas (idle):     {summary(out['idle_scale'])}")
        print(f"operator log: {out['log']}")


if __name__ == "__main__":
    main()
