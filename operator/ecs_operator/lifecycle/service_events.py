"""A Service's Kubernetes Events as typed values: the rule that produces one says how severe it is
(never its wording), and posting it is an action of the handler, never a side effect of a rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["Normal", "Warning"]
SERVICE_EVENT = "ServiceEvent"
"""The reason of the Events that mirror ECS's service events (status.events)."""


@dataclass(frozen=True)
class ServiceEvent:
    message: str
    severity: Severity
    reason: str = SERVICE_EVENT


def normal(message: str) -> ServiceEvent:
    return ServiceEvent(message, "Normal")


def warning(message: str) -> ServiceEvent:
    return ServiceEvent(message, "Warning")
