"""The namespace's volume claims that tasks name (translate/volumes.py): created when missing, before the
Pods that mount them, controlled by the ECS Cluster the tasks run in (they outlive any one task, as a shared
Docker volume or an EFS mount does in ECS). An existing claim of that name is used as it is, never written."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.adapters.kube import ApiError, Kube, OwnershipConflict
from ecs_operator.translate.volumes import CLAIM_ANNOTATION, CLUSTER_UID_LABEL, SharedClaim, storage_objects

logger = logging.getLogger("ecs_operator")


def provide_claims(kube: Kube, claims: Iterable[SharedClaim], namespace: str, cluster: Mapping[str, Any] | None) -> None:
    """Each claim to create (and the PersistentVolume an EFS claim is pre-bound to) that does not exist yet."""
    wanted = [c for c in claims if c.create]
    if not wanted or cluster is None:
        return
    owner = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Cluster", "name": cluster["name"], "uid": cluster["uid"]}
    for obj in storage_objects(wanted, namespace, owner):
        if obj["kind"] == "PersistentVolume":
            _volume(kube, obj)
            continue
        with contextlib.suppress(OwnershipConflict):  # a claim the user made (or another Cluster's): used as it is
            kube.create(obj)


def _volume(kube: Kube, pv: dict[str, Any]) -> None:
    """A PersistentVolume is cluster-scoped: no ownerReference to a namespaced Cluster; its name hashes the
    namespace, claim and Cluster UID, and an existing one must be pre-bound to the same claim."""
    try:
        kube.create(pv)
    except ApiError as e:
        if e.status != 409:
            raise
        live = kube.get_like(pv) or {}
        claim = ((live.get("metadata") or {}).get("annotations") or {}).get(CLAIM_ANNOTATION)
        if claim != pv["metadata"]["annotations"][CLAIM_ANNOTATION]:
            logger.warning("PersistentVolume %s exists for %s, not %s: not written", pv["metadata"]["name"], claim,
                           pv["metadata"]["annotations"][CLAIM_ANNOTATION])


def release_volumes(kube: Kube, cluster_uid: str) -> None:
    """The deleted Cluster's PersistentVolumes (no ownerReference can delete a cluster-scoped object with a
    namespaced owner). Kubernetes' pv-protection keeps each until its claim, which the Cluster controls, is gone;
    the EFS file system itself is never touched (reclaim policy Retain)."""
    for pv in kube.list("PersistentVolume", label_selector=f"{CLUSTER_UID_LABEL}={cluster_uid}"):
        kube.delete("PersistentVolume", None, pv["metadata"]["name"], uid=pv["metadata"]["uid"])
