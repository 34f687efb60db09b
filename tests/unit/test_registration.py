"""RegisterTaskDefinition's plan: revisions registered once per change, never half-applied, describe's view
and the events of deregistration (docs/ecs-semantics.md §Task definition revisions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecs_operator.lifecycle.registration import (
    POLICY_REFUSED,
    RETRY_SECONDS,
    Observed,
    Plan,
    plan_task_definition,
)
from ecs_operator.registry import StoredRevision, stored
from ecs_operator.settings import Settings
from ecs_operator.translate.policy import ALLOW_ALL, WorkloadPolicy

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
WEB = {"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx:1.27", "memory": 256, "essential": True}]}


def definition(spec: dict[str, Any], status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    return {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition",
            "metadata": {"name": "web", "namespace": "team", "uid": "td-uid", "generation": generation},
            "spec": spec, "status": status or {}}


def plan(body: dict[str, Any], revisions: tuple[StoredRevision, ...] = (), policy: WorkloadPolicy = ALLOW_ALL) -> Plan:
    return plan_task_definition(Observed(body, revisions, policy, Settings()), NOW)


def registered(p: Plan) -> StoredRevision:
    assert p.register is not None
    return stored([{"revision": p.register.number, "data": p.register.data}])[0]


def test_a_new_definition_registers_revision_1_then_describes_it() -> None:
    first = plan(definition(WEB))
    assert first.register is not None and (first.register.family, first.register.number) == ("web", 1)
    assert first.register.data["registeredAt"] == "2026-12-07T12:00:00Z"
    done = plan(definition(WEB), (registered(first),))
    assert done.register is None and done.events == ()
    s = done.status
    assert (s["taskDefinition"], s["status"], s["observedGeneration"]) == ("web:1", "ACTIVE", 1)
    assert s["taskDefinitionArn"].endswith(":task-definition/web:1")
    assert [(c["type"], c["status"], c["reason"]) for c in s["conditions"]] == [("Ready", "True", "Registered")]
    assert plan(definition(WEB, s), (registered(first),)).status == s  # steady state: the same status


def test_a_change_registers_the_next_revision_and_no_change_registers_nothing() -> None:
    one = registered(plan(definition(WEB)))
    changed = {**WEB, "containerDefinitions": [{**WEB["containerDefinitions"][0], "image": "nginx:1.28"}]}  # type: ignore[dict-item]
    again = plan(definition(changed, generation=2), (one,))
    assert again.register is not None and again.register.number == 2
    deregistering = {**WEB, "kubernetes": {"deregisteredRevisions": [1]}}
    assert plan(definition(deregistering, generation=2), (one,)).register is None  # deregistration is no revision


def test_an_invalid_definition_registers_nothing_and_warns_once() -> None:
    bad = {"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 0}]}
    p = plan(definition(bad))
    assert p.register is None and p.requeue_after is None
    ready = p.status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidTaskDefinition")
    assert "containerDefinitions[0].memory" in ready["message"]
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "InvalidTaskDefinition")]
    assert plan(definition(bad, p.status)).events == ()  # the same refusal again: no second Event


def test_a_policy_refusal_registers_nothing_and_is_looked_at_again() -> None:
    privileged = {**WEB, "containerDefinitions": [{**WEB["containerDefinitions"][0], "privileged": True}]}  # type: ignore[dict-item]
    p = plan(definition(privileged), policy=WorkloadPolicy())
    assert p.register is None and p.requeue_after == RETRY_SECONDS
    assert p.status["conditions"][0]["reason"] == POLICY_REFUSED and "privileged" in p.status["conditions"][0]["message"]
    assert plan(definition(privileged)).register is not None  # once the namespace opts in


def test_a_deregistered_revision_is_inactive_with_one_event() -> None:
    one = registered(plan(definition(WEB)))
    active = plan(definition(WEB), (one,)).status
    spec = {**WEB, "kubernetes": {"deregisteredRevisions": [1]}}
    p = plan(definition(spec, active, generation=2), (one,))
    assert [r["status"] for r in p.status["revisions"]] == ["INACTIVE"] and p.status["status"] == "INACTIVE"
    assert [(e.reason, e.message) for e in p.events] == [("Deregistered", "task definition web:1 is INACTIVE")]
    assert plan(definition(spec, p.status, generation=2), (one,)).events == ()
