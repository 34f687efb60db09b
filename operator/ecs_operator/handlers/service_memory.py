"""What this process remembers of each Service between reconciles: what Pod events saw since the last
one (consumed by the reconcile that reports it).

Process-local on purpose: a restart lists every Pod again (placed ones are not reported again) and the
status is read back from the Service.
"""

from __future__ import annotations

import copy
import threading
from collections import defaultdict
from typing import Any

_guard = threading.Lock()
# By (namespace, service UID): a re-created Service of the same name never reports its predecessor's tasks.
_started: defaultdict[tuple[str, str], list[str]] = defaultdict(list)
_stopped: defaultdict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
"""The Pods the scheduler stopped, as last seen (their records are made at the reconcile)."""
_placed: set[str] = set()
"""Pods seen on a node: ECS reports a task started once it is placed, never one that waits for an
instance (docs/ecs-semantics.md §A task is started once it is placed), and reports each once."""
_stopping: set[str] = set()
"""Pods this process deletes as failed: a second look before the deletion shows must not count them
again, and their DELETED event is no stop of the scheduler's."""


def pod_gone(uid: str) -> tuple[bool, bool]:
    """A Pod's DELETED event: whether this process stopped it, and whether it had been placed."""
    with _guard:
        failed, placed = uid in _stopping, uid in _placed
        _stopping.discard(uid)
        _placed.discard(uid)
    return failed, placed


def stopped(key: tuple[str, str], pod: dict[str, Any]) -> None:
    with _guard:
        _stopped[key].append(copy.deepcopy(pod))


def placed(key: tuple[str, str], uid: str, report: bool) -> None:
    """A Pod seen on a node: reported as started once (`report` False: placed before this process)."""
    with _guard:
        if uid not in _placed:
            _placed.add(uid)
            if report:
                _started[key].append(uid.replace("-", ""))


def pending(key: tuple[str, str]) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...], frozenset[str]]:
    """The tasks started and stopped since the last report, and the Pods this process is stopping."""
    with _guard:
        return tuple(_started.get(key, ())), tuple(_stopped.get(key, ())), frozenset(_stopping)


def reported(key: tuple[str, str], started: int, stopped: int) -> None:
    """The first `started` and `stopped` pending tasks are in the status now (more may have come since)."""
    with _guard:
        del _started[key][:started]
        del _stopped[key][:stopped]
        if not _started[key]:
            del _started[key]
        if not _stopped[key]:
            del _stopped[key]


def drop_pending(key: tuple[str, str]) -> None:
    """A Service being deleted reports no more tasks."""
    with _guard:
        _started.pop(key, None)
        _stopped.pop(key, None)


def stopping(uid: str, yes: bool) -> None:
    """Before the deletion (its DELETED event may come before the call returns), and undone if it failed."""
    with _guard:
        if yes:
            _stopping.add(uid)
        else:
            _stopping.discard(uid)
