"""Namespaces the operator cares about: a namespace's workload policy (its opt-in to host-level
workloads, its request for non-root containers), and `default`, where the Events of cluster-scoped
objects (CapacityProvider, ContainerInstance) go."""

from __future__ import annotations

import threading
import time
from typing import Any

import kopf

from ecs_operator.adapters.transport import load_config, read_token
from ecs_operator.runtime.context import Context
from ecs_operator.translate.policy import FEATURES, NON_ROOT_LABEL, OPT_IN_LABEL, WorkloadPolicy

from .notices import CLUSTER_SCOPED_EVENTS_NAMESPACE

POLICY_CACHE_SECONDS = 5.0
"""A namespace's policy labels are read at most this often: a burst of tasks costs one request, and a
label change takes effect within seconds (refused tasks are retried by their Cluster's resync)."""


class Policies:
    """The namespaces' policies as last read, with when (one per process: `memo.state(Policies)`)."""

    def __init__(self) -> None:
        self.read: dict[str, tuple[float, WorkloadPolicy]] = {}
        self.guard = threading.Lock()


def workload_policy(memo: Context, namespace: str) -> WorkloadPolicy:
    """Every feature when the namespace is labelled ecs.operator.dev/allow-privileged-workloads=true,
    otherwise what the operator's settings allow everywhere; non-root when the namespace asks for it."""
    policies = memo.state(Policies)
    with policies.guard:
        cached = policies.read.get(namespace)
    if cached is not None and time.monotonic() - cached[0] < POLICY_CACHE_SECONDS:
        return cached[1]
    ns = memo.kube.get("Namespace", None, namespace) or {}
    labels = (ns.get("metadata") or {}).get("labels") or {}
    allowed = frozenset(FEATURES) if labels.get(OPT_IN_LABEL) == "true" else memo.settings.allowed_workload_features
    policy = WorkloadPolicy(allowed, non_root=labels.get(NON_ROOT_LABEL) == "true")
    with policies.guard:
        policies.read[namespace] = (time.monotonic(), policy)
    return policy


@kopf.on.login()
def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
    """kopf's connection from the operator's own configuration (adapters/transport.py: in-cluster, else the
    kubeconfig), as the operator's requests use it. kopf's built-in logins would differ: without the
    `kubernetes` package its in-cluster login names https://kubernetes.default.svc (cluster DNS) instead of
    the Service's address. kopf posts its own Events about cluster-scoped objects (handler warnings) in
    `default`, beside the operator's: its other logins would use the Pod's or the kubeconfig context's
    namespace, where a namespaced install (the chart's `watchNamespaces`) may not post. A rotated
    ServiceAccount token is read again when kopf logs in again (on a 401)."""
    config = load_config()
    return kopf.ConnectionInfo(
        server=config.server, ca_data=config.ca, insecure=config.insecure or None,
        certificate_data=config.client_cert, private_key_data=config.client_key,
        scheme="Bearer" if config.token or config.token_file else None, token=read_token(config),
        username=config.username, password=config.password, proxy_url=config.proxy_url,
        default_namespace=CLUSTER_SCOPED_EVENTS_NAMESPACE, trust_env=settings.networking.trust_env,
    )
