"""Label and annotation keys the operator puts on Nodes and Pods: one place, so every module agrees."""

from __future__ import annotations

import hashlib
import re

from ecs_operator import API_GROUP as API_GROUP  # re-exported: L.API_GROUP

# --- Node labels ------------------------------------------------------------------------------
CLUSTER = f"{API_GROUP}/cluster"
"""Node label: the node is a container instance of the ECS cluster named by the value."""
CLUSTER_NAMESPACE = f"{API_GROUP}/cluster-namespace"
"""Node label: the namespace whose cluster (named by CLUSTER) the node belongs to: Clusters of the same
name in two namespaces are two clusters (docs/ecs-semantics.md §Clusters belong to a namespace)."""
SHARED_INSTANCE = f"{API_GROUP}/shared-instance"
"""Node label "true": the node serves the cluster named by CLUSTER in every namespace (an administrator's
explicit choice, as the sandbox's nodes are)."""
FARGATE = f"{API_GROUP}/fargate"
"""Node label "true": the default node selector of FARGATE tasks (settings.fargate_node_selector)."""
EXTERNAL = f"{API_GROUP}/external"
"""Node label "true": an EXTERNAL (ECS Anywhere) instance; only EXTERNAL tasks go there."""
CAPACITY_PROVIDER = f"{API_GROUP}/capacity-provider"
"""Node label: the capacity provider (node pool) the node belongs to. Also on Pods placed by one."""
ATTRIBUTE_PREFIX = f"attributes.{API_GROUP}/"
"""Node labels `attributes.ecs.operator.dev/<name>` are the instance's custom ECS attributes."""
MEMBER_OF_PREFIX = f"memberof.{API_GROUP}/"
"""Node labels `memberof.ecs.operator.dev/<hash>` = "true": a memberOf expression the operator evaluates
itself holds on the node now (handlers/member_of.py keeps them current; docs/ecs-semantics.md §memberOf is
evaluated at placement time)."""

# ECS built-in attributes and the well-known node labels that carry them.
BUILTIN_ATTRIBUTES: dict[str, str] = {
    "ecs.availability-zone": "topology.kubernetes.io/zone",
    "ecs.instance-type": "node.kubernetes.io/instance-type",
    "ecs.os-type": "kubernetes.io/os",
    "ecs.cpu-architecture": "kubernetes.io/arch",
}
# ECS spells CPU architectures its own way (x86_64), Kubernetes the Go way (amd64).
ARCH_TO_ECS = {"amd64": "x86_64", "arm64": "arm64"}
ARCH_FROM_ECS = {v: k for k, v in ARCH_TO_ECS.items()}

# --- Pod labels -------------------------------------------------------------------------------
TASK = f"{API_GROUP}/task"
"""Pod label: name of the Task resource that owns the Pod (standalone tasks)."""
SERVICE = f"{API_GROUP}/service"
"""Pod label: name of the Service resource whose task this is."""
DEPLOYMENT = f"{API_GROUP}/deployment"
"""Pod label: the ECS deployment (ecs-svc/<digits>) a service task belongs to."""
GROUP = f"{API_GROUP}/group"
"""Pod label: the ECS task group (`service:web`, `family:nginx`) as a label value, see group_label_value."""
FAMILY = f"{API_GROUP}/family"
REVISION = f"{API_GROUP}/revision"
LAUNCH_TYPE = f"{API_GROUP}/launch-type"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "ecs-operator"

# --- Pod annotations: what the task life cycle needs to read a Pod without its TaskDefinition ---
ESSENTIAL_CONTAINERS = f"{API_GROUP}/essential-containers"
"""Comma-separated names of the essential containers."""
HEALTH_CHECKED_CONTAINERS = f"{API_GROUP}/health-checked-containers"
"""Comma-separated names of the containers with an ECS healthCheck (readiness probe)."""
TASK_DEFINITION_ARN = f"{API_GROUP}/task-definition-arn"
STARTED_BY = f"{API_GROUP}/started-by"
CONTAINER_NAMES = f"{API_GROUP}/container-names"
EXIT_CODE_MESSAGE = "ecs-exit-code="
"""A COMPLETE-only init container's termination message: its command's real exit code (the wrapper that lets
its dependents start whatever the code exits 0 itself)."""
"""Comma-separated ECS container names in definition order (Kubernetes may reorder them into init containers)."""

# --- Node pool (capacity provider) taints and annotations ---
WARMING_UP_TAINT = f"{API_GROUP}/warming-up"
"""A new kwok node takes no tasks until instanceWarmupPeriod has passed (an instance still booting)."""
WARMED_UP_AT = f"{API_GROUP}/warmed-up-at"
"""Node annotation: when the warming-up taint came off (the scheduler has tried waiting tasks on it since)."""
LEAVING = f"{API_GROUP}/leaving"
"""Node annotation: chosen for scale-in while it runs tasks (managed draining); it goes once they moved."""
REGISTERED_AT = f"{API_GROUP}/registered-at"
"""Node annotation: when the operator registered the pool's node with its cluster (labelled it)."""
LAUNCHED_AT = f"{API_GROUP}/launched-at"
"""Node annotation: when a kwok pool launched the node."""

# --- Service annotations ---
FORCE_NEW_DEPLOYMENT = f"{API_GROUP}/force-new-deployment"
"""Service annotation: a new value starts a new deployment of the same revision (UpdateService's
forceNewDeployment; as `kubectl rollout restart` writes restartedAt)."""
STOP_TASK_PREFIX = f"stop-task.{API_GROUP}/"
"""A Service annotation `stop-task.ecs.operator.dev/<task id>: <reason>` is StopTask of that service
task: the operator stops it (UserInitiated, the reason as stoppedReason), the scheduler replaces it,
and the annotation goes once the task is gone."""
CONTINUE_PREFIX = f"continue.{API_GROUP}/"
"""A Service annotation `continue.ecs.operator.dev/<hookId>: CONTINUE|ROLLBACK` is ContinueServiceDeployment of that
PAUSE lifecycle hook (what the API writes); it goes once the hook is no longer waiting (lifecycle/service_hooks.py)."""
HOOK_DEPLOYMENT = f"hook.{API_GROUP}/deployment"
"""Label of a lifecycle hook's Task: the digits of the service deployment it runs for."""

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def group_label_value(group: str) -> str:
    """An ECS task group as a label value: ':' becomes '.', and long or odd values become a hash."""
    value = group.replace(":", ".")
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(group.encode()).hexdigest()[:16]
    head = re.sub(r"[^-A-Za-z0-9_.]", "-", value)[:40].strip("-_.")
    return f"{head}-{digest}" if head else digest


def member_of_label(expression: str, namespace: str | None) -> str:
    """The node label that says `expression` holds on the node: a stable hash of the expression, and of the
    namespace when the expression depends on the tasks of its cluster (a namespace's clusters are its own)."""
    scope = f"{namespace}\n" if namespace is not None else ""
    return MEMBER_OF_PREFIX + hashlib.sha256(f"{scope}{expression}".encode()).hexdigest()[:20]


def attribute_label(name: str) -> str:
    """The node label that carries ECS attribute `name`."""
    return BUILTIN_ATTRIBUTES.get(name, ATTRIBUTE_PREFIX + name)
