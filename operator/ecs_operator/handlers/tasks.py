"""Task (RunTask): creates the task Pods once, then follows them through ECS's life cycle.

A worker per Task (runtime/workers.py), started by the Task's first event, observes (task_observe.py),
asks the pure plan of lifecycle/task_reconcile.py what to do and acts: the launch, Pod deletions, Events,
then one status write (urgent ones at once, the others within the flush window: runtime/status.py).
Task, Pod, TaskDefinition and Cluster events wake it; it also looks again when the plan asks (a pending
Task's grace, a health check's grace, the stopped-task TTL) and at the resync. It writes only what
changed: nothing at steady state.

The worker is started from the Task's event handler, not as a kopf daemon: a daemon needs a finalizer
on every Task (one more write per task, and deleting a Task would wait for the operator), and kopf adds
it before the daemon starts, a round trip on the launch path. Pod names are deterministic, so a repeated
creation (after a crash) finds the Task's own Pod; a Pod of that name the Task does not control is a
conflict, never adopted.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ecs_operator import labels as L, metrics
from ecs_operator.adapters.kube import ApiError, OwnershipConflict
from ecs_operator.lifecycle.conditions import Notify
from ecs_operator.lifecycle.task_reconcile import (
    DeletePod,
    DeleteTask,
    Launch,
    LaunchOutcome,
    Log,
    PodCreated,
    PodRefused,
    TaskObserved,
    TaskPlan,
    plan_launched,
    plan_task,
)
from ecs_operator.ownership import conflict, controller_of
from ecs_operator.runtime.context import Context
from ecs_operator.runtime.workers import Batching, Cadence

from .children import claim, key_of
from .common import kopf_callback
from .notices import log, notify
from .resources import CLUSTERS, CONTROLLER_REVISIONS, NODES, PODS, TASK_DEFINITIONS, TASKS
from .setup import REVISION_KIND_LABEL
from .storage import provide_claims
from .task_memory import Unlaunched
from .task_observe import INDEXES, KIND, Seen, snapshot, with_policy

logger = logging.getLogger("ecs_operator")

RESYNC_SECONDS = 60.0
"""A Task no event has touched for this long is looked at again (level-triggered repair)."""
RETRY_SECONDS = 5.0
"""When the API fails a request (timeout, 5xx), the Task is reconciled again after this long."""
CADENCE = Cadence(RESYNC_SECONDS, Batching(idle=0.0, max=0.25))
"""No idle window: a wake-up is reconciled at once (RUNNING is reported as soon as the Pod shows it); the
events that arrive while a round runs are the next round, one for all of them."""

@kopf.on.event(*TASKS)
@kopf_callback
async def task_changed(type: str, body: kopf.Body, name: str, namespace: str, memo: Context, **ix: Any) -> None:
    """Every change of a Task, and each Task once at start-up: its worker starts (its first round at once)
    or is woken. No kopf timers or daemons: kopf then puts no finalizer and no bookkeeping on Tasks."""
    key = (namespace, name)
    if type == "DELETED":
        memo.workers.stop(KIND, key)
        memo.state(Unlaunched).mark(key, False)
        memo.status(KIND).forget(body)
        metrics.TASKS.forget(key)
        return
    indexes = {name: ix[name] for name in INDEXES}
    memo.workers.start(KIND, key, lambda: snapshot(memo, key, indexes), lambda seen: reconcile(memo, seen), CADENCE,
                       lambda error: failed(key, error))


@kopf.on.event(*PODS, labels={L.TASK: kopf.PRESENT})
@kopf_callback
async def task_pod_changed(body: kopf.Body, name: str, namespace: str, memo: Context, **_: Any) -> None:
    memo.unindexed.seen("Pod", namespace, name)  # from now on the index knows this Pod (or its deletion)
    owner = controller_of(body)
    if owner is not None and owner.get("kind") == "Task":
        memo.workers.wake(KIND, (namespace, owner["name"]))


@kopf.on.event(*NODES)
@kopf_callback
async def task_node_gone(type: str, name: str, node_pods: kopf.Index, memo: Context, **_: Any) -> None:
    """A container instance's Node deleted: the Tasks with Pods there stop at once (their host is gone)."""
    if type != "DELETED":
        return
    for pod in node_pods.get(name, []):
        owner = controller_of(pod)
        if owner is not None and owner.get("kind") == "Task":
            memo.workers.wake(KIND, (pod["metadata"]["namespace"], owner["name"]))


@kopf.on.event(*TASK_DEFINITIONS)
@kopf.on.event(*CONTROLLER_REVISIONS, labels={REVISION_KIND_LABEL: kopf.PRESENT})
@kopf.on.event(*CLUSTERS)
@kopf_callback
async def launch_waiting(namespace: str, memo: Context, **_: Any) -> None:
    """A revision registered, a TaskDefinition or Cluster changed: the Tasks of that namespace that have
    not launched (waiting, or refused) try again."""
    for key in memo.state(Unlaunched).of(namespace):
        memo.workers.wake(KIND, key)


def failed(key: tuple[str, str], error: Exception) -> float:
    """The API failing us (a timeout, a 5xx) is retried shortly; anything else too, and logged in full."""
    if isinstance(error, ApiError):
        logger.warning("Task %s/%s Retrying: the API refused a request (%s); trying again in %s s", *key, error, RETRY_SECONDS)
    else:
        logger.error("Task %s/%s: reconcile failed", *key, exc_info=error)
    return RETRY_SECONDS


def reconcile(memo: Context, seen: Seen) -> float | None:
    """One round: the plan and its actions; returns when to look again (a held status write included)."""
    observed = with_policy(memo, seen)
    return act(memo, observed, plan_task(observed, memo.clock()))


def act(memo: Context, observed: TaskObserved, plan: TaskPlan) -> float | None:
    """The plan's actions in order, then one status write (held within the flush window unless urgent)."""
    kube, body = memo.kube, observed.body
    meta = body["metadata"]
    for action in plan.actions:
        match action:
            case Launch():
                return act(memo, observed, plan_launched(observed, action, launch(memo, observed, action), memo.clock()))
            case DeletePod(name, uid, grace):
                kube.delete("Pod", meta["namespace"], name, grace_seconds=grace, uid=uid)
            case Notify(type_, reason, message):
                notify(memo, body, type=type_, reason=reason, message=message)
            case Log(warning, reason, message):
                log(body, logging.WARNING if warning else logging.INFO, reason, message)
            case DeleteTask():
                kube.delete("Task", meta["namespace"], meta["name"])
                memo.state(Unlaunched).mark((meta["namespace"], meta["name"]), False)
                memo.status(KIND).forget(body)
                metrics.TASKS.forget((meta["namespace"], meta["name"]))
                return None
    writer = memo.status(KIND)
    if plan.status is not None:
        writer.write(body, plan.status, plan.urgent)
    else:
        writer.flush(body)
    # the tasks gauge: what this round decided (a status held for the flush window included)
    records = writer.current(body).get("tasks") or []
    metrics.TASKS.set((meta["namespace"], meta["name"]), [t.get("lastStatus", "") for t in records])
    memo.state(Unlaunched).mark((meta["namespace"], meta["name"]), not records)
    times = [t for t in (plan.requeue_after, writer.due(body)) if t is not None]
    return min(times) if times else None


def launch(memo: Context, observed: TaskObserved, action: Launch) -> LaunchOutcome:
    """RunTask's writes: every name claimed first (nothing is written if one is taken), the extra objects,
    then the Pods (the Task's own Pods from before a crash are kept)."""
    kube, translation = memo.kube, action.translation
    owned = {("Pod", n): p for n, p in observed.pods.items()}
    planned = [*translation.pods, *translation.extra]
    # a single Pod needs no claim: its create is one (a name held by another object is the 409 read then, below);
    # saving the read before the write takes a round trip off RunTask's latency
    uids, conflicts = claim(kube, planned, owned, translation.origins) if len(planned) > 1 else ({}, [])
    if conflicts:
        return LaunchOutcome(conflicts=tuple(conflicts))
    try:
        provide_claims(kube, translation.claims, observed.body["metadata"]["namespace"], observed.cluster)
        for obj in translation.extra:
            kube.apply(obj, uid=uids[key_of(obj)])
        return LaunchOutcome(tuple(create_pod(memo, pod) for pod in translation.pods))
    except OwnershipConflict as e:  # taken between the look and the write: nothing written to it
        where = translation.origins.get((e.existing["kind"], e.existing["metadata"]["name"]), "metadata.name")
        return LaunchOutcome(conflicts=(conflict(where, e.existing),))


def create_pod(memo: Context, pod: dict[str, Any]) -> PodCreated | PodRefused:
    """One task's Pod, known as unindexed before the request, so its first watch event, however early,
    ends the entry. A refusal by admission (e.g. Pod Security) fails the task to start."""
    namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
    memo.unindexed.creating("Pod", pod)
    try:
        created, fresh = memo.kube.create(pod)
    except OwnershipConflict:
        memo.unindexed.seen("Pod", namespace, name)
        raise
    except ApiError as e:
        memo.unindexed.seen("Pod", namespace, name)
        if e.temporary:
            raise
        return PodRefused(name, e.message)
    memo.unindexed.created("Pod", created, fresh)
    return PodCreated(created)
