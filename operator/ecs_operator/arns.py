"""ECS-style ARNs for the objects the operator reports on."""

from __future__ import annotations

from ecs_operator.settings import Settings


def _arn(settings: Settings, resource: str) -> str:
    return f"arn:aws:ecs:{settings.region}:{settings.account_id}:{resource}"


def task_definition_arn(settings: Settings, family: str, revision: int) -> str:
    return _arn(settings, f"task-definition/{family}:{revision}")


def task_arn(settings: Settings, cluster: str, task_id: str) -> str:
    return _arn(settings, f"task/{cluster}/{task_id}")


def service_arn(settings: Settings, cluster: str, service: str) -> str:
    return _arn(settings, f"service/{cluster}/{service}")


def cluster_arn(settings: Settings, cluster: str) -> str:
    return _arn(settings, f"cluster/{cluster}")


def container_instance_arn(settings: Settings, cluster: str, instance_id: str) -> str:
    return _arn(settings, f"container-instance/{cluster}/{instance_id}")


def capacity_provider_arn(settings: Settings, name: str) -> str:
    return _arn(settings, f"capacity-provider/{name}")


def parse_task_definition_ref(ref: str) -> tuple[str, int | None]:
    """`family`, `family:revision` or the ARN -> (family, revision or None for the latest ACTIVE)."""
    if ref.startswith("arn:"):
        ref = ref.split(":task-definition/", 1)[-1]
    family, _, revision = ref.partition(":")
    if revision and not revision.isdigit():
        raise ValueError(f"{ref!r}: the revision after ':' must be a number")
    return family, int(revision) if revision else None


def parse_ref(ref: str, resource: str) -> list[str]:
    """A short name (or task ID) or an ARN of `resource` ("cluster", "service", "task") -> the parts
    after `resource/`: `[name]`, or `[cluster, name]` for the long service and task ARN formats."""
    if not ref.startswith("arn:"):
        return [ref]
    _, found, tail = ref.partition(f":{resource}/")
    if not found or not all(tail.split("/")):
        raise ValueError(f"{ref!r} is not the ARN of a {resource}")
    return tail.split("/")
