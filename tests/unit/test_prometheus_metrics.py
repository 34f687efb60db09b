"""The Prometheus metrics (ecs_operator/metrics.py) as the runtime's chokepoints take them: every Kubernetes
request by verb, resource and code; every reconcile of a worker by kind and result, with its duration; the
workers and their pending wake-ups counted at scrape time; status writes by urgency; managed-scaling
decisions; tasks by lastStatus; the leader state. Read back from the process's registry, as a scrape would."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY, generate_latest
from urllib3.exceptions import MaxRetryError

from ecs_operator import metrics
from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.adapters.transport import Config, Transport
from ecs_operator.runtime.status import StatusWriter
from ecs_operator.runtime.workers import Batching, Cadence, Workers


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Response:
    def __init__(self, status: int, data: bytes, reason: str = "") -> None:
        self.status, self.data, self.reason = status, data, reason


class FakeApi:
    """The transport's request: the API server's answer by method, or an exception as urllib3 raises it."""

    def __init__(self, answers: dict[str, Response | Exception]) -> None:
        self.answers = answers

    def request(self, method: str, path: str, **_: Any) -> Response:
        answer = self.answers[method]
        if isinstance(answer, Exception):
            raise answer
        return answer


def fake_kube(answers: dict[str, Response | Exception]) -> Kube:
    return Kube(cast(Transport, FakeApi(answers)))


def test_resources_are_named_as_kubectl_names_them() -> None:
    assert metrics.resource_of("/api/v1/namespaces/ns/pods") == "pods"
    assert metrics.resource_of("/api/v1/namespaces/ns/pods/web-1") == "pods"
    assert metrics.resource_of("/api/v1/namespaces/ns/pods/web-1/eviction") == "pods/eviction"
    assert metrics.resource_of("/api/v1/nodes/n1") == "nodes"
    assert metrics.resource_of("/api/v1/namespaces/ns") == "namespaces"
    assert metrics.resource_of("/apis/apps/v1/namespaces/ns/deployments/web") == "deployments.apps"
    assert metrics.resource_of("/apis/ecs.operator.dev/v1alpha1/namespaces/ns/tasks/t/status") == "tasks.ecs.operator.dev/status"
    assert (metrics.resource_of("/apis/ecs.operator.dev/v1alpha1/capacityproviders/cp/status")
            == "capacityproviders.ecs.operator.dev/status")
    assert metrics.resource_of("/apis/cluster.x-k8s.io/v1beta1") == "discovery"
    assert metrics.resource_of("/version") == "version"


def test_every_kube_request_is_counted_by_verb_resource_and_code() -> None:
    pods = "/api/v1/namespaces/ns/pods"
    kube = fake_kube({"POST": Response(201, b'{"metadata": {"name": "p"}}'),
                      "GET": Response(404, b'{"kind": "Status", "code": 404}', "Not Found"),
                      "DELETE": Response(503, b'{"kind": "Status", "code": 503}', "Service Unavailable")})
    created = sample("ecs_operator_kube_requests_total", verb="POST", resource="pods", code="201")
    missing = sample("ecs_operator_kube_requests_total", verb="GET", resource="pods", code="404")
    failed = sample("ecs_operator_kube_requests_total", verb="DELETE", resource="pods", code="503")
    timed = sample("ecs_operator_kube_request_duration_seconds_count", verb="POST", resource="pods")

    kube._call("POST", pods, body={})
    assert kube.get("Pod", "ns", "p") is None  # a 404 is an answer: counted with its code
    with pytest.raises(ApiError):
        kube._call("DELETE", f"{pods}/p")

    assert sample("ecs_operator_kube_requests_total", verb="POST", resource="pods", code="201") == created + 1
    assert sample("ecs_operator_kube_requests_total", verb="GET", resource="pods", code="404") == missing + 1
    assert sample("ecs_operator_kube_requests_total", verb="DELETE", resource="pods", code="503") == failed + 1
    assert sample("ecs_operator_kube_request_duration_seconds_count", verb="POST", resource="pods") == timed + 1


def test_a_request_without_any_answer_is_counted_as_error() -> None:
    before = sample("ecs_operator_kube_requests_total", verb="GET", resource="nodes", code="error")
    with pytest.raises(ConnectionResetError):
        fake_kube({"GET": ConnectionResetError("reset")})._call("GET", "/api/v1/nodes")
    assert sample("ecs_operator_kube_requests_total", verb="GET", resource="nodes", code="error") == before + 1


def test_an_unreachable_api_server_is_a_temporary_api_error_counted_as_error() -> None:
    """Refused or reset connections (the API server restarting) reach the handlers as a temporary ApiError, which
    they retry soon in one log line, not as a urllib3 traceback."""
    refused = MaxRetryError(None, "/api/v1/nodes", ConnectionRefusedError("refused"))  # type: ignore[arg-type]
    before = sample("ecs_operator_kube_requests_total", verb="GET", resource="nodes", code="error")
    with pytest.raises(ApiError) as raised:
        fake_kube({"GET": refused})._call("GET", "/api/v1/nodes")
    assert raised.value.status == 0 and raised.value.temporary and raised.value.reason == "Unreachable"
    assert sample("ecs_operator_kube_requests_total", verb="GET", resource="nodes", code="error") == before + 1


def test_a_request_the_api_server_never_answers_times_out_as_a_temporary_api_error() -> None:
    """An API server that accepted the connection and went away (stopped mid-request) must not hold a worker
    forever: the operator's requests have a timeout (runner.REQUEST_TIMEOUT_SECONDS) and fail as temporary."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts (the kernel does), never answers
        transport = Transport(Config(server=f"http://127.0.0.1:{silent.getsockname()[1]}"))
        started = time.monotonic()
        with pytest.raises(ApiError) as raised:
            Kube(transport, request_timeout=0.5)._call("GET", "/api/v1/nodes")
    assert raised.value.temporary and time.monotonic() - started < 10


def test_the_instrumentation_costs_microseconds_per_request() -> None:
    """What a request pays for being counted and timed (a real request takes milliseconds)."""
    rounds = 2000
    start = time.perf_counter()
    for _ in range(rounds):
        metrics.kube_request("GET", "/apis/apps/v1/namespaces/ns/deployments/web", "200", 0.003)
    per_call = (time.perf_counter() - start) / rounds
    assert per_call < 200e-6, f"{per_call * 1e6:.1f} us per request"


def test_a_worker_counts_its_reconciles_by_result_and_their_duration() -> None:
    kind = "MetricsKind"
    outcomes = iter([None, RuntimeError("boom"), None])
    census: list[list[tuple[str, bool]]] = []

    def reconcile(observed: str) -> float | None:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return 0.05

    async def main() -> None:
        workers, stopped = Workers(), asyncio.Event()
        worker = asyncio.ensure_future(workers.run(kind, "key", lambda: "seen", reconcile, stopped,
                                                   Cadence(resync=0.05, batching=Batching(idle=0.01, max=0.02)),
                                                   lambda e: 0.05))
        await asyncio.sleep(0.01)
        census.append(workers.census())
        while sample("ecs_operator_reconcile_total", kind=kind, result="success") < 2:
            await asyncio.sleep(0.01)
        stopped.set()
        await worker
        census.append(workers.census())

    asyncio.run(main())
    assert sample("ecs_operator_reconcile_total", kind=kind, result="success") == 2
    assert sample("ecs_operator_reconcile_total", kind=kind, result="error") == 1
    assert sample("ecs_operator_reconcile_errors_total", kind=kind) == 1
    assert sample("ecs_operator_reconcile_duration_seconds_count", kind=kind) == 3
    assert sample("ecs_operator_reconciles_in_progress", kind=kind) == 0
    assert census[0] == [(kind, False)] and census[1] == []  # running, then gone


def test_workers_and_pending_wake_ups_are_counted_at_scrape_time() -> None:
    kind = "CensusKind"

    async def main() -> tuple[float, float]:
        workers, stopped = Workers(), asyncio.Event()

        def reconcile(observed: str) -> float | None:
            return None

        worker = asyncio.ensure_future(workers.run(kind, "key", lambda: "seen", reconcile, stopped,
                                                   Cadence(resync=60, batching=Batching(idle=5, max=10)), lambda e: None))
        other = asyncio.ensure_future(workers.run(kind, "other", lambda: "seen", reconcile, stopped,
                                                  Cadence(resync=60, batching=Batching(idle=5, max=10)), lambda e: None))
        await asyncio.sleep(0.05)
        await asyncio.to_thread(workers.wake, kind, "key")  # from a handler's thread; the burst's idle window is 5 s
        await asyncio.sleep(0.05)  # in the batching window: woken, its round not started yet
        running = sample("ecs_operator_workers", kind=kind)
        pending = sample("ecs_operator_pending_wakeups", kind=kind)
        stopped.set()
        await asyncio.gather(worker, other)
        return running, pending

    assert asyncio.run(main()) == (2, 1)
    assert sample("ecs_operator_workers", kind=kind) == 0


def test_status_writes_are_counted_by_urgency() -> None:
    class Statuses:
        def patch_status(self, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> dict[str, Any]:
            return {"metadata": {"resourceVersion": "2"}}

    now = [0.0]
    writer = StatusWriter(Statuses(), "Service.ecs", clock=lambda: now[0])  # type: ignore[arg-type]
    body = {"metadata": {"name": "web", "namespace": "ns", "uid": "u", "resourceVersion": "1"}, "status": {}}
    urgent, held = (sample("ecs_operator_status_writes_total", kind="Service", urgent=u) for u in ("true", "false"))
    assert writer.write(body, {"runningCount": 1})
    assert not writer.write(body, {"runningCount": 2}, urgent=False)  # held for the flush window: not written
    now[0] = 10.0
    assert writer.flush(body)
    assert sample("ecs_operator_status_writes_total", kind="Service", urgent="true") == urgent + 1
    assert sample("ecs_operator_status_writes_total", kind="Service", urgent="false") == held + 1


def test_tasks_are_counted_by_last_status_and_forgotten_with_their_task_object() -> None:
    def counts() -> tuple[float, float, float]:
        return tuple(sample("ecs_operator_tasks", last_status=s) for s in ("RUNNING", "PENDING", "STOPPED"))  # type: ignore[return-value]

    running, pending, stopped = counts()
    assert REGISTRY.get_sample_value("ecs_operator_tasks", {"last_status": "DEPROVISIONING"}) is not None  # every status
    metrics.TASKS.set(("ns", "metrics-a"), ["RUNNING", "PENDING"])
    metrics.TASKS.set(("ns", "metrics-b"), ["RUNNING"])
    assert counts() == (running + 2, pending + 1, stopped)
    metrics.TASKS.set(("ns", "metrics-a"), ["STOPPED", "STOPPED"])
    metrics.TASKS.forget(("ns", "metrics-b"))
    assert counts() == (running, pending, stopped + 2)
    metrics.TASKS.forget(("ns", "metrics-a"))
    assert counts() == (running, pending, stopped)


def test_scaling_decisions_and_reservation_per_provider_until_it_is_deleted() -> None:
    metrics.scaling_decision("cp-m", "scale-out", 200)
    metrics.scaling_decision("cp-m", None, 100)
    metrics.scaling_decision("cp-m", None, None)  # refused: the last reservation stays
    assert sample("ecs_operator_scaling_decisions_total", provider="cp-m", action="scale-out") == 1
    assert sample("ecs_operator_scaling_decisions_total", provider="cp-m", action="none") == 2
    assert REGISTRY.get_sample_value("ecs_operator_scaling_decisions_total", {"provider": "cp-m", "action": "scale-in"}) == 0
    assert sample("ecs_operator_capacity_provider_reservation_percent", provider="cp-m") == 100
    metrics.forget_provider("cp-m")
    assert REGISTRY.get_sample_value("ecs_operator_capacity_provider_reservation_percent", {"provider": "cp-m"}) is None
    assert REGISTRY.get_sample_value("ecs_operator_scaling_decisions_total", {"provider": "cp-m", "action": "none"}) is None


def test_leader_state_is_settable_for_leader_election() -> None:
    metrics.set_leader(False)
    assert sample("ecs_operator_leader") == 0
    metrics.set_leader(True)
    assert sample("ecs_operator_leader") == 1


def test_every_metric_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    exposed = {line.split()[2] for line in generate_latest().decode().splitlines() if line.startswith("# TYPE ecs_operator_")}
    documented = {name for name in exposed if f"`{name}`" in readme}
    assert exposed and exposed == documented, sorted(exposed - documented)
