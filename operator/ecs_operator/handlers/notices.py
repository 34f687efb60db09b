"""Events a user needs (ECS's state changes, placement failures, refusals), mirrored in the operator's
log: one line per change, where kopf's own lines say only that a handler ran."""

from __future__ import annotations

import logging
from typing import Any, Mapping

import kopf

logger = logging.getLogger("ecs_operator")


POSTING_BACKOFFS = (1.0, 3.0)
"""Retries of an Event post. Events are best effort: kopf's default (9 attempts, each logged as an
error) floods the log when a namespace is being deleted and refuses new Events."""


def notify(body: Mapping[str, Any], type: str, reason: str, message: str) -> None:
    kopf.event(body, type=type, reason=reason, message=message[:1024], backoffs=POSTING_BACKOFFS)
    log(body, logging.WARNING if type == "Warning" else logging.INFO, reason, message)


def log(body: Mapping[str, Any], level: int, reason: str, message: str) -> None:
    meta = body["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    logger.log(level, "%s %s %s: %s", body.get("kind", "object"), where, reason, message)
