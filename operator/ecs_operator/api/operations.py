"""The registry of implemented ECS operations: name -> async handler(account, request) -> answer.

Each resource family's module registers its operations with `@operation`; the README's table of
supported operations is checked against this registry."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from .account import Account

Handler = Callable[[Account, dict[str, Any]], Coroutine[Any, Any, dict[str, Any]]]  # async def operations
OPERATIONS: dict[str, Handler] = {}


def operation(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS[name] = handler
        return handler
    return register


def load() -> dict[str, Handler]:
    """Every operation (importing the modules registers them)."""
    from . import (  # noqa: F401
        account_settings,
        capacity_providers,
        clusters,
        container_instances,
        deployments,
        services,
        tags,
        task_definitions,
        tasks,
    )

    return OPERATIONS
