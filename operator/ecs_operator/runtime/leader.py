"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Several replicas of `ecs-operator run --leader-elect` share one Lease; exactly one of them (its
`holderIdentity`) runs kopf, the others wait. The rules (client-go's, with its defaults):

- A replica takes the Lease when there is none, when its holder is empty (released on a clean
  shutdown), or when the record (holder, renewTime, resourceVersion) has not changed for
  `leaseDurationSeconds` *as this replica observed it*, on its own monotonic clock: a skewed wall
  clock never shortens the wait. Every write carries the resourceVersion read, so of two replicas
  taking the same Lease at once the API server lets exactly one through (409 Conflict for the other).
- The leader renews every `retry_period`. If it has not renewed for `renew_deadline` (the API
  server unreachable, the Lease taken over), it stops acting at once: the process exits with
  status 1 (os._exit: no handler, worker thread or kopf shutdown step writes anything after that) and
  the container restarts as a standby. Since `renew_deadline` < `lease_duration`, the old leader has
  exited before any other replica may take the Lease (a write of the old leader would otherwise be
  fenced by nothing: Kubernetes has no fencing tokens), with `lease_duration - renew_deadline`
  (5 s by default) of margin for clock rate drift and a slow exit.
- On a clean shutdown (SIGTERM) the leader empties the holder after kopf has stopped, so a standby
  takes over within one `retry_period` instead of waiting `lease_duration`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from urllib3.exceptions import HTTPError

from ecs_operator.adapters.kube import ApiError, Kube

log = logging.getLogger("ecs_operator.leader")


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    """How long a standby waits, from the last change of the record it saw, before it takes the Lease."""
    renew_deadline: float = 10.0
    """How long the leader keeps acting without a successful renewal (then it exits)."""
    retry_period: float = 2.0
    """How often the leader renews, and a standby tries to acquire."""

    def problem(self) -> str | None:
        if not self.lease_duration > self.renew_deadline > self.retry_period > 0:
            return (f"leader election needs lease duration ({self.lease_duration:g}s) > renew deadline "
                    f"({self.renew_deadline:g}s) > retry period ({self.retry_period:g}s) > 0")
        return None


@dataclass(frozen=True)
class Seen:
    """The Lease record as last read, and when (this process's monotonic clock) it last changed."""

    record: tuple[str, str, str]
    """(holderIdentity, renewTime, resourceVersion)"""
    changed_at: float


Action = Literal["create", "renew", "acquire", "wait"]


def record_of(lease: dict[str, Any]) -> tuple[str, str, str]:
    spec = lease.get("spec") or {}
    return (str(spec.get("holderIdentity") or ""), str(spec.get("renewTime") or ""),
            str(lease["metadata"].get("resourceVersion") or ""))


def decide(lease: dict[str, Any] | None, identity: str, now: float, seen: Seen | None,
           default_duration: float) -> tuple[Action, Seen | None]:
    """What to do with the Lease as just read (None: there is none), at monotonic time `now`, given what
    was seen before: create it, renew it (ours), acquire it (free or expired), or wait (another holder's,
    still valid). Returns the action and what is now seen."""
    if lease is None:
        return "create", None
    record = record_of(lease)
    seen = seen if seen is not None and seen.record == record else Seen(record, now)
    holder = record[0]
    if holder == identity:
        return "renew", seen
    if not holder:
        return "acquire", seen
    duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or default_duration)
    return ("acquire" if now >= seen.changed_at + duration else "wait"), seen


def micro_time(at: datetime) -> str:
    """metav1.MicroTime's format."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def default_identity() -> str:
    """The Pod's name (the chart sets POD_ID), else hostname_pid (unique on one machine)."""
    return os.environ.get("POD_ID") or f"{socket.gethostname()}_{os.getpid()}"


def exit_now() -> None:
    """The leader lost the Lease: stop every write at once (the container restarts as a standby)."""
    log.error("leader election lost: exiting so that no other replica's writes overlap with this one's")
    logging.shutdown()
    os._exit(1)


class Elector:
    """One replica's side of the election. `acquire()` blocks until this replica leads; `keep()` then
    renews in a thread and calls `lost` (default: exit_now) if the renew deadline passes; `release()`
    on a clean shutdown."""

    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, timing: Timing = Timing(),
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 lost: Callable[[], None] = exit_now) -> None:
        self.kube, self.namespace, self.name, self.identity, self.timing = kube, namespace, name, identity, timing
        self.clock, self.wall, self.lost = clock, wall, lost
        self.seen: Seen | None = None
        self.renewed_at: float | None = None
        """Monotonic time of the last successful acquire or renewal (taken before the request was sent)."""
        self.lease: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- one attempt ---------------------------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        """One read and at most one write: whether this replica holds the Lease now."""
        started = self.clock()
        try:
            lease = self.kube.get("Lease", self.namespace, self.name)
            action, self.seen = decide(lease, self.identity, started, self.seen, self.timing.lease_duration)
            if action == "wait":
                return False
            self.lease = self._write(action, lease)
        except ApiError as e:  # 409: another replica wrote first; others: try again next period
            log.info("leader election: %s Lease %s/%s failed: %s %s", "renewing" if self.renewed_at else "acquiring",
                     self.namespace, self.name, e.status, e)
            return False
        except (OSError, HTTPError) as e:  # refused connections, timeouts
            log.info("leader election: API server unreachable: %s", e)
            return False
        self.renewed_at = started
        return True

    def _write(self, action: Action, lease: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time(self.wall())
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": max(1, round(self.timing.lease_duration)),
                "renewTime": now}
        if action == "create":
            created, _ = self.kube.create({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                           "metadata": {"name": self.name, "namespace": self.namespace},
                                           "spec": {**spec, "acquireTime": now, "leaseTransitions": 0}})
            log.info("leader election: %s created Lease %s/%s and leads", self.identity, self.namespace, self.name)
            return created
        assert lease is not None
        old = lease.get("spec") or {}
        if action == "acquire":
            spec |= {"acquireTime": now, "leaseTransitions": int(old.get("leaseTransitions") or 0) + 1}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": lease["metadata"], "spec": {**old, **spec}}
        written = self.kube.replace(body)  # carries the resourceVersion read: 409 if anyone wrote since
        if action == "acquire":
            log.info("leader election: %s acquired Lease %s/%s (previous holder %r)", self.identity, self.namespace,
                     self.name, old.get("holderIdentity") or "")
        return written

    # -- the life cycle ------------------------------------------------------------------------
    def acquire(self, stop: threading.Event | None = None) -> bool:
        """Block until this replica holds the Lease (True), or `stop` is set (False)."""
        stop = stop or threading.Event()
        announced = False
        while not stop.is_set():
            if self.try_acquire_or_renew():
                return True
            if not announced and self.seen is not None:
                log.info("leader election: standby; Lease %s/%s is held by %s", self.namespace, self.name, self.seen.record[0])
                announced = True
            stop.wait(self.timing.retry_period)
        return False

    def keep(self) -> None:
        """Renew every retry period in one thread; a second thread calls `lost` once the last renewal is
        older than the renew deadline, even while a request hangs."""
        self._stop.clear()
        self._threads = [threading.Thread(target=self._renew, name="lease-renew", daemon=True),
                         threading.Thread(target=self._watch, name="lease-watchdog", daemon=True)]
        for thread in self._threads:
            thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.timing.retry_period):
            if not self.try_acquire_or_renew() and self.seen is not None and self.seen.record[0] not in ("", self.identity):
                log.error("leader election: Lease %s/%s is now held by %s", self.namespace, self.name, self.seen.record[0])
                self._lose()
                return

    def _watch(self) -> None:
        while not self._stop.wait(min(0.5, self.timing.retry_period / 4)):
            if self.renewed_at is not None and self.clock() - self.renewed_at >= self.timing.renew_deadline:
                log.error("leader election: no renewal of Lease %s/%s for %.1fs (renew deadline %gs)", self.namespace,
                          self.name, self.clock() - self.renewed_at, self.timing.renew_deadline)
                self._lose()
                return

    def _lose(self) -> None:
        self._stop.set()
        self.lost()

    def stop(self) -> None:
        """Stop renewing (before a release)."""
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=self.timing.retry_period + 1)

    def release(self) -> bool:
        """Empty the holder if it is still this replica (a standby then takes the Lease at its next try)."""
        self.stop()
        try:
            lease = self.kube.get("Lease", self.namespace, self.name)
            if lease is None or record_of(lease)[0] != self.identity:
                return False
            spec = {**(lease.get("spec") or {}), "holderIdentity": "", "leaseDurationSeconds": 1,
                    "renewTime": micro_time(self.wall())}
            self.kube.replace({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": lease["metadata"],
                               "spec": spec})
        except (ApiError, OSError, HTTPError) as e:
            log.warning("leader election: could not release Lease %s/%s: %s", self.namespace, self.name, e)
            return False
        log.info("leader election: %s released Lease %s/%s", self.identity, self.namespace, self.name)
        return True
