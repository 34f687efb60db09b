"""DeleteCluster on Kubernetes (docs/ecs-semantics.md §Deleting a cluster).

ECS refuses DeleteCluster while the cluster holds services or active tasks, and the cluster stays
ACTIVE. Kubernetes cannot refuse a DELETE for what other objects exist, so the Cluster's deletion
waits (its finalizer) while it stays ACTIVE and working; a Service or Task created after the
deletion was asked for is refused as ECS refuses one for an inactive cluster, so the wait ends.
"""

from __future__ import annotations

INACTIVE = "The referenced cluster was inactive"
"""ECS's message (ClusterNotFoundException) for a CreateService or RunTask into a deleted cluster."""


def too_late(created: str | None, launched: bool, deletion: str | None) -> bool:
    """A Service or Task that had not started when its Cluster's deletion was asked for, and was
    created then or later, never joins the cluster. Timestamps are RFC 3339 UTC seconds (they compare
    as text); one created in the same second as the deletion counts as later."""
    return bool(deletion) and not launched and (created or "") >= (deletion or "")


def held_back(services: list[str], tasks: list[str]) -> tuple[str, str] | None:
    """ECS's exception and a message naming what holds the deletion back, or None when nothing does."""
    if services:
        return "ClusterContainsServicesException", (
            f"DeleteCluster waits: the cluster contains services {_some(services)}; delete them first "
            "(the cluster stays ACTIVE until then, and new services and tasks are refused)")
    if tasks:
        return "ClusterContainsTasksException", (
            f"DeleteCluster waits: the cluster contains active tasks {_some(tasks)}; stop them first "
            "(the cluster stays ACTIVE until then, and new services and tasks are refused)")
    return None


def inactive_message(cluster: str, namespace: str) -> str:
    return f"cluster: {INACTIVE}: the Cluster {cluster!r} of namespace {namespace} is being deleted"


def _some(names: list[str], shown: int = 5) -> str:
    """A few names, and how many there are in all (a message stays readable with thousands of tasks)."""
    listed = ", ".join(sorted(names)[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"
