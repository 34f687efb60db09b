"""The namespace's opt-in to host-level workloads (workload policy)."""

from __future__ import annotations

from ecs_operator.adapters.kube import Kube
from ecs_operator.settings import Settings
from ecs_operator.translate.policy import FEATURES, OPT_IN_LABEL


def allowed_features(kube: Kube, namespace: str, settings: Settings) -> frozenset[str]:
    """Everything when the namespace is labelled ecs.operator.dev/allow-privileged-workloads=true;
    otherwise what the operator's settings allow everywhere."""
    ns = kube.get("Namespace", None, namespace) or {}
    if ((ns.get("metadata") or {}).get("labels") or {}).get(OPT_IN_LABEL) == "true":
        return frozenset(FEATURES)
    return settings.allowed_workload_features
