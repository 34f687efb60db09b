"""CreateService (all its fields) and the Service resource spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from .base import EcsModel, EcsName, Integer
from .common import (
    CapacityProviderStrategyItem,
    LaunchType,
    LogConfiguration,
    NetworkConfiguration,
    PlacementConstraint,
    PlacementStrategy,
    PropagateTags,
    Tag,
)
from .readonly import ReadOnlyOutput, accepting_read_only

TASKS_PER_SERVICE = 5000
"""ECS's quota of tasks per service (docs/ecs-semantics.md §Bounds)."""

# AWS-only subtrees with nothing to act on in Kubernetes: kept verbatim (free-form) and reported
# as unsupported, so pasted ECS JSON still validates.
FreeForm = dict[str, Any]


class LoadBalancer(EcsModel):
    targetGroupArn: str | None = None
    loadBalancerName: str | None = None
    containerName: str | None = None
    containerPort: Integer | None = Field(None, ge=1, le=65535)
    advancedConfiguration: FreeForm | None = None


class ServiceRegistry(EcsModel):
    registryArn: str | None = None
    port: Integer | None = Field(None, ge=1, le=65535)
    containerName: str | None = None
    containerPort: Integer | None = Field(None, ge=1, le=65535)


class ThresholdConfiguration(EcsModel):
    type: Literal["COUNT", "BOUNDED_PERCENT", "UNBOUNDED_PERCENT"]
    value: Integer = Field(ge=0)


class DeploymentCircuitBreaker(EcsModel):
    enable: bool
    rollback: bool
    resetOnHealthyTask: bool | None = None
    thresholdConfiguration: ThresholdConfiguration | None = None


class DeploymentAlarms(EcsModel):
    alarmNames: list[str]
    rollback: bool
    enable: bool


HookStage = Literal["RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
                    "PRE_PRODUCTION_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT"]


class LinearConfiguration(EcsModel):
    stepPercent: float | None = Field(None, ge=3.0, le=100.0, description="Traffic shifted per step (ECS default 10.0).")
    stepBakeTimeInMinutes: Integer | None = Field(None, ge=0, le=1440, description=(
        "Minutes between steps (ECS default 6), not after 100%."))


class CanaryConfiguration(EcsModel):
    canaryPercent: float | None = Field(None, ge=0.1, le=100.0, description="Traffic of the canary phase (ECS default 5.0).")
    canaryBakeTimeInMinutes: Integer | None = Field(None, ge=0, le=1440, description=(
        "Minutes of the canary phase before the rest of the traffic shifts (ECS default 10)."))


class DeploymentLifecycleHookTimeout(EcsModel):
    timeoutInMinutes: Integer | None = Field(None, ge=1, le=20160)
    action: Literal["ROLLBACK", "CONTINUE"] | None = None


class DeploymentLifecycleHook(EcsModel):
    targetType: Literal["AWS_LAMBDA", "PAUSE"] | None = None
    hookTargetArn: str | None = None
    roleArn: str | None = None
    lifecycleStages: list[HookStage] | None = None
    hookDetails: FreeForm | None = None
    timeoutConfiguration: DeploymentLifecycleHookTimeout | None = None


class DeploymentEarlySuccessCriteria(EcsModel):
    """ROLLING only: the deployment completes once this share of desiredCount is healthy
    (docs/ecs-semantics.md §Early success criteria)."""

    enable: bool
    healthyPercent: Integer | None = Field(None, ge=0, le=100)
    sourceServiceRevisionCleanup: Literal["BLOCKING", "DEFERRED"] | None = None


class DeploymentConfiguration(EcsModel):
    deploymentCircuitBreaker: DeploymentCircuitBreaker | None = None
    maximumPercent: Integer | None = Field(None, ge=0)
    minimumHealthyPercent: Integer | None = Field(None, ge=0, le=100)
    alarms: DeploymentAlarms | None = None
    strategy: Literal["ROLLING", "BLUE_GREEN", "LINEAR", "CANARY"] | None = None
    bakeTimeInMinutes: Integer | None = Field(None, ge=0, le=1440, description=(
        "Minutes blue and green both run after all production traffic moved to green (BLUE_GREEN, LINEAR, CANARY)."))
    lifecycleHooks: list[DeploymentLifecycleHook] | None = None
    linearConfiguration: LinearConfiguration | None = None
    canaryConfiguration: CanaryConfiguration | None = None
    earlySuccessCriteria: DeploymentEarlySuccessCriteria | None = None


class DeploymentController(EcsModel):
    type: Literal["ECS", "CODE_DEPLOY", "EXTERNAL"]


class ServiceConnectClientAlias(EcsModel):
    port: Integer = Field(ge=1, le=65535)
    dnsName: str | None = None
    testTrafficRules: FreeForm | None = None


class TimeoutConfiguration(EcsModel):
    idleTimeoutSeconds: Integer | None = None
    perRequestTimeoutSeconds: Integer | None = None


class ServiceConnectService(EcsModel):
    portName: str
    discoveryName: str | None = None
    clientAliases: list[ServiceConnectClientAlias] | None = None
    ingressPortOverride: Integer | None = None
    timeout: TimeoutConfiguration | None = None
    tls: FreeForm | None = None


class ServiceConnectAccessLogConfiguration(EcsModel):
    format: Literal["TEXT", "JSON"]
    includeQueryParameters: Literal["DISABLED", "ENABLED"] | None = None


class ServiceConnectContainerConfiguration(EcsModel):
    logLevel: Literal["debug", "info"] | None = None


class ServiceConnectConfiguration(EcsModel):
    enabled: bool
    namespace: str | None = None
    services: list[ServiceConnectService] | None = None
    logConfiguration: LogConfiguration | None = None
    accessLogConfiguration: ServiceConnectAccessLogConfiguration | None = None
    containerConfigurations: list[ServiceConnectContainerConfiguration] | None = None


class ServiceVolumeConfiguration(EcsModel):
    name: str
    managedEBSVolume: FreeForm | None = None


class ServiceKubernetes(EcsModel):
    """Kubernetes-only settings of a Service (never ECS fields)."""

    loadBalancerServiceType: Literal["ClusterIP", "NodePort", "LoadBalancer"] | None = Field(None, description=(
        "Type of the Kubernetes Service made for loadBalancers (default: the operator's setting, ClusterIP)."))


class CreateService(EcsModel):
    """The CreateService request."""

    cluster: str | None = None
    serviceName: EcsName | None = Field(None, description="Defaults to the resource's metadata.name.")
    taskDefinition: str | None = Field(None, description="family, family:revision, or the task definition ARN.")
    availabilityZoneRebalancing: Literal["ENABLED", "DISABLED"] | None = None
    loadBalancers: list[LoadBalancer] | None = Field(None, max_length=5)
    serviceRegistries: list[ServiceRegistry] | None = Field(None, max_length=1)
    desiredCount: Integer | None = Field(None, ge=0, le=TASKS_PER_SERVICE, description=(
        "Tasks to keep running: at most 5,000, ECS's quota of tasks per service (the operator's setting may allow fewer)."))
    clientToken: str | None = None
    launchType: LaunchType | None = None
    capacityProviderStrategy: list[CapacityProviderStrategyItem] | None = Field(None, max_length=20)
    platformVersion: str | None = None
    role: str | None = None
    deploymentConfiguration: DeploymentConfiguration | None = None
    placementConstraints: list[PlacementConstraint] | None = Field(None, max_length=10)
    placementStrategy: list[PlacementStrategy] | None = Field(None, max_length=5)
    networkConfiguration: NetworkConfiguration | None = None
    healthCheckGracePeriodSeconds: Integer | None = Field(None, ge=0, le=2147483647)
    schedulingStrategy: Literal["REPLICA", "DAEMON"] | None = None
    deploymentController: DeploymentController | None = None
    tags: list[Tag] | None = Field(None, max_length=50)
    enableECSManagedTags: bool | None = None
    propagateTags: PropagateTags | None = None
    enableExecuteCommand: bool | None = None
    serviceConnectConfiguration: ServiceConnectConfiguration | None = None
    volumeConfigurations: list[ServiceVolumeConfiguration] | None = None
    vpcLatticeConfigurations: list[FreeForm] | None = None
    gatewayConnectors: list[FreeForm] | None = None
    monitoring: FreeForm | None = None


if TYPE_CHECKING:  # what accepting_read_only builds, as mypy can see it
    class _ServiceSpecBase(CreateService, ReadOnlyOutput): ...
else:
    _ServiceSpecBase = accepting_read_only("Service", CreateService)


class ServiceSpec(_ServiceSpecBase):
    """The Service resource's spec: CreateService (describe-services output too) plus Kubernetes-only settings."""

    kubernetes: ServiceKubernetes | None = None
