"""ECS's describe-tasks shapes (the parts the operator reports), as kept in Task status."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

LastStatus = Literal[
    "PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"
]
HealthStatus = Literal["HEALTHY", "UNHEALTHY", "UNKNOWN"]
StopCode = Literal[
    "TaskFailedToStart", "EssentialContainerExited", "UserInitiated", "ServiceSchedulerInitiated",
    "SpotInterruption", "TerminationNotice",
]
ORDER: tuple[str, ...] = (
    "PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"
)


class Record(BaseModel):
    model_config = ConfigDict(extra="ignore")

    def to_json(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


class ContainerRecord(Record):
    name: str
    image: str | None = None
    lastStatus: Literal["PENDING", "RUNNING", "STOPPED"] = "PENDING"
    exitCode: int | None = None
    reason: str | None = None
    healthStatus: HealthStatus = "UNKNOWN"
    essential: bool = True


class TaskRecord(Record):
    """One ECS task (one Pod)."""

    taskArn: str | None = None
    podName: str
    lastStatus: LastStatus = "PROVISIONING"
    desiredStatus: Literal["RUNNING", "STOPPED"] = "RUNNING"
    healthStatus: HealthStatus = "UNKNOWN"
    stopCode: StopCode | None = None
    stoppedReason: str | None = None
    createdAt: str | None = None
    startedAt: str | None = None
    stoppingAt: str | None = None
    stoppedAt: str | None = None
    containerInstance: str | None = None
    """The node (container instance) the task runs on."""
    availabilityZone: str | None = None
    startedBy: str | None = None
    """A service task: the deployment that started it (ecs-svc/...)."""
    group: str | None = None
    taskDefinitionArn: str | None = None
    containers: list[ContainerRecord] = []
    version: int = 1
    """Incremented on each change of lastStatus, as ECS does."""

    @property
    def stopped(self) -> bool:
        return self.lastStatus == "STOPPED"
