"""A task definition revision as a Kubernetes PodTemplateSpec (TaskDefinition -> Pod)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ecs_operator import labels as L
from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.models.task_definition import TaskDefinitionKubernetes

from .containers import build_container, container_name
from .dependencies import StartOrder, ignore_exit_code, report_dependencies, start_order
from .fidelity import FidelityReport
from .firelens import Router, config_map_name, router_container, router_of
from .health import health_settings
from .log_drivers import log_annotations, report_log_configuration
from .names import secret_ref
from .resources import pod_resources
from .tags import TAGS_ANNOTATION
from .volumes import NO_STORAGE_CLASSES, SharedClaim, StorageClasses, task_volumes

DEFAULT_STOP_TIMEOUT = 30  # seconds: the ECS agent's ECS_CONTAINER_STOP_TIMEOUT default


@dataclass(frozen=True)
class Revision:
    """A registered task definition revision: what tasks and services run."""

    family: str
    revision: int
    definition: RegisterTaskDefinition
    kubernetes: TaskDefinitionKubernetes | None = None
    arn: str = ""

    @property
    def name(self) -> str:
        return f"{self.family}:{self.revision}"


@dataclass
class PodTranslation:
    template: dict[str, Any]
    report: FidelityReport
    isolated: bool = False
    """networkMode none: the caller adds a deny-all NetworkPolicy for the Pods."""
    notes: list[str] = field(default_factory=list)
    router: Router | None = None
    """The FireLens log router: the caller creates its configuration's ConfigMap (firelens.config_map)."""
    claims: list[SharedClaim] = field(default_factory=list)
    """PersistentVolumeClaims of the namespace its Pods name (volumes.storage_objects makes them)."""


def pod_template(
    rev: Revision,
    *,
    for_service: bool,
    launch_volumes: Mapping[str, Mapping[str, Any]] | None = None,
    report: FidelityReport | None = None,
    owner_name: str = "",
    tail_pod_logs: bool = False,
    storage: StorageClasses = NO_STORAGE_CLASSES,
) -> PodTranslation:
    """The Pod every task of `rev` runs as. Services' Pods restart nothing in place (see containers).
    `owner_name`: the Task or Service, whose FireLens ConfigMap the router mounts; `tail_pod_logs`: the
    workload policy allows hostPath, so the router reads its containers' log files (translate/firelens.py).
    `launch_volumes`: the launch's volumeConfigurations (volume name -> managedEBSVolume)."""
    td = rev.definition
    report = report or FidelityReport("TaskDefinition")
    order = start_order(td)
    by_name = {c.name: i for i, c in enumerate(td.containerDefinitions)}
    extra_volumes: list[dict[str, Any]] = []

    def build(name: str) -> dict[str, Any]:
        kind = order.kind(name)
        healthy: Literal["sidecar", "container"] | None = (
            None if name not in order.healthy_targets or kind == "run-to-completion"
            else "sidecar" if kind == "sidecar" else "container")
        container, volumes = build_container(td, by_name[name], report, for_service=for_service, healthy_target=healthy)
        extra_volumes.extend(volumes)
        if kind == "sidecar":
            container["restartPolicy"] = "Always"  # a native sidecar: the next one starts once it has started
            container.pop("restartPolicyRules", None)
        elif kind == "run-to-completion":
            container.pop("restartPolicy", None)
            container.pop("restartPolicyRules", None)
            container.pop("readinessProbe", None)  # probes are not allowed on run-to-completion init containers
            if name in order.ignore_exit_code and "command" in container:
                ignore_exit_code(container)
        return container

    init = [build(name) for name, _ in order.init]
    containers = [build(name) for name in order.main]
    router = router_of(td)
    if router is not None:
        routed = container_name(td.containerDefinitions[router.index].name)
        target = next(c for c in init + containers if c["name"] == routed)
        extra_volumes += router_container(target, router, config_map_name(owner_name or rev.family),
                                          tail_pod_logs=tail_pod_logs)
    report_log_configuration(td, router, report, tail_pod_logs=tail_pod_logs)
    report_dependencies(td, order, report)
    _report_non_essential(td, order, report)

    spec: dict[str, Any] = {
        "restartPolicy": "Always" if for_service else "Never",
        "terminationGracePeriodSeconds": max(
            [c.stopTimeout for c in td.containerDefinitions if c.stopTimeout is not None] or [DEFAULT_STOP_TIMEOUT]
        ),
        "containers": containers,
    }
    if init:
        spec["initContainers"] = init
    task_vols, claims = task_volumes(td, report, launch_volumes or {}, storage)
    volumes = task_vols + extra_volumes
    if volumes:
        spec["volumes"] = volumes
    resources = pod_resources(td)
    if resources:
        spec["resources"] = resources
    _ephemeral_storage(td, init + containers, report)
    isolated = _network(td, spec, report)
    _pod_wide_container_settings(td, spec, report)
    _process_settings(td, spec, report)
    _node_selector(td, spec, report)
    _image_pull_secrets(td, spec, report)
    if rev.kubernetes is not None and rev.kubernetes.serviceAccountName:
        spec["serviceAccountName"] = rev.kubernetes.serviceAccountName
    if rev.kubernetes is not None and rev.kubernetes.tolerations:
        spec["tolerations"] = [t.model_dump(exclude_none=True) for t in rev.kubernetes.tolerations]

    metadata = {"labels": _labels(rev), "annotations": _annotations(rev)}
    return PodTranslation({"metadata": metadata, "spec": spec}, report, isolated, router=router, claims=claims)


def _report_non_essential(td: RegisterTaskDefinition, order: StartOrder, report: FidelityReport) -> None:
    """What Kubernetes counts that ECS does not (docs/ecs-semantics.md §Essential containers)."""
    for i, c in enumerate(td.containerDefinitions):
        if not c.is_essential and order.kind(c.name) != "run-to-completion":
            report.approximated(
                f"containerDefinitions[{i}].essential", "operator: task state and load-balancer endpoints",
                f"when {c.name} exits or fails its health check the task stays RUNNING and, in a service, registered "
                "with its load balancers (the operator writes the endpoints), as in ECS; but the Pod's Ready condition "
                "counts every container, so a Deployment counts the task unavailable, which holds rolling updates "
                "and PodDisruptionBudget evictions")


def _labels(rev: Revision) -> dict[str, str]:
    labels = {
        L.FAMILY: _label_value(rev.family),
        L.REVISION: str(rev.revision),
        L.MANAGED_BY: L.MANAGED_BY_VALUE,
    }
    if rev.kubernetes is not None and rev.kubernetes.podLabels:
        labels = {**rev.kubernetes.podLabels, **labels}
    return labels


def _label_value(value: str) -> str:
    return L.group_label_value(value)


def _annotations(rev: Revision) -> dict[str, str]:
    td = rev.definition
    annotations: dict[str, str] = {}
    if rev.kubernetes is not None and rev.kubernetes.podAnnotations:
        annotations.update(rev.kubernetes.podAnnotations)
    annotations[L.ESSENTIAL_CONTAINERS] = ",".join(container_name(c.name) for c in td.containerDefinitions if c.is_essential)
    checked = {container_name(c.name): health_settings(c.healthCheck) for c in td.containerDefinitions if c.healthCheck}
    if checked:
        annotations[L.HEALTH_CHECKED_CONTAINERS] = json.dumps(checked, sort_keys=True)
    annotations[L.CONTAINER_NAMES] = json.dumps({container_name(c.name): c.name for c in td.containerDefinitions})
    if rev.arn:
        annotations[L.TASK_DEFINITION_ARN] = rev.arn
    if td.taskRoleArn:
        annotations[f"{L.API_GROUP}/task-role-arn"] = td.taskRoleArn
    if td.tags:
        annotations[TAGS_ANNOTATION] = json.dumps({t.key: t.value for t in td.tags if t.key})
    for c in td.containerDefinitions:
        if c.dockerLabels:
            annotations[f"{L.API_GROUP}/docker-labels.{container_name(c.name)}"] = json.dumps(c.dockerLabels, sort_keys=True)
        if c.logConfiguration is not None:
            annotations[f"{L.API_GROUP}/log-configuration.{container_name(c.name)}"] = json.dumps(
                c.logConfiguration.model_dump(mode="json", exclude_none=True), sort_keys=True
            )
            annotations.update(log_annotations(container_name(c.name), c.logConfiguration))
    return annotations


def _ephemeral_storage(td: RegisterTaskDefinition, containers: list[dict[str, Any]], report: FidelityReport) -> None:
    if td.ephemeralStorage is None or not td.ephemeralStorage.sizeInGiB:
        return
    essential = {container_name(c.name) for c in td.containerDefinitions if c.is_essential}
    target = next((c for c in containers if c["name"] in essential), containers[0])
    size = f"{td.ephemeralStorage.sizeInGiB}Gi"
    resources = target.setdefault("resources", {})
    resources.setdefault("requests", {})["ephemeral-storage"] = size
    resources.setdefault("limits", {})["ephemeral-storage"] = size
    report.approximated("ephemeralStorage.sizeInGiB", f"containers[{target['name']}].resources ephemeral-storage",
                        "Kubernetes has no Pod-level ephemeral-storage limit: set on the first essential container")


def _network(td: RegisterTaskDefinition, spec: dict[str, Any], report: FidelityReport) -> bool:
    mode = td.effective_network_mode
    if mode == "host":
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        report.exact("networkMode", "hostNetwork: true", "the task uses the node's network stack")
    elif mode == "awsvpc":
        report.exact("networkMode", "Pod network", "the task gets its own IP, shared by its containers")
    elif mode == "bridge":
        report.approximated("networkMode", "Pod network + hostPort",
                            "containers share the Pod's IP and localhost instead of a Docker bridge; static host ports are kept")
    else:
        report.approximated("networkMode", "deny-all NetworkPolicy",
                            "Pods always have a network; a NetworkPolicy isolates them where the network plugin enforces it")
    return mode == "none"


def _pod_wide_container_settings(td: RegisterTaskDefinition, spec: dict[str, Any], report: FidelityReport) -> None:
    """hostname, DNS, hosts and sysctls are per container in ECS but per Pod in Kubernetes."""
    aliases: dict[str, set[str]] = {}
    nameservers: list[str] = []
    searches: list[str] = []
    sysctls: dict[str, str] = {}
    for i, c in enumerate(td.containerDefinitions):
        if c.hostname and "hostname" not in spec:
            spec["hostname"] = c.hostname.split(".")[0].lower()
        for h in c.extraHosts or []:
            aliases.setdefault(h.ipAddress, set()).add(h.hostname)
        for link in c.links or []:
            target, _, alias = link.partition(":")
            aliases.setdefault("127.0.0.1", set()).update({n for n in (target, alias) if n})
        nameservers += [s for s in c.dnsServers or [] if s not in nameservers]
        searches += [s for s in c.dnsSearchDomains or [] if s not in searches]
        for sc in c.systemControls or []:
            if sc.namespace:
                sysctls[sc.namespace] = sc.value or ""
        if c.disableNetworking:
            report.unsupported(f"containerDefinitions[{i}].disableNetworking", "containers of a Pod share one network")
    if aliases:
        spec["hostAliases"] = [{"ip": ip, "hostnames": sorted(names)} for ip, names in sorted(aliases.items())]
    if nameservers:
        spec["dnsPolicy"] = "None"
        spec["dnsConfig"] = {"nameservers": nameservers[:3], **({"searches": searches} if searches else {})}
    elif searches:
        spec["dnsConfig"] = {"searches": searches}
    if sysctls:
        spec.setdefault("securityContext", {})["sysctls"] = [{"name": k, "value": v} for k, v in sysctls.items()]


def _process_settings(td: RegisterTaskDefinition, spec: dict[str, Any], report: FidelityReport) -> None:
    if td.pidMode == "host":
        spec["hostPID"] = True
    elif td.pidMode == "task" or any(c.linuxParameters and c.linuxParameters.initProcessEnabled for c in td.containerDefinitions):
        spec["shareProcessNamespace"] = True
    if td.ipcMode == "host":
        spec["hostIPC"] = True
    elif td.ipcMode == "none":
        report.unsupported("ipcMode", "a Pod's containers always share an IPC namespace")


def _image_pull_secrets(td: RegisterTaskDefinition, spec: dict[str, Any], report: FidelityReport) -> None:
    """Private registry credentials: the Secret named by the secrets convention (names.secret_ref), as the
    chart's reference admission policy names it when it checks `get` on it."""
    names: list[str] = []
    for i, c in enumerate(td.containerDefinitions):
        if c.repositoryCredentials is None:
            continue
        name = secret_ref(c.repositoryCredentials.credentialsParameter)[0]
        names += [name] if name not in names else []
        report.approximated(f"containerDefinitions[{i}].repositoryCredentials.credentialsParameter",
                            f"imagePullSecrets[].name {name}",
                            "a docker-registry Secret of this name must exist; the Pod's pull secrets serve all its containers")
    if names:
        spec["imagePullSecrets"] = [{"name": n} for n in names]


def _node_selector(td: RegisterTaskDefinition, spec: dict[str, Any], report: FidelityReport) -> None:
    platform = td.runtimePlatform
    if platform is None:
        return
    selector = spec.setdefault("nodeSelector", {})
    if platform.cpuArchitecture:
        selector["kubernetes.io/arch"] = L.ARCH_FROM_ECS[platform.cpuArchitecture.lower()]
    family = platform.operatingSystemFamily
    if family:
        selector["kubernetes.io/os"] = "linux" if family == "LINUX" else "windows"
        if family != "LINUX":
            report.approximated("runtimePlatform.operatingSystemFamily", "nodeSelector kubernetes.io/os=windows",
                                "the Windows Server version is not selected")
