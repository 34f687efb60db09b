"""Reading a Pod (as the API returns it) the way the ECS agent reads its containers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ecs_operator import labels as L


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass(frozen=True)
class PodContainer:
    """A container of the Pod with its spec and status side by side."""

    name: str
    ecs_name: str
    image: str
    essential: bool
    init: bool
    sidecar: bool
    restart_policy: str
    ignored_exit_codes: frozenset[int] | None
    """With restartPolicyRules (ECS restartPolicy with ignoredExitCodes): exits with these codes are final."""
    status: dict[str, Any]

    @property
    def state(self) -> dict[str, Any]:
        return self.status.get("state") or {}

    @property
    def running(self) -> dict[str, Any] | None:
        return self.state.get("running")

    @property
    def terminated(self) -> dict[str, Any] | None:
        return self.state.get("terminated")

    @property
    def waiting(self) -> dict[str, Any] | None:
        return self.state.get("waiting")

    @property
    def exited_for_good(self) -> bool:
        """Stopped and not going to be restarted in place (by the kubelet or ECS's restart policy)."""
        if self.sidecar:
            last = (self.status.get("lastState") or {}).get("terminated")
            return bool(self.terminated or (last and self.status.get("restartCount", 0) > 0))
        if not self.terminated:
            return False
        if self.restart_policy == "Always":
            return False
        if self.ignored_exit_codes is not None:
            return self.terminated.get("exitCode") in self.ignored_exit_codes
        return True


def pod_containers(pod: dict[str, Any]) -> list[PodContainer]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    essential = set(filter(None, annotations.get(L.ESSENTIAL_CONTAINERS, "").split(",")))
    ecs_names: dict[str, str] = json.loads(annotations.get(L.CONTAINER_NAMES, "{}"))
    pod_policy = spec.get("restartPolicy", "Always")
    statuses = {s["name"]: s for s in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])}
    out: list[PodContainer] = []
    for init, items in ((True, spec.get("initContainers") or []), (False, spec.get("containers") or [])):
        for c in items:
            rules = c.get("restartPolicyRules") or []
            ignored = next(
                (frozenset(r["exitCodes"]["values"]) for r in rules if r.get("exitCodes", {}).get("operator") == "NotIn"),
                None,
            )
            out.append(
                PodContainer(
                    name=c["name"],
                    ecs_name=ecs_names.get(c["name"], c["name"]),
                    image=c.get("image", ""),
                    essential=c["name"] in essential,
                    init=init,
                    sidecar=init and c.get("restartPolicy") == "Always",
                    restart_policy=c.get("restartPolicy") or ("Never" if init else pod_policy),
                    ignored_exit_codes=ignored,
                    status=statuses.get(c["name"], {}),
                )
            )
    return out


def health_settings(pod: dict[str, Any]) -> dict[str, dict[str, int]]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    settings: dict[str, dict[str, int]] = json.loads(annotations.get(L.HEALTH_CHECKED_CONTAINERS, "{}"))
    return settings


def unschedulable_message(pod: dict[str, Any]) -> str | None:
    """The scheduler's reason when the Pod fits no node (what ECS reports as RESOURCE:* failures)."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "PodScheduled" and condition.get("status") == "False"
                and condition.get("reason") == "Unschedulable"):
            return condition.get("message") or "no node fits"
    return None
