"""How fast capacity providers react: latency from a task becoming unschedulable to the scale-out
decision and to the task RUNNING on a new kwok node, and how many scaling actions a burst of 100
waiting tasks causes (goal: one).

Not a test (timings depend on the machine). It runs the real operator (a subprocess, default
settings unless given) against a sandbox control plane (its own, unless --kubeconfig names one):

- latency, `--runs` times: a fresh kwok provider with no node (instanceWarmupPeriod 0) and a RunTask
  of one task on it. Watches (client side, monotonic clock) record when the Pod is first seen
  Unschedulable, when the pool's first Node appears (the scale-out decision's action: nodes are
  created in the same evaluation, right after it) and when the Pod is Running on it.
- burst, `--bursts` times: a service of 100 tasks (256 CPU units, 512 MiB; 16 fit an m5.xlarge, so
  ECS's formula wants 7 instances) on a fresh provider with no node: the ScaleOut Events, the nodes
  created, and the time until all 100 run.

The published figures it prints beside them (ECS's one-minute evaluation, cluster-autoscaler's
30 s objective, Karpenter's batching) come from ../shared/reference/architecture-anchors.md B.3/B.4;
they were not measured here.

    .venv/bin/python benchmarks/bench_capacity.py [--runs 20] [--bursts 3] [--kubeconfig PATH]
        [--operator-arg=--capacity-evaluation-seconds=60 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox_support import transport, watch

from ecs_operator.adapters.transport import Transport

ROOT = Path(__file__).resolve().parents[1]
API = "ecs.operator.dev/v1alpha1"
PROVIDER_LABEL = "ecs.operator.dev/capacity-provider"
KUBECTL = str(Path(sys.executable).parent / "kubectl")

PUBLISHED = [
    ("ECS managed scaling", "CapacityProviderReservation evaluated every 1 min (one-minute CloudWatch datapoints);"
                            " scale-in after 15 datapoints below target", "B.3"),
    ("cluster-autoscaler SLO", "unschedulable -> scale-up request <= 30 s (avg ~5 s) for < 100 nodes; scan-interval 10 s", "B.4"),
    ("cluster-autoscaler measured", "p99 scale-up decision < 21.8 s up to ~300 nodes (kubernetes/autoscaler#5769)", "B.4"),
    ("Karpenter batching", "1 s idle / 10 s max window before one provisioning decision", "B.4"),
    ("Pending -> node Ready", "CA on EKS ~3-5 min; Karpenter typically < 60 s (real instances boot)", "B.4"),
]


@dataclass
class Seen:
    """First moments (time.monotonic()) the watches saw things."""

    unschedulable: dict[str, float] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)
    nodes: dict[str, dict[str, float]] = field(default_factory=dict)
    """provider -> node -> when it was first seen."""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _watch(api: Transport, seen: Seen, kind: str, stop: threading.Event) -> None:
    path = "/api/v1/pods" if kind == "pods" else "/api/v1/nodes"
    selector = PROVIDER_LABEL
    while not stop.is_set():
        try:
            for event, obj in watch(api, path, query=[("labelSelector", selector)], timeout_seconds=30):
                moment, meta, status = time.monotonic(), obj["metadata"], obj.get("status") or {}
                with seen.lock:
                    if kind == "nodes":
                        if event == "ADDED":
                            seen.nodes.setdefault(meta["labels"][PROVIDER_LABEL], {}).setdefault(meta["name"], moment)
                        continue
                    key = f"{meta['namespace']}/{meta['name']}"
                    conditions = status.get("conditions") or []
                    if any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions):
                        seen.unschedulable.setdefault(key, moment)
                    if status.get("phase") == "Running":
                        seen.running.setdefault(key, moment)
                if stop.is_set():
                    return
        except Exception:  # a dropped watch is restarted; the benchmark only loses nothing it needs
            time.sleep(0.2)


def kubectl(env: dict[str, str], *args: str, input: str | None = None, check: bool = True) -> str:
    result = subprocess.run([KUBECTL, *args], input=input, env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr}")
    return result.stdout


def apply(env: dict[str, str], namespace: str, *objects: dict[str, Any]) -> None:
    kubectl(env, "apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def provider(name: str, instance_type: str, max_size: int) -> dict[str, Any]:
    """Provider `name` for namespace `name` (the scenario's) only."""
    return {"apiVersion": API, "kind": "CapacityProvider", "metadata": {"name": name}, "spec": {
        "autoScalingGroupProvider": {"managedScaling": {"status": "ENABLED", "targetCapacity": 100, "instanceWarmupPeriod": 0}},
        "kubernetes": {"allowedNamespaces": [name],
                       "nodePool": {"backend": "kwok", "instanceType": instance_type, "minSize": 0, "maxSize": max_size}}}}


def basics(name: str, cpu: int, memory: int) -> list[dict[str, Any]]:
    """A cluster listing provider `name` and a task definition `app`."""
    return [
        {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name},
         "spec": {"capacityProviders": [name], "defaultCapacityProviderStrategy": [{"capacityProvider": name, "weight": 1}]}},
        {"apiVersion": API, "kind": "TaskDefinition", "metadata": {"name": "app"}, "spec": {"family": "app", "containerDefinitions": [
            {"name": "app", "image": "nginx:1.29", "cpu": cpu, "memory": memory}]}},
    ]


@contextmanager
def scenario(env: dict[str, str], instance_type: str, max_size: int) -> Iterator[str]:
    """A namespace and a fresh provider of the same name (ready: its first status written), deleted afterwards."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    kubectl(env, "create", "namespace", name)
    apply(env, name, provider(name, instance_type, max_size))
    deadline = time.monotonic() + 60
    while not json.loads(kubectl(env, "get", "capacityproviders", name, "-o", "json")).get("status", {}).get("decision"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"provider {name} never evaluated")
        time.sleep(0.2)
    try:
        yield name
    finally:
        kubectl(env, "delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)
        kubectl(env, "delete", "capacityproviders", name, "--wait=false", check=False)


def latency_runs(env: dict[str, str], seen: Seen, runs: int) -> tuple[list[float], list[float]]:
    """Per run: (unschedulable -> first node, unschedulable -> Running)."""
    to_decision, to_running = [], []
    for i in range(runs):
        with scenario(env, "m5.large", 5) as name:
            apply(env, name, *basics(name, 512, 1024), {"apiVersion": API, "kind": "Task", "metadata": {"name": "one"}, "spec": {
                "taskDefinition": "app", "cluster": name, "capacityProviderStrategy": [{"capacityProvider": name, "weight": 1}]}})
            key = wait(lambda: next((k for k in list(seen.running) if k.startswith(f"{name}/")), None), 120, "the task Running")
            with seen.lock:
                unschedulable, running = seen.unschedulable.get(key), seen.running[key]
                first_node = min(seen.nodes.get(name, {}).values(), default=None)
            if unschedulable is None or first_node is None:
                print(f"  run {i + 1}: the pod was never seen Unschedulable (scheduled at once?); skipped", file=sys.stderr)
                continue
            to_decision.append(first_node - unschedulable)
            to_running.append(running - unschedulable)
            print(f"  run {i + 1:2d}: decision {to_decision[-1]:6.3f} s, RUNNING {to_running[-1]:6.3f} s", file=sys.stderr)
    return to_decision, to_running


def burst_runs(env: dict[str, str], seen: Seen, bursts: int) -> list[tuple[int, int, int, float]]:
    """Per burst: (ScaleOut decisions (Events), nodes ever created, final pool size, seconds until 100 Running)."""
    results = []
    for _ in range(bursts):
        with scenario(env, "m5.xlarge", 20) as name:
            start = time.monotonic()
            apply(env, name, *basics(name, 256, 512), {"apiVersion": API, "kind": "Service", "metadata": {"name": "burst"},
                                                       "spec": {"cluster": name, "taskDefinition": "app", "desiredCount": 100}})
            wait(lambda: sum(1 for k in list(seen.running) if k.startswith(f"{name}/")) >= 100, 300, "100 tasks Running")
            elapsed = time.monotonic() - start
            time.sleep(5)  # a window for any late second decision to show (what is counted, not a wait for a result)
            events = json.loads(kubectl(env, "get", "events", "-A", "--field-selector",
                                        f"involvedObject.kind=CapacityProvider,involvedObject.name={name},reason=ScaleOut", "-o", "json"))
            decisions = sum(e.get("count") or 1 for e in events["items"])
            pool = len(json.loads(kubectl(env, "get", "nodes", "-l", f"{PROVIDER_LABEL}={name}", "-o", "json"))["items"])
            with seen.lock:
                created = len(seen.nodes.get(name, {}))
            results.append((decisions, created, pool, elapsed))
            print(f"  burst: {decisions} ScaleOut decision(s), {created} nodes created, pool {pool}, "
                  f"100 tasks Running after {elapsed:.1f} s", file=sys.stderr)
    return results


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def report(to_decision: list[float], to_running: list[float], bursts: list[tuple[int, int, int, float]],
           operator_args: list[str]) -> None:
    print(f"\nMeasured here (operator {' '.join(operator_args) or 'with default settings'}; {len(to_decision)} runs):")
    for label, values in (("unschedulable -> scale-out decision", to_decision), ("unschedulable -> task RUNNING on a new node", to_running)):
        if values:
            print(f"  {label:45s} p50 {statistics.median(values):6.2f} s   p99 {percentile(values, 99):6.2f} s   "
                  f"max {max(values):6.2f} s")
    for decisions, created, pool, elapsed in bursts:
        print(f"  burst of 100 waiting tasks: {decisions} scale-out decision(s), {created} nodes created, pool {pool} "
              f"(ECS formula: ceil(100 / 16) = 7), all RUNNING after {elapsed:.1f} s")
    print("\nPublished figures (architecture-anchors.md, not measured here):")
    for name, figure, section in PUBLISHED:
        print(f"  {name:28s} {figure}  [{section}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--kubeconfig", help="a running sandbox (default: start one)")
    parser.add_argument("--operator-arg", action="append", default=[], help="extra `ecs-operator run` argument (repeatable)")
    args = parser.parse_args()

    state = None
    kubeconfig = args.kubeconfig
    if not kubeconfig:
        state = tempfile.mkdtemp(prefix="bench-capacity-")
        subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", "up", "--no-build", "--state-dir", state], check=True,
                       capture_output=True)
        kubeconfig = os.path.join(state, "kubeconfig")
    env = {**os.environ, "KUBECONFIG": kubeconfig}
    kubectl(env, "apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    log = open(tempfile.mktemp(prefix="bench-capacity-operator-", suffix=".log"), "w")
    operator = subprocess.Popen([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", *args.operator_arg],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    stop, seen = threading.Event(), Seen()
    api = transport(kubeconfig)
    for kind in ("pods", "nodes"):
        threading.Thread(target=_watch, args=(api, seen, kind, stop), daemon=True).start()
    try:
        time.sleep(3)  # the operator's start-up (not measured)
        to_decision, to_running = latency_runs(env, seen, args.runs)
        bursts = burst_runs(env, seen, args.bursts)
        report(to_decision, to_running, bursts, args.operator_arg)
    finally:
        stop.set()
        operator.terminate()
        operator.wait(timeout=30)
        print(f"\noperator log: {log.name}", file=sys.stderr)
        if state:
            subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", "down", "--state-dir", state], capture_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
