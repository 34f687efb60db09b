"""The operator's own rules (its pydantic models and ECS's cross-field rules) on what a request would
write: checked before writing, so that a refused request changes nothing."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ecs_operator.models import TaskDefinitionSpec, problems_from_validation_error, validate
from ecs_operator.models.base import EcsModel
from ecs_operator.translate.pod_checks import registration_problems


def problems(spec_model: type[EcsModel], spec: dict[str, Any]) -> str:
    """What `spec` breaks, each named by its JSON path ("" when nothing)."""
    try:
        model = spec_model.model_validate(spec)
        found = registration_problems(model) if isinstance(model, TaskDefinitionSpec) else validate(model)
    except ValidationError as e:
        found = problems_from_validation_error(e)
    return "; ".join(map(str, found))
