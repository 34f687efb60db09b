"""The EndpointSlice of each Kubernetes Service a Service asks for, written by the operator.

Kubernetes would list a Pod as ready only when every container is ready, so a non-essential
container that exits (or fails its health check) would take the task out of its load balancer.
ECS keeps such a task registered: the Services have no selector, and the operator lists the tasks
by ECS's rule (lifecycle.task_state.in_service, docs/ecs-semantics.md §Essential containers).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ecs_operator.lifecycle.task_state import in_service

MANAGED_BY = "ecs-operator.ecs.operator.dev"
"""`endpointslice.kubernetes.io/managed-by`: not the EndpointSlice controller's value, so it leaves them alone."""
MAX_ENDPOINTS = 1000
"""The API server's limit per EndpointSlice (a service may run 5,000 tasks: then five slices)."""


def endpoint_slices(service: dict[str, Any], pods: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every live task of the service that has an address, `ready` by ECS's rule, in slices named
    `<service>`, `<service>-2`, ... of at most MAX_ENDPOINTS (at least one, maybe empty)."""
    meta = service["metadata"]
    live = [p for p in pods if (p.get("status") or {}).get("podIP") and not p["metadata"].get("deletionTimestamp")]
    family = "IPv6" if any(":" in p["status"]["podIP"] for p in live) else "IPv4"
    endpoints = []
    for pod in sorted(live, key=lambda p: p["metadata"]["name"]):
        if (":" in pod["status"]["podIP"]) != (family == "IPv6"):
            continue
        ready = in_service(pod)
        endpoint: dict[str, Any] = {
            "addresses": [pod["status"]["podIP"]],
            "conditions": {"ready": ready, "serving": ready, "terminating": False},
            "targetRef": {"kind": "Pod", "namespace": pod["metadata"]["namespace"], "name": pod["metadata"]["name"],
                          "uid": pod["metadata"]["uid"]},
        }
        if (pod.get("spec") or {}).get("nodeName"):
            endpoint["nodeName"] = pod["spec"]["nodeName"]
        endpoints.append(endpoint)
    ports = [{"name": p["name"], "port": p["targetPort"], "protocol": p["protocol"],
              **({"appProtocol": p["appProtocol"]} if p.get("appProtocol") else {})}
             for p in service["spec"].get("ports") or []]
    labels = {**meta.get("labels", {}), "kubernetes.io/service-name": meta["name"],
              "endpointslice.kubernetes.io/managed-by": MANAGED_BY}
    chunks = [endpoints[i:i + MAX_ENDPOINTS] for i in range(0, len(endpoints), MAX_ENDPOINTS)] or [[]]
    return [{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": meta["name"] if i == 0 else f"{meta['name']}-{i + 1}", "namespace": meta["namespace"],
                          "labels": labels,
                          **({"ownerReferences": meta["ownerReferences"]} if "ownerReferences" in meta else {})},
             "addressType": family, "ports": ports, "endpoints": chunk} for i, chunk in enumerate(chunks)]
