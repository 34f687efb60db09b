"""pydantic JSON Schema -> Kubernetes structural OpenAPI v3 schema.

Structural means: every node has a type, no $ref/anyOf-of-types, free-form subtrees marked with
x-kubernetes-preserve-unknown-fields. ECS rules with a CEL form are attached where their class
appears.
"""

from __future__ import annotations

from typing import Any

from ecs_operator.models.base import EcsModel
from ecs_operator.models.rules import RULES

# lists whose items are identified by a key: unique keys are enforced by the apiserver, and
# server-side apply merges them per item.
LIST_MAP_KEYS: dict[tuple[str, str], str] = {
    ("RegisterTaskDefinition", "containerDefinitions"): "name",
    ("RegisterTaskDefinition", "volumes"): "name",
}

_DROP = {"title", "examples"}


def structural_schema(model: type[EcsModel]) -> dict[str, Any]:
    raw = model.model_json_schema(ref_template="{model}")
    defs = raw.pop("$defs", {})
    classes = _model_classes(model)
    return _convert(raw, defs, classes, model.__name__)


def _model_classes(root: type[EcsModel]) -> dict[str, type[EcsModel]]:
    found: dict[str, type[EcsModel]] = {}
    stack: list[type[EcsModel]] = [EcsModel]
    while stack:
        cls = stack.pop()
        found[cls.__name__] = cls
        stack.extend(cls.__subclasses__())
    return found


def _convert(node: dict[str, Any], defs: dict[str, Any], classes: dict[str, type[EcsModel]], owner: str | None) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"]
        out = _convert(dict(defs[name]), defs, classes, name)
        if "description" in node:
            out["description"] = node["description"]
        return out
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        types = {b.get("type") for b in branches}
        if types == {"integer", "string"}:
            out = {"x-kubernetes-int-or-string": True}
        elif len(branches) == 1:
            out = _convert(branches[0], defs, classes, None)
        else:
            raise ValueError(f"no structural form for anyOf {node['anyOf']}")
        for key in ("description", "default"):
            if node.get(key) is not None:
                out[key] = node[key]
        return out

    out = {}
    for key, value in node.items():
        if key in _DROP or (key == "default" and value is None):
            continue
        if key == "properties":
            out["properties"] = {
                name: _with_list_keys(_convert(prop, defs, classes, None), owner, name, classes)
                for name, prop in value.items()
            }
        elif key == "items":
            out["items"] = _convert(value, defs, classes, None)
        elif key == "additionalProperties":
            if value is False:
                continue  # closed objects: the apiserver refuses unknown fields by its own (strict) validation
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out["additionalProperties"] = _convert(value, defs, classes, None)
        elif key == "required":
            out["required"] = list(value)
        elif key in ("minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum", "pattern",
                     "enum", "type", "description", "default", "format"):
            out[key] = value
        elif key == "const":
            out["enum"] = [value]
        else:
            raise ValueError(f"unexpected JSON Schema key {key!r} in {owner}")
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if "type" not in out:  # `Any` (ECS's read-only output fields): any JSON value
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("type") == "object" and not out.get("properties") and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    cls = classes.get(owner or "")
    if cls is not None:
        validations = [r.cel.to_schema() for r in RULES if r.cel is not None and issubclass(cls, r.on)]
        if validations:
            out["x-kubernetes-validations"] = validations
    return out


def _with_list_keys(schema: dict[str, Any], owner: str | None, name: str, classes: dict[str, type[EcsModel]]) -> dict[str, Any]:
    cls = classes.get(owner or "")
    for (base, field), key in LIST_MAP_KEYS.items():
        if cls is not None and field == name and issubclass(cls, classes[base]):
            schema["x-kubernetes-list-type"] = "map"
            schema["x-kubernetes-list-map-keys"] = [key]
    return schema
