"""ECS CPU units and MiB as Kubernetes quantities; the resources a task reserves for placement."""

from __future__ import annotations

from ecs_operator.models import ContainerDefinition, RegisterTaskDefinition
from ecs_operator.models.units import cpu_units, memory_mib

GPU_RESOURCE = "nvidia.com/gpu"
NEURON_RESOURCE = "aws.amazon.com/neuron"


def cpu_quantity(units: int) -> str:
    """1024 CPU units = 1 core; Kubernetes counts millicores."""
    return f"{round(units * 1000 / 1024)}m"


def memory_quantity(mib: int) -> str:
    return f"{mib}Mi"


def container_resources(c: ContainerDefinition) -> dict[str, dict[str, str]]:
    """memory is the hard limit, memoryReservation the request, cpu a request (shares, no cap)."""
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if c.cpu:
        requests["cpu"] = cpu_quantity(c.cpu)
    if c.memoryReservation:
        requests["memory"] = memory_quantity(c.memoryReservation)
    if c.memory:
        limits["memory"] = memory_quantity(c.memory)
    for r in c.resourceRequirements or []:
        name = {"GPU": GPU_RESOURCE, "NeuronDevice": NEURON_RESOURCE}.get(r.type)
        if name and r.value:
            limits[name] = r.value
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def pod_resources(td: RegisterTaskDefinition) -> dict[str, dict[str, str]] | None:
    """Task-level cpu/memory are hard limits of the whole task: Pod-level requests = limits."""
    values: dict[str, str] = {}
    if td.cpu is not None:
        values["cpu"] = cpu_quantity(cpu_units(td.cpu))
    if td.memory is not None:
        values["memory"] = memory_quantity(memory_mib(td.memory))
    return {"requests": dict(values), "limits": dict(values)} if values else None
