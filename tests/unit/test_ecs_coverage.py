"""Every field of ECS's input shapes (botocore's ECS model) has a model field and a mapping verdict.

A new ECS field fails here until someone decides what it means on Kubernetes; an enum value ECS
added (or one we invented) fails the enum check.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Iterator

import botocore.session
import pytest
from pydantic import BaseModel

from ecs_operator.models import CreateCapacityProvider, CreateCluster, CreateService, RegisterTaskDefinition, RunTask
from ecs_operator.translate.mapping import TABLES

REQUESTS: dict[str, tuple[type[BaseModel], str]] = {
    "RegisterTaskDefinitionRequest": (RegisterTaskDefinition, "TaskDefinition"),
    "CreateServiceRequest": (CreateService, "Service"),
    "CreateClusterRequest": (CreateCluster, "Cluster"),
    "CreateCapacityProviderRequest": (CreateCapacityProvider, "CapacityProvider"),
    "RunTaskRequest": (RunTask, "Task"),
}


@pytest.fixture(scope="module")
def ecs() -> Any:
    return botocore.session.get_session().get_service_model("ecs")


@dataclass(frozen=True)
class Field:
    """One botocore member: its generic path (list items of structures as `[]`) and shape."""

    path: str
    shape: Any


def botocore_fields(shape: Any, path: str = "", seen: tuple[str, ...] = ()) -> Iterator[Field]:
    """Members of `shape`, recursively through structures, lists and maps (map values as the map)."""
    for name, member in shape.members.items():
        here = f"{path}.{name}" if path else name
        inner = member.member if member.type_name == "list" else member
        if member.type_name == "list" and inner.type_name == "structure":
            here += "[]"
        yield Field(here, member)
        if inner.type_name == "structure" and inner.name not in seen:
            yield from botocore_fields(inner, here, seen + (inner.name,))


@dataclass(frozen=True)
class ModelField:
    """What the model tree holds at a path: a nested model, a free-form dict, or a value type."""

    model: type[BaseModel] | None
    free_form: bool
    annotation: Any


def _unwrap(annotation: Any) -> Any:
    """Drop Optional, Annotated and list wrappers down to the item type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation  # `int | str`: a value type
            annotation = args[0]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def model_field(model: type[BaseModel], path: str) -> ModelField | None:
    """The model field at a generic path, or None; a free-form dict on the way covers what is below it."""
    current: Any = model
    annotation: Any = model
    for part in path.replace("[]", "").split("."):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return ModelField(None, True, annotation) if _is_dict(annotation) else None
        field = current.model_fields.get(part)
        if field is None:
            return None
        annotation = _unwrap(field.annotation)
        current = annotation
    is_model = isinstance(current, type) and issubclass(current, BaseModel)
    return ModelField(current if is_model else None, _is_dict(annotation), annotation)


def _is_dict(annotation: Any) -> bool:
    return annotation is dict or typing.get_origin(annotation) is dict


def _free_form_ancestor(model: type[BaseModel], path: str) -> bool:
    parts = path.split(".")
    return any(
        (found := model_field(model, ".".join(parts[:i]))) is not None and found.free_form and found.model is None
        for i in range(1, len(parts))
    )


@pytest.mark.parametrize("request_shape", REQUESTS)
def test_every_ecs_field_has_a_model_field(ecs: Any, request_shape: str) -> None:
    model, _ = REQUESTS[request_shape]
    missing = [f.path for f in botocore_fields(ecs.shape_for(request_shape)) if model_field(model, f.path) is None]
    assert not missing, f"{model.__name__} lacks these fields of botocore's {request_shape}: {missing}"


@pytest.mark.parametrize("request_shape", REQUESTS)
def test_model_structure_matches_botocore(ecs: Any, request_shape: str) -> None:
    """A botocore structure is a nested model or a free-form dict; a botocore scalar is neither."""
    model, _ = REQUESTS[request_shape]
    wrong = []
    for f in botocore_fields(ecs.shape_for(request_shape)):
        found = model_field(model, f.path)
        if found is None or _free_form_ancestor(model, f.path):
            continue
        inner = f.shape.member if f.shape.type_name == "list" else f.shape
        if inner.type_name == "structure" and found.model is None and not found.free_form:
            wrong.append(f"{f.path}: botocore has a structure, the model {found.annotation}")
        if inner.type_name in ("string", "integer", "boolean", "long", "double") and (found.model or found.free_form):
            wrong.append(f"{f.path}: botocore has a {inner.type_name}, the model a structure")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("request_shape", REQUESTS)
def test_every_ecs_field_has_a_mapping_verdict(ecs: Any, request_shape: str) -> None:
    model, kind = REQUESTS[request_shape]
    rows = {row[0] for row in TABLES[kind]}
    missing = [
        f.path
        for f in botocore_fields(ecs.shape_for(request_shape))
        if not {f.path, f.path.removesuffix("[]"), f.path.removesuffix("[]") + "[]"} & rows
        and not _free_form_ancestor(model, f.path)
    ]
    assert not missing, f"translate/mapping.py TABLES[{kind!r}] has no row for: {missing}"


@pytest.mark.parametrize("request_shape", REQUESTS)
def test_model_fields_exist_in_ecs(ecs: Any, request_shape: str) -> None:
    """The request models invent no fields (the Kubernetes-only ones live in the *Spec subclasses)."""
    model, _ = REQUESTS[request_shape]
    shape = ecs.shape_for(request_shape)

    def invented(m: type[BaseModel], s: Any, path: str) -> Iterator[str]:
        for name, field in m.model_fields.items():
            here = f"{path}.{name}" if path else name
            if name not in s.members:
                yield here
                continue
            member = s.members[name]
            inner = member.member if member.type_name == "list" else member
            sub = _unwrap(field.annotation)
            if isinstance(sub, type) and issubclass(sub, BaseModel) and inner.type_name == "structure":
                yield from invented(sub, inner, here)

    extra = list(invented(model, shape, ""))
    assert not extra, f"{model.__name__} has fields botocore's {request_shape} does not: {extra}"


def _literal_values(annotation: Any) -> set[str] | None:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return {str(v) for v in typing.get_args(annotation)}
    return None


# Enums the ECS API documents but botocore types as plain strings.
DOCUMENTED_ENUMS = {
    ("CreateClusterRequest", "settings[].value"): {"enhanced", "enabled", "disabled"},
}


@pytest.mark.parametrize("request_shape", REQUESTS)
def test_enums_match_botocore(ecs: Any, request_shape: str) -> None:
    """A botocore enum is a Literal of exactly its values in the model, and every Literal is an ECS enum."""
    model, _ = REQUESTS[request_shape]
    wrong = []
    checked = 0
    for f in botocore_fields(ecs.shape_for(request_shape)):
        if _free_form_ancestor(model, f.path):
            continue
        inner = f.shape.member if f.shape.type_name == "list" else f.shape
        enum = set(getattr(inner, "enum", None) or []) or DOCUMENTED_ENUMS.get((request_shape, f.path), set())
        parts = f.path.replace("[]", "").split(".")
        parent = model_field(model, ".".join(parts[:-1])) if len(parts) > 1 else ModelField(model, False, model)
        assert parent is not None and parent.model is not None, f.path
        values = _literal_values(parent.model.model_fields[parts[-1]].annotation)
        if values is None and not enum:
            continue
        checked += 1
        if values != enum:
            wrong.append(f"{f.path}: model {sorted(values or [])} vs botocore {sorted(enum)}")
    assert checked, "no enum fields found: the walk is broken"
    assert not wrong, "\n".join(wrong)
