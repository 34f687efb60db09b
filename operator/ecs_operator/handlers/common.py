"""Helpers the handlers share: kopf's callback typing, the time, and how a worker reports a failed round."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from ecs_operator.adapters.kube import ApiError

R = TypeVar("R")


def kopf_callback(handler: Callable[..., R]) -> Callable[..., R]:
    """The handler itself, for kopf's decorators: kopf's callback protocols know neither the indexes the
    handlers take by name nor that handlers of namespaced kinds get `namespace` as `str` (not `str | None`)."""
    return handler


def now() -> datetime:
    return datetime.now(UTC)


RETRY_SECONDS = 2.0
"""After a request the API server could not serve (unreachable, 5xx, 429): the next round, well before any resync."""


def failed_round(logger: logging.Logger | logging.LoggerAdapter[logging.Logger], what: str,
                 error: Exception) -> float | None:
    """A worker's failed round: the API server away or busy (a restart, an etcd outage) is one warning line
    and another round in RETRY_SECONDS; anything else is logged in full and waits for the resync."""
    if isinstance(error, ApiError) and error.temporary:
        logger.warning("%s: %s; trying again in %s s", what, error, RETRY_SECONDS)
        return RETRY_SECONDS
    logger.error("%s failed", what, exc_info=error)
    return None
