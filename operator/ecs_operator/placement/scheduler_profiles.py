"""kube-scheduler profiles that place as ECS's binpack strategy does (docs/ecs-semantics.md §binpack).

ECS's binpack(memory) puts a task on the instance with the least memory left that still fits it (cpu
likewise), whatever runs there. kube-scheduler's default profile does the opposite (NodeResourcesFit
LeastAllocated, NodeResourcesBalancedAllocation, and system-default spreading of a workload's Pods), so a
task with binpack names one of these profiles in `schedulerName`:

- NodeResourcesFit scores MostAllocated on the binpack field only;
- the scores that pull elsewhere are off: NodeResourcesBalancedAllocation, ImageLocality, and
  PodTopologySpread's system defaults (only the spread strategies the task asks for remain);
- PodTopologySpread weighs 100 to NodeResourcesFit's 1, so a spread strategy listed before binpack
  decides among zones (or instances) first and binpack only between equals, as ECS narrows the
  candidates in list order.

A cluster has the profiles only if its scheduler is configured with them (the sandbox's is; `profiles()`
is what to add to a KubeSchedulerConfiguration): the operator uses them only with --binpack-scheduler-profiles.
"""

from __future__ import annotations

from typing import Any

BINPACK_FIELDS = ("cpu", "memory")
"""The fields ECS's binpack strategy takes."""


def binpack_scheduler(field: str) -> str:
    """The profile (schedulerName) of binpack on `field` (cpu or memory)."""
    return f"ecs-binpack-{field}"


def profiles() -> list[dict[str, Any]]:
    """The KubeSchedulerConfiguration (kubescheduler.config.k8s.io/v1) profiles, one per binpack field."""
    return [_binpack_profile(field) for field in BINPACK_FIELDS]


def _binpack_profile(field: str) -> dict[str, Any]:
    return {
        "schedulerName": binpack_scheduler(field),
        "plugins": {"score": {
            "enabled": [{"name": "PodTopologySpread", "weight": 100}, {"name": "NodeResourcesFit", "weight": 1}],
            "disabled": [{"name": "NodeResourcesBalancedAllocation"}, {"name": "ImageLocality"}],
        }},
        "pluginConfig": [
            {"name": "NodeResourcesFit", "args": {"scoringStrategy": {
                "type": "MostAllocated", "resources": [{"name": field, "weight": 1}]}}},
            {"name": "PodTopologySpread", "args": {"defaultingType": "List", "defaultConstraints": []}},
        ],
    }
