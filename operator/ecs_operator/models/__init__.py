"""Pydantic models of ECS's input shapes, with ECS's JSON field names verbatim.

They are the single source of the CRD schemas (see ecs_operator.crdgen) and of the validation
rules (see rules.py).
"""

from .base import EcsModel, Problem, problems_from_validation_error
from .capacity_provider import CapacityProviderSpec, CreateCapacityProvider
from .cluster import ClusterSpec, CreateCluster
from .container import ContainerDefinition
from .container_instance import ContainerInstanceSpec
from .resources import KINDS, Kind, kind_named
from .rules import validate
from .service import CreateService, ServiceSpec
from .task import RunTask, TaskSpec
from .task_definition import RegisterTaskDefinition, TaskDefinitionSpec

__all__ = [
    "KINDS",
    "CapacityProviderSpec",
    "ClusterSpec",
    "ContainerDefinition",
    "ContainerInstanceSpec",
    "CreateCapacityProvider",
    "CreateCluster",
    "CreateService",
    "EcsModel",
    "Kind",
    "Problem",
    "RegisterTaskDefinition",
    "RunTask",
    "ServiceSpec",
    "TaskDefinitionSpec",
    "TaskSpec",
    "kind_named",
    "problems_from_validation_error",
    "validate",
]
