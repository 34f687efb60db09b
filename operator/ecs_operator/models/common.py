"""ECS shapes shared by several kinds (tags, strategies, placement, networking, logging)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import EcsModel, EcsName, Integer

LaunchType = Literal["EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES"]
PropagateTags = Literal["TASK_DEFINITION", "SERVICE", "NONE"]
EnabledDisabled = Literal["ENABLED", "DISABLED"]


class KeyValuePair(EcsModel):
    name: str | None = None
    value: str | None = None


class Tag(EcsModel):
    key: str | None = Field(None, min_length=1, max_length=128)
    value: str | None = Field(None, max_length=256)


class Secret(EcsModel):
    name: str
    valueFrom: str = Field(description=(
        "A Secrets Manager ARN or SSM parameter ARN/name (see docs/conversion.md for the Secret it maps to)."))


class LogConfiguration(EcsModel):
    logDriver: Literal["json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens"]
    options: dict[str, str] | None = None
    secretOptions: list[Secret] | None = None


class CapacityProviderStrategyItem(EcsModel):
    capacityProvider: EcsName
    weight: Integer | None = Field(None, ge=0, le=1000)
    base: Integer | None = Field(None, ge=0, le=100000)


class PlacementConstraint(EcsModel):
    type: Literal["distinctInstance", "memberOf"] | None = None
    expression: str | None = Field(None, max_length=2000, description="Cluster query language (memberOf only).")


class PlacementStrategy(EcsModel):
    type: Literal["random", "spread", "binpack"] | None = None
    field: str | None = Field(None, max_length=255)


class AwsVpcConfiguration(EcsModel):
    subnets: list[str] = Field(max_length=16)
    securityGroups: list[str] | None = Field(None, max_length=5)
    assignPublicIp: EnabledDisabled | None = None


class NetworkConfiguration(EcsModel):
    awsvpcConfiguration: AwsVpcConfiguration | None = None


class EphemeralStorage(EcsModel):
    sizeInGiB: Integer = Field(ge=0, le=200)
