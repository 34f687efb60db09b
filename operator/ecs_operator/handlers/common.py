"""Helpers the handlers share: time, owner references, conditions with events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from ecs_operator.lifecycle.conditions import set_condition
from ecs_operator.models import Problem

from .notices import notify

R = TypeVar("R")


def kopf_callback(handler: Callable[..., R]) -> Callable[..., R]:
    """The handler itself, for kopf's decorators: kopf's callback protocols know neither the indexes the
    handlers take by name nor that handlers of namespaced kinds get `namespace` as `str` (not `str | None`)."""
    return handler


def now() -> datetime:
    return datetime.now(UTC)


def problems_text(problems: list[Problem]) -> str:
    return "; ".join(str(p) for p in problems)


def ready(status: Mapping[str, Any], body: Mapping[str, Any], ok: bool, reason: str, message: str) -> list[dict[str, Any]]:
    """The Ready condition, with a Warning Event when it turns False for a new reason."""
    return condition(status.get("conditions") or [], body, "Ready", ok, reason, message)


def condition(conditions: list[dict[str, Any]], body: Mapping[str, Any], type_: str, ok: bool, reason: str,
              message: str) -> list[dict[str, Any]]:
    """The conditions with `type_` set, with a Warning Event when it turns False for a new reason or message."""
    previous = next((c for c in conditions if c.get("type") == type_), None)
    if not ok and (previous is None or previous.get("reason") != reason or previous.get("message") != message[:1024]):
        notify(body, type="Warning", reason=reason, message=message)
    return set_condition(conditions, type_, ok, reason, message, body["metadata"].get("generation"), now())
