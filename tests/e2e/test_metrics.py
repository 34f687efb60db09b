"""The operator's Prometheus endpoint on the real control plane (README: Metrics): scraped before and after a
RunTask and a capacity provider's evaluation, the counters move by what the operator did.

The session's operator runs without metrics (several operators share this machine: no fixed port); this
test restarts it with `--metrics` on a free loopback port, and restores it afterwards.
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from prometheus_client.parser import text_string_to_metric_families

from capacity_support import capacity_provider
from ecs_objects import API_GROUP, apply_all, cluster, container, task, task_definition, unique, wait_task
from operator_fixtures import wait_for

if TYPE_CHECKING:
    from conftest import Cluster
    from operator_fixtures import Operator

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 if there is none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


@pytest.fixture(scope="module")
def metrics_url(running_operator: Operator) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}/metrics"
    running_operator.stop()
    running_operator.start("--metrics", url.removeprefix("http://").removesuffix("/metrics"))
    try:
        wait_for(lambda: _answers(url), timeout=30, what="the metrics endpoint")
        yield url
    finally:
        running_operator.stop()
        running_operator.extra_args = ()
        running_operator.start()


def _answers(url: str) -> bool:
    try:
        scrape(url)
        return True
    except OSError:
        return False


def test_a_run_task_moves_the_reconcile_request_status_and_task_metrics(
        sandbox: Cluster, namespace: str, metrics_url: str) -> None:
    before = scrape(metrics_url)
    assert value(before, "ecs_operator_leader") == 1  # standalone: the active replica

    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web")), task("web", "web"))
    wait_task(sandbox, namespace, "web", "RUNNING", timeout=90)
    after = wait_for(lambda: (s := scrape(metrics_url)) and value(s, "ecs_operator_tasks", last_status="RUNNING")
                     == value(before, "ecs_operator_tasks", last_status="RUNNING") + 1 and s,
                     timeout=30, what="the tasks gauge at one more RUNNING")

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("ecs_operator_reconcile_total", kind="Task", result="success") >= 1
    assert moved("ecs_operator_reconcile_duration_seconds_count", kind="Task") >= 1
    assert moved("ecs_operator_reconcile_errors_total", kind="Task") == 0
    # the Task's Pod was created (POST 201), its status written (PATCH 200 on tasks/status)
    assert moved("ecs_operator_kube_requests_total", verb="POST", resource="pods", code="201") >= 1
    assert moved("ecs_operator_kube_requests_total", verb="PATCH", resource=f"tasks.{API_GROUP}/status", code="200") >= 1
    assert moved("ecs_operator_kube_request_duration_seconds_count", verb="POST", resource="pods") >= 1
    assert moved("ecs_operator_status_writes_total", kind="Task") >= 1
    assert value(after, "ecs_operator_workers", kind="Task") >= 1
    assert ("ecs_operator_pending_wakeups", frozenset({("kind", "Task")})) in after

    # the Task deleted: its task leaves the gauge
    sandbox.kubectl("delete", f"tasks.{API_GROUP}", "web", "-n", namespace, "--wait=false")
    wait_for(lambda: value(scrape(metrics_url), "ecs_operator_tasks", last_status="RUNNING")
             == value(before, "ecs_operator_tasks", last_status="RUNNING"), timeout=60, what="the task gone from the gauge")


def test_a_capacity_provider_evaluation_is_a_scaling_decision_with_its_reservation(
        sandbox: Cluster, namespace: str, metrics_url: str) -> None:
    provider = unique("cpm")
    try:
        apply_all(sandbox, namespace, capacity_provider(provider, [namespace]))  # no tasks: nothing to do
        # the decision is counted when made, the reconcile once its round (the actions, the status write) ended
        samples = wait_for(lambda: (s := scrape(metrics_url))
                           and value(s, "ecs_operator_scaling_decisions_total", provider=provider, action="none") >= 1
                           and value(s, "ecs_operator_reconcile_total", kind="CapacityProvider", result="success") >= 1 and s,
                           timeout=60, what="a scaling decision of the new provider, its round ended")
        assert value(samples, "ecs_operator_scaling_decisions_total", provider=provider, action="scale-out") == 0
        assert ("ecs_operator_capacity_provider_reservation_percent", frozenset({("provider", provider)})) in samples
    finally:
        sandbox.kubectl("delete", f"capacityproviders.{API_GROUP}", provider, "--wait=true", "--timeout=60s", check=False)
    # the provider gone, its series go too
    wait_for(lambda: ("ecs_operator_capacity_provider_reservation_percent", frozenset({("provider", provider)}))
             not in scrape(metrics_url), timeout=30, what="the provider's series removed")
