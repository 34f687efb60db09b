"""Executes a Service's decision (lifecycle/service_reconcile.py): its actions in order, then its
Events and the one status write."""

from __future__ import annotations

from datetime import datetime

from ecs_operator import labels as L
from ecs_operator.adapters.kube import ApiError, Kube, OwnershipConflict
from ecs_operator.lifecycle.service_events import ServiceEvent
from ecs_operator.lifecycle.service_reconcile import (
    CONFLICT_RETRY_SECONDS,
    RETRY_SECONDS,
    PodStop,
    ServiceDecision,
    ServiceObserved,
    after_evictions,
    refusal,
)
from ecs_operator.ownership import CONFLICT_REASON, Conflict, conflict, conflicts_text
from ecs_operator.runtime.context import Context
from ecs_operator.scaling.draining import DELETION_COST

from .children import claim, key_of
from .notices import notify
from .service_memory import ServiceMemory
from .storage import provide_claims

STATUS_KIND = "Service.ecs"
"""The Kube resource key of ECS Services (a Kubernetes Service is "Service")."""


class Conflicts(Exception):
    """Child names held by objects the Service does not control: nothing of the plan was written."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflicts_text(conflicts, "Service"))
        self.conflicts = conflicts


def act(memo: Context, observed: ServiceObserved, decision: ServiceDecision, moment: datetime) -> float | None:
    """Executes the decision's actions in order, then posts its Events and writes its status; a
    child the API server refuses turns the decision into a refusal."""
    kube, writer, memory = memo.kube, memo.status(STATUS_KIND), memo.state(ServiceMemory)
    service = observed.service
    meta = service["metadata"]
    _stop(memo, decision.stops)
    if decision.forget:  # a StopTask annotation goes once its task is gone
        kube.patch("Service.ecs", meta["namespace"], meta["name"],
                   {"metadata": {"annotations": {f"{L.STOP_TASK_PREFIX}{t}": None for t in decision.forget}}}, uid=meta["uid"])
    if decision.reported:
        memory.reported((meta["namespace"], meta["uid"]), len(observed.stopped))
    for mark in decision.marks:
        m = mark.pod["metadata"]
        kube.patch("Pod", m["namespace"], m["name"], {"metadata": {"annotations": {DELETION_COST: mark.cost}}}, uid=m["uid"])
    late: list[ServiceEvent] = []
    for eviction in decision.evictions:  # each refused while it would take the service below minimumHealthyPercent
        stopped = sum(kube.evict(p["metadata"]["namespace"], p["metadata"]["name"], uid=p["metadata"]["uid"])
                      for p in eviction.pods)
        if (event := eviction.event(stopped)) is not None:
            late.append(event)
    _hooks(memo, observed, decision)
    try:
        _apply(kube, observed, decision)
        decision = after_evictions(decision, observed.current, late, moment)
    except Conflicts as e:
        decision = refusal(observed, CONFLICT_REASON, str(e), moment, CONFLICT_RETRY_SECONDS)
    except ApiError as e:
        if e.temporary:
            return RETRY_SECONDS
        decision = refusal(observed, "KubernetesRefused", f"the API server refused a child object: {e}", moment)
    for event in decision.events:
        notify(memo, service, type=event.severity, reason=event.reason, message=event.message)
    if decision.write:
        writer.write(service, decision.status)
    return decision.requeue_after


def _hooks(memo: Context, observed: ServiceObserved, decision: ServiceDecision) -> None:
    """Lifecycle hooks: their Tasks started (owned by the Service) or stopped (timed out), and the
    ContinueServiceDeployment annotations of hooks no longer waiting removed (lifecycle/service_hooks.py). A Task
    the API server refuses is a Warning Event; its hook is tried again each round until its timeout."""
    kube, meta = memo.kube, observed.service["metadata"]
    for task in decision.hooks.create:
        try:
            kube.apply(task)
        except (OwnershipConflict, ApiError) as e:
            if isinstance(e, ApiError) and e.temporary:
                continue
            notify(memo, observed.service, type="Warning", reason="LifecycleHookTaskRefused",
                   message=f"lifecycle hook task {task['metadata']['name']} of {task['spec']['taskDefinition']}: {e}")
    for name in decision.hooks.stop:
        kube.patch("Task", meta["namespace"], name, {"spec": {"desiredStatus": "STOPPED",
                                                              "reason": "Lifecycle hook timed out"}})
    if decision.hooks.forget:
        kube.patch("Service.ecs", meta["namespace"], meta["name"],
                   {"metadata": {"annotations": {f"{L.CONTINUE_PREFIX}{h}": None for h in decision.hooks.forget}}},
                   uid=meta["uid"])


def _stop(memo: Context, stops: tuple[PodStop, ...]) -> None:
    """Deletions run in parallel: a crash-looping service can leave many stopped tasks at once."""
    kube, memory = memo.kube, memo.state(ServiceMemory)

    def stop(s: PodStop) -> None:
        meta = s.pod["metadata"]
        memory.stopping(meta["uid"], True)
        grace = 0 if s.lost else (s.pod.get("spec") or {}).get("terminationGracePeriodSeconds")  # lost: no kubelet to wait for
        if not kube.delete("Pod", meta["namespace"], meta["name"], uid=meta["uid"], grace_seconds=grace):
            memory.stopping(meta["uid"], False)

    list(memo.parallel.map(stop, stops))


def _apply(kube: Kube, observed: ServiceObserved, decision: ServiceDecision) -> None:
    """Applies what differs and deletes what the plan no longer has, all only among the objects the
    Service controls (Conflicts, before any write, if a name is held by another)."""
    uids, conflicts = claim(kube, decision.children, observed.owned, decision.origins)
    if conflicts:
        raise Conflicts(conflicts)
    if decision.apply:  # a workload (re)applied: the claims its Pods name first
        provide_claims(kube, decision.claims, observed.service["metadata"]["namespace"], observed.cluster)
    for obj in decision.children:
        if key_of(obj) in decision.apply:
            try:
                kube.apply(obj, uid=uids[key_of(obj)])
            except OwnershipConflict as e:  # taken between the look and the write: nothing written to it
                raise Conflicts([conflict(decision.origins.get(key_of(obj), "metadata.name"), e.existing)]) from None
    for kind, stale, uid in decision.stale:  # e.g. a provider left the strategy
        kube.delete(kind, observed.service["metadata"]["namespace"], stale, uid=uid)
