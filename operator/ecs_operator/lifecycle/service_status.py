"""A Service's status as describe-services shows it, and its conditions: each condition that turns
False for a new reason comes with the Warning Event to post (the caller posts it)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn, service_arn
from ecs_operator.models import ServiceSpec
from ecs_operator.settings import Settings
from ecs_operator.translate.fidelity import ignored_read_only, summarize
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.service import ServicePlan

from .conditions import condition
from .service_deployments import Advance
from .service_events import ServiceEvent

Conditions = list[dict[str, Any]]
CONNECT = "ServiceConnect"


def ready(current: Mapping[str, Any], service: Mapping[str, Any], ok: bool, reason: str, message: str,
          now: datetime) -> tuple[Conditions, ServiceEvent | None]:
    """The Ready condition, with a Warning Event when it turns False for a new reason or message."""
    return _condition(current.get("conditions") or [], service, "Ready", ok, reason, message, now, reason)


def connect_condition(conditions: Conditions, service: Mapping[str, Any], enabled: bool, unserved: list[str],
                      now: datetime) -> tuple[Conditions, ServiceEvent | None]:
    """ServiceConnect False (with a Warning Event when that is new) while an endpoint cannot be served;
    no condition without Service Connect (docs/ecs-semantics.md §Service Connect)."""
    if not enabled:
        return [c for c in conditions if c.get("type") != CONNECT], None
    message = "; ".join(unserved) or "every client alias resolves in the tasks of its namespace"
    return _condition(conditions, service, CONNECT, not unserved, "NameNotServed" if unserved else "NamesServed",
                      message, now, "ServiceConnectNameNotServed", compare_reason=False)


def _condition(conditions: Conditions, service: Mapping[str, Any], type_: str, ok: bool, reason: str, message: str,
               now: datetime, event_reason: str, compare_reason: bool = True) -> tuple[Conditions, ServiceEvent | None]:
    """The shared condition rule (lifecycle/conditions.py), its Warning as a service event."""
    conditions, event = condition(conditions, service, type_, ok, reason, message, now, event_reason, compare_reason)
    return conditions, None if event is None else ServiceEvent(event.message, event.type, event.reason)


def service_status(current: Mapping[str, Any], service: Mapping[str, Any], svc: ServiceSpec, step: Advance, desired: int,
                   events: list[dict[str, str]], plan: ServicePlan, revision: Revision, trigger: str, settings: Settings,
                   cluster_name: str) -> dict[str, Any]:
    """Everything describe-services reports but the conditions and stopped tasks."""
    ecs_name = svc.serviceName or service["metadata"]["name"]
    primary = step.deployments[0]
    entries = plan.report.entries(svc.to_json())
    status = {
        **current,
        "serviceName": ecs_name,
        "serviceArn": service_arn(settings, cluster_name, ecs_name),
        "clusterName": cluster_name,
        "clusterArn": cluster_arn(settings, cluster_name),
        "status": "ACTIVE",
        "schedulingStrategy": svc.schedulingStrategy or "REPLICA",
        "taskDefinition": primary.taskDefinition,
        "desiredCount": desired,
        "runningCount": sum(d.runningCount for d in step.deployments),
        "pendingCount": sum(d.pendingCount for d in step.deployments),
        "rolloutState": primary.rolloutState,
        "deployments": [d.model_dump(mode="json", exclude_none=True) for d in step.deployments],
        "events": events,
        "selector": f"{L.SERVICE}={L.group_label_value(service['metadata']['name'])}",
        "fidelity": {**summarize(entries), "fields": [e.to_json() for e in entries if e.verdict != "exact"],
                     "taskDefinition": summarize(plan.template_report.entries(revision.definition.to_json()))["summary"],
                     **ignored_read_only(svc)},
        "deploymentTrigger": trigger,
        "observedGeneration": service["metadata"].get("generation"),
    }
    status.pop("lastCompletedDeployment", None)
    if step.last_completed is not None:
        status["lastCompletedDeployment"] = step.last_completed.model_dump(mode="json", exclude_none=True)
    return status
