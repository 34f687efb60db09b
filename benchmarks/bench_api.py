"""What `ecs-operator api` adds to a request and costs to run. Not a test (timings depend on the
machine); each figure is printed beside a baseline measured in the same run, on the same control
plane, with the operator running.

- objects, made through the API: a cluster, a task definition and a service of --service-tasks tasks
  on kwok nodes. Clients sign with SigV4, with a key the `ecs-api-keys` Secret binds to the namespace.
- reads, --seconds each, at each of --clients concurrent clients (one client per thread):
  DescribeServices and ListTasks of the service, requests per second and p50/p99 latency,
  1. through boto3;
  2. raw: the same request signed once by botocore and re-sent over a kept-alive connection (the
     server's share without boto3's own cost on the client);
  3. baseline: the same read with the Kubernetes client (the operator's adapter): GET of the Service
     resource; list of the service's Pods by label.
  Goal (issue 16): the API adds under 2 ms at p50 to a read (raw minus baseline).
- RunTask (count 1), --runs at each concurrency, boto3; baseline: the Task resource created
  directly and read every 0.25 s (RunTask's own interval) until the operator gave it its task's ARN.
- the API server: RSS (VmRSS) before any request, after the setup, after the reads, after the
  RunTasks, its peak (VmHWM); its CPU time per request.

    .venv/bin/python benchmarks/bench_api.py [--seconds 8] [--clients 1,8] [--runs 30] [--service-tasks 3]

With KUBECONFIG set (or --kubeconfig) it uses that sandbox (which needs room for the tasks and no
other operator running); otherwise it starts one of its own and stops it at the end.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox_support import control_plane, transport

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION = "ecs.operator.dev", "v1alpha1"
TARGET = "AmazonEC2ContainerServiceV20141113."
REGION = "us-east-1"
SERVICE = "web"
CONTAINERS = [{"name": "app", "image": "nginx:1.29", "cpu": 16, "memory": 32}]
POLL = 0.25
"""RunTask's interval reading the Tasks it created (api.account.wait_for's default)."""


# -- the control plane and the processes -----------------------------------------------------------------------
@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        child = subprocess.Popen([sys.executable, "-m", "ecs_operator.cli", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield child
        finally:
            child.terminate()
            child.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)
    return value


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def memory_mib(pid: int) -> dict[str, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- clients ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    port: int
    key_id: str
    secret: str

    def boto3(self) -> Any:
        """One boto3 client (one per thread: a client is made from a session, and sessions are not thread-safe)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "ecs", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION, aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret, config=Config(retries={"max_attempts": 1}, read_timeout=60))

    def signed(self, operation: str, params: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """Body and headers of the request as botocore signs it; valid for 5 minutes, re-sendable until then."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest("POST", f"http://127.0.0.1:{self.port}/", data=json.dumps(params).encode(),
                             headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET + operation})
        SigV4Auth(Credentials(self.key_id, self.secret), "ecs", REGION).add_auth(request)
        prepared = request.prepare()
        return prepared.body, dict(prepared.headers)

    def raw(self, operation: str, params: dict[str, Any]) -> Callable[[], Any]:
        """A caller re-sending one signed request on its own kept-alive connection."""
        body, headers = self.signed(operation, params)
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

        def call() -> Any:
            connection.request("POST", "/", body=body, headers=headers)
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise RuntimeError(f"{operation}: {response.status} {answer}")
            return answer
        return call


def kube_client(kubeconfig: str) -> Any:
    """The operator's adapter over its transport (thread-safe; its pool holds 5 connections per CPU)."""
    from ecs_operator.adapters.kube import Kube

    return Kube(transport(kubeconfig))


# -- measuring ----------------------------------------------------------------------------------------------------
@dataclass
class Figures:
    latencies: list[float]
    wall: float
    server_cpu: float | None = None
    """CPU seconds the API server spent meanwhile (None for the Kubernetes client)."""

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall


def timed(callers: list[Callable[[], Any]], seconds: float, server: int | None) -> Figures:
    """Each caller in its own thread, back to back for `seconds` (after 3 untimed calls each)."""
    for call in callers:
        for _ in range(3):
            call()
    latencies: list[float] = []
    lock, start_gate = threading.Lock(), threading.Barrier(len(callers) + 1)

    def run(call: Callable[[], Any]) -> None:
        mine: list[float] = []
        start_gate.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            before = time.perf_counter()
            call()
            mine.append(time.perf_counter() - before)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(c,)) for c in callers]
    for thread in threads:
        thread.start()
    cpu = cpu_seconds(server) if server else 0.0
    start_gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return Figures(latencies, time.perf_counter() - began, cpu_seconds(server) - cpu if server else None)


def counted(one: Callable[[int], Any], runs: int, clients: int, server: int | None) -> Figures:
    """`runs` calls of `one(i)` by `clients` threads, each timed."""
    latencies: list[float] = []

    def run(i: int) -> None:
        before = time.perf_counter()
        one(i)
        latencies.append(time.perf_counter() - before)

    cpu = cpu_seconds(server) if server else 0.0
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(run, range(runs)))
    return Figures(latencies, time.perf_counter() - began, cpu_seconds(server) - cpu if server else None)


# -- the phases ---------------------------------------------------------------------------------------------------
def key_secret(namespace: str, key_id: str, secret: str) -> dict[str, Any]:
    entry = json.dumps({"secretAccessKey": secret, "namespace": namespace}).encode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ecs-api-keys", "namespace": namespace},
            "data": {key_id: base64.b64encode(entry).decode()}}


def set_up(endpoint: Endpoint, tasks: int) -> None:
    """The cluster, task definition and service, made through the API; returns once the service is stable."""
    ecs = endpoint.boto3()
    ecs.register_task_definition(family="bench", containerDefinitions=CONTAINERS)
    ecs.create_cluster(clusterName="default")
    ecs.create_service(cluster="default", serviceName=SERVICE, taskDefinition="bench", desiredCount=tasks)
    ecs.get_waiter("services_stable").wait(cluster="default", services=[SERVICE], WaiterConfig={"Delay": 1, "MaxAttempts": 180})


def reads(endpoint: Endpoint, kube: Any, namespace: str, tasks: int, seconds: float, clients: int,
          server: int) -> dict[str, dict[str, Figures]]:
    """Each read three ways at `clients` concurrent clients; every answer of the first call checked."""
    describe = {"cluster": "default", "services": [SERVICE]}
    list_tasks = {"cluster": "default", "serviceName": SERVICE}
    selector = f"{GROUP}/service={SERVICE}"

    def boto3_callers(method: str, params: dict[str, Any]) -> list[Callable[[], Any]]:
        return [lambda c=endpoint.boto3(): getattr(c, method)(**params) for _ in range(clients)]

    checks = {
        "DescribeServices": (lambda a: [s["runningCount"] for s in a["services"]] == [tasks], lambda o: o["spec"]["desiredCount"] == tasks),
        "ListTasks": (lambda a: len(a["taskArns"]) == tasks, lambda o: len(o) == tasks),
    }
    ways = {
        "DescribeServices": {
            "boto3": boto3_callers("describe_services", describe),
            "raw": [endpoint.raw("DescribeServices", describe) for _ in range(clients)],
            "kube": [lambda: kube.get("Service.ecs", namespace, SERVICE)] * clients,
        },
        "ListTasks": {
            "boto3": boto3_callers("list_tasks", list_tasks),
            "raw": [endpoint.raw("ListTasks", list_tasks) for _ in range(clients)],
            "kube": [lambda: kube.list("Pod", namespace, selector)] * clients,
        },
    }
    out: dict[str, dict[str, Figures]] = {}
    for name, by_way in ways.items():
        api_ok, kube_ok = checks[name]
        for way, callers in by_way.items():
            answer = callers[0]()
            if not (kube_ok if way == "kube" else api_ok)(answer):
                raise SystemExit(f"{name} ({way}) answered something else than expected: {str(answer)[:500]}")
        out[name] = {way: timed(callers, seconds, None if way == "kube" else server) for way, callers in by_way.items()}
    return out


def run_tasks(endpoint: Endpoint, kube: Any, namespace: str, runs: int, clients: int, server: int) -> dict[str, Figures]:
    """RunTask through boto3, and the Task resource created directly then read until it has its task's ARN."""
    local = threading.local()

    def through_api(_: int) -> None:
        if not hasattr(local, "ecs"):
            local.ecs = endpoint.boto3()
        answer = local.ecs.run_task(cluster="default", taskDefinition="bench", count=1)
        if len(answer["tasks"]) != 1:
            raise SystemExit(f"RunTask failed: {answer['failures']}")

    def directly(_: int) -> None:
        name = f"direct-{uuid.uuid4().hex[:12]}"
        kube.create({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Task", "metadata": {"name": name, "namespace": namespace},
                     "spec": {"cluster": "default", "taskDefinition": "bench"}})
        deadline = time.monotonic() + 60
        while not any(r.get("taskArn") for r in ((kube.get("Task", namespace, name) or {}).get("status") or {}).get("tasks") or []):
            if time.monotonic() > deadline:
                raise SystemExit(f"Task {name} got no task ARN within 60 s")
            time.sleep(POLL)

    return {"boto3": counted(through_api, runs, clients, server), "kube": counted(directly, runs, clients, None)}


# -- report -------------------------------------------------------------------------------------------------------
WAYS = {"boto3": "through boto3", "raw": "raw signed HTTP, no boto3",
        "kube": "baseline: Kubernetes client"}
BASELINES = {"DescribeServices": "GET the Service resource", "ListTasks": "list the service's Pods",
             "RunTask": "create Task + read it until it has its ARN"}


def row(label: str, f: Figures, count: int) -> str:
    cpu = f"   API server CPU {f.server_cpu / count * 1000:5.2f} ms/request" if f.server_cpu is not None else ""
    return f"  {label:<52} p50 {f.p(50):8.2f} ms   p99 {f.p(99):8.2f} ms   {f.rate:8.1f} req/s{cpu}"


def report(name: str, clients: int, figures: dict[str, Figures]) -> None:
    print(f"{name}, {clients} concurrent client{'s' if clients > 1 else ''} ({len(figures['boto3'].latencies)} requests through boto3)")
    for way, f in figures.items():
        label = f"baseline: {BASELINES[name]}" if way == "kube" else WAYS[way]
        print(row(label, f, len(f.latencies)))
    base = figures["kube"].p(50)
    server = figures.get("raw", figures["boto3"])
    added = f"  -> the API adds {server.p(50) - base:+.2f} ms at p50 ({server.p(50) / base:.2f}x the baseline)"
    if "raw" in figures:
        added += f"; boto3 on the client {figures['boto3'].p(50) - server.p(50):+.2f} ms more"
    print(added, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of each read measurement (default: %(default)s)")
    parser.add_argument("--clients", default="1,8", help="concurrent clients, comma-separated (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=30, help="RunTasks at each concurrency, and as many baseline Tasks")
    parser.add_argument("--service-tasks", type=int, default=3)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    pods = args.service_tasks + 2 * args.runs * len(levels)

    with control_plane(args.kubeconfig, prefix="bench-api", nodes=-(-pods // 58) + 1) as kubeconfig:
        env = {**os.environ, "KUBECONFIG": kubeconfig}
        subprocess.run([str(Path(sys.executable).parent / "kubectl"), "apply", "--server-side", "--force-conflicts",
                        "-f", str(ROOT / "crds")], env=env, check=True, capture_output=True)
        kube = kube_client(kubeconfig)
        namespace = f"bench-api-{uuid.uuid4().hex[:5]}"
        endpoint = Endpoint(free_port(), f"AKID{uuid.uuid4().hex[:12].upper()}", uuid.uuid4().hex)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        kube.create(key_secret(namespace, endpoint.key_id, endpoint.secret))
        logs = Path(tempfile.mkdtemp(prefix="bench-api-logs-"))
        try:
            with process(["run", "--liveness", "", "--log-level", "WARNING"], env, logs / "operator.log"), \
                    process(["api", "--port", str(endpoint.port), "--namespace", namespace], env, logs / "api.log") as api:
                wait_until(lambda: listening(endpoint.port), 120, "the API to listen")
                memory = {"before any request": memory_mib(api.pid)}
                set_up(endpoint, args.service_tasks)
                memory["after the setup"] = memory_mib(api.pid)
                print(f"service {SERVICE} stable with {args.service_tasks} tasks; load average {load()}\n", flush=True)

                for clients in levels:
                    for name, figures in reads(endpoint, kube, namespace, args.service_tasks, args.seconds, clients, api.pid).items():
                        report(name, clients, figures)
                    print(f"  (load average {load()})\n", flush=True)
                memory["after the reads"] = memory_mib(api.pid)
                for clients in levels:
                    report("RunTask", clients, run_tasks(endpoint, kube, namespace, args.runs, clients, api.pid))
                    print(f"  (load average {load()})\n", flush=True)
                memory["after the RunTasks"] = memory_mib(api.pid)
            print("API server memory: " + ", ".join(f"{when} {m['VmRSS']:.1f} MiB" for when, m in memory.items())
                  + f"; peak (VmHWM) {memory['after the RunTasks']['VmHWM']:.1f} MiB")
            errors = [line for line in (logs / "api.log").read_text(errors="replace").splitlines() if "Traceback" in line or " ERROR " in line]
            print(f"logs: {logs} ({len(errors)} errors in the API's log)")
        finally:
            kube.delete("Namespace", None, namespace)


if __name__ == "__main__":
    main()
