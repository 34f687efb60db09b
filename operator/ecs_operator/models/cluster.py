"""CreateCluster (all its fields) and the Cluster resource spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from .base import EcsModel, EcsName, NameRef
from .common import CapacityProviderStrategyItem, Tag
from .readonly import ReadOnlyOutput, accepting_read_only


class ClusterSetting(EcsModel):
    name: Literal["containerInsights"] | None = None
    value: Literal["enhanced", "enabled", "disabled"] | None = None


class ExecuteCommandLogConfiguration(EcsModel):
    cloudWatchLogGroupName: str | None = None
    cloudWatchEncryptionEnabled: bool | None = None
    s3BucketName: str | None = None
    s3EncryptionEnabled: bool | None = None
    s3KeyPrefix: str | None = None


class ExecuteCommandConfiguration(EcsModel):
    kmsKeyId: str | None = None
    logging: Literal["NONE", "DEFAULT", "OVERRIDE"] | None = None
    logConfiguration: ExecuteCommandLogConfiguration | None = None


class ManagedStorageConfiguration(EcsModel):
    kmsKeyId: str | None = None
    fargateEphemeralStorageKmsKeyId: str | None = None


class ClusterConfiguration(EcsModel):
    executeCommandConfiguration: ExecuteCommandConfiguration | None = None
    managedStorageConfiguration: ManagedStorageConfiguration | None = None


class ClusterServiceConnectDefaultsRequest(EcsModel):
    namespace: str


class CreateCluster(EcsModel):
    """The CreateCluster request (with PutClusterCapacityProviders' fields, which it shares)."""

    clusterName: EcsName | None = Field(None, description="Defaults to the resource's metadata.name.")
    tags: list[Tag] | None = Field(None, max_length=50)
    settings: list[ClusterSetting] | None = None
    configuration: ClusterConfiguration | None = None
    capacityProviders: list[NameRef] | None = Field(None, max_length=20)
    defaultCapacityProviderStrategy: list[CapacityProviderStrategyItem] | None = Field(None, max_length=20)
    serviceConnectDefaults: ClusterServiceConnectDefaultsRequest | None = None


if TYPE_CHECKING:  # what accepting_read_only builds, as mypy can see it
    class _ClusterSpecBase(CreateCluster, ReadOnlyOutput): ...
else:
    _ClusterSpecBase = accepting_read_only("Cluster", CreateCluster)


class ClusterSpec(_ClusterSpecBase):
    """The Cluster resource's spec: CreateCluster verbatim (describe-clusters output too)."""
