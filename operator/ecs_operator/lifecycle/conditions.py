"""metav1.Condition-shaped status conditions (type/status/reason/message/observedGeneration)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

MAX_MESSAGE = 1024


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
