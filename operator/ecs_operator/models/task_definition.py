"""RegisterTaskDefinition (all its top-level fields), volumes, and the TaskDefinition resource spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from .base import EcsModel, EcsName, Integer
from .common import EnabledDisabled, EphemeralStorage, KeyValuePair, Tag
from .container import ContainerDefinition
from .readonly import ReadOnlyOutput, accepting_read_only

NetworkMode = Literal["bridge", "host", "awsvpc", "none"]
Compatibility = Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]


class HostVolumeProperties(EcsModel):
    sourcePath: str | None = None


class DockerVolumeConfiguration(EcsModel):
    scope: Literal["task", "shared"] | None = None
    autoprovision: bool | None = None
    driver: str | None = None
    driverOpts: dict[str, str] | None = None
    labels: dict[str, str] | None = None


class EFSAuthorizationConfig(EcsModel):
    accessPointId: str | None = None
    iam: EnabledDisabled | None = None


class EFSVolumeConfiguration(EcsModel):
    fileSystemId: str
    rootDirectory: str | None = None
    transitEncryption: EnabledDisabled | None = None
    transitEncryptionPort: Integer | None = Field(None, ge=0, le=65535)
    authorizationConfig: EFSAuthorizationConfig | None = None


class S3FilesVolumeConfiguration(EcsModel):
    fileSystemArn: str
    rootDirectory: str | None = None
    transitEncryptionPort: Integer | None = Field(None, ge=0, le=65535)
    accessPointArn: str | None = None


class FSxWindowsFileServerAuthorizationConfig(EcsModel):
    credentialsParameter: str
    domain: str


class FSxWindowsFileServerVolumeConfiguration(EcsModel):
    fileSystemId: str
    rootDirectory: str
    authorizationConfig: FSxWindowsFileServerAuthorizationConfig


class Volume(EcsModel):
    name: EcsName
    host: HostVolumeProperties | None = None
    dockerVolumeConfiguration: DockerVolumeConfiguration | None = None
    efsVolumeConfiguration: EFSVolumeConfiguration | None = None
    s3filesVolumeConfiguration: S3FilesVolumeConfiguration | None = None
    fsxWindowsFileServerVolumeConfiguration: FSxWindowsFileServerVolumeConfiguration | None = None
    configuredAtLaunch: bool | None = None


class TaskDefinitionPlacementConstraint(EcsModel):
    type: Literal["memberOf"] | None = None
    expression: str | None = Field(None, max_length=2000)


class ProxyConfiguration(EcsModel):
    type: Literal["APPMESH"] | None = None
    containerName: str
    properties: list[KeyValuePair] | None = None


class InferenceAccelerator(EcsModel):
    deviceName: str
    deviceType: str


class RuntimePlatform(EcsModel):
    cpuArchitecture: Literal["X86_64", "ARM64"] | None = None
    operatingSystemFamily: Literal[
        "LINUX",
        "WINDOWS_SERVER_2016_FULL",
        "WINDOWS_SERVER_2019_FULL",
        "WINDOWS_SERVER_2019_CORE",
        "WINDOWS_SERVER_2022_FULL",
        "WINDOWS_SERVER_2022_CORE",
        "WINDOWS_SERVER_2025_FULL",
        "WINDOWS_SERVER_2025_CORE",
        "WINDOWS_SERVER_2004_CORE",
        "WINDOWS_SERVER_20H2_CORE",
    ] | None = None


class TrustedExecutionConfiguration(EcsModel):
    isolationMode: Literal["SHARED", "ISOLATED_SANDBOX", "CONFIDENTIAL_SANDBOX"]
    attestationPolicy: str | None = None


class Toleration(EcsModel):
    """A Kubernetes toleration (core/v1 Toleration) of the task's Pods."""

    key: str | None = Field(None, max_length=316)
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = Field(None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    tolerationSeconds: int | None = Field(None, ge=-(2**63), le=2**63 - 1, description="int64, as in Kubernetes.")


class TaskDefinitionKubernetes(EcsModel):
    """Kubernetes-only settings of a TaskDefinition (never ECS fields)."""

    podLabels: dict[str, str] | None = Field(None, description="Extra labels on every Pod of this task definition.")
    podAnnotations: dict[str, str] | None = Field(None, description="Extra annotations on every Pod of this task definition.")
    serviceAccountName: str | None = Field(None, max_length=253, description=(
        "The ServiceAccount the Pods run as (the closest thing to taskRoleArn)."))
    tolerations: list[Toleration] | None = Field(None, max_length=20, description=(
        "Taints of container instances the Pods tolerate (e.g. the sandbox's real nodes,\n"
        "`ecs.operator.dev/real-node`); ECS has no taints, so placement is otherwise unchanged."))
    deregisteredRevisions: list[Integer] | None = Field(None, description=(
        "DeregisterTaskDefinition: these revisions become INACTIVE (running tasks keep running, new ones are refused)."))
    deletedRevisions: list[Integer] | None = Field(None, description=(
        "DeleteTaskDefinitions: these revisions are DELETE_IN_PROGRESS (and, like INACTIVE ones, refused to new\n"
        "tasks). Their records stay: revision numbers are never reused (docs/ecs-semantics.md §Deleting task "
        "definitions)."))
    registration: str | None = Field(None, max_length=64, description=(
        "A new value per RegisterTaskDefinition call of the ECS API: part of the revision's content, so each\n"
        "call numbers a revision, as in ECS, even with the content of the last one (an unchanged `kubectl apply`\n"
        "registers nothing, as Kubernetes users expect)."))


class RegisterTaskDefinition(EcsModel):
    """The RegisterTaskDefinition request: what ECS users paste."""

    family: EcsName | None = Field(None, description="Defaults to the resource's metadata.name.")
    taskRoleArn: str | None = None
    executionRoleArn: str | None = None
    networkMode: NetworkMode | None = Field(None, description="Default bridge (Linux EC2).")
    containerDefinitions: list[ContainerDefinition] = Field(min_length=1, max_length=10)
    volumes: list[Volume] | None = Field(None, max_length=100)
    placementConstraints: list[TaskDefinitionPlacementConstraint] | None = Field(None, max_length=10)
    requiresCompatibilities: list[Compatibility] | None = None
    cpu: Integer | str | None = Field(None, description='CPU units ("1024") or vCPU ("1 vCPU"); a number is accepted too.')
    memory: Integer | str | None = Field(None, description='MiB ("2048") or GB ("2 GB"); a number is accepted too.')
    tags: list[Tag] | None = Field(None, max_length=50)
    pidMode: Literal["host", "task"] | None = None
    ipcMode: Literal["host", "task", "none"] | None = None
    proxyConfiguration: ProxyConfiguration | None = None
    inferenceAccelerators: list[InferenceAccelerator] | None = None
    ephemeralStorage: EphemeralStorage | None = None
    runtimePlatform: RuntimePlatform | None = None
    enableFaultInjection: bool | None = None
    trustedExecutionConfiguration: TrustedExecutionConfiguration | None = None

    def container(self, name: str) -> ContainerDefinition | None:
        return next((c for c in self.containerDefinitions if c.name == name), None)

    @property
    def effective_network_mode(self) -> NetworkMode:
        return self.networkMode or "bridge"


if TYPE_CHECKING:  # what accepting_read_only builds, as mypy can see it
    class _TaskDefinitionSpecBase(RegisterTaskDefinition, ReadOnlyOutput): ...
else:
    _TaskDefinitionSpecBase = accepting_read_only("TaskDefinition", RegisterTaskDefinition)


class TaskDefinitionSpec(_TaskDefinitionSpecBase):
    """The TaskDefinition resource's spec: RegisterTaskDefinition (describe-task-definition output too) plus Kubernetes-only settings."""  # noqa: E501 (the CRD's description)

    kubernetes: TaskDefinitionKubernetes | None = None

    def ecs_part(self) -> RegisterTaskDefinition:
        """The ECS input alone: what a revision records and what the fidelity report judges."""
        return RegisterTaskDefinition.model_validate(self.model_dump(exclude={"kubernetes"}, exclude_none=True))
