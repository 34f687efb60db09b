"""Operator settings the pure core needs (the handlers read them from flags and the environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ecs_operator.labels import FARGATE as FARGATE_LABEL
from ecs_operator.models.service import TASKS_PER_SERVICE
from ecs_operator.translate.volumes import StorageClasses


@dataclass(frozen=True)
class Settings:
    region: str = "us-east-1"
    """Used in ARNs."""
    account_id: str = "000000000000"
    """Used in ARNs."""
    fargate_node_selector: dict[str, str] = field(default_factory=lambda: {FARGATE_LABEL: "true"})
    """Nodes FARGATE tasks may run on: those an administrator set aside ({} would be any schedulable node, the
    nodes of every cluster and namespace included: docs/ecs-semantics.md §FARGATE runs on nodes an administrator sets aside)."""
    fargate_spot_node_selector: dict[str, str] = field(default_factory=lambda: {"karpenter.sh/capacity-type": "spot"})
    """Nodes FARGATE_SPOT tasks may run on."""
    load_balancer_service_type: str = "ClusterIP"
    """Kubernetes Service type for ECS loadBalancers (a Service may override it)."""
    service_task_ready_seconds: int = 40
    """ECS counts a task without health checks as healthy after 40 s RUNNING (minReadySeconds)."""
    stopped_task_ttl_seconds: int = 3600
    """How long STOPPED tasks stay visible (ECS: at least an hour)."""
    deployment_minute_seconds: float = 60
    """How long one minute of bakeTimeInMinutes, canaryBakeTimeInMinutes and stepBakeTimeInMinutes lasts: 60, as in
    ECS; tests shorten it (--deployment-minute-seconds) so a schedule of minutes runs in seconds."""
    capacity_evaluation_seconds: float = 15
    """How often capacity providers evaluate managed scaling (ECS: every minute); waiting tasks also trigger it."""
    max_service_tasks: int = TASKS_PER_SERVICE
    """The most tasks one Service may ask for (ECS's quota, 5,000, is also the CRD's limit)."""
    binpack_scheduler_profiles: bool = False
    """The cluster's scheduler has the profiles of placement/scheduler_profiles.py: binpack tasks name them."""
    allowed_workload_features: frozenset[str] = frozenset()
    """Workload policy: features allowed in every namespace (see translate/policy.py)."""
    docker_volume_storage_classes: dict[str, str] = field(default_factory=dict)
    """Docker volume driver -> StorageClass of its claims ("" the cluster's default; docs/volumes.md)."""
    ebs_storage_class: str = ""
    """StorageClass of configuredAtLaunch (managedEBSVolume) claims ("" the cluster's default)."""
    alertmanager_url: str = ""
    """Alertmanager whose alerts are the deployment alarms ("" none: alarms cannot be watched; adapters/alertmanager.py)."""

    @property
    def storage_classes(self) -> StorageClasses:
        return StorageClasses(docker=dict(self.docker_volume_storage_classes), ebs=self.ebs_storage_class)
