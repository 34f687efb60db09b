"""Fields ECS adds to its describe-* and create-* outputs that no create request accepts.

Users paste outputs (describe-task-definition, describe-services, put-cluster-capacity-providers)
as inputs; these fields are dropped (and listed in the report). tests/unit/test_convert.py checks
each set against botocore's output shape minus its request shape, so a new ECS output field
cannot slip through as an "unknown field" error.
"""

from __future__ import annotations

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
