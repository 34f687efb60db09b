"""kopf settings, set once at start-up: names of our own, status storage, timeouts, server-side filters."""

from __future__ import annotations

import logging
import re
from typing import Any

import kopf

from ecs_operator import API_GROUP, labels as L
from ecs_operator.runtime.context import Context

REVISION_KIND_LABEL = f"{API_GROUP}/revision-of"
"""Label on the ControllerRevisions that hold TaskDefinition revisions (value: the TaskDefinition's name)."""


class RoutineRunsAtDebug(logging.Filter):
    """kopf logs every successful handler and timer run at INFO (a few lines per object every few
    seconds), which buries what matters: those lines go to DEBUG; failures and our own lines stay."""

    ROUTINE = re.compile(r"^(Handler|Timer|Daemon) '.*' succeeded\.$|^\w+ is processed: \d+ succeeded; 0 failed\.$")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and self.ROUTINE.match(record.getMessage()):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


QUIET_ROUTINE = RoutineRunsAtDebug()
ERROR_BACKOFFS = (0.5, 1.0, 1.5) + (2.0,) * 25
"""kopf's retries of a failed API request (watches included): about as long in all (53 s) as kopf's default
(1, 1, 2, 3, 5, 8, 13, 21: 54 s), but never more than 2 s apart, so the operator is back at most 2 s after
the API server rather than up to 21 s (measured: tests/e2e/test_sandbox_faults.py)."""


@kopf.on.cleanup()
async def stop_workers(memo: Context, **_: Any) -> None:
    """The operator is exiting (SIGTERM): end the workers now rather than after kopf's 5 s grace for tasks it
    did not start itself, so that a leader releases its Lease sooner."""
    memo.workers.stop_all()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    logging.getLogger("kopf.objects").addFilter(QUIET_ROUTINE)
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field="status.kopf")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=API_GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events are posted explicitly; handler noise is not
    settings.execution.max_workers = 32
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.networking.error_backoffs = ERROR_BACKOFFS
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.queueing.worker_limit = None  # indexes with a limit below the object count deadlock (kopf docs)
    managed = f"{L.MANAGED_BY}={L.MANAGED_BY_VALUE}"
    settings.watching.label_selectors["v1", "pods"] = managed
    settings.watching.label_selectors["apps", "v1", "deployments"] = managed
    settings.watching.label_selectors["apps", "v1", "daemonsets"] = managed
    settings.watching.label_selectors["apps", "v1", "replicasets"] = managed
    settings.watching.label_selectors["apps", "v1", "controllerrevisions"] = REVISION_KIND_LABEL
    settings.watching.label_selectors["v1", "services"] = managed
    settings.watching.label_selectors["policy", "v1", "poddisruptionbudgets"] = managed
    settings.watching.label_selectors["networking.k8s.io", "v1", "networkpolicies"] = managed
    settings.watching.label_selectors["discovery.k8s.io", "v1", "endpointslices"] = managed
    settings.watching.label_selectors["v1", "configmaps"] = managed  # FireLens configurations only
    settings.watching.label_selectors["gateway.networking.k8s.io", "v1", "httproutes"] = managed
