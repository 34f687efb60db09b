"""The YAML `convert` writes: custom resources (`--to crs`) or plain Kubernetes objects (`--to k8s`)."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from .detect import API
from .pipeline import Conversion, Target


def custom_resource(c: Conversion) -> dict[str, Any]:
    """The input as this project's custom resource: spec is the ECS JSON (nulls and read-only fields removed)."""
    metadata: dict[str, Any] = {"name": c.name}
    if c.namespace:
        metadata["namespace"] = c.namespace
    applied = (c.task_definition or {}).get("applied")
    spec = {**c.obj.spec, "taskDefinition": applied} if applied else c.obj.spec
    return {"apiVersion": API, "kind": c.obj.kind, "metadata": metadata, "spec": spec}


def output_objects(conversions: list[Conversion], to: Target) -> list[dict[str, Any]]:
    if to == "crs":
        return [custom_resource(c) for c in conversions]
    return [_placed(o, c.namespace) for c in conversions for o in c.objects]


def object_names(c: Conversion, to: Target) -> list[str]:
    """`Kind/name` of what was written for `c` (for the report)."""
    if to == "crs":
        return [f"{c.obj.kind}/{c.name}"]
    return [f"{o['kind']}/{o['metadata']['name']}" for o in c.objects]


def _placed(obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
    """Without a namespace the objects carry none: kubectl applies them to its current namespace. A
    PersistentVolume (an EFS claim's) is cluster-scoped: never one."""
    metadata = obj["metadata"]
    if namespace and obj["kind"] != "PersistentVolume":
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    return obj


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """Block-style YAML documents (separated by `---`) of JSON-like data: dict, list, str, int, bool, None.

    Written here instead of with PyYAML's dumper, whose Python representer alone costs ~0.5 ms per
    object, more than the whole translation (benchmarks/bench_convert.py). Strings are plain where
    every YAML 1.1 reader (PyYAML, kubectl's go-yaml) reads them back as the same string, and
    JSON-quoted otherwise (a JSON string is a YAML double-quoted scalar).
    """
    documents = []
    for obj in objects:
        lines: list[str] = []
        _block(obj, "", lines)
        documents.append("\n".join(lines) + "\n")
    return "---\n".join(documents)


def _block(value: dict[str, Any] | list[Any], indent: str, out: list[str]) -> None:
    """A non-empty mapping or sequence, one entry per line at `indent`."""
    if isinstance(value, dict):
        for key, item in value.items():
            _entry(f"{indent}{_key(key)}:", item, indent + "  ", out)
        return
    for item in value:
        if isinstance(item, dict) and item:
            for n, (key, sub) in enumerate(item.items()):  # "- first: ..." then the other keys under it
                _entry(f"{indent}{'- ' if n == 0 else '  '}{_key(key)}:", sub, indent + "    ", out)
        elif isinstance(item, list) and item:
            out.append(f"{indent}-")
            _block(item, indent + "  ", out)
        else:
            out.append(f"{indent}- {_scalar(item)}")


def _entry(head: str, value: Any, indent: str, out: list[str]) -> None:
    if isinstance(value, (dict, list)) and value:
        out.append(head)
        _block(value, indent, out)
    else:
        out.append(f"{head} {_scalar(value)}")


# Plain (unquoted) strings: no indicator first, no ": " or " #", no leading digit (numbers, times),
# not a YAML 1.1 boolean or null.
_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@=+~ -]*[A-Za-z0-9_./@=+~-]|[A-Za-z_/]")
_RESERVED = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})
# What JSON leaves raw but YAML does not allow raw in a quoted scalar (or reads as a line break).
_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


@functools.cache
def _key(key: str) -> str:
    """Keys repeat (name, image, labels...): each is rendered once per process."""
    return _scalar(key)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and ": " not in value and value.lower() not in _RESERVED
        return value if plain else _UNPRINTABLE.sub(_escape, json.dumps(value, ensure_ascii=False))
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):  # empty: non-empty ones are blocks
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value, default=str)  # a float; a YAML date pydantic let through stays a string
