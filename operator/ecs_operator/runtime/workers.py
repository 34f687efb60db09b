"""One async worker per object: it reconciles at once, then whenever woken, when its last reconcile
asked to be called again, and at a resync interval anyway (level-triggered repair of missed events).
Each round observes in the event loop (kopf updates its indexes only between awaits, so a copy taken
there is one moment's state, never torn) and reconciles what it observed in a thread.

Wake-ups are batched as Karpenter's Batcher does: after the first, the worker waits until none came for
the idle window, at most the max window after the first, so a burst of events is one reconcile. The
reconcile runs in a thread of its kind's pool (the API requests block) with the handler's context variables
(kopf.event() needs them); a stop (the object deleted, the operator exiting) ends any wait at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ecs_operator import metrics


@dataclass(frozen=True)
class Batching:
    idle: float
    """A burst ends once no wake-up came for this long (seconds)."""
    max: float
    """... or this long after its first wake-up."""


@dataclass(frozen=True)
class Cadence:
    resync: float
    """The longest time between two reconciles."""
    batching: Batching


class Stopped(Protocol):
    """kopf's DaemonStopped, or an asyncio.Event (tests)."""

    def is_set(self) -> bool: ...

    def wait(self) -> Awaitable[Any]: ...


T = TypeVar("T")
THREADS = {"Service": 16, "Task": 8}
"""Rounds of one kind run at once (each kind its own threads, as controller-runtime gives each controller its own
workers); other kinds get DEFAULT_THREADS. Sharing the event loop's six default threads, a RunTask waited
25-94 s behind a thousand services coming up (bench_scale.py)."""
DEFAULT_THREADS = 4
Failed = Callable[[Exception], float | None]
"""Handles a reconcile's exception (reports it); returns when to try again (None: at the resync)."""


class Workers:
    """The registry of running workers, so that any handler (in any thread) can wake one."""

    def __init__(self) -> None:
        self._threads: dict[str, ThreadPoolExecutor] = {}
        self._threads_guard = threading.Lock()
        self._wakeups: dict[tuple[str, Hashable], tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
        self._started: dict[tuple[str, Hashable], tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._woken: set[tuple[str, Hashable]] = set()
        """Workers woken whose next round has not started (a batching window included): the queue."""
        self._urgent: set[tuple[str, Hashable]] = set()
        """Of those, the ones woken by a user's change: their round starts without the batching window."""
        metrics.watch_workers(self)

    def census(self) -> list[tuple[str, bool]]:
        """(kind, woken and its round not started yet) of each running worker: the metrics' workers and queue
        depth, read by the scrape thread (copies of a dict and a set are atomic)."""
        woken = self._woken.copy()
        return [(kind, (kind, key) in woken) for kind, key in self._wakeups.copy()]

    def start(self, kind: str, key: Hashable, observe: Callable[[], T | None], reconcile: Callable[[T], float | None],
              cadence: Cadence, failed: Failed) -> bool:
        """In the event loop (an async handler): run a worker for `kind` `key` until `stop`, or wake the
        one that runs. The worker's first round starts with the loop's next step, so an object's first
        reconcile costs no more than an event handler's, and no kopf daemon (whose finalizer is a write
        on every object, and whose deletion then waits for the operator). True if it was started."""
        if self.is_running(kind, key):
            self.wake(kind, key)
            return False
        stopped = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self.run(kind, key, observe, reconcile, stopped, cadence, failed),
                                                      name=f"worker {kind} {key}")
        self._started[(kind, key)] = (task, stopped)
        task.add_done_callback(lambda done: self._ended(kind, key, done))
        return True

    def stop(self, kind: str, key: Hashable) -> None:
        """In the event loop: end the started worker of `kind` `key` (its object is gone)."""
        running = self._started.get((kind, key))
        if running is not None:
            running[1].set()

    def stop_all(self) -> None:
        """In the event loop: end every worker (the operator is exiting; a round in progress finishes).
        Without it kopf waits 5 s for them before cancelling, which a leader's handover would wait too."""
        for _, stopped in list(self._started.values()):
            stopped.set()

    def is_running(self, kind: str, key: Hashable) -> bool:
        """Whether a started worker of `kind` `key` runs (and is not stopping)."""
        running = self._started.get((kind, key))
        return running is not None and not running[0].done() and not running[1].is_set()

    def running(self, kind: str) -> list[Hashable]:
        """The keys of the started workers of `kind`."""
        return [key for (k, key), (task, stopped) in list(self._started.items())
                if k == kind and not task.done() and not stopped.is_set()]

    def _ended(self, kind: str, key: Hashable, task: asyncio.Task[None]) -> None:
        if self._started.get((kind, key), (None, None))[0] is task:
            del self._started[(kind, key)]

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        with self._threads_guard:
            if kind not in self._threads:
                self._threads[kind] = ThreadPoolExecutor(THREADS.get(kind, DEFAULT_THREADS),
                                                         thread_name_prefix=f"reconcile-{kind}")
            return self._threads[kind]

    def wake(self, kind: str, key: Hashable, urgent: bool = False) -> None:
        """Ask the worker of `kind` `key` to reconcile soon (nothing if it does not run); `urgent` (a user
        changed the object: UpdateService, StopTask) starts the round at once, without the batching window
        that gathers a burst of events from the cluster into one round."""
        entry = self._wakeups.get((kind, key))
        if entry is not None:
            loop, event = entry
            self._woken.add((kind, key))
            if urgent:
                self._urgent.add((kind, key))
            loop.call_soon_threadsafe(event.set)

    async def run(self, kind: str, key: Hashable, observe: Callable[[], T | None], reconcile: Callable[[T], float | None],
                  stopped: Stopped, cadence: Cadence, failed: Failed) -> None:
        """The worker's loop, until `stopped` is set. `observe` returns None while there is nothing to
        reconcile (the object not in the index yet); `reconcile` returns the seconds until it wants to be
        called again (None: at the resync)."""
        loop = asyncio.get_running_loop()
        wakeup = asyncio.Event()
        self._wakeups[(kind, key)] = (loop, wakeup)
        metrics.known_kind(kind)
        reconciling = metrics.RECONCILING.labels(kind)
        delay = 0.0
        try:
            while not stopped.is_set():
                if delay > 0:
                    await _next_round(wakeup, stopped, delay, cadence.batching, lambda: (kind, key) in self._urgent)
                    if stopped.is_set():
                        break
                wakeup.clear()
                self._woken.discard((kind, key))
                self._urgent.discard((kind, key))
                observed = observe()
                if observed is None:
                    delay = cadence.resync
                    continue
                context = contextvars.copy_context()
                reconciling.inc()
                start = time.perf_counter()
                try:
                    due = await loop.run_in_executor(self._pool(kind), context.run, reconcile, observed)
                    metrics.reconciled(kind, time.perf_counter() - start, ok=True)
                except Exception as e:  # a worker never dies: `failed` reports, the next round repairs
                    metrics.reconciled(kind, time.perf_counter() - start, ok=False)
                    due = context.run(failed, e)
                finally:
                    reconciling.dec()
                delay = cadence.resync if due is None else max(0.0, min(cadence.resync, due))
        finally:
            if self._wakeups.get((kind, key), (None, None))[1] is wakeup:
                del self._wakeups[(kind, key)]
                self._woken.discard((kind, key))
                self._urgent.discard((kind, key))


async def _next_round(wakeup: asyncio.Event, stopped: Stopped, timeout: float, batching: Batching,
                      urgent: Callable[[], bool]) -> None:
    """Wait `timeout`, or for a wake-up and then the end of its burst (none for an urgent one); a stop ends
    the wait at once."""
    if not await _first(wakeup, stopped, timeout) or stopped.is_set():
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + batching.max
    while not stopped.is_set() and not urgent() and (left := deadline - loop.time()) > 0:
        wakeup.clear()
        if not await _first(wakeup, stopped, min(batching.idle, left)):
            return


async def _first(wakeup: asyncio.Event, stopped: Stopped, timeout: float) -> bool:
    """Whether `wakeup` was set within `timeout` (a stop also ends the wait)."""
    woken, halted = asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait({woken, halted}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        halted.cancel()
    return wakeup.is_set()
