"""RunTask -> Pods (one per task, count 1-10), with overrides, launch type or capacity provider, placement."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from ecs_operator import labels as L
from ecs_operator.arns import task_arn
from ecs_operator.models import Problem, TaskSpec, validate
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.placement.query import Instance
from ecs_operator.scaling.strategy_split import split
from ecs_operator.settings import Settings

from .fidelity import FidelityReport
from .firelens import config_map_name, owned_config_map
from .launch import Target, compatibility_problems, launch_choice, scheduling_for, target_for_provider
from .overrides import apply_overrides, overridden_paths, override_path
from .placement import Placement, placement_for
from .pod import Revision, pod_template
from .pod_checks import ecs_field, kubernetes_findings
from .policy import WorkloadPolicy, policy_violations
from .provider_access import launch_access_problems
from .scheduling import add_scheduling
from .volumes import SharedClaim


@dataclass
class TaskPlan:
    pods: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    """Other objects the tasks need (a NetworkPolicy for networkMode none)."""
    report: FidelityReport = field(default_factory=lambda: FidelityReport("Task"))
    problems: list[Problem] = field(default_factory=list)
    unsatisfiable: bool = False
    group: str = ""
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) of each child -> the ECS field that asked for it (named when the name is taken)."""
    claims: list[SharedClaim] = field(default_factory=list)
    """The namespace's claims the Pods name (handlers/storage.py creates them when missing)."""


def task_group(task: TaskSpec, family: str) -> str:
    return task.group or f"family:{family}"


def task_targets(task: TaskSpec, count: int, cluster_default: list[CapacityProviderStrategyItem] | None) -> list[Target]:
    """The launch target of each task: one launch type, or the strategy's base/weight split."""
    choice = launch_choice(task.launchType, task.capacityProviderStrategy, cluster_default)
    if isinstance(choice, Target):
        return [choice] * count
    shares = split(choice, count)
    return [target_for_provider(name) for item in choice for name in [item.capacityProvider] for _ in range(shares.get(name, 0))]


def task_pods(
    task: TaskSpec,
    *,
    name: str,
    namespace: str,
    revision: Revision,
    cluster: str,
    settings: Settings,
    cluster_default_strategy: list[CapacityProviderStrategyItem] | None = None,
    instances: Sequence[Instance] = (),
    policy: WorkloadPolicy = WorkloadPolicy(),
    provider_access: Mapping[str, Sequence[str] | None] | None = None,
    owner: dict[str, Any] | None = None,
    member_of_labels: AbstractSet[str] = frozenset(),
) -> TaskPlan:
    """The Pods of a Task resource, named `<name>-<index>` so creating them twice creates nothing."""
    plan = TaskPlan()
    td, plan.problems = apply_overrides(revision.definition, task.overrides)
    origins = overridden_paths(revision.definition, task.overrides)
    if not plan.problems:
        plan.problems += [Problem(override_path(p.path, origins) or f"taskDefinition.{p.path}", p.message)
                          for p in validate(td)]
    plan.problems += [Problem(f"taskDefinition.{p.path}", p.message) for p in policy_violations(td, revision.kubernetes, policy)]
    count = task.count or 1
    targets = task_targets(task, count, cluster_default_strategy)
    for target in dict.fromkeys(targets):
        plan.problems += compatibility_problems(td, target, revision.name)
    plan.problems += launch_access_problems(task.launchType, task.capacityProviderStrategy, cluster_default_strategy,
                                            provider_access or {}, namespace, cluster)
    plan.group = task_group(task, revision.family)
    if plan.problems:
        return plan

    launch_rev = Revision(revision.family, revision.revision, td, revision.kubernetes, revision.arn)
    launch_volumes = {v.name: v.managedEBSVolume or {} for v in task.volumeConfigurations or []}
    tail_pod_logs = "hostPath" in policy.allowed
    translation = pod_template(launch_rev, for_service=False, launch_volumes=launch_volumes,
                               owner_name=name, tail_pod_logs=tail_pod_logs, storage=settings.storage_classes)
    if origins:  # the registered revision passed these checks: only an override can break them here
        plan.problems += [Problem(override_path(path := ecs_field(td, translation.template, k8s), origins)
                                  or f"taskDefinition.{path}", message)
                          for k8s, message in kubernetes_findings(translation)]
        if plan.problems:
            return plan
    _report_launch(task, plan.report)
    plan.claims = translation.claims
    for index, target in enumerate(targets):
        placement = placement_for(
            task_definition_constraints=td.placementConstraints or [],
            constraints=task.placementConstraints or [],
            strategies=task.placementStrategy,
            group=plan.group,
            service=False,
            launch_type=target.launch_type,
            instances=instances,
            report=plan.report,
            namespace=namespace,
            labels_in_use=member_of_labels,
            binpack_profiles=settings.binpack_scheduler_profiles,
        )
        if placement.problems:
            plan.problems += placement.problems
            return plan
        plan.unsatisfiable |= placement.unsatisfiable
        plan.pods.append(_pod(task, name, namespace, index, target, translation.template, placement, plan.group, cluster,
                              settings, owner))
        plan.origins[("Pod", f"{name}-{index}")] = "metadata.name" if count == 1 else f"count (task {index})"
    if translation.router is not None:
        plan.extra.append(owned_config_map(translation.router, owner_name=name, namespace=namespace, cluster=cluster,
                                           task_definition=revision.name, task_arn_prefix=task_arn(settings, cluster, ""),
                                           tail_pod_logs=tail_pod_logs, owner=owner))
        plan.origins[("ConfigMap", config_map_name(name))] = \
            f"taskDefinition.containerDefinitions[{translation.router.index}].firelensConfiguration"
    if translation.isolated:
        plan.extra.append(isolation_policy(f"{name}-isolated", namespace, {L.TASK: L.group_label_value(name)}, owner))
        plan.origins[("NetworkPolicy", f"{name}-isolated")] = "taskDefinition.networkMode"
    return plan


def _pod(task: TaskSpec, name: str, namespace: str, index: int, target: Target, template: dict[str, Any],
         placement: Placement, group: str, cluster: str, settings: Settings, owner: dict[str, Any] | None) -> dict[str, Any]:
    scheduling = scheduling_for(target, cluster, namespace, settings)
    spec = copy.deepcopy({**template["spec"], **placement.pod_spec})
    add_scheduling(spec, node_selector=scheduling.node_selector, node_terms=scheduling.node_terms)
    if placement.node_terms is not None:
        add_scheduling(spec, node_terms=placement.node_terms)
    labels = {
        **template["metadata"]["labels"],
        **scheduling.labels,
        L.TASK: L.group_label_value(name),
        L.GROUP: L.group_label_value(group),
    }
    annotations = {**template["metadata"]["annotations"], **placement.maintained, f"{L.API_GROUP}/group": group}
    if task.startedBy:
        annotations[L.STARTED_BY] = task.startedBy
    metadata: dict[str, Any] = {"name": f"{name}-{index}", "namespace": namespace, "labels": labels, "annotations": annotations}
    if owner is not None:
        metadata["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def isolation_policy(name: str, namespace: str, selector: dict[str, str], owner: dict[str, Any] | None) -> dict[str, Any]:
    """networkMode none: no traffic in or out (where the network plugin enforces NetworkPolicy)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {L.MANAGED_BY: L.MANAGED_BY_VALUE}}
    if owner is not None:
        metadata["ownerReferences"] = [{**owner, "controller": True}]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {"podSelector": {"matchLabels": selector}, "policyTypes": ["Ingress", "Egress"]},
    }


def _report_launch(task: TaskSpec, report: FidelityReport) -> None:
    if task.overrides is not None:
        for i, o in enumerate(task.overrides.containerOverrides or []):
            for j, r in enumerate(o.resourceRequirements or []):
                if r.type == "InferenceAccelerator":
                    report.unsupported(f"overrides.containerOverrides[{i}].resourceRequirements[{j}]",
                                       "Elastic Inference is retired")

