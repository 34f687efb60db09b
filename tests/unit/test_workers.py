"""The per-object worker of the runtime: at once, then batched wake-ups, the reconcile's own due time and
the resync; a failed reconcile never ends it; a stop ends any wait at once."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from ecs_operator.runtime.workers import Batching, Cadence, Workers


def run_worker(script: list[float], cadence: Cadence, due: float | None = None, fail: bool = False,
               until: float = 1.0, urgent: frozenset[float] = frozenset()) -> tuple[list[float], float]:
    """Run a worker for `until` seconds, waking it at the moments of `script`; the moments it reconciled,
    and how long it took to stop once told."""
    calls: list[float] = []
    failures: list[Exception] = []

    async def main() -> float:
        workers, stopped = Workers(), asyncio.Event()
        start = time.monotonic()

        def reconcile(observed: str) -> float | None:
            calls.append(round(time.monotonic() - start, 2))
            if fail:
                raise RuntimeError("boom")
            return due

        worker = asyncio.ensure_future(workers.run("Kind", "key", lambda: "seen", reconcile, stopped, cadence,
                                                   lambda e: failures.append(e)))
        for moment in script:
            await asyncio.sleep(max(0.0, moment - (time.monotonic() - start)))
            workers.wake("Kind", "key", urgent=moment in urgent)
        await asyncio.sleep(max(0.0, until - (time.monotonic() - start)))
        asked = time.monotonic()
        stopped.set()
        await worker
        assert ("Kind", "key") not in workers._wakeups
        assert len(failures) == (len(calls) if fail else 0)
        return time.monotonic() - asked

    took = asyncio.run(main())
    return calls, took


def close(seen: list[float], expected: list[float], slack: float = 0.15) -> bool:
    return len(seen) == len(expected) and all(abs(s - e) <= slack for s, e in zip(seen, expected))


def test_a_burst_of_wake_ups_is_one_reconcile_after_the_idle_window() -> None:
    cadence = Cadence(resync=10, batching=Batching(idle=0.2, max=2))
    calls, took = run_worker([0.1, 0.15, 0.2, 0.25], cadence, until=1.0)
    assert close(calls, [0.0, 0.45]), calls  # at once, then once the burst was quiet for 0.2 s
    assert took < 0.1


def test_an_urgent_wake_up_starts_the_round_at_once_and_ends_a_burst_window() -> None:
    cadence = Cadence(resync=10, batching=Batching(idle=0.2, max=2))
    calls, _ = run_worker([0.3, 0.6, 0.65], cadence, until=1.2, urgent=frozenset({0.3, 0.65}))
    assert close(calls, [0.0, 0.3, 0.65], slack=0.08), calls  # not 0.5 and 0.85: no idle window waited


def test_a_burst_that_never_quiets_is_reconciled_at_the_max_window() -> None:
    cadence = Cadence(resync=10, batching=Batching(idle=0.2, max=0.5))
    calls, _ = run_worker([0.1 + 0.1 * i for i in range(9)], cadence, until=1.0)
    assert calls[:2] and close(calls[:2], [0.0, 0.6]), calls  # 0.1 (first wake) + 0.5 (max window)


def test_the_reconcile_says_when_to_look_again_and_the_resync_bounds_it() -> None:
    calls, _ = run_worker([], Cadence(resync=0.3, batching=Batching(idle=0.1, max=1)), due=None, until=0.75)
    assert close(calls, [0.0, 0.3, 0.6]), calls
    calls, _ = run_worker([], Cadence(resync=10, batching=Batching(idle=0.1, max=1)), due=0.2, until=0.5)
    assert close(calls, [0.0, 0.2, 0.4]), calls


def test_a_failing_reconcile_is_reported_and_the_worker_goes_on() -> None:
    calls, _ = run_worker([], Cadence(resync=0.2, batching=Batching(idle=0.1, max=1)), fail=True, until=0.5)
    assert close(calls, [0.0, 0.2, 0.4]), calls


def test_a_stop_ends_a_long_wait_at_once() -> None:
    _, took = run_worker([], Cadence(resync=60, batching=Batching(idle=1, max=10)), until=0.2)
    assert took < 0.1


def test_a_started_worker_reconciles_at_once_a_second_start_wakes_it_and_stop_ends_it() -> None:
    calls: list[float] = []

    async def main() -> None:
        workers = Workers()
        start = time.monotonic()
        cadence = Cadence(resync=10, batching=Batching(idle=0.05, max=0.2))

        def reconcile(observed: str) -> None:
            calls.append(round(time.monotonic() - start, 2))

        assert workers.start("Kind", "key", lambda: "seen", reconcile, cadence, lambda e: None)
        await asyncio.sleep(0.1)
        assert workers.running("Kind") == ["key"]
        assert not workers.start("Kind", "key", lambda: "seen", reconcile, cadence, lambda e: None)  # woken instead
        await asyncio.sleep(0.2)
        workers.stop("Kind", "key")
        await asyncio.sleep(0.05)
        assert workers.running("Kind") == [] and ("Kind", "key") not in workers._wakeups

    asyncio.run(main())
    assert close(calls, [0.0, 0.15]), calls


def test_a_round_failed_by_an_unreachable_api_server_is_one_line_and_a_retry_soon(caplog: pytest.LogCaptureFixture) -> None:
    """A restart of kube-apiserver or etcd fails rounds with a temporary ApiError: each is a warning line without a
    traceback and another round in 2 s; any other error keeps its traceback and waits for the resync."""
    from ecs_operator.adapters.kube import ApiError
    from ecs_operator.handlers.common import RETRY_SECONDS, failed_round

    logger = logging.getLogger("test-failed-round")
    with caplog.at_level(logging.WARNING, logger="test-failed-round"):
        assert failed_round(logger, "reconciling service ns/web", ApiError(0, "Unreachable", "refused")) == RETRY_SECONDS
        assert failed_round(logger, "reconciling service ns/web", ApiError(503, "Service Unavailable", "etcd")) == 2.0
        assert failed_round(logger, "reconciling service ns/web", ApiError(422, "Invalid", "bad")) is None
        assert failed_round(logger, "reconciling service ns/web", KeyError("x")) is None
    assert [(r.levelname, r.exc_info is not None) for r in caplog.records] == [
        ("WARNING", False), ("WARNING", False), ("ERROR", True), ("ERROR", True)]
    assert caplog.records[0].getMessage() == "reconciling service ns/web: 0 Unreachable: refused; trying again in 2.0 s"
