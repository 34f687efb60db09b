"""CreateCapacityProvider (all its fields) and the CapacityProvider resource spec with its node pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from .base import EcsModel, EcsName, Integer
from .common import EnabledDisabled, Tag
from .readonly import ReadOnlyOutput, accepting_read_only


class ManagedScaling(EcsModel):
    status: EnabledDisabled | None = None
    targetCapacity: Integer | None = Field(None, ge=1, le=100)
    minimumScalingStepSize: Integer | None = Field(None, ge=1, le=10000)
    maximumScalingStepSize: Integer | None = Field(None, ge=1, le=10000)
    instanceWarmupPeriod: Integer | None = Field(None, ge=0, le=10000)


class AutoScalingGroupProvider(EcsModel):
    autoScalingGroupArn: str | None = Field(None, description=(
        "Optional here: the node pool in spec.kubernetes.nodePool stands for the Auto Scaling group."))
    managedScaling: ManagedScaling | None = None
    managedTerminationProtection: EnabledDisabled | None = None
    managedDraining: EnabledDisabled | None = None


class Taint(EcsModel):
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class ScaleTarget(EcsModel):
    """Any object with a scale subresource whose replicas are the pool's size."""

    apiVersion: str
    kind: str
    name: str
    namespace: str | None = None
    deleteAnnotation: str = Field("cluster.x-k8s.io/delete-machine", description=(
        "Set on the Nodes chosen for removal before the replica count is lowered."))


class NodePool(EcsModel):
    """The Kubernetes nodes behind a capacity provider (its "Auto Scaling group")."""

    backend: Literal["kwok", "scale"]
    instanceType: str = Field("m5.large", description=(
        "Instance type of the pool's nodes (see ecs_operator/nodepool/instance_types.py): used for bin-packing."))
    minSize: Integer = Field(0, ge=0)
    maxSize: Integer = Field(ge=0)
    nodeLabels: dict[str, str] | None = Field(None, description="Extra labels on the kwok backend's nodes.")
    taints: list[Taint] | None = None
    zones: list[str] | None = Field(None, description=(
        "Zones the kwok backend spreads its nodes over (default us-east-1a, us-east-1b, us-east-1c)."))
    scaleTarget: ScaleTarget | None = Field(None, description="Required for the scale backend.")


ALLOWED_ENTRY_PATTERN = r"^(\*|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(/[A-Za-z0-9_-]{1,255})?)$"
AllowedEntry = Annotated[str, Field(pattern=ALLOWED_ENTRY_PATTERN, max_length=319)]


class CapacityProviderKubernetes(EcsModel):
    """Kubernetes-only settings of a CapacityProvider (never ECS fields)."""

    allowedNamespaces: list[AllowedEntry] | None = Field(None, max_length=256, description=(
        "Who may use the provider: `namespace` (its every cluster), `namespace/clusterName`, or `*` (every\n"
        "namespace). Empty or absent: nobody (see docs/ecs-semantics.md §Capacity providers belong to an administrator)."))
    nodePool: NodePool | None = None
    scaleInAfterSeconds: Integer | None = Field(None, ge=0, description=(
        "How long the reservation must stay below target before scale-in (ECS: 15 one-minute datapoints = 900 s)."))


class CreateCapacityProvider(EcsModel):
    """The CreateCapacityProvider request."""

    name: EcsName | None = Field(None, description="Defaults to the resource's metadata.name.")
    cluster: str | None = None
    autoScalingGroupProvider: AutoScalingGroupProvider | None = None
    managedInstancesProvider: dict[str, Any] | None = None
    tags: list[Tag] | None = Field(None, max_length=50)


if TYPE_CHECKING:  # what accepting_read_only builds, as mypy can see it
    class _CapacityProviderSpecBase(CreateCapacityProvider, ReadOnlyOutput): ...
else:
    _CapacityProviderSpecBase = accepting_read_only("CapacityProvider", CreateCapacityProvider)


class CapacityProviderSpec(_CapacityProviderSpecBase):
    """The CapacityProvider resource's spec: CreateCapacityProvider (describe-capacity-providers output too) plus the node pool behind it."""  # noqa: E501 (the CRD's description)

    kubernetes: CapacityProviderKubernetes | None = None
