"""The custom resource kinds: names, scope, spec model, printer columns (read like the ECS console)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .base import EcsModel, Integer
from .capacity_provider import CapacityProviderSpec
from .cluster import ClusterSpec
from .container_instance import ContainerInstanceSpec
from .service import ServiceSpec
from .task import TaskSpec
from .task_definition import TaskDefinitionSpec


@dataclass(frozen=True)
class Column:
    name: str
    json_path: str
    type: Literal["string", "integer", "date", "boolean", "number"] = "string"
    priority: Integer = 0
    description: str = ""


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short_name: str
    scope: Literal["Namespaced", "Cluster"]
    spec_model: type[EcsModel]
    columns: tuple[Column, ...]
    scale: bool = False
    name_field: str | None = None
    """The ECS identifier in spec that defaults to metadata.name."""
    extra_short_names: tuple[str, ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def category(self) -> str:
        return CATEGORY if self.scope == "Namespaced" else CAPACITY_CATEGORY


AGE = Column("Age", ".metadata.creationTimestamp", "date")
READY = Column("Ready", '.status.conditions[?(@.type=="Ready")].status',
               description="False when the operator refused or cannot act on the object")
REASON = Column("Reason", '.status.conditions[?(@.type=="Ready")].reason', description="why Ready is False")
CATEGORY = "ecs"
"""`kubectl get ecs -n NS`: the namespaced kinds. The cluster-scoped ones are in CAPACITY_CATEGORY."""
CAPACITY_CATEGORY = "ecs-capacity"

KINDS: tuple[Kind, ...] = (
    Kind(
        "Cluster", "clusters", "ecscluster", "Namespaced", ClusterSpec,
        (
            Column("Status", ".status.status"),
            Column("Instances", ".status.registeredContainerInstancesCount", "integer"),
            Column("Services", ".status.activeServicesCount", "integer"),
            Column("Running", ".status.runningTasksCount", "integer"),
            Column("Pending", ".status.pendingTasksCount", "integer"),
            READY,
            REASON,
            AGE,
        ),
        name_field="clusterName",
    ),
    Kind(
        "TaskDefinition", "taskdefinitions", "taskdef", "Namespaced", TaskDefinitionSpec,
        (
            Column("Task Definition", ".status.taskDefinition", description="family:revision of the latest revision"),
            Column("Status", ".status.status"),
            Column("Compatibilities", ".status.compatibilitiesText", priority=1),
            Column("Fidelity", ".status.fidelity.summary", description="exact/approximated/unsupported fields"),
            READY,
            REASON,
            AGE,
        ),
        name_field="family",
    ),
    Kind(
        "Service", "services", "ecssvc", "Namespaced", ServiceSpec,
        (
            Column("Cluster", ".status.clusterName"),
            Column("Task Definition", ".status.taskDefinition"),
            Column("Desired", ".status.desiredCount", "integer"),
            Column("Running", ".status.runningCount", "integer"),
            Column("Pending", ".status.pendingCount", "integer"),
            Column("Rollout", ".status.rolloutState"),
            Column("Status", ".status.status", priority=1),
            READY,
            REASON,
            AGE,
        ),
        scale=True,
        name_field="serviceName",
    ),
    Kind(
        "Task", "tasks", "ecstask", "Namespaced", TaskSpec,
        (
            Column("Task Definition", ".status.taskDefinition"),
            Column("Last Status", ".status.lastStatus"),
            Column("Desired Status", ".status.desiredStatus"),
            Column("Health", ".status.healthStatus"),
            Column("Desired", ".status.desiredCount", "integer", description="tasks of this RunTask call meant to run"),
            Column("Running", ".status.runningCount", "integer", description="tasks of this RunTask call RUNNING"),
            Column("Stop Code", ".status.stopCode", priority=1),
            Column("Stopped Reason", ".status.stoppedReason", priority=1),
            READY,
            REASON,
            AGE,
        ),
    ),
    Kind(
        "CapacityProvider", "capacityproviders", "capprov", "Cluster", CapacityProviderSpec,
        (
            Column("Status", ".status.status"),
            Column("Reservation", ".status.capacityProviderReservation", "integer"),
            Column("Desired", ".status.desiredSize", "integer"),
            Column("Current", ".status.currentSize", "integer"),
            Column("Last Activity", ".status.lastScalingActivity.reason", priority=1),
            READY,
            REASON,
            AGE,
        ),
        name_field="name",
    ),
    Kind(
        "ContainerInstance", "containerinstances", "ecsci", "Cluster", ContainerInstanceSpec,
        (
            Column("Cluster", ".status.clusterName"),
            Column("Status", ".status.status"),
            Column("Agent", ".status.agentConnected", "boolean"),
            Column("Running", ".status.runningTasksCount", "integer"),
            Column("CPU Left", ".status.remainingCpu", "integer", description="remaining CPU units"),
            Column("Memory Left", ".status.remainingMemory", "integer", description="remaining MiB"),
            Column("Instance Type", ".status.instanceType", priority=1),
            AGE,
        ),
    ),
)


def kind_named(kind: str) -> Kind:
    return next(k for k in KINDS if k.kind == kind)
