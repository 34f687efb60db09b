"""Shared pydantic base for ECS shapes.

Attribute names are ECS's JSON names verbatim (camelCase), so ECS JSON validates unchanged and a
search for an ECS field name finds both its model and its translation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# ECS identifiers (family, container, cluster, service, capacity provider names).
NAME_PATTERN = r"^[A-Za-z0-9_-]{1,255}$"
EcsName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=255)]
# ECS's Integer: botocore's ECS model makes every numeric input member of the shapes modelled here a
# 32-bit Integer, so a larger number is refused (it cannot be a real ECS value) rather than carried on
# into a Pod the API server refuses or no node ever fits; the bounds reach the CRDs as minimum/maximum.
INTEGER_MIN, INTEGER_MAX = -(2**31), 2**31 - 1
Integer = Annotated[int, Field(ge=INTEGER_MIN, le=INTEGER_MAX)]
# A reference to an ECS name; bounded so the CRD's CEL rules stay within the cost budget.
NameRef = Annotated[str, Field(max_length=255)]


class EcsModel(BaseModel):
    """Unknown fields are refused (as ECS's "Unknown parameter"), nulls are accepted as absent."""

    # A field's documentation (the CRD's field description) is its Field(description=...): attribute
    # docstrings would need the source files read at run time (tests/unit/test_conversion_doc.py refuses them).
    model_config = ConfigDict(extra="forbid", frozen=False, defer_build=True)

    def to_json(self) -> dict[str, Any]:
        """The ECS JSON of this object: absent and null fields left out."""
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class Problem:
    """One reason an input is refused: the JSON path of the field and what is wrong with it."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def json_path(loc: Iterable[str | int]) -> str:
    """`("containerDefinitions", 0, "portMappings", 1, "hostPort")` -> `containerDefinitions[0].portMappings[1].hostPort`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from_validation_error(error: ValidationError, prefix: str = "") -> list[Problem]:
    """pydantic's errors as Problems named by JSON path (pydantic's own union-branch noise dropped)."""
    problems: list[Problem] = []
    for err in error.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in _UNION_TAGS))]
        path = json_path(([prefix] if prefix else []) + loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown field (not part of this ECS shape)"
        elif err["type"] == "value_error":
            message = message.removeprefix("Value error, ")
        elif err["type"] == "literal_error":
            message = f"must be one of {err['ctx']['expected']}; got {err['input']!r}"
        problem = Problem(path, message)
        if problem not in problems:
            problems.append(problem)
    return problems


# Branch names pydantic puts into error locations for `int | str` style unions.
_UNION_TAGS = {"int", "str", "bool", "float"}
