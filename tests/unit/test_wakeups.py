"""Delayed reconciles: one pending call per key (bursts coalesce), run in the scheduling context."""

from __future__ import annotations

import contextvars
import threading

from ecs_operator.handlers.wakeups import later

REQUEST = contextvars.ContextVar("request", default="none")


def test_calls_for_one_key_coalesce_and_keys_are_independent() -> None:
    calls: list[str] = []
    done = threading.Event()

    def record(what: str) -> None:
        calls.append(what)
        if len(calls) == 2:
            done.set()

    for _ in range(5):  # a burst of events for one node: one look
        later(("node", "a"), 0.05, lambda: record("a"))
    later(("node", "b"), 0.05, lambda: record("b"))
    assert done.wait(5)
    assert sorted(calls) == ["a", "b"]


def test_a_key_can_be_scheduled_again_once_its_call_ran() -> None:
    ran = threading.Semaphore(0)
    later("again", 0.01, ran.release)
    assert ran.acquire(timeout=5)
    later("again", 0.01, ran.release)
    assert ran.acquire(timeout=5)


def test_the_call_runs_in_the_context_it_was_scheduled_in() -> None:
    seen: list[str] = []
    done = threading.Event()
    REQUEST.set("handler-context")  # kopf.event() finds the operator's settings this way

    def check() -> None:
        seen.append(REQUEST.get())
        done.set()

    later("context", 0.01, check)
    assert done.wait(5) and seen == ["handler-context"]


def test_a_failing_call_does_not_stop_later_ones() -> None:
    done = threading.Event()

    def fail() -> None:
        raise RuntimeError("the API went away")

    later("failing", 0.01, fail)
    later("after", 0.05, done.set)
    assert done.wait(5)
