"""metav1.Condition-shaped status conditions (type/status/reason/message/observedGeneration), and the one
rule for the Event that goes with them: a Warning when a condition turns False for a new reason or message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

MAX_MESSAGE = 1024


@dataclass(frozen=True)
class Notify:
    """A Kubernetes Event on the object the plan is about (and its log line): an action of every plan."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def set_condition(
    conditions: list[dict[str, Any]] | None,
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The conditions with `type_` set; lastTransitionTime moves only when the status flips."""
    out = [dict(c) for c in conditions or [] if c.get("type") != type_]
    previous = next((c for c in conditions or [] if c.get("type") == type_), None)
    value = "True" if status else "False"
    transition = (previous["lastTransitionTime"] if previous and previous.get("status") == value
                  else now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    condition = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:MAX_MESSAGE],
        "lastTransitionTime": transition,
    }
    if generation is not None:
        condition["observedGeneration"] = generation
    out.append(condition)
    return sorted(out, key=lambda c: c["type"])


def condition(conditions: list[dict[str, Any]] | None, body: Mapping[str, Any], type_: str, ok: bool, reason: str,
              message: str, now: datetime, event_reason: str | None = None,
              compare_reason: bool = True) -> tuple[list[dict[str, Any]], Notify | None]:
    """The conditions with `type_` set, and the Warning to post when it turns False for a new reason (unless
    `compare_reason` is False) or message; the Event's reason is `event_reason` or the condition's."""
    previous = next((c for c in conditions or [] if c.get("type") == type_), None)
    new = (previous is None or (compare_reason and previous.get("reason") != reason)
           or previous.get("message") != message[:MAX_MESSAGE])
    event = Notify("Warning", event_reason or reason, message[:MAX_MESSAGE]) if not ok and new else None
    return set_condition(conditions, type_, ok, reason, message, body["metadata"].get("generation"), now), event


def ready(current: Mapping[str, Any], body: Mapping[str, Any], ok: bool, reason: str, message: str,
          now: datetime) -> tuple[list[dict[str, Any]], tuple[Notify, ...]]:
    """The Ready condition and the Warning (none or one) that goes with it."""
    conditions, event = condition(current.get("conditions"), body, "Ready", ok, reason, message, now)
    return conditions, (event,) if event else ()
