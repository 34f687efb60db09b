"""RunTask (all its fields) plus StopTask's, and the Task resource spec."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import EcsModel, Integer
from .common import (
    CapacityProviderStrategyItem,
    EphemeralStorage,
    KeyValuePair,
    LaunchType,
    NetworkConfiguration,
    PlacementConstraint,
    PlacementStrategy,
    PropagateTags,
    Tag,
)
from .container import EnvironmentFile, ResourceRequirement


class ContainerOverride(EcsModel):
    name: str | None = None
    command: list[str] | None = None
    environment: list[KeyValuePair] | None = None
    environmentFiles: list[EnvironmentFile] | None = None
    cpu: Integer | None = Field(None, ge=0)
    memory: Integer | None = Field(None, ge=0)
    memoryReservation: Integer | None = Field(None, ge=0)
    resourceRequirements: list[ResourceRequirement] | None = None


class InferenceAcceleratorOverride(EcsModel):
    deviceName: str | None = None
    deviceType: str | None = None


class TaskOverride(EcsModel):
    containerOverrides: list[ContainerOverride] | None = None
    cpu: Integer | str | None = None
    inferenceAcceleratorOverrides: list[InferenceAcceleratorOverride] | None = None
    executionRoleArn: str | None = None
    memory: Integer | str | None = None
    taskRoleArn: str | None = None
    ephemeralStorage: EphemeralStorage | None = None


class TaskVolumeConfiguration(EcsModel):
    name: str
    managedEBSVolume: dict[str, Any] | None = None


class RunTask(EcsModel):
    """The RunTask request."""

    capacityProviderStrategy: list[CapacityProviderStrategyItem] | None = Field(None, max_length=20)
    cluster: str | None = None
    # docs/ecs-semantics.md §Bounds
    count: Integer | None = Field(None, ge=1, le=10, description="Tasks to run: 1-10 per RunTask call, as in ECS.")
    enableECSManagedTags: bool | None = None
    enableExecuteCommand: bool | None = None
    group: str | None = Field(None, max_length=255)
    launchType: LaunchType | None = None
    networkConfiguration: NetworkConfiguration | None = None
    overrides: TaskOverride | None = None
    placementConstraints: list[PlacementConstraint] | None = Field(None, max_length=10)
    placementStrategy: list[PlacementStrategy] | None = Field(None, max_length=5)
    platformVersion: str | None = None
    propagateTags: PropagateTags | None = None
    referenceId: str | None = None
    # ECS documents no space, yet takes one: Step Functions starts tasks as "AWS Step Functions", ecs-deploy as "ECS Deploy".
    startedBy: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9/_ -]*$")
    tags: list[Tag] | None = Field(None, max_length=50)
    taskDefinition: str = Field(min_length=1, description="family, family:revision, or the task definition ARN.")
    clientToken: str | None = Field(None, max_length=64)
    volumeConfigurations: list[TaskVolumeConfiguration] | None = None


class TaskSpec(RunTask):
    """The Task resource's spec: RunTask, plus StopTask's desired status and reason."""

    desiredStatus: Literal["RUNNING", "STOPPED"] | None = Field(None, description="Set to STOPPED to stop the task (StopTask).")
    reason: str | None = Field(None, max_length=255, description="StopTask's reason, shown as stoppedReason.")
