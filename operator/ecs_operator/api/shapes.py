"""Requests and answers checked against botocore's ECS service model (AWS's own, never copied here)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StringShape, StructureShape
from botocore.validate import ParamValidator

from .errors import invalid_parameter


@functools.cache
def ecs_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("ecs")


def operation_model(name: str) -> OperationModel | None:
    """The model of ECS operation `name`, None if ECS has no such operation."""
    model = ecs_model()
    return model.operation_model(name) if name in model.operation_names else None


def check_input(operation: OperationModel, params: Any) -> dict[str, Any]:
    """The request's members, or InvalidParameterException naming what the model refuses: unknown or
    missing members, wrong types, lengths and ranges (botocore's validator), and values outside an enum."""
    if not isinstance(params, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    shape = operation.input_shape
    if shape is None:
        return {}
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += _enum_problems(params, shape, "")
    if problems:
        raise invalid_parameter("\n".join(problems))
    return params


def _enum_problems(value: Any, shape: Shape, path: str) -> list[str]:
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        return [p for name, member in shape.members.items() if name in value
                for p in _enum_problems(value[name], member, f"{path}.{name}" if path else name)]
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _enum_problems(item, shape.member, f"{path}[{i}]")]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return [p for key, item in value.items() for p in _enum_problems(item, shape.value, f"{path}.{key}")]
    if isinstance(shape, StringShape) and shape.enum and isinstance(value, str) and value not in shape.enum:
        return [f"Invalid value {value!r} for parameter {path}: must be one of {', '.join(shape.enum)}"]
    return []


def shape_output(operation: OperationModel, data: dict[str, Any]) -> dict[str, Any]:
    """The answer as the operation's output shape has it: members the shape lacks (Kubernetes-only status
    fields) left out, timestamps as epoch seconds (ECS's JSON form)."""
    shape = operation.output_shape
    return _shaped(data, shape) if shape is not None else {}


def _shaped(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return None
        out = {name: _shaped(value[name], member) for name, member in shape.members.items() if value.get(name) is not None}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(shape, ListShape):
        return [v for v in (_shaped(item, shape.member) for item in value) if v is not None] if isinstance(value, list) else None
    if isinstance(shape, MapShape):
        return {k: _shaped(v, shape.value) for k, v in value.items()} if isinstance(value, dict) else None
    if kind == "timestamp":
        return epoch(value)
    if kind in ("integer", "long") and isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "integer": (int,), "long": (int,), "float": (int, float),
    "double": (int, float), "timestamp": (int, float), "blob": (str,),
}


def output_problems(value: Any, shape: Shape, path: str = "") -> list[str]:
    """Where a shaped answer breaks `shape` (botocore validates only inputs): wrong JSON types, values
    outside an enum, missing required members. What botocore's parser would misread or clients rely on."""
    where = path or "answer"
    kind = shape.type_name
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, got {type(value).__name__}"]
        missing = [f"{where}: missing required member {name}" for name in shape.required_members if value.get(name) is None]
        return missing + [p for name, member in shape.members.items() if value.get(name) is not None
                          for p in output_problems(value[name], member, f"{path}.{name}" if path else name)]
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value) for p in output_problems(item, shape.member, f"{where}[{i}]")]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        return [p for key, item in value.items() for p in output_problems(item, shape.value, f"{where}.{key}")]
    expected = _JSON_TYPES.get(kind, (object,))
    if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
        return [f"{where}: expected {kind}, got {type(value).__name__} {value!r}"]
    if isinstance(shape, StringShape) and shape.enum and value not in shape.enum:
        return [f"{where}: {value!r} is not one of {', '.join(shape.enum)}"]
    return []
