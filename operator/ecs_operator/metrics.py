"""The operator's Prometheus metrics (README: Metrics), served by `ecs-operator run --metrics`.

One module that the adapters (Kubernetes requests), the runtime (workers, status writes) and the handlers
(managed scaling, tasks) all import: it imports nothing of theirs, and the pure core never imports it
(pyproject.toml, import-linter). The metrics are taken at the runtime's chokepoints, not in each handler:
Workers.run (every reconcile of every main kind), StatusWriter (every status write), Kube._call (every API
request the operator's own code makes), the capacity providers' act (every managed-scaling decision).

Labels are bounded: kinds, HTTP verbs, resources and codes are fixed sets; `provider` is a capacity
provider's name (cluster-scoped objects an administrator creates: few); tasks are counted by lastStatus
only (a namespace or cluster label would grow with the tenants: one series per namespace and status).
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator
from typing import Protocol

from prometheus_client import REGISTRY, Counter as CounterMetric, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ecs_operator.lifecycle.records import ORDER

PREFIX = "ecs_operator_"
disable_created_metrics()  # no *_created series beside each counter and histogram: half the scrape

RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RECONCILES = CounterMetric(f"{PREFIX}reconcile", "Reconciles of the per-object workers, by kind and result (success, error).",
                           ["kind", "result"])
RECONCILE_ERRORS = CounterMetric(f"{PREFIX}reconcile_errors", "Reconciles that raised (the next round retries), by kind.",
                                 ["kind"])
RECONCILE_SECONDS = Histogram(f"{PREFIX}reconcile_duration_seconds", "How long one reconcile took (in its thread), by kind.",
                              ["kind"], buckets=RECONCILE_BUCKETS)
RECONCILING = Gauge(f"{PREFIX}reconciles_in_progress", "Reconciles running now, by kind.", ["kind"])
KUBE_REQUESTS = CounterMetric(f"{PREFIX}kube_requests",
                              "Kubernetes API requests of the operator's own code (not kopf's watches and patches), "
                              "by HTTP verb, resource and response code ('error': no response).",
                              ["verb", "resource", "code"])
KUBE_SECONDS = Histogram(f"{PREFIX}kube_request_duration_seconds", "Kubernetes API request latency (response read included).",
                         ["verb", "resource"], buckets=REQUEST_BUCKETS)
SCALING_DECISIONS = CounterMetric(f"{PREFIX}scaling_decisions",
                                  "Managed-scaling evaluations of a capacity provider, by the action decided "
                                  "(scale-out, scale-in, none).", ["provider", "action"])
RESERVATION = Gauge(f"{PREFIX}capacity_provider_reservation_percent",
                    "CapacityProviderReservation of the provider's last evaluation (ECS's M/N x 100).", ["provider"])
STATUS_WRITES = CounterMetric(f"{PREFIX}status_writes", "Status patches written, by kind and urgency (urgent: at once; "
                              "false: held for the flush window and coalesced).", ["kind", "urgent"])
LEADER = Gauge(f"{PREFIX}leader", "1 while this replica is the active one (it reconciles), else 0.")

SCALING_ACTIONS = ("scale-out", "scale-in", "none")


def reconciled(kind: str, seconds: float, ok: bool) -> None:
    RECONCILES.labels(kind, "success" if ok else "error").inc()
    if not ok:
        RECONCILE_ERRORS.labels(kind).inc()
    RECONCILE_SECONDS.labels(kind).observe(seconds)


def known_kind(kind: str) -> None:
    """A worker of `kind` started: its series exist from now on (at 0), so that rates and increases start from
    there and not from the first error."""
    RECONCILES.labels(kind, "success")
    RECONCILES.labels(kind, "error")
    RECONCILE_ERRORS.labels(kind)
    RECONCILE_SECONDS.labels(kind)
    RECONCILING.labels(kind)


def kube_request(verb: str, path: str, code: str, seconds: float) -> None:
    resource = resource_of(path)
    KUBE_REQUESTS.labels(verb, resource, code).inc()
    KUBE_SECONDS.labels(verb, resource).observe(seconds)


def resource_of(path: str) -> str:
    """The resource an API path names, as kubectl writes it: `pods`, `deployments.apps`, `pods/eviction`,
    `tasks.ecs.operator.dev/status`; `discovery` for an API group's resource list, `version` for /version."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return parts[0] if parts else "root"
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return "discovery"
    name = f"{rest[0]}.{group}" if group else rest[0]
    return f"{name}/{rest[2]}" if len(rest) >= 3 else name


def scaling_decision(provider: str, action: str | None, reservation: float | None) -> None:
    """One managed-scaling evaluation (`action` None: nothing to do); `reservation` None: not computed (the
    provider refused, or without a node pool)."""
    for known in SCALING_ACTIONS:
        SCALING_DECISIONS.labels(provider, known)
    SCALING_DECISIONS.labels(provider, action or "none").inc()
    if reservation is not None:
        RESERVATION.labels(provider).set(reservation)


def forget_provider(provider: str) -> None:
    """The provider is gone: its series go too."""
    for action in SCALING_ACTIONS:
        SCALING_DECISIONS.remove(provider, action)  # (a missing series is no error)
    RESERVATION.remove(provider)


def status_written(kind: str, urgent: bool) -> None:
    STATUS_WRITES.labels(kind.split(".", 1)[0], "true" if urgent else "false").inc()


def set_leader(active: bool) -> None:
    """Leader election (issue 18 item 1) sets this; a standalone replica is always the active one."""
    LEADER.set(1 if active else 0)


# --- what is counted at scrape time ---------------------------------------------------------------------


class WorkerCensus(Protocol):
    """runtime.workers.Workers: what its workers are doing now."""

    def census(self) -> Iterable[tuple[str, bool]]:
        """(kind, woken and not yet reconciling) for each running worker."""
        ...


class TaskStatuses:
    """The lastStatus of each task (a Task object's status.tasks[], one per Pod) as its worker last decided it
    (a status held for the flush window included), by Task object."""

    def __init__(self) -> None:
        self._tasks: dict[Hashable, tuple[str, ...]] = {}
        self._guard = threading.Lock()

    def set(self, key: Hashable, statuses: Iterable[str]) -> None:
        with self._guard:
            self._tasks[key] = tuple(statuses)

    def forget(self, key: Hashable) -> None:
        with self._guard:
            self._tasks.pop(key, None)

    def counts(self) -> Counter[str]:
        with self._guard:
            return Counter(status for statuses in self._tasks.values() for status in statuses)


TASKS = TaskStatuses()
_censuses: weakref.WeakSet[WorkerCensus] = weakref.WeakSet()


def watch_workers(workers: WorkerCensus) -> None:
    """Count this registry's workers at each scrape (as long as it exists)."""
    _censuses.add(workers)


class _Collected(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        running: Counter[str] = Counter()
        woken: Counter[str] = Counter()
        for census in list(_censuses):
            for kind, pending in census.census():
                running[kind] += 1
                woken[kind] += pending
        workers = GaugeMetricFamily(f"{PREFIX}workers", "Per-object workers running, by kind.", labels=["kind"])
        depth = GaugeMetricFamily(f"{PREFIX}pending_wakeups",
                                  "Workers woken (by an event) whose reconcile has not started yet: the queue depth, by kind.",
                                  labels=["kind"])
        for kind in sorted(running):
            workers.add_metric([kind], running[kind])
            depth.add_metric([kind], woken[kind])
        yield workers
        yield depth
        tasks = GaugeMetricFamily(f"{PREFIX}tasks", "Standalone tasks (RunTask: Task objects' status.tasks) by lastStatus.",
                                  labels=["last_status"])
        counts = TASKS.counts()
        for status in ORDER:
            tasks.add_metric([status], counts.get(status, 0))
        yield tasks


REGISTRY.register(_Collected())
