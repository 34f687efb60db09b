"""ContainerDefinition (all 42 fields of RegisterTaskDefinition's container shape) and its nested shapes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import EcsModel, EcsName, Integer, NameRef
from .common import KeyValuePair, LogConfiguration, Secret

DependencyCondition = Literal["START", "COMPLETE", "SUCCESS", "HEALTHY"]


class RepositoryCredentials(EcsModel):
    credentialsParameter: str


class PortMapping(EcsModel):
    containerPort: Integer | None = Field(None, ge=1, le=65535)
    hostPort: Integer | None = Field(None, ge=0, le=65535, description="0 or absent in bridge mode: a dynamic host port.")
    protocol: Literal["tcp", "udp"] | None = None
    name: str | None = Field(None, max_length=64, pattern=r"^[a-z0-9_][a-z0-9_-]*$")
    appProtocol: Literal["http", "http2", "grpc"] | None = None
    containerPortRange: str | None = Field(None, max_length=11, pattern=r"^\d{1,5}-\d{1,5}$")


class ContainerRestartPolicy(EcsModel):
    enabled: bool
    ignoredExitCodes: list[Integer] | None = Field(None, max_length=50)
    restartAttemptPeriod: Integer | None = Field(None, ge=60, le=1800)


class EnvironmentFile(EcsModel):
    value: str = Field(description="S3 object ARN of a .env file.")
    type: Literal["s3"]


class MountPoint(EcsModel):
    sourceVolume: NameRef | None = None
    containerPath: str | None = None
    readOnly: bool | None = None


class VolumeFrom(EcsModel):
    sourceContainer: NameRef | None = None
    readOnly: bool | None = None


class KernelCapabilities(EcsModel):
    add: list[str] | None = None
    drop: list[str] | None = None


class Device(EcsModel):
    hostPath: str
    containerPath: str | None = None
    permissions: list[Literal["read", "write", "mknod"]] | None = None


class Tmpfs(EcsModel):
    containerPath: str
    size: Integer = Field(ge=1, description="MiB.")
    mountOptions: list[str] | None = None


class LinuxParameters(EcsModel):
    capabilities: KernelCapabilities | None = None
    devices: list[Device] | None = None
    initProcessEnabled: bool | None = None
    sharedMemorySize: Integer | None = Field(None, ge=0)
    tmpfs: list[Tmpfs] | None = None
    maxSwap: Integer | None = Field(None, ge=0)
    swappiness: Integer | None = Field(None, ge=0, le=100)


class ContainerDependency(EcsModel):
    containerName: NameRef
    condition: DependencyCondition


class HostEntry(EcsModel):
    hostname: str
    ipAddress: str


class Ulimit(EcsModel):
    name: Literal[
        "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
        "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
    ]
    softLimit: Integer
    hardLimit: Integer


class HealthCheck(EcsModel):
    command: list[Annotated[str, Field(max_length=8192)]] = Field(min_length=1, max_length=64, description=(
        '["CMD", arg...] runs the arguments; ["CMD-SHELL", "script"] runs them through the shell.'))
    interval: Integer | None = Field(None, ge=5, le=300)
    timeout: Integer | None = Field(None, ge=2, le=60)
    retries: Integer | None = Field(None, ge=1, le=10)
    startPeriod: Integer | None = Field(None, ge=0, le=300)


class SystemControl(EcsModel):
    namespace: str | None = None
    value: str | None = None


class NvidiaMpsAllocation(EcsModel):
    memory: Integer
    maxComputePercent: Integer | None = None


class SharingStrategy(EcsModel):
    nvidiaMps: NvidiaMpsAllocation | None = None


class ResourceRequirement(EcsModel):
    value: str | None = None
    type: Literal["GPU", "InferenceAccelerator", "NeuronDevice"]
    sharingStrategy: SharingStrategy | None = None


class FirelensConfiguration(EcsModel):
    type: Literal["fluentd", "fluentbit"]
    options: dict[str, str] | None = None


class ContainerDefinition(EcsModel):
    name: EcsName
    image: str = Field(min_length=1, max_length=1024)
    repositoryCredentials: RepositoryCredentials | None = None
    cpu: Integer | None = Field(None, ge=0, description="CPU units (1024 = one vCPU): a relative share, not a cap.")
    memory: Integer | None = Field(None, ge=0, description="Hard limit in MiB.")
    memoryReservation: Integer | None = Field(None, ge=0, description="Soft limit (reservation) in MiB.")
    links: list[str] | None = None
    portMappings: list[PortMapping] | None = Field(None, max_length=100)
    essential: bool | None = Field(None, description="Default true: when an essential container stops, the whole task stops.")
    restartPolicy: ContainerRestartPolicy | None = None
    entryPoint: list[str] | None = None
    command: list[str] | None = None
    environment: list[KeyValuePair] | None = None
    environmentFiles: list[EnvironmentFile] | None = Field(None, max_length=10)
    mountPoints: list[MountPoint] | None = Field(None, max_length=64)
    volumesFrom: list[VolumeFrom] | None = Field(None, max_length=10)
    linuxParameters: LinuxParameters | None = None
    secrets: list[Secret] | None = None
    dependsOn: list[ContainerDependency] | None = Field(None, max_length=10)
    startTimeout: Integer | None = Field(None, ge=0)
    stopTimeout: Integer | None = Field(None, ge=0)
    versionConsistency: Literal["enabled", "disabled"] | None = None
    hostname: str | None = None
    user: str | None = None
    workingDirectory: str | None = None
    disableNetworking: bool | None = None
    privileged: bool | None = None
    readonlyRootFilesystem: bool | None = None
    dnsServers: list[str] | None = None
    dnsSearchDomains: list[str] | None = None
    extraHosts: list[HostEntry] | None = None
    dockerSecurityOptions: list[str] | None = None
    interactive: bool | None = None
    pseudoTerminal: bool | None = None
    dockerLabels: dict[str, str] | None = None
    ulimits: list[Ulimit] | None = None
    logConfiguration: LogConfiguration | None = None
    healthCheck: HealthCheck | None = None
    systemControls: list[SystemControl] | None = None
    resourceRequirements: list[ResourceRequirement] | None = None
    firelensConfiguration: FirelensConfiguration | None = None
    credentialSpecs: list[str] | None = Field(None, max_length=1)

    @property
    def is_essential(self) -> bool:
        return self.essential is not False
