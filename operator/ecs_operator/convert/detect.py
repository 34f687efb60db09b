"""Which ECS document a parsed document is, and the ECS input (spec) it stands for.

Recognised: RegisterTaskDefinition input and describe-task-definition output (wrapped in
`taskDefinition` or flattened), a bare containerDefinitions array (Terraform's
container_definitions), CreateService input and describe-services / create-service output,
CreateCluster input and describe-clusters / create-cluster / put-cluster-capacity-providers output,
CreateCapacityProvider input and its describe / create output, RunTask input, and this project's
custom resources.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.models import CreateCapacityProvider, CreateCluster, CreateService, EcsModel, RegisterTaskDefinition, RunTask
from ecs_operator.models.readonly import READ_ONLY

from .load import Document
from .problems import InputError, InputProblem

API = f"{API_GROUP}/{API_VERSION}"
CONVERTIBLE_KINDS = ("TaskDefinition", "Service", "Task", "Cluster", "CapacityProvider")

# Output wrappers: key -> (kind, holds a list). Other keys allowed beside the wrapper key.
WRAPPERS: dict[str, tuple[str, bool]] = {
    "taskDefinition": ("TaskDefinition", False),
    "service": ("Service", False),
    "services": ("Service", True),
    "cluster": ("Cluster", False),
    "clusters": ("Cluster", True),
    "capacityProvider": ("CapacityProvider", False),
    "capacityProviders": ("CapacityProvider", True),
}
WRAPPER_COMPANIONS = frozenset({"failures", "tags", "nextToken"})


@dataclass(frozen=True)
class EcsObject:
    """One ECS input found in a document."""

    kind: str
    """TaskDefinition, Service, Task, Cluster or CapacityProvider."""
    spec: dict[str, Any]
    """The ECS JSON: nulls and read-only fields removed."""
    document: Document
    path: str
    """Where the object sits in its document: "", "taskDefinition", "services[1]"."""
    form: str
    """What the input was, in ECS's words (for the report)."""
    name: str | None = None
    """metadata.name of a custom resource."""
    namespace: str | None = None
    """metadata.namespace of a custom resource (--namespace overrides it)."""
    revision: int = 1
    dropped: tuple[str, ...] = ()
    """Read-only fields that were removed."""
    array: bool = False
    """The document was a bare containerDefinitions array."""

    def file_path(self, spec_path: str) -> str:
        """A path in `spec` as a path in the file (where the user has to look)."""
        if self.array and spec_path.startswith("containerDefinitions["):
            return spec_path[len("containerDefinitions"):]
        if not self.path:
            return spec_path
        if not spec_path:
            return self.path
        return f"{self.path}{spec_path}" if spec_path.startswith("[") else f"{self.path}.{spec_path}"


def detect(document: Document) -> list[EcsObject]:
    data = document.data
    if isinstance(data, list):
        return [_container_array(document, data)]
    if not isinstance(data, dict):
        raise _refuse(document, f"expected an ECS JSON object, got {_what(data)}")
    if "apiVersion" in data:
        return [_custom_resource(document, data)]
    wrapper = _wrapper_key(data)
    if wrapper is not None:
        return _unwrap(document, data, wrapper)
    return [_bare(document, data, "", None)]


def _container_array(document: Document, items: list[Any]) -> EcsObject:
    if not all(isinstance(i, dict) for i in items):
        raise _refuse(document, "a JSON array that is not a list of container definitions (objects with name and image)")
    spec = {"containerDefinitions": [_without_nulls(i) for i in items]}
    return EcsObject("TaskDefinition", spec, document, "", "containerDefinitions array (family taken from the file name)",
                     array=True)


def _custom_resource(document: Document, data: dict[str, Any]) -> EcsObject:
    api, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api, str) or not api.startswith(f"{API_GROUP}/"):
        raise _refuse(document, f"a Kubernetes {kind or 'object'} ({api}), not an ECS document")
    if api != API:
        raise _refuse(document, f"apiVersion {api} is not served; use {API}", "apiVersion")
    if kind not in CONVERTIBLE_KINDS:
        expected = ", ".join(CONVERTIBLE_KINDS)
        raise _refuse(document, f"kind {kind!r} cannot be converted; expected one of {expected}", "kind")
    metadata: dict[str, Any] = data["metadata"] if isinstance(data.get("metadata"), dict) else {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise _refuse(document, "a custom resource needs metadata.name", "metadata.name")
    spec = data.get("spec")
    if not isinstance(spec, dict):
        raise _refuse(document, f"a {kind} needs a spec object", "spec")
    namespace = metadata.get("namespace") if isinstance(metadata.get("namespace"), str) else None
    return EcsObject(kind, _without_nulls(spec), document, "spec", f"{kind} custom resource", name=name,
                     namespace=namespace)


def _wrapper_key(data: dict[str, Any]) -> str | None:
    for key, (_, many) in WRAPPERS.items():
        value = data.get(key)
        if many:
            shaped = isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
        else:
            shaped = isinstance(value, dict)
        if shaped and set(data) - {key} <= WRAPPER_COMPANIONS:
            return key
    return None


def _unwrap(document: Document, data: dict[str, Any], key: str) -> list[EcsObject]:
    kind, many = WRAPPERS[key]
    items = data[key] if many else [data[key]]
    objects = [_bare(document, item, f"{key}[{i}]" if many else key, kind) for i, item in enumerate(items)]
    tags = data.get("tags")
    if kind == "TaskDefinition" and tags and "tags" not in objects[0].spec:
        # describe-task-definition returns the registration's tags beside the task definition
        objects[0].spec["tags"] = tags
    return objects


def _bare(document: Document, data: dict[str, Any], path: str, kind: str | None) -> EcsObject:
    kind = kind or _kind_of(document, data, path)
    read_only = READ_ONLY.get(kind, frozenset())
    spec = {k: _without_nulls(v) for k, v in data.items() if v is not None and k not in read_only}
    dropped = tuple(k for k in data if k in read_only)
    revision = data.get("revision") if kind == "TaskDefinition" else None
    form = _FORMS[kind] + (" (an ECS output: read-only fields dropped)" if dropped else "")
    return EcsObject(kind, spec, document, path, form, revision=revision if isinstance(revision, int) else 1,
                     dropped=dropped)


_FORMS = {
    "TaskDefinition": "RegisterTaskDefinition input",
    "Service": "CreateService input",
    "Task": "RunTask input",
    "Cluster": "CreateCluster input",
    "CapacityProvider": "CreateCapacityProvider input",
}


def _kind_of(document: Document, data: dict[str, Any], path: str) -> str:
    if "image" in data and "containerDefinitions" not in data:
        raise _refuse(document, "a single container definition: put it in a JSON array (Terraform's "
                      "container_definitions) or in the containerDefinitions of a task definition", path)
    found = {kind: sorted(set(data) & keys) for kind, keys in _markers().items()}
    kinds = [kind for kind, keys in found.items() if keys]
    if len(kinds) == 1:
        return kinds[0]
    if len(kinds) > 1:
        mixed = "; ".join(f"{kind}: {', '.join(found[kind])}" for kind in kinds)
        raise _refuse(document, f"mixes fields of different ECS requests ({mixed})", path)
    if "taskDefinition" in data:
        return "Task"  # RunTask needs nothing but taskDefinition
    present = ", ".join(sorted(data)) or "no fields"
    raise _refuse(document, "not an ECS document: expected containerDefinitions (task definition), serviceName or "
                  "desiredCount (service), count or overrides (run-task), clusterName (cluster) or "
                  f"autoScalingGroupProvider (capacity provider); found {present}", path)


@functools.cache
def _markers() -> dict[str, frozenset[str]]:
    """Per kind, the top-level fields (request or read-only output) no other kind has."""
    requests: dict[str, type[EcsModel]] = {"TaskDefinition": RegisterTaskDefinition, "Service": CreateService, "Task": RunTask,
                "Cluster": CreateCluster, "CapacityProvider": CreateCapacityProvider}
    fields = {kind: set(model.model_fields) | READ_ONLY.get(kind, set()) for kind, model in requests.items()}
    return {kind: frozenset(own - set().union(*(f for k, f in fields.items() if k != kind)))
            for kind, own in fields.items()}


def _without_nulls(value: Any) -> Any:
    """ECS exports write absent fields as null (console JSON export): null means absent."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _what(value: Any) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _refuse(document: Document, message: str, path: str = "") -> InputError:
    return InputError(InputProblem(document.where, path, message))
