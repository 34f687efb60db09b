"""Namespaces the operator cares about: a namespace's workload policy (its opt-in to host-level
workloads, its request for non-root containers), and the operator's own namespace, where kopf
posts the Events of cluster-scoped objects (CapacityProvider, ContainerInstance)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import kopf
from kubernetes import config

from ecs_operator.adapters.kube import Kube
from ecs_operator.settings import Settings
from ecs_operator.translate.policy import FEATURES, NON_ROOT_LABEL, OPT_IN_LABEL, WorkloadPolicy

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


POLICY_CACHE_SECONDS = 5.0
"""A namespace's policy labels are read at most this often: a burst of tasks costs one request, and a
label change takes effect within seconds (refused tasks are retried by their Cluster's resync)."""
_policies: dict[str, tuple[float, WorkloadPolicy]] = {}


def workload_policy(kube: Kube, namespace: str, settings: Settings) -> WorkloadPolicy:
    """Every feature when the namespace is labelled ecs.operator.dev/allow-privileged-workloads=true,
    otherwise what the operator's settings allow everywhere; non-root when the namespace asks for it."""
    cached = _policies.get(namespace)
    if cached is not None and time.monotonic() - cached[0] < POLICY_CACHE_SECONDS:
        return cached[1]
    ns = kube.get("Namespace", None, namespace) or {}
    labels = (ns.get("metadata") or {}).get("labels") or {}
    allowed = frozenset(FEATURES) if labels.get(OPT_IN_LABEL) == "true" else settings.allowed_workload_features
    policy = WorkloadPolicy(allowed, non_root=labels.get(NON_ROOT_LABEL) == "true")
    _policies[namespace] = (time.monotonic(), policy)
    return policy


def own_namespace() -> str | None:
    """The Pod's namespace in a cluster, the kubeconfig context's namespace outside one."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        pass
    try:
        _, context = config.list_kube_config_contexts()
    except (config.ConfigException, OSError):
        return None
    return (context.get("context") or {}).get("namespace")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own login through the Kubernetes client, which knows no namespace: without this,
    kopf posts cluster-scoped objects' Events in `default`, where a namespaced install (the
    chart's `watchNamespaces`) may not post; the chart lets it post in its own namespace."""
    info = kopf.login_via_client(**kwargs)
    namespace = own_namespace()
    return dataclasses.replace(info, default_namespace=namespace) if info is not None and namespace else info
