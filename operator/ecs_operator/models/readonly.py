"""Fields ECS adds to its describe-* and create-* outputs that no create request accepts.

Users paste outputs (describe-task-definition, describe-services, put-cluster-capacity-providers)
as inputs: `convert` drops these fields, and the resources' specs accept them (so `kubectl apply`
of pasted output passes strict field validation) and ignore them, reporting them as ignored.
tests/unit/test_convert.py checks each set against botocore's output shape minus its request
shape, so a new ECS output field cannot slip through as an "unknown field" error
(docs/ecs-semantics.md §Read-only output fields).
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import Field, create_model

from .base import EcsModel

READ_ONLY: dict[str, frozenset[str]] = {
    # TaskDefinition minus RegisterTaskDefinitionRequest
    "TaskDefinition": frozenset({
        "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
        "registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt",
    }),
    # Service minus CreateServiceRequest
    "Service": frozenset({
        "serviceArn", "clusterArn", "status", "runningCount", "pendingCount", "deployments", "events",
        "createdAt", "createdBy", "roleArn", "platformFamily", "taskSets", "currentServiceDeployment",
        "currentServiceRevisions", "resourceManagementType",
    }),
    # Cluster minus CreateClusterRequest
    "Cluster": frozenset({
        "clusterArn", "status", "registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount",
        "activeServicesCount", "statistics", "attachments", "attachmentsStatus",
    }),
    # CapacityProvider minus CreateCapacityProviderRequest
    "CapacityProvider": frozenset({"capacityProviderArn", "status", "type", "updateStatus", "updateStatusReason"}),
}


class ReadOnlyOutput(EcsModel):
    """A spec that accepts ECS's read-only output fields: never dumped, never acted on."""

    @property
    def ignored_read_only_fields(self) -> list[str]:
        """The read-only output fields this spec carries (for the fidelity report)."""
        return sorted(n for n in self.model_fields_set
                      if n in type(self).model_fields and type(self).model_fields[n].exclude and getattr(self, n) is not None)


M = TypeVar("M", bound=EcsModel)


def accepting_read_only(kind: str, request: type[M]) -> type[M]:
    """`request` plus ECS's read-only output fields of `kind`, as free-form fields excluded from every dump."""
    note = "Read-only ECS output (pasted describe-* output): accepted and ignored."
    fields: dict[str, Any] = {name: (Any, Field(None, exclude=True, description=note)) for name in sorted(READ_ONLY[kind])}
    bases: tuple[type[EcsModel], ...] = (request, ReadOnlyOutput)
    return cast("type[M]", create_model(f"{request.__name__}Output", __base__=bases, **fields))  # a subclass of `request`
