"""Helpers the handlers share: kopf's callback typing and the time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

R = TypeVar("R")


def kopf_callback(handler: Callable[..., R]) -> Callable[..., R]:
    """The handler itself, for kopf's decorators: kopf's callback protocols know neither the indexes the
    handlers take by name nor that handlers of namespaced kinds get `namespace` as `str` (not `str | None`)."""
    return handler


def now() -> datetime:
    return datetime.now(UTC)
