"""What the ECS Service end-to-end tests share: manifests, watches that record every change, and
the waits for ECS states.

Watches (not polling) sample the cluster: every Pod or Service change the API server reports is
recorded, so a bound that held on every sample held throughout.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import urllib3
from operator_fixtures import get, wait_for

from ecs_operator import API_GROUP, API_VERSION, labels as L
from ecs_operator.adapters.kube import RESOURCES
from ecs_operator.adapters.transport import Transport, kubeconfig_config
from ecs_operator.nodepool.instance_types import build_node, instance_type

DEPLOYMENT_LABEL = f"{API_GROUP}/deployment"
ECS_SERVICE = f"services.{API_GROUP}"


def manifest(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}


def cluster(default_strategy: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterName": "default"}
    if default_strategy:
        spec["defaultCapacityProviderStrategy"] = default_strategy
    return manifest("Cluster", "default", spec)


def task_definition(family: str = "web", image: str = "nginx:1", annotations: dict[str, str] | None = None,
                    **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "family": family,
        "containerDefinitions": [{"name": "app", "image": image, "memory": 64,
                                  "portMappings": [{"containerPort": 80, "name": "http"}], **container}],
    }
    if annotations:
        spec["kubernetes"] = {"podAnnotations": annotations}
    return manifest("TaskDefinition", family, spec)


def service(name: str = "web", task: str = "web:1", desired: int | None = 4, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"cluster": "default", "taskDefinition": task, **spec}
    if desired is not None:
        body["desiredCount"] = desired
    return manifest("Service", name, body)


def apply_all(sandbox: Any, namespace: str, *objects: dict[str, Any]) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))


def merge_patch(sandbox: Any, namespace: str, resource: str, name: str, patch: dict[str, Any]) -> None:
    sandbox.kubectl("patch", resource, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def register(sandbox: Any, namespace: str, td: dict[str, Any], revision: int) -> None:
    """Apply a TaskDefinition and wait until `revision` of its family is registered."""
    apply_all(sandbox, namespace, td)
    wait_for(lambda: (get(sandbox, f"taskdefinitions.{API_GROUP}", td["metadata"]["name"], namespace).get("status") or {})
             .get("revision") == revision, 60, what=f"{td['spec']['family']}:{revision} registered")


def status(sandbox: Any, namespace: str, name: str = "web") -> dict[str, Any]:
    return get(sandbox, ECS_SERVICE, name, namespace).get("status") or {}


def messages(state: dict[str, Any]) -> list[str]:
    """The service's event messages, oldest first."""
    return [e["message"] for e in reversed(state.get("events") or [])]


def steady(sandbox: Any, namespace: str, task: str, running: int, name: str = "web", timeout: float = 120) -> dict[str, Any]:
    """Wait for ECS's steady state: one PRIMARY deployment of `task`, COMPLETED, with `running`
    tasks, and the steady-state event as the newest (after its "deployment completed" event)."""

    def check() -> dict[str, Any] | None:
        state = status(sandbox, namespace, name)
        deployments = state.get("deployments") or []
        if [(d["status"], d["taskDefinition"], d["rolloutState"]) for d in deployments] != [("PRIMARY", task, "COMPLETED")]:
            return None
        if state.get("runningCount") != running or deployments[0]["runningCount"] != running:
            return None
        said = messages(state)
        completed = f"(service {name}) (deployment {deployments[0]['id']}) deployment completed."
        return state if completed in said and said[-1] == f"(service {name}) has reached a steady state." else None

    return wait_for(check, timeout, what=f"service {name} steady with {running} tasks of {task}")


def pods(sandbox: Any, namespace: str, selector: str = "") -> list[dict[str, Any]]:
    args = ["get", "pods", "-n", namespace] + (["-l", selector] if selector else [])
    return sandbox.kubectl_json(*args)["items"]


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions") or [])


def is_live(pod: dict[str, Any]) -> bool:
    """PENDING or RUNNING in ECS terms: not being deleted and not finished."""
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def deployment_of(pod: dict[str, Any]) -> str:
    return "ecs-svc/" + (pod["metadata"].get("labels") or {}).get(DEPLOYMENT_LABEL, "")


@dataclass
class Change:
    type: str
    object: dict[str, Any]
    at: float
    """time.monotonic() when the watch delivered it."""


@dataclass
class Watch:
    """Records every change of one kind of object in a namespace, from a consistent start."""

    transport: Transport
    path: str
    """The list's path, e.g. /api/v1/namespaces/NS/pods."""
    changes: list[Change] = field(default_factory=list)
    current: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: list[dict[str, dict[str, Any]]] = field(default_factory=list)
    """The objects after each change (one entry per change, in order)."""
    errors: list[BaseException] = field(default_factory=list)
    """Broken watch connections it resumed after (a test's timeout message shows them)."""
    _version: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Watch:
        listed = self.transport.request("GET", self.path)
        assert listed.status == 200, f"GET {self.path}: {listed.status} {listed.data[:300]!r}"
        body = json.loads(listed.data)
        for item in body.get("items") or []:
            self.current[item["metadata"]["name"]] = item
        self.snapshots.append(dict(self.current))
        self._thread = threading.Thread(target=self._run, args=(body["metadata"]["resourceVersion"],), daemon=True)
        self._thread.start()
        return self

    def _run(self, version: str) -> None:
        self._version = version
        while not self._stop.is_set():
            try:
                self._follow()
            except (WatchError, urllib3.exceptions.HTTPError, ValueError) as error:  # a broken watch: resume, say so
                self.errors.append(error)
                time.sleep(0.5)

    def _follow(self) -> None:
        """One watch request, from the last version delivered (so a resumed watch repeats nothing)."""
        query = [("watch", "true"), ("resourceVersion", self._version), ("timeoutSeconds", "5"),
                 ("allowWatchBookmarks", "true")]
        response = self.transport.request("GET", self.path, query=query, timeout=35, stream=True)
        try:
            if response.status != 200:
                raise WatchError(f"watch {self.path}: {response.status} {response.read()[:300]!r}")
            for line in response:
                event = json.loads(line)
                raw = event["object"]
                if event["type"] == "ERROR":  # e.g. 410 Gone: as the Kubernetes client's watch raised it
                    raise WatchError(f"watch {self.path}: {raw.get('code')} {raw.get('message')}")
                self._version = raw["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK":
                    continue
                with self._lock:
                    name = raw["metadata"]["name"]
                    if event["type"] == "DELETED":
                        self.current.pop(name, None)
                    else:
                        self.current[name] = raw
                    self.changes.append(Change(event["type"], raw, time.monotonic()))
                    self.snapshots.append(dict(self.current))
                if self._stop.is_set():
                    return
        finally:
            response.release_conn()

    def stop(self) -> Watch:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        return self

    def objects(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.current.values())

    def since(self, moment: float) -> list[Change]:
        with self._lock:
            return [c for c in self.changes if c.at >= moment]


class WatchError(Exception):
    """The API server ended a watch with an error (a resumed watch follows)."""


def api_client(sandbox: Any) -> Transport:
    """The operator's transport to the sandbox (for ecs_operator.adapters.kube.Kube, or a watch)."""
    return Transport(kubeconfig_config(sandbox.kubeconfig))


def watch_pods(sandbox: Any, namespace: str) -> Watch:
    return Watch(api_client(sandbox), RESOURCES["Pod"].path(namespace)).start()


def watch_services(sandbox: Any, namespace: str) -> Watch:
    return Watch(api_client(sandbox), RESOURCES["Service.ecs"].path(namespace)).start()


def cluster_nodes(sandbox: Any) -> list[dict[str, Any]]:
    return sandbox.kubectl_json("get", "nodes", "-l", f"{L.CLUSTER}=default")["items"]


@dataclass
class Nodes:
    """kwok nodes a test adds (and removes again, whatever happens)."""

    sandbox: Any
    names: list[str] = field(default_factory=list)

    def add(self, zone: str, labels: dict[str, str], kind: str = "m5.large") -> str:
        name = f"svc-e2e-{uuid.uuid4().hex[:6]}"
        node = build_node(name, instance_type(kind), zone, labels=labels)
        self.sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
        self.names.append(name)
        wait_for(lambda: any(c["type"] == "Ready" and c["status"] == "True"
                             for c in self.sandbox.kubectl_json("get", "node", name).get("status", {}).get("conditions") or []),
                 60, what=f"node {name} Ready")
        return name

    def remove(self, name: str) -> None:
        self.sandbox.kubectl("delete", "node", name, "--wait=false", check=False)
        self.names.remove(name)

    def remove_all(self) -> None:
        for name in list(self.names):
            self.remove(name)
