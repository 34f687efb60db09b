"""The ContainerInstance resource: ECS's view of a Node that belongs to an ECS cluster."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import EcsModel


class ContainerInstanceSpec(EcsModel):
    """UpdateContainerInstancesState's settable part; the rest is status, kept by the operator."""

    status: Literal["ACTIVE", "DRAINING"] | None = Field(None, description=(
        "DRAINING cordons the node and moves service tasks off it; ACTIVE (the default) undoes that."))
