"""Run a reconcile again later, once per key: for moments no watch event marks (a health check's
grace running out, a task waiting for its TaskDefinition) and to coalesce bursts of events
(many Pods on one node change: one ContainerInstance status write, not one per Pod).

Process-local on purpose: the resync timers repair whatever a restart forgets.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Hashable

logger = logging.getLogger(__name__)

_pending: dict[Hashable, threading.Timer] = {}
_guard = threading.Lock()


def later(key: Hashable, delay: float, fn: Callable[[], None]) -> None:
    """Call `fn` after `delay` seconds, unless a call for `key` is already pending (that one re-evaluates
    everything and schedules again if needed). `fn` runs in the caller's context: kopf.event() needs it.
    """
    context = contextvars.copy_context()
    with _guard:
        if key in _pending:
            return
        timer = threading.Timer(max(delay, 0.0), _run, (key, context, fn))
        timer.daemon = True
        _pending[key] = timer
    timer.start()


def _run(key: Hashable, context: contextvars.Context, fn: Callable[[], None]) -> None:
    with _guard:
        _pending.pop(key, None)
    try:
        context.run(fn)
    except Exception:  # a wake-up must never kill its thread silently: the resync timers retry
        logger.exception("delayed reconcile %r failed", key)
