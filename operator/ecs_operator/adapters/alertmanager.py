"""Deployment alarms read from Alertmanager's API v2 (docs/ecs-semantics.md §Deployment alarms).

An alarm name is a Prometheus alert's `alertname`; the alarm is in ALARM for a service while Alertmanager holds an
active alert (not silenced, not inhibited) with that name whose `namespace` label is the service's namespace. An
alert without a `namespace` label is in ALARM for no service: an alert any tenant's rule can raise must not roll back
another tenant's deployment. One GET per alarm name (`/api/v2/alerts?active=true&silenced=false&inhibited=false&
filter=alertname="..."&filter=namespace="..."`), an answer kept for a few seconds so that services woken together
share it. Reads only: the operator never writes to Alertmanager.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from urllib.parse import urlencode

import urllib3

from ecs_operator.lifecycle.service_alarms import AlarmReading

TIMEOUT = urllib3.Timeout(connect=2.0, read=3.0)
FRESH_SECONDS = 2.0
"""How long one answer serves every service asking the same question."""
NOT_CONFIGURED = ("no Alertmanager is configured: start the operator with --alertmanager-url "
                  "(chart value ecs.alertmanagerUrl, environment ECS_OPERATOR_ALERTMANAGER_URL)")


def matcher(label: str, value: str) -> str:
    """An Alertmanager equality matcher, the value quoted as its matcher syntax quotes it."""
    return f'{label}="' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def alerts_url(base: str, alertname: str, namespace: str) -> str:
    query = urlencode([("active", "true"), ("silenced", "false"), ("inhibited", "false"),
                       ("filter", matcher("alertname", alertname)), ("filter", matcher("namespace", namespace))])
    return f"{base.rstrip('/')}/api/v2/alerts?{query}"


def in_alarm(alerts: object, alertname: str, namespace: str) -> bool:
    """Whether the answer holds an active alert of that name for that namespace (checked again here: a filter an
    older Alertmanager ignores must not widen the match)."""
    if not isinstance(alerts, list):
        raise ValueError("the answer is not a list of alerts")
    for alert in alerts:
        labels = (alert or {}).get("labels") or {}
        state = ((alert or {}).get("status") or {}).get("state", "active")
        if labels.get("alertname") == alertname and labels.get("namespace") == namespace and state != "suppressed":
            return True
    return False


class Alertmanager:
    """The alarm source of the process (one per Context, made on first use)."""

    def __init__(self) -> None:
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=4, retries=False, timeout=TIMEOUT)
        self._answers: dict[tuple[str, str, str], tuple[float, bool | str]] = {}
        self._guard = threading.Lock()

    def read(self, url: str, namespace: str, names: Sequence[str]) -> AlarmReading:
        """The alarms of `names` in ALARM for `namespace`; a problem (naming the URL) when one could not be read."""
        if not url:
            return AlarmReading(problem=NOT_CONFIGURED, configured=False)
        firing: set[str] = set()
        for name in names:
            answer = self._answer(url, name, namespace)
            if isinstance(answer, str):
                return AlarmReading(problem=answer)
            if answer:
                firing.add(name)
        return AlarmReading(frozenset(firing))

    def _answer(self, url: str, name: str, namespace: str) -> bool | str:
        key = (url, name, namespace)
        now = time.monotonic()
        with self._guard:
            cached = self._answers.get(key)
            if cached is not None and now - cached[0] < FRESH_SECONDS:
                return cached[1]
        answer = self._get(url, name, namespace)
        with self._guard:
            self._answers = {k: v for k, v in self._answers.items() if now - v[0] < FRESH_SECONDS}
            self._answers[key] = (now, answer)
        return answer

    def _get(self, url: str, name: str, namespace: str) -> bool | str:
        """True/False, or why Alertmanager could not answer."""
        try:
            response = self._pool.request("GET", alerts_url(url, name, namespace), headers={"Accept": "application/json"})
        except urllib3.exceptions.HTTPError as error:
            return f"Alertmanager at {url} did not answer ({type(error).__name__})"
        if response.status != 200:
            return f"Alertmanager at {url} answered HTTP {response.status}"
        try:
            return in_alarm(json.loads(response.data), name, namespace)
        except ValueError as error:
            return f"Alertmanager at {url} sent an answer that is not its API v2 ({error})"
