"""Lookups in the indexes that several handlers need: revisions, clusters, container instances."""

from __future__ import annotations

from typing import Any

import kopf

from ecs_operator import labels as L
from ecs_operator.arns import parse_task_definition_ref
from ecs_operator.instances import SHARED, instance_for_placement
from ecs_operator.placement.query import Instance
from ecs_operator.registry import StoredRevision, UnknownTaskDefinition, resolve, stored
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision


def resolve_revision(ref: str, namespace: str, revisions: kopf.Index, task_definitions: kopf.Index, settings: Settings,
                     allow_inactive: bool = False) -> Revision:
    """Raises UnknownTaskDefinition with ECS's wording when the reference names nothing usable."""
    return resolve_stored(ref, namespace, revisions, task_definitions, allow_inactive).as_revision(settings)


def resolve_stored(ref: str, namespace: str, revisions: kopf.Index, task_definitions: kopf.Index,
                   allow_inactive: bool = False) -> StoredRevision:
    """The stored revision a reference names, not parsed yet (cheap enough for the event loop)."""
    try:
        family, _ = parse_task_definition_ref(ref)
    except ValueError as e:
        raise UnknownTaskDefinition(str(e)) from None
    registered = stored(revisions.get((namespace, family), []))
    owners = list(task_definitions.get((namespace, family), []))
    deregistered = {r for owner in owners for r in owner["deregistered"]}
    return resolve(ref, registered, deregistered, allow_inactive)


def find_cluster(clusters: kopf.Index, namespace: str, name: str) -> dict[str, Any] | None:
    return next(iter(clusters.get((namespace, name), [])), None)


def instance_names(namespace: str, cluster: str, cluster_nodes: kopf.Index) -> list[str]:
    """The Nodes that are container instances of `cluster` in `namespace`: its own and the shared ones
    (docs/ecs-semantics.md §Clusters belong to a namespace)."""
    label = L.group_label_value(cluster)
    return sorted({*cluster_nodes.get((namespace, label), []), *cluster_nodes.get((SHARED, label), [])})


def cluster_instances(namespace: str, cluster: str, cluster_nodes: kopf.Index, nodes: kopf.Index,
                      node_pods: kopf.Index) -> list[Instance]:
    """The cluster's container instances as the placement code sees them."""
    out: list[Instance] = []
    for node_name in instance_names(namespace, cluster, cluster_nodes):
        node = next(iter(nodes.get(node_name, [])), None)
        if node is not None:
            out.append(instance_for_placement(node, node_pods.get(node_name, [])))
    return out


def access_of(provider_access: kopf.Index) -> dict[str, list[str]]:
    """provider -> the namespaces (or namespace/cluster pairs) it allows, as the translation takes them."""
    return {name: next(iter(entries)) for name, entries in provider_access.items() if entries}


def node_zone(nodes: kopf.Index, node_name: str | None) -> str | None:
    if not node_name:
        return None
    node: dict[str, Any] = next(iter(nodes.get(node_name, [])), {})
    zone: str | None = (node.get("metadata") or {}).get("labels", {}).get("topology.kubernetes.io/zone")
    return zone
