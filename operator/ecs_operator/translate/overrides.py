"""RunTask overrides applied to a revision before it is translated (so a Pod is one translation)."""

from __future__ import annotations

from ecs_operator.models import Problem, RegisterTaskDefinition
from ecs_operator.models.task import TaskOverride


def apply_overrides(td: RegisterTaskDefinition, overrides: TaskOverride | None) -> tuple[RegisterTaskDefinition, list[Problem]]:
    """The task definition this task runs: containerOverrides by name, task cpu/memory, roles, storage."""
    if overrides is None:
        return td, []
    data = td.model_dump(exclude_none=True)
    problems: list[Problem] = []
    for field in ("cpu", "memory", "taskRoleArn", "executionRoleArn"):
        value = getattr(overrides, field)
        if value is not None:
            data[field] = value
    if overrides.ephemeralStorage is not None:
        data["ephemeralStorage"] = overrides.ephemeralStorage.model_dump(exclude_none=True)
    containers = {c["name"]: c for c in data["containerDefinitions"]}
    for i, o in enumerate(overrides.containerOverrides or []):
        target = containers.get(o.name or "")
        if target is None:
            problems.append(Problem(f"overrides.containerOverrides[{i}].name",
                                    f"no container named {o.name!r} in the task definition"))
            continue
        if o.command is not None:
            target["command"] = list(o.command)
        for field in ("cpu", "memory", "memoryReservation"):
            value = getattr(o, field)
            if value is not None:
                target[field] = value
        if o.environment:
            env = {e["name"]: e for e in target.get("environment", []) if e.get("name")}
            env.update({e.name: e.model_dump(exclude_none=True) for e in o.environment if e.name})
            target["environment"] = list(env.values())
        if o.environmentFiles:
            target["environmentFiles"] = target.get("environmentFiles", []) + [f.model_dump() for f in o.environmentFiles]
        if o.resourceRequirements is not None:
            target["resourceRequirements"] = [r.model_dump(exclude_none=True) for r in o.resourceRequirements]
    return RegisterTaskDefinition.model_validate(data), problems


def overridden_paths(td: RegisterTaskDefinition, overrides: TaskOverride | None) -> dict[str, str]:
    """Task definition paths a RunTask override sets -> the override's own path (a problem with an
    overridden value is the RunTask's, named as the user wrote it)."""
    if overrides is None:
        return {}
    out = {field: f"overrides.{field}" for field in ("cpu", "memory", "taskRoleArn", "executionRoleArn", "ephemeralStorage")
           if getattr(overrides, field) is not None}
    index = {c.name: k for k, c in enumerate(td.containerDefinitions)}
    for i, o in enumerate(overrides.containerOverrides or []):
        k = index.get(o.name or "")
        for field in ("command", "cpu", "memory", "memoryReservation", "environment", "environmentFiles", "resourceRequirements"):
            if k is not None and getattr(o, field):
                out[f"containerDefinitions[{k}].{field}"] = f"overrides.containerOverrides[{i}].{field}"
    return out


def override_path(path: str, origins: dict[str, str]) -> str | None:
    """The override that set the value at `path` (or inside it), if one did."""
    for overridden, origin in origins.items():
        if path == overridden or path.startswith((overridden + ".", overridden + "[")):
            return origin
    return None
