"""The operator's own rules (its pydantic models and ECS's cross-field rules) on what a request would
write: checked before writing, so that a refused request changes nothing."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ecs_operator.models import problems_from_validation_error, validate
from ecs_operator.models.base import EcsModel


def problems(spec_model: type[EcsModel], spec: dict[str, Any]) -> str:
    """What `spec` breaks, each named by its JSON path ("" when nothing)."""
    try:
        found = validate(spec_model.model_validate(spec))
    except ValidationError as e:
        found = problems_from_validation_error(e)
    return "; ".join(map(str, found))
