"""Events a user needs (ECS's state changes, placement failures, refusals), mirrored in the operator's
log: one line per change, where kopf's own lines say only that a handler ran."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import kopf

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
"""Retries of an Event post. Events are best effort: kopf's default (9 attempts, each logged as an
error) floods the log when a namespace is being deleted and refuses new Events."""


def notify(memo: Context, body: Mapping[str, Any], type: str, reason: str, message: str) -> None:
    """An Event about `body` (posted in the background, best effort) and its log line."""
    if body["metadata"].get("namespace"):
        kopf.event(cast(kopf.Body, body), type=type, reason=reason, message=message[:1024], backoffs=POSTING_BACKOFFS)
    else:
        memo.posting.submit(_post_cluster_scoped, memo.kube, cluster_scoped_event(body, type, reason, message[:1024]))
    log(body, logging.WARNING if type == "Warning" else logging.INFO, reason, message)


def cluster_scoped_event(body: Mapping[str, Any], type: str, reason: str, message: str) -> dict[str, Any]:
    """A core/v1 Event whose involvedObject has no namespace, with kopf's fields (eventTime orders
    Events of one second)."""
    meta = body["metadata"]
    moment = datetime.now(UTC)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": CLUSTER_SCOPED_EVENTS_NAMESPACE},
        "involvedObject": {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": meta["name"], "uid": meta["uid"]},
        "type": type, "reason": reason, "message": message, "action": reason,
        "reportingComponent": REPORTING_COMPONENT, "reportingInstance": REPORTING_COMPONENT,
        "source": {"component": REPORTING_COMPONENT},
        "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _post_cluster_scoped(kube: Kube, event: dict[str, Any]) -> None:
    try:
        kube.create(event)
    except ApiError as e:  # Events are auxiliary: as kopf, note the failure and go on
        logger.warning("Failed to post an event: %s. Event: %s %s: %s", e, event["type"], event["reason"], event["message"])


def log(body: Mapping[str, Any], level: int, reason: str, message: str) -> None:
    meta = body["metadata"]
    where = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
    logger.log(level, "%s %s %s: %s", body.get("kind", "object"), where, reason, message)
