"""Events a user needs (ECS's state changes, placement failures, refusals), mirrored in the operator's
log: one line per change, where kopf's own lines say only that a handler ran."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.runtime.context import Context

logger = logging.getLogger("ecs_operator")

CLUSTER_SCOPED_EVENTS_NAMESPACE = "default"
"""Where the Events of cluster-scoped objects go, as those of Nodes: the API server accepts an Event
whose involvedObject has no namespace only there or in kube-system (where the operator never writes), and
`kubectl describe` of a cluster-scoped object finds only such Events. kopf's own Events about them (handler
warnings, filed here too: see namespaces.login) carry involvedObject.namespace, which `kubectl describe` never shows."""
REPORTING_COMPONENT = "ecs-operator"


POSTING_BACKOFFS = (1.0, 3.0)
"""Retries of an Event the API server could not take (unreachable, busy). Events are best effort: more
retries (kopf's default is 9, each logged as an error) only flood the log."""


def notify(memo: Context, body: Mapping[str, Any], type: str, reason: str, message: str) -> None:
    """An Event about `body` (posted in the background by the Context's posters, best effort) and its log line.
    Not kopf.event(): kopf posts its queue one Event at a time, so after a thousand services came up at once
    their Events were still being posted minutes into the steady state (883 a minute, bench_scale.py)."""
    memo.posting.submit(_post, memo.kube, event_for(body, type, reason, message[:1024]))
    log(body, logging.WARNING if type == "Warning" else logging.INFO, reason, message)


def event_for(body: Mapping[str, Any], type: str, reason: str, message: str) -> dict[str, Any]:
    """A core/v1 Event with kopf's fields (eventTime orders the Events of one second: the posters run side by
    side); a cluster-scoped object's goes to CLUSTER_SCOPED_EVENTS_NAMESPACE."""
    meta = body["metadata"]
    moment = datetime.now(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": meta["name"], "uid": meta["uid"]}
    if meta.get("namespace"):
        involved["namespace"] = meta["namespace"]
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace") or CLUSTER_SCOPED_EVENTS_NAMESPACE},
        "involvedObject": involved,
        "type": type, "reason": reason, "message": message, "action": reason,
        "reportingComponent": REPORTING_COMPONENT, "reportingInstance": REPORTING_COMPONENT,
        "source": {"component": REPORTING_COMPONENT},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _post(kube: Kube, event: dict[str, Any]) -> None:
    for delay in (*POSTING_BACKOFFS, None):
        try:
            kube.create(event)
            return
        except ApiError as e:  # Events are auxiliary: as kopf, note the failure and go on
            if e.namespace_terminating:
                return  # the object goes with its namespace: nobody will read it
            if delay is None or not e.temporary:
                logger.warning("Failed to post an event: %s. Event: %s %s: %s", e, event["type"], event["reason"],
                               event["message"])
                return
            time.sleep(delay)


def log(body: Mapping[str, Any], level: int, reason: str, message: str) -> None:
    meta = body["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    logger.log(level, "%s %s %s: %s", body.get("kind", "object"), where, reason, message)
