"""Leader election on a Lease: the pure decision, and the Elector against a fake Lease API with a fake clock
(optimistic concurrency by resourceVersion as the API server does it)."""

from __future__ import annotations

import copy
import socket
import threading
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from ecs_operator.adapters.kube import ApiError
from ecs_operator.runtime.leader import Elector, Seen, Timing, decide
from ecs_operator.runtime.standby import standby_liveness


def lease(holder: str, renew: str = "t0", rv: str = "1", duration: int = 15) -> dict[str, Any]:
    return {"metadata": {"name": "l", "namespace": "ns", "resourceVersion": rv},
            "spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": duration}}


def test_no_lease_is_created() -> None:
    assert decide(None, "me", 0.0, None, 15) == ("create", None)


def test_own_lease_is_renewed_and_an_empty_holder_is_taken_at_once() -> None:
    assert decide(lease("me"), "me", 5.0, None, 15)[0] == "renew"
    assert decide(lease(""), "me", 5.0, None, 15)[0] == "acquire"


def test_another_holders_lease_expires_only_after_its_duration_unchanged_on_our_clock() -> None:
    action, seen = decide(lease("other"), "me", 100.0, None, 15)
    assert action == "wait" and seen == Seen(("other", "t0", "1"), 100.0)
    assert decide(lease("other"), "me", 114.9, seen, 15)[0] == "wait"
    assert decide(lease("other"), "me", 115.0, seen, 15)[0] == "acquire"
    # a renewal (new renewTime and resourceVersion) restarts the wait, whatever the wall clocks say
    action, renewed = decide(lease("other", "t1", "2"), "me", 115.0, seen, 15)
    assert action == "wait" and renewed is not None and renewed.changed_at == 115.0
    # the lease's own duration counts, not ours
    assert decide(lease("other", duration=1), "me", 116.0, renewed, 15)[0] == "wait"
    assert decide(lease("other", "t1", "2", duration=1), "me", 116.0, renewed, 15)[0] == "acquire"


def test_timing_must_leave_the_old_leader_time_to_exit() -> None:
    assert Timing().problem() is None
    assert Timing(lease_duration=10, renew_deadline=10).problem()
    assert Timing(renew_deadline=2, retry_period=2).problem()


class FakeLeases:
    """The API server's Lease semantics: create fails on an existing name, replace on a stale resourceVersion."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.down = False

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        self._reachable()
        found = self.objects.get(name)
        return copy.deepcopy(found) if found else None

    def create(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        self._reachable()
        if obj["metadata"]["name"] in self.objects:
            raise ApiError(409, "AlreadyExists", "exists")
        return self._store(obj), True

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._reachable()
        live = self.objects.get(obj["metadata"]["name"])
        if live is None or live["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        return self._store(obj)

    def _store(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[obj["metadata"]["name"]] = stored
        return copy.deepcopy(stored)

    def _reachable(self) -> None:
        if self.down:
            raise OSError("connection refused")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(api: FakeLeases, identity: str, clock: Clock, lost: list[str] | None = None) -> Elector:
    def lose() -> None:
        (lost if lost is not None else []).append(identity)

    return Elector(api, "ns", "l", identity, Timing(), clock=clock,  # type: ignore[arg-type]
                   wall=lambda: datetime(2026, 1, 1, tzinfo=UTC), lost=lose)


def test_exactly_one_of_two_replicas_leads_and_the_other_takes_over_after_the_lease_duration() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    assert api.objects["l"]["spec"]["holderIdentity"] == "a"
    clock.now += 2
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()  # renewed: b's wait starts again
    clock.now += 14.9
    assert not b.try_acquire_or_renew()
    clock.now += 0.1
    assert b.try_acquire_or_renew()  # a stopped renewing 15 s ago (as b saw it)
    assert api.objects["l"]["spec"]["holderIdentity"] == "b" and api.objects["l"]["spec"]["leaseTransitions"] == 1
    assert not a.try_acquire_or_renew()  # a's renewal now fails: someone else holds it


def test_a_concurrent_acquire_lets_exactly_one_through() -> None:
    api, clock = FakeLeases(), Clock()
    api.objects["l"] = lease("", rv="7")
    api.version = 7
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    read = api.get("Lease", "ns", "l")
    a_write = a._write("acquire", read)
    with pytest.raises(ApiError) as refused:
        b._write("acquire", read)  # b read the same resourceVersion before a's write
    assert refused.value.status == 409 and a_write["spec"]["holderIdentity"] == "a"


def test_release_empties_the_holder_so_a_standby_takes_it_at_once() -> None:
    api, clock = FakeLeases(), Clock()
    a, b = elector(api, "a", clock), elector(api, "b", clock)
    assert a.try_acquire_or_renew() and not b.try_acquire_or_renew()
    assert a.release() and api.objects["l"]["spec"]["holderIdentity"] == ""
    assert b.try_acquire_or_renew()
    assert not a.release()  # no longer ours: left alone
    assert api.objects["l"]["spec"]["holderIdentity"] == "b"


def test_the_leader_gives_up_once_the_renew_deadline_passes_without_a_renewal() -> None:
    api, lost = FakeLeases(), []
    fast = Timing(lease_duration=0.6, renew_deadline=0.4, retry_period=0.05)
    a = Elector(api, "ns", "l", "a", fast, lost=lambda: lost.append("a"))  # type: ignore[arg-type]
    assert a.acquire(threading.Event())
    a.keep()
    threading.Event().wait(0.3)
    assert lost == []  # renewing
    api.down = True
    threading.Event().wait(0.8)
    assert lost == ["a"]
    a.stop()


def test_the_leader_gives_up_at_once_when_another_replica_holds_the_lease() -> None:
    api, lost = FakeLeases(), []
    fast = Timing(lease_duration=3, renew_deadline=2, retry_period=0.05)
    a = Elector(api, "ns", "l", "a", fast, lost=lambda: lost.append("a"))  # type: ignore[arg-type]
    assert a.acquire(threading.Event())
    a.keep()
    api._store({**api.objects["l"], "spec": {**api.objects["l"]["spec"], "holderIdentity": "b"}})
    threading.Event().wait(0.5)
    assert lost == ["a"]
    a.stop()


def test_a_standby_answers_its_liveness_probe_and_frees_the_port_for_kopf() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with standby_liveness(f"http://127.0.0.1:{port}/healthz"), \
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        assert answer.status == 200
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))  # kopf's endpoint can take it
