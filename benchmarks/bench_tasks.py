"""What the operator costs per task: latency, memory, API writes. Not a test (timings depend on the
machine); each figure is printed beside a baseline measured in the same run, on the same control
plane, and the ratio.

- latency: N Tasks (RunTask, count 1) created at a fixed rate; from each creation request to its
  Pod appearing (watch ADDED), Running, and the Task reporting RUNNING (watch on Tasks), p50/p99;
  and the parts: the API server admitting the Task (request -> response), the operator after it.
  Baseline: the same N Pods (the operator's own translation of the same task definition) created
  directly at the same rate.
- memory: the operator's RSS when idle, after N tasks, and its peak (VmHWM).
- API writes: the apiserver's `apiserver_request_total` before/after each phase, write verbs only,
  by resource. Writes on what the operator owns (Tasks, Pods it creates, its Events, Cluster and
  ContainerInstance status, ...) divided by N; and every write over a quiet window once all tasks
  run, longer than the operator's 60 s resyncs (goal: none by the operator).

    .venv/bin/python benchmarks/bench_tasks.py [--tasks 200] [--rate 20] [--quiet 75]

With KUBECONFIG set (or --kubeconfig) it uses that sandbox (which needs room for N Pods and no other
operator running); otherwise it starts one of its own (4 kwok m5.xlarge nodes: 232 Pods) and stops
it at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sandbox_support import control_plane, transport, watch

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION = "ecs.operator.dev", "v1alpha1"
WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"}
METRIC = re.compile(r'^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')
TASK_DEFINITION = {"family": "bench", "containerDefinitions": [{"name": "app", "image": "nginx:1.29", "cpu": 16, "memory": 32}]}
Key = tuple[str, str, str, str]  # (group, resource, subresource, verb)


def operator_owned(key: Key) -> bool:
    """Writes only the operator makes (the benchmark's own Task creations are taken out separately).
    Node cordons are the operator's too, but kwok and the node controller also patch Nodes, and
    nothing drains here: Nodes are left out."""
    group, resource, subresource, verb = key
    if group == GROUP:
        return True
    if (group, resource) == ("", "pods"):  # kwok writes pods/status, the scheduler pods/binding
        return (verb in ("POST", "DELETE") and subresource == "") or subresource == "eviction"
    if (group, resource) == ("", "events"):
        return True  # kopf posts core/v1 Events; the scheduler uses events.k8s.io
    return (group, resource) in {("apps", "controllerrevisions"), ("networking.k8s.io", "networkpolicies")}


# -- the control plane --------------------------------------------------------------------------------------------
class Api:
    """The few calls the benchmark makes, with the operator's adapter and transport."""

    def __init__(self, kubeconfig: str) -> None:
        from ecs_operator.adapters.kube import Kube

        self.kube = Kube(transport(kubeconfig))
        self.kubeconfig = kubeconfig

    def writes(self) -> Counter[Key]:
        """apiserver_request_total of the write verbs, by (group, resource, subresource, verb)."""
        response = self.kube.api.request("GET", "/metrics")
        out: Counter[Key] = Counter()
        for line in response.data.decode().splitlines():
            match = METRIC.match(line)
            if not match:
                continue
            labels = dict(LABEL.findall(match["labels"]))
            if labels.get("verb") in WRITE_VERBS:
                out[(labels.get("group", ""), labels.get("resource", ""), labels.get("subresource", ""), labels["verb"])] += int(float(match["value"]))
        return out

    def watch(self, path: str, on_event: Callable[[str, dict[str, Any]], None], stop: threading.Event) -> threading.Thread:
        """Stream watch events of a collection to `on_event` (in a thread) until `stop` is set."""

        def run() -> None:
            while not stop.is_set():
                try:
                    for kind, obj in watch(self.kube.api, path, timeout_seconds=30):
                        if stop.is_set():
                            break
                        on_event(kind, obj)
                except Exception:  # a watch cut short (the namespace went, the server timed out): start again
                    time.sleep(0.2)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread


# -- measuring ----------------------------------------------------------------------------------------------------
class Clock:
    """Local monotonic times per name: sent (creation request sent), created (its response: the object
    exists), pod (Pod seen), running (the Task's lastStatus, or the Pod's phase for the baseline),
    pod_running (the operator's Pod Running)."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.created: dict[str, float] = {}
        self.pod: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.pod_running: dict[str, float] = {}
        self.lock = threading.Lock()

    def mark(self, table: dict[str, float], name: str) -> None:
        with self.lock:
            table.setdefault(name, time.monotonic())

    def latencies(self, table: dict[str, float], start: dict[str, float]) -> list[float]:
        return [max(0.0, table[n] - start[n]) for n in start if n in table]


def create_paced(names: list[str], rate: float, create: Callable[[str], Any], clock: Clock) -> None:
    """Send the creations at `rate` per second, each on its own (up to 32 in flight)."""

    def one(name: str) -> None:
        clock.mark(clock.sent, name)
        create(name)
        clock.mark(clock.created, name)

    with ThreadPoolExecutor(max_workers=32) as pool:
        start = time.monotonic()
        futures = []
        for i, name in enumerate(names):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            futures.append(pool.submit(one, name))
        for future in futures:
            future.result()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def rss_kib(pid: int) -> dict[str, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) for k in ("VmRSS", "VmHWM")}


# -- the two phases -----------------------------------------------------------------------------------------------
def baseline_pods(namespace: str, n: int) -> list[dict[str, Any]]:
    """The Pods the operator would create for these tasks (its own translation), created by us instead."""
    from ecs_operator.models import RegisterTaskDefinition, TaskSpec
    from ecs_operator.settings import Settings
    from ecs_operator.translate.pod import Revision
    from ecs_operator.translate.task import task_pods

    revision = Revision("bench", 1, RegisterTaskDefinition.model_validate(TASK_DEFINITION), arn="arn:bench")
    out = []
    for i in range(n):
        plan = task_pods(TaskSpec(taskDefinition="bench"), name=f"b-{i}", namespace=namespace, revision=revision,
                         cluster="default", settings=Settings())
        out.append(plan.pods[0])
    return out


def run_baseline(api: Api, n: int, rate: float) -> tuple[Clock, Counter[Key]]:
    namespace = f"bench-pods-{uuid.uuid4().hex[:5]}"
    api.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    manifests = {p["metadata"]["name"]: p for p in baseline_pods(namespace, n)}
    clock, stop = Clock(), threading.Event()

    def on_pod(kind: str, pod: dict[str, Any]) -> None:
        name = pod["metadata"]["name"]
        clock.mark(clock.pod, name)
        if (pod.get("status") or {}).get("phase") == "Running":
            clock.mark(clock.running, name)

    api.watch(f"/api/v1/namespaces/{namespace}/pods", on_pod, stop)
    time.sleep(1)
    before = api.writes()
    create_paced(list(manifests), rate, lambda name: api.kube.create(manifests[name]), clock)
    wait_until(lambda: len(clock.running) == n, 300, "the baseline Pods Running")
    time.sleep(2)  # the last status writes of kwok land
    after = api.writes()
    stop.set()
    api.kube.delete("Namespace", None, namespace)
    wait_until(lambda: api.kube.get("Namespace", None, namespace) is None, 180, "the baseline namespace gone")
    return clock, after - before


def run_operator(api: Api, n: int, rate: float, quiet: float) -> dict[str, Any]:
    namespace = f"bench-tasks-{uuid.uuid4().hex[:5]}"
    api.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    log = open(Path(tempfile.gettempdir()) / f"{namespace}-operator.log", "wb")
    operator = subprocess.Popen([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", ""],
                                env={**os.environ, "KUBECONFIG": api.kubeconfig}, stdout=log, stderr=subprocess.STDOUT)
    try:
        ecs = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}"
        api.kube.create({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Cluster", "metadata": {"name": "default", "namespace": namespace}, "spec": {}})
        api.kube.create({"apiVersion": f"{GROUP}/{VERSION}", "kind": "TaskDefinition",
                         "metadata": {"name": "bench", "namespace": namespace}, "spec": TASK_DEFINITION})
        wait_until(lambda: (api.kube.get("TaskDefinition", namespace, "bench") or {}).get("status", {}).get("revision") == 1,
                   60, "the task definition registered")
        time.sleep(12)  # the operator settles (cluster counters, container instances) before counting
        idle = rss_kib(operator.pid)

        clock, stop = Clock(), threading.Event()

        def on_pod(kind: str, pod: dict[str, Any]) -> None:
            name = pod["metadata"]["name"].rsplit("-", 1)[0]  # t-17-0 -> task t-17
            clock.mark(clock.pod, name)
            if (pod.get("status") or {}).get("phase") == "Running":
                clock.mark(clock.pod_running, name)

        def on_task(kind: str, task: dict[str, Any]) -> None:
            if (task.get("status") or {}).get("lastStatus") == "RUNNING":
                clock.mark(clock.running, task["metadata"]["name"])

        api.watch(f"/api/v1/namespaces/{namespace}/pods", on_pod, stop)
        api.watch(f"{ecs}/tasks", on_task, stop)
        time.sleep(1)
        before, cpu_before, load_before = api.writes(), cpu_seconds(operator.pid), load()
        create_paced([f"t-{i}" for i in range(n)], rate, lambda name: api.kube.create({
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Task", "metadata": {"name": name, "namespace": namespace},
            "spec": {"taskDefinition": "bench"}}), clock)
        wait_until(lambda: len(clock.running) == n, 300, "the Tasks RUNNING")
        time.sleep(12)  # counters and instance status catch up (the Cluster's every 10 s)
        after, cpu_after = api.writes(), cpu_seconds(operator.pid)
        loaded = rss_kib(operator.pid)
        time.sleep(quiet)
        quiet_writes = api.writes() - after
        stop.set()
        return {"clock": clock, "writes": after - before, "quiet": quiet_writes, "idle": idle, "loaded": loaded,
                "final": rss_kib(operator.pid), "cpu": cpu_after - cpu_before,
                "quiet_cpu": cpu_seconds(operator.pid) - cpu_after, "load": (load_before, load())}
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        log.close()
        api.kube.delete("Namespace", None, namespace)


# -- report -------------------------------------------------------------------------------------------------------
def key_name(key: Key) -> str:
    group, resource, subresource, verb = key
    return f"{resource}{'/' + subresource if subresource else ''} {verb}"


def line(label: str, measured: float, baseline: float, unit: str = "ms") -> str:
    ratio = f"{measured / baseline:5.2f}x" if baseline else "   - "
    return f"  {label:<34} {measured:9.1f} {unit}   baseline {baseline:9.1f} {unit}   {ratio}"


def report(n: int, rate: float, base: Clock, base_writes: Counter[Key], run: dict[str, Any]) -> None:
    ms = 1000.0
    clock: Clock = run["clock"]
    print(f"\n{n} tasks created at {rate:g}/s (baseline: the same Pods created directly at the same rate)\n")
    print("latency from the creation request (a Task, or the Pod directly)")
    for label, op_table, base_table in (("request -> Pod exists", clock.pod, base.pod),
                                        ("request -> Pod Running", clock.pod_running, base.running),
                                        ("request -> Task RUNNING", clock.running, base.running)):
        for p in (50, 99):
            print(line(f"{label} p{p}", percentile(clock.latencies(op_table, clock.sent), p) * ms,
                       percentile(base.latencies(base_table, base.sent), p) * ms))
    print("of which: the API server admitting the object (request -> response), and the operator after it")
    for label, op_table, op_start, base_table, base_start in (
            ("request -> response", clock.created, clock.sent, base.created, base.sent),
            ("Task exists -> Pod exists", clock.pod, clock.created, base.pod, base.created),
            ("Task exists -> Task RUNNING", clock.running, clock.created, base.running, base.created)):
        for p in (50, 99):
            print(line(f"{label} p{p}", percentile(clock.latencies(op_table, op_start), p) * ms,
                       percentile(base.latencies(base_table, base_start), p) * ms))
    print(f"  (load average of the machine: {run['load'][0]} before the tasks, {run['load'][1]} after)")
    print("\noperator memory (RSS) and CPU")
    print(f"  idle {run['idle']['VmRSS'] / 1024:.1f} MiB, after {n} tasks {run['loaded']['VmRSS'] / 1024:.1f} MiB, "
          f"after the quiet window {run['final']['VmRSS'] / 1024:.1f} MiB, peak {run['final']['VmHWM'] / 1024:.1f} MiB")
    print(f"  CPU {run['cpu']:.1f} s for {n} tasks ({run['cpu'] / n * 1000:.0f} ms per task); "
          f"{run['quiet_cpu']:.1f} s over the quiet window")

    writes: Counter[Key] = run["writes"]
    created_by_us = writes[(GROUP, "tasks", "", "POST")]
    owned = {k: v for k, v in writes.items() if operator_owned(k) and v}
    owned[(GROUP, "tasks", "", "POST")] -= created_by_us
    total_owned = sum(owned.values())
    print(f"\nAPI writes during the run (apiserver_request_total; the benchmark's own {created_by_us} Task POSTs left out)")
    print(f"  {'group/resource/subresource verb':<48} {'with operator':>14} {'baseline':>9}")
    for key in sorted(set(writes) | set(base_writes)):
        if writes[key] or base_writes[key]:
            mark = "*" if operator_owned(key) else " "
            name = f"{key[0] or 'core'}/{key_name(key)}"
            print(f"  {mark}{name:<47} {writes[key] - (created_by_us if key == (GROUP, 'tasks', '', 'POST') else 0):>14} {base_writes[key]:>9}")
    print(f"  (* the operator's) -> {total_owned} writes by the operator = {total_owned / n:.2f} per task "
          f"(of which {owned.get(('', 'pods', '', 'POST'), 0) / n:.2f} Pod creations)")
    print(f"  all writes: {sum(writes.values()) - created_by_us} with the operator vs {sum(base_writes.values())} "
          f"creating the Pods directly ({(sum(writes.values()) - created_by_us) / max(1, sum(base_writes.values())):.2f}x)")

    quiet: Counter[Key] = run["quiet"]
    by_operator = {k: v for k, v in quiet.items() if operator_owned(k) and v}
    others = {k: v for k, v in quiet.items() if not operator_owned(k) and v}
    print(f"\nwrites at steady state over the quiet window: {sum(by_operator.values())} by the operator "
          f"{dict(by_operator) or ''}; {sum(others.values())} by other components "
          f"({', '.join(f'{key_name(k)}: {v}' for k, v in sorted(others.items()))})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="creations per second (ECS RunTask: 20/s)")
    parser.add_argument("--quiet", type=float, default=75.0,
                        help="seconds of the steady-state window (covers the 60 s resyncs; default: %(default)s)")
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    args = parser.parse_args()
    with control_plane(args.kubeconfig, prefix="bench-tasks", nodes=-(-args.tasks // 58) + 1) as kubeconfig:
        api = Api(kubeconfig)
        subprocess.run([str(Path(sys.executable).parent / "kubectl"), "apply", "--server-side", "--force-conflicts",
                        "-f", str(ROOT / "crds")], env={**os.environ, "KUBECONFIG": kubeconfig}, check=True,
                       capture_output=True)
        time.sleep(2)
        print(f"load average before the baseline: {load()}", flush=True)
        base, base_writes = run_baseline(api, args.tasks, args.rate)
        run = run_operator(api, args.tasks, args.rate, args.quiet)
        report(args.tasks, args.rate, base, base_writes, run)


if __name__ == "__main__":
    main()
