"""A small, typed wrapper over the Kubernetes API: server-side apply with one field manager,
idempotent create/delete, status patches, evictions. Objects are plain dicts (Kubernetes JSON).

Writes of children are ownership-checked here (see ownership.py): `create` and `apply` write only
objects controlled by the owner named in the object's own controller ownerReference, and raise
OwnershipConflict for a name held by anything else; deletes and patches can carry a UID precondition.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from urllib3.exceptions import HTTPError

from ecs_operator import API_GROUP, API_VERSION, metrics
from ecs_operator.adapters.transport import Transport, load_config
from ecs_operator.ownership import controlled_by, controller_of

FIELD_MANAGER = "ecs-operator"
CREATE_ONLY = "1"
"""A resourceVersion no live object has (etcd's first revision): an apply carrying it only creates."""


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        base = f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        if name:
            base += f"/{name}"
        if sub:
            base += f"/{sub}"
        return base


RESOURCES: dict[str, Resource] = {
    "Pod": Resource("", "v1", "pods", True),
    "Service": Resource("", "v1", "services", True),
    "Node": Resource("", "v1", "nodes", False),
    "Namespace": Resource("", "v1", "namespaces", False),
    "Event": Resource("", "v1", "events", True),
    "Secret": Resource("", "v1", "secrets", True),
    "ConfigMap": Resource("", "v1", "configmaps", True),
    "PersistentVolumeClaim": Resource("", "v1", "persistentvolumeclaims", True),
    "PersistentVolume": Resource("", "v1", "persistentvolumes", False),
    "Deployment": Resource("apps", "v1", "deployments", True),
    "DaemonSet": Resource("apps", "v1", "daemonsets", True),
    "ReplicaSet": Resource("apps", "v1", "replicasets", True),
    "ControllerRevision": Resource("apps", "v1", "controllerrevisions", True),
    "NetworkPolicy": Resource("networking.k8s.io", "v1", "networkpolicies", True),
    "EndpointSlice": Resource("discovery.k8s.io", "v1", "endpointslices", True),
    "PodDisruptionBudget": Resource("policy", "v1", "poddisruptionbudgets", True),
    "Lease": Resource("coordination.k8s.io", "v1", "leases", True),
    "HTTPRoute": Resource("gateway.networking.k8s.io", "v1", "httproutes", True),
    "TaskDefinition": Resource(API_GROUP, API_VERSION, "taskdefinitions", True),
    "Task": Resource(API_GROUP, API_VERSION, "tasks", True),
    "Service.ecs": Resource(API_GROUP, API_VERSION, "services", True),
    "Cluster": Resource(API_GROUP, API_VERSION, "clusters", True),
    "CapacityProvider": Resource(API_GROUP, API_VERSION, "capacityproviders", False),
    "ContainerInstance": Resource(API_GROUP, API_VERSION, "containerinstances", False),
}


def resource_key(obj: dict[str, Any]) -> str:
    """Our Service kind shares its name with core/v1 Service: the registry keys ours as Service.ecs."""
    kind: str = obj["kind"]
    if kind == "Service" and obj.get("apiVersion", "").startswith(API_GROUP):
        return "Service.ecs"
    return kind


Refusals = list[tuple[str, str]]
"""(field, message) pairs of a refused object."""


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str, causes: list[dict[str, Any]] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message
        self.causes = causes or []
        """The Status's details.causes: each refused field (`field`) and why (`message`)."""

    @property
    def temporary(self) -> bool:
        return self.status in (0, 429, 500, 502, 503, 504)

    @property
    def namespace_terminating(self) -> bool:
        """The NamespaceLifecycle admission's refusal: nothing new (an Eviction, an Event) in a namespace being deleted."""
        return self.status == 403 and "because it is being terminated" in self.message


class OwnershipConflict(Exception):
    """The name is held by an object the writer does not control: nothing was written to it."""

    def __init__(self, existing: dict[str, Any]) -> None:
        meta = existing.get("metadata") or {}
        super().__init__(f"{existing.get('kind')} {meta.get('namespace') or ''}/{meta.get('name')} is not ours")
        self.existing = existing


class Kube:
    """Thread-safe; one per operator process."""

    def __init__(self, api_client: Transport | None = None, request_timeout: float | None = None) -> None:
        """`api_client`: the transport (default: in-cluster, else the kubeconfig; raises transport.ConfigError);
        `request_timeout`: seconds any one request may take (None: no limit), e.g. a Lease renewal's."""
        self.api = api_client or Transport(load_config())
        self.request_timeout = request_timeout
        self._discovered: dict[tuple[str, str], Resource] = {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", RESOURCES[kind].path(namespace, name))
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
        return list(self._call("GET", RESOURCES[kind].path(namespace), query=query).get("items") or [])

    def collection(self, kind: str, namespace: str | None = None, field_selector: str | None = None
                   ) -> tuple[builtins.list[dict[str, Any]], str]:
        """The objects and the list's resourceVersion: where a watch of them starts."""
        query = [("fieldSelector", field_selector)] if field_selector else []
        listed = self._call("GET", RESOURCES[kind].path(namespace), query=query)
        return builtins.list(listed.get("items") or []), str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def watch(self, kind: str, namespace: str | None, version: str, field_selector: str | None = None,
              timeout_seconds: int = 60) -> Iterator[tuple[str, dict[str, Any]]]:
        """(type, object) of each change after `version` until the API server ends the watch (after
        `timeout_seconds`); an ERROR event (410 Gone: `version` too old) or a failed request is ApiError."""
        query = [*([("fieldSelector", field_selector)] if field_selector else []), ("watch", "true"),
                 ("resourceVersion", version), ("timeoutSeconds", str(timeout_seconds)), ("allowWatchBookmarks", "true")]
        try:
            response = self.api.request("GET", RESOURCES[kind].path(namespace), query=query,
                                        headers={"Accept": "application/json"}, timeout=timeout_seconds + 30, stream=True)
        except HTTPError as e:
            raise ApiError(0, "Unreachable", str(e)) from None
        ended = False
        try:
            if response.status != 200:
                raise ApiError(response.status, response.reason or "", response.read()[:300].decode(errors="replace"))
            for line in response:
                event = json.loads(line)
                if event["type"] == "ERROR":
                    status = event["object"]
                    raise ApiError(int(status.get("code") or 0), status.get("reason") or "", status.get("message") or "")
                yield event["type"], event["object"]
            ended = True
        except HTTPError as e:  # the connection broke mid-watch
            raise ApiError(0, "Unreachable", str(e)) from None
        finally:
            if not ended:  # left mid-stream: the connection still carries the watch, not reusable
                response.close()
            response.release_conn()

    def server_version(self) -> dict[str, Any]:
        """The API server's /version (major, minor, gitVersion)."""
        return self._call("GET", "/version")

    # -- writing -------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any], uid: str | None = None) -> dict[str, Any]:
        """Server-side apply (forced) under the operator's field manager, only to an object controlled
        by `obj`'s controller ownerReference. `uid`: the live object's UID, which it must still have;
        None: create it, which must not exist. The API server checks either (see _apply), so a name
        taken meanwhile is never written to. When the check fails the object is looked at: our own
        (an index lagging behind) is applied to, anything else raises OwnershipConflict."""
        owner = _owner_of(obj)
        try:
            return self._apply(obj, uid)
        except ApiError as e:
            if e.status not in (409, 422):
                raise
            existing = self.get_like(obj)
            if existing is not None and existing["metadata"]["uid"] == uid:
                raise  # a refusal of the change itself
            if existing is not None and not controlled_by(existing, owner):
                raise OwnershipConflict(existing) from None
            return self._apply(obj, existing["metadata"]["uid"] if existing is not None else None)

    def _apply(self, obj: dict[str, Any], uid: str | None) -> dict[str, Any]:
        """metadata.uid is immutable: an apply naming it fails on any other object (422). An apply with
        resourceVersion CREATE_ONLY fails on any existing object (409 Conflict) and creates a missing one."""
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        body = {**obj, "metadata": {**meta, **({"uid": uid} if uid else {"resourceVersion": CREATE_ONLY})}}
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self._call(
            "PATCH", resource.path(meta.get("namespace"), meta["name"]), body=body, query=query,
            content_type="application/apply-patch+yaml",
        )

    def create(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(object, created). Names are deterministic: an existing object of that name is returned only
        if `obj`'s controller ownerReference controls it too (created before a crash); one held by
        anything else raises OwnershipConflict. Without a controller reference a 409 is an ApiError."""
        owner = controller_of(obj)
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        try:
            return self._call("POST", resource.path(meta.get("namespace")), body=obj,
                              query=[("fieldManager", FIELD_MANAGER)]), True
        except ApiError as e:
            if e.status != 409 or owner is None:
                raise
            existing = self.get_like(obj)
            if existing is None:  # deleted since: the next round creates it
                raise ApiError(503, "Conflict", f"{obj['kind']} {meta['name']} was there and is gone") from None
        if not controlled_by(existing, owner):
            raise OwnershipConflict(existing)
        return existing, False

    def dry_run_refusals(self, obj: dict[str, Any]) -> Refusals:
        """(field, message) for each field the API server's validation refuses in `obj`, by a
        server-side dry-run create (nothing is stored); [] when it would be accepted. Refusals that are
        no statement about the object itself (quota, RBAC, an admission policy) are not reported: they
        may change, and the object that meets them reports them. A temporary failure raises."""
        try:
            self._call("POST", self.resource_of(obj).path(obj["metadata"].get("namespace")), body=obj,
                       query=[("dryRun", "All"), ("fieldManager", FIELD_MANAGER)])
        except ApiError as e:
            if e.temporary:
                raise
            if e.status == 400:  # a value the API server cannot even decode (e.g. a malformed quantity)
                return [("", e.message)]
            if e.status != 422 or "ValidatingAdmissionPolicy" in e.message or "admission webhook" in e.message:
                return []
            return [(str(c.get("field") or ""), str(c.get("message") or e.message)) for c in e.causes] or [("", e.message)]
        return []

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; its metadata.resourceVersion makes a concurrent change a 409 ApiError."""
        meta = obj["metadata"]
        return self._call("PUT", self.resource_of(obj).path(meta.get("namespace"), meta["name"]), body=obj,
                          query=[("fieldManager", FIELD_MANAGER)])

    def get_like(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The live object of `obj`'s kind, namespace and name (None if there is none)."""
        meta = obj["metadata"]
        try:
            found = self._call("GET", self.resource_of(obj).path(meta.get("namespace"), meta["name"]))
        except ApiError as e:
            if e.status == 404:
                return None
            raise
        return {"kind": obj["kind"], **found}

    def patch(self, kind: str, namespace: str | None, name: str, patch: dict[str, Any], sub: str | None = None,
              uid: str | None = None) -> dict[str, Any] | None:
        """JSON merge patch; None if the object is gone, or with `uid` if it is no longer that object
        (metadata.uid is immutable: the API server refuses the patch of another object of that name)."""
        if uid is not None:
            patch = {**patch, "metadata": {**(patch.get("metadata") or {}), "uid": uid}}
        try:
            return self._call(
                "PATCH", RESOURCES[kind].path(namespace, name, sub), body=patch,
                content_type="application/merge-patch+json", query=[("fieldManager", FIELD_MANAGER)],
            )
        except ApiError as e:
            if e.status == 404:
                return None
            if (uid is not None and e.status in (409, 422)
                    and (self.get(kind, namespace, name) or {"metadata": {}})["metadata"].get("uid") != uid):
                return None
            raise

    def patch_status(self, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> dict[str, Any] | None:
        return self.patch(kind, namespace, name, {"status": status}, sub="status")

    def delete(
        self, kind: str, namespace: str | None, name: str, grace_seconds: int | None = None,
        propagation: str = "Background", resource: Resource | None = None, uid: str | None = None,
    ) -> bool:
        """True if it was there; a missing object is already deleted. With `uid`, only that object:
        another one of the same name (created since it was read) is left alone (False)."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        if uid is not None:
            body["preconditions"] = {"uid": uid}
        try:
            self._call("DELETE", (resource or RESOURCES[kind]).path(namespace, name), body=body)
            return True
        except ApiError as e:
            if e.status == 404 or (uid is not None and e.status == 409):
                return False
            raise

    def evict(self, namespace: str, name: str, uid: str) -> bool:
        """The Eviction API respects PodDisruptionBudgets: False when one forbids it now. Only the Pod
        with that UID: another of the same name is not the one that was chosen (True: that one is gone)."""
        body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": namespace},
                "deleteOptions": {"preconditions": {"uid": uid}}}
        try:
            self._call("POST", RESOURCES["Pod"].path(namespace, name, "eviction"), body=body)
            return True
        except ApiError as e:
            if e.status in (404, 409) or e.namespace_terminating:  # gone, or going with its namespace
                return True
            if e.status == 429:
                return False
            raise

    # -- arbitrary kinds (scale targets) -------------------------------------------------------
    def resource_of(self, obj: dict[str, Any]) -> Resource:
        key = resource_key(obj)
        if key in RESOURCES and RESOURCES[key].version == obj["apiVersion"].split("/")[-1]:
            return RESOURCES[key]
        return self.discover(obj["apiVersion"], obj["kind"])

    def discover(self, api_version: str, kind: str) -> Resource:
        with self._lock:
            cached = self._discovered.get((api_version, kind))
        if cached:
            return cached
        group, _, version = api_version.rpartition("/")
        path = f"/apis/{api_version}" if group else f"/api/{version}"
        for r in self._call("GET", path).get("resources") or []:
            if r.get("kind") == kind and "/" not in r["name"]:
                found = Resource(group, version, r["name"], bool(r.get("namespaced")))
                with self._lock:
                    self._discovered[(api_version, kind)] = found
                return found
        raise ApiError(404, "NotFound", f"the API has no kind {kind} in {api_version}")

    def get_scale(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return self._call("GET", resource.path(namespace, name, "scale"))

    def set_scale(self, resource: Resource, namespace: str | None, name: str, replicas: int) -> dict[str, Any]:
        return self._call(
            "PATCH", resource.path(namespace, name, "scale"), body={"spec": {"replicas": replicas}},
            content_type="application/merge-patch+json",
        )

    # -- plumbing ------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: Any = None, query: Iterable[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Every request the operator's code makes: counted and timed by verb, resource and code (metrics.py)."""
        start, code = time.perf_counter(), "error"
        try:
            response = self.api.request(
                method, path, query=list(query), body=None if body is None else json.dumps(body).encode(),
                headers={"Content-Type": content_type, "Accept": "application/json"}, timeout=self.request_timeout,
            )
            code = str(response.status)
        except HTTPError as e:  # refused, reset, timed out: the API server away (status 0: temporary)
            raise ApiError(0, "Unreachable", str(e)) from None
        finally:
            metrics.kube_request(method, path, code, time.perf_counter() - start)
        data = response.data
        if not 200 <= response.status < 300:
            message, causes = response.reason or "", []
            with contextlib.suppress(ValueError, AttributeError):
                status = json.loads(data or b"{}")
                message = status.get("message", message)
                causes = list((status.get("details") or {}).get("causes") or [])
            raise ApiError(response.status, response.reason or "", message, causes)
        return json.loads(data) if data else {}


def _owner_of(obj: dict[str, Any]) -> dict[str, Any]:
    owner = controller_of(obj)
    if owner is None:
        raise ValueError(f"{obj['kind']} {obj['metadata']['name']}: "
                         "the operator writes only objects with a controller ownerReference")
    return dict(owner)

