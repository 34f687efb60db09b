"""CreateService -> Deployments (one per capacity provider) or a DaemonSet, plus Kubernetes Services and a PDB."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from ecs_operator import labels as L
from ecs_operator.arns import task_arn
from ecs_operator.models import Problem, ServiceSpec
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.placement.query import Instance
from ecs_operator.scaling.rolling import DeploymentBounds, deployment_bounds
from ecs_operator.scaling.strategy_split import split
from ecs_operator.settings import Settings

from .endpoints import endpoint_slices
from .fidelity import FidelityReport
from .firelens import config_map_name, owned_config_map
from .launch import Target, compatibility_problems, launch_choice, scheduling_for, target_for_provider
from .names import dns_label
from .placement import placement_for
from .pod import Revision, pod_template
from .policy import WorkloadPolicy, policy_violations, service_policy_violations
from .provider_access import launch_access_problems
from .scheduling import add_scheduling
from .service_connect import Endpoint, endpoints as connect_endpoints
from .task import isolation_policy
from .volumes import SharedClaim

WORKLOAD = f"{L.API_GROUP}/workload"
"""Pod label: the Deployment a service task belongs to (one per capacity provider)."""
DRAINING_LABEL = f"{L.API_GROUP}/draining"
"""Node label "true" while its ContainerInstance is DRAINING: DAEMON tasks leave it, as in ECS."""
TASK_DEFINITION_ANNOTATION = f"{L.API_GROUP}/task-definition"
SLOT_LABEL = f"{L.API_GROUP}/slot"
"""Workload label "b" on a workload named with SECOND_SLOT: blue and green (lifecycle/service_strategy.py) run in
two Deployments of a capacity provider, the first named as ever, the second with this suffix, alternately."""
SECOND_SLOT = "-b"


@dataclass
class ServicePlan:
    workloads: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    extra: list[dict[str, Any]] = field(default_factory=list)
    report: FidelityReport = field(default_factory=lambda: FidelityReport("Service"))
    template_report: FidelityReport = field(default_factory=lambda: FidelityReport("TaskDefinition"))
    problems: list[Problem] = field(default_factory=list)
    bounds: DeploymentBounds | None = None
    unsatisfiable: bool = False
    group: str = ""
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    """(kind, name) of each child -> the ECS field that asked for it (named when the name is taken)."""
    unserved: list[str] = field(default_factory=list)
    """Service Connect endpoints no client task can reach (the ServiceConnect condition says why)."""
    claims: list[SharedClaim] = field(default_factory=list)
    """The namespace's claims the Pods name (handlers/storage.py creates them when missing)."""

    @property
    def children(self) -> list[dict[str, Any]]:
        return [*self.workloads, *self.services, *self.extra]


def service_name(svc: ServiceSpec, name: str) -> str:
    return svc.serviceName or name


def service_targets(svc: ServiceSpec, cluster_default: list[CapacityProviderStrategyItem] | None) -> dict[Target, int]:
    """Replicas per launch target: a launch type takes all; a strategy splits by base and weight."""
    desired = svc.desiredCount or 0
    choice = launch_choice(svc.launchType, svc.capacityProviderStrategy, cluster_default)
    if isinstance(choice, Target):
        return {choice: desired}
    shares = split(choice, desired)
    return {target_for_provider(i.capacityProvider): shares.get(i.capacityProvider, 0) for i in choice}


def desired_count_problems(svc: ServiceSpec, limit: int) -> list[Problem]:
    """A desiredCount above the operator's limit of tasks per service (the CRD refuses more than
    ECS's quota itself, docs/ecs-semantics.md §Bounds)."""
    if svc.desiredCount is None or svc.desiredCount <= limit:
        return []
    return [Problem("desiredCount",
                    f"{svc.desiredCount} tasks are more than this operator allows per service ({limit}); "
                    "ask the administrator (operator setting --max-service-tasks, chart value ecs.maxServiceTasks)")]


def service_objects(
    svc: ServiceSpec,
    *,
    name: str,
    namespace: str,
    revision: Revision,
    cluster: str,
    settings: Settings,
    cluster_default_strategy: list[CapacityProviderStrategyItem] | None = None,
    instances: Sequence[Instance] = (),
    daemon_instance_count: int = 0,
    policy: WorkloadPolicy = WorkloadPolicy(),
    provider_access: Mapping[str, Sequence[str] | None] | None = None,
    owner: dict[str, Any] | None = None,
    template_labels: dict[str, str] | None = None,
    member_of_labels: AbstractSet[str] = frozenset(),
    connect_namespace: str = "",
    host_aliases: list[dict[str, Any]] | None = None,
    pods: Sequence[dict[str, Any]] = (),
    slot: str = "",
) -> ServicePlan:
    """Everything a Service resource owns. Names are derived from `name`, so applying twice changes nothing.
    `connect_namespace`: the Cloud Map namespace of its Service Connect; `host_aliases`: the dotted Service
    Connect names its tasks resolve (docs/ecs-semantics.md §Service Connect); `pods`: the service's live
    tasks, listed in the EndpointSlices of its Kubernetes Services; `slot`: "" or SECOND_SLOT, the suffix of the
    workloads' names."""
    plan = ServicePlan(template_report=FidelityReport("TaskDefinition"))
    td = revision.definition
    ecs_name = service_name(svc, name)
    plan.group = f"service:{ecs_name}"
    daemon = svc.schedulingStrategy == "DAEMON"
    targets = ({Target(svc.launchType or "EC2"): daemon_instance_count} if daemon
               else service_targets(svc, cluster_default_strategy))
    plan.problems += [Problem(f"taskDefinition.{p.path}", p.message) for p in policy_violations(td, revision.kubernetes, policy)]
    plan.problems += service_policy_violations(svc, policy, settings.load_balancer_service_type)
    for target in targets:
        plan.problems += compatibility_problems(td, target, revision.name)
    plan.problems += _network_configuration_problems(svc, td.effective_network_mode)
    if not daemon:  # a DAEMON service runs on the cluster's instances, never through a provider
        plan.problems += launch_access_problems(svc.launchType, svc.capacityProviderStrategy, cluster_default_strategy,
                                                provider_access or {}, namespace, cluster)
    if plan.problems:
        return plan

    launch_volumes = {v.name: v.managedEBSVolume or {} for v in svc.volumeConfigurations or []}
    tail_pod_logs = "hostPath" in policy.allowed
    translation = pod_template(revision, for_service=True, launch_volumes=launch_volumes, report=plan.template_report,
                               owner_name=name, tail_pod_logs=tail_pod_logs, storage=settings.storage_classes)
    plan.claims = translation.claims
    service_label = L.group_label_value(name)
    health_checked = any(c.healthCheck and c.is_essential for c in td.containerDefinitions)
    multiple = len(targets) > 1
    for target, replicas in targets.items():
        placement = placement_for(
            task_definition_constraints=td.placementConstraints or [],
            constraints=svc.placementConstraints or [],
            strategies=None if daemon else svc.placementStrategy,
            group=plan.group, service=True, launch_type=target.launch_type, instances=instances, report=plan.report,
            namespace=namespace, labels_in_use=member_of_labels,
            binpack_profiles=settings.binpack_scheduler_profiles,
        )
        if placement.problems:
            plan.problems += placement.problems
            return plan
        plan.unsatisfiable |= placement.unsatisfiable
        workload = (f"{name}-{dns_label(target.capacity_provider or target.launch_type)}" if multiple else name) + slot
        selector = {L.SERVICE: service_label, WORKLOAD: L.group_label_value(workload)}
        template = copy.deepcopy(translation.template)
        spec = template["spec"]
        spec.update(copy.deepcopy(placement.pod_spec))
        if host_aliases:
            spec["hostAliases"] = copy.deepcopy(host_aliases)
        scheduling = scheduling_for(target, cluster, namespace, settings)
        add_scheduling(spec, node_selector=scheduling.node_selector, node_terms=scheduling.node_terms)
        if placement.node_terms is not None:
            add_scheduling(spec, node_terms=placement.node_terms)
        template["metadata"]["labels"].update(
            {**scheduling.labels, **selector, L.GROUP: L.group_label_value(plan.group), **(template_labels or {})}
        )
        template["metadata"]["annotations"].update({**placement.maintained, f"{L.API_GROUP}/group": plan.group})
        bounds = deployment_bounds(replicas, svc.deploymentConfiguration, "DAEMON" if daemon else "REPLICA")
        if plan.bounds is None or bounds.stuck:
            plan.bounds = bounds
        metadata = _metadata(workload, namespace, {L.SERVICE: service_label, L.MANAGED_BY: L.MANAGED_BY_VALUE,
                                                   **({SLOT_LABEL: "b"} if slot else {})}, owner)
        metadata["annotations"] = {TASK_DEFINITION_ANNOTATION: revision.name}
        if daemon:
            add_scheduling(spec, node_terms=[
                {"matchExpressions": [{"key": DRAINING_LABEL, "operator": "NotIn", "values": ["true"]}]}])
            plan.workloads.append(_daemon_set(metadata, selector, template, bounds))
        else:
            plan.workloads.append(_deployment(metadata, selector, template, replicas, bounds,
                                              0 if health_checked else settings.service_task_ready_seconds))
        plan.origins[(plan.workloads[-1]["kind"], workload)] = "capacityProviderStrategy" if multiple else "metadata.name"
    _report_deployment(svc, plan)
    if not daemon and svc.desiredCount:
        total = deployment_bounds(svc.desiredCount, svc.deploymentConfiguration)
        if total.min_healthy:
            plan.extra.append(_disruption_budget(name, namespace, service_label, total.min_healthy, owner))
            plan.origins[("PodDisruptionBudget", name)] = "deploymentConfiguration.minimumHealthyPercent"
    plan.services = _kubernetes_services(svc, name, namespace, service_label, td, settings, owner, plan, connect_namespace)
    for kubernetes_service in plan.services:
        for piece in endpoint_slices(kubernetes_service, pods):
            plan.extra.append(piece)
            plan.origins[("EndpointSlice", piece["metadata"]["name"])] = \
                plan.origins[("Service", kubernetes_service["metadata"]["name"])]
    if translation.router is not None:
        plan.extra.append(owned_config_map(translation.router, owner_name=name, namespace=namespace, cluster=cluster,
                                           task_definition=revision.name, task_arn_prefix=task_arn(settings, cluster, ""),
                                           tail_pod_logs=tail_pod_logs, owner=owner))
        plan.origins[("ConfigMap", config_map_name(name))] = \
            f"taskDefinition.containerDefinitions[{translation.router.index}].firelensConfiguration"
    if translation.isolated:
        plan.extra.append(isolation_policy(f"{name}-isolated", namespace, {L.SERVICE: service_label}, owner))
        plan.origins[("NetworkPolicy", f"{name}-isolated")] = "taskDefinition.networkMode"
    return plan


def _metadata(name: str, namespace: str, labels: dict[str, str], owner: dict[str, Any] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if owner is not None:
        metadata["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    return metadata


def _deployment(metadata: dict[str, Any], selector: dict[str, str], template: dict[str, Any], replicas: int,
                bounds: DeploymentBounds, min_ready: int) -> dict[str, Any]:
    # Kubernetes refuses maxSurge = maxUnavailable = 0: stuck (the handler keeps the template) or
    # desiredCount 0 (nothing to roll)
    surge, unavailable = (bounds.maxSurge, bounds.maxUnavailable) if bounds.maxSurge or bounds.maxUnavailable else (0, 1)
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": selector},
        "template": template,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
    }
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def _daemon_set(metadata: dict[str, Any], selector: dict[str, str], template: dict[str, Any],
                bounds: DeploymentBounds) -> dict[str, Any]:
    unavailable = max(1, bounds.maxUnavailable)
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            "template": template,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": unavailable, "maxSurge": 0}},
        },
    }


def _disruption_budget(name: str, namespace: str, service_label: str, min_available: int,
                       owner: dict[str, Any] | None) -> dict[str, Any]:
    """Draining and evictions keep minimumHealthyPercent of the service, as ECS's draining does."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(name, namespace, {L.SERVICE: service_label, L.MANAGED_BY: L.MANAGED_BY_VALUE}, owner),
        "spec": {"minAvailable": min_available, "selector": {"matchLabels": {L.SERVICE: service_label}}},
    }


def _kubernetes_services(svc: ServiceSpec, name: str, namespace: str, service_label: str, td: Any,
                         settings: Settings, owner: dict[str, Any] | None, plan: ServicePlan,
                         connect_namespace: str) -> list[dict[str, Any]]:
    """loadBalancers -> Services on the container port; serviceRegistries -> a headless Service;
    serviceConnectConfiguration -> a Service per discoveryName and per client alias. Two fields that need
    one name share the Service (ports merged); a port number they both need for different container
    ports is refused, naming both fields (docs/ecs-semantics.md §Service Connect)."""
    out: dict[str, dict[str, Any]] = {}
    port_origins: dict[tuple[str, int, str], str] = {}
    kind = (svc.kubernetes.loadBalancerServiceType if svc.kubernetes and svc.kubernetes.loadBalancerServiceType
            else settings.load_balancer_service_type)

    def protocol(container: str | None, port: int | None) -> str:
        c = td.container(container or "")
        mapping = next((p for p in (c.portMappings if c else None) or [] if p.containerPort == port), None)
        return (mapping.protocol or "tcp").upper() if mapping else "TCP"

    def add(service_name: str, ports: list[dict[str, Any]], headless: bool = False, path: str = "") -> None:
        service_name = dns_label(service_name)
        existing = out.get(service_name)
        if existing is None:
            spec: dict[str, Any] = {"ports": []}  # no selector: the operator writes the endpoints (endpoints.py)
            if headless:
                spec["clusterIP"] = "None"
            else:
                spec["type"] = kind
            existing = out[service_name] = {
                "apiVersion": "v1", "kind": "Service",
                "metadata": _metadata(service_name, namespace,
                                      {L.SERVICE: service_label, L.MANAGED_BY: L.MANAGED_BY_VALUE}, owner),
                "spec": spec,
            }
            plan.origins[("Service", service_name)] = path
        elif headless or existing["spec"].get("clusterIP") == "None":
            plan.problems.append(Problem(path, f"needs the Kubernetes Service {service_name}, which is also "
                                               f"{plan.origins[('Service', service_name)]}'s and headless (no port "
                                               "translation): the two cannot share it; choose another name"))
            return
        for port in ports:
            key = (service_name, port["port"], port["protocol"])
            taken = next((p for p in existing["spec"]["ports"] if (service_name, p["port"], p["protocol"]) == key), None)
            if taken is None:
                names = {p["name"] for p in existing["spec"]["ports"]}
                existing["spec"]["ports"].append(
                    port if port["name"] not in names else {**port, "name": f"{port['protocol'].lower()}-{port['port']}"})
                port_origins[key] = path
            elif taken["targetPort"] != port["targetPort"]:
                plan.problems.append(Problem(path, f"port {port['port']} of the Kubernetes Service {service_name} is "
                                                   f"{port_origins[key]}'s (to containerPort {taken['targetPort']}); "
                                                   f"this needs it to containerPort {port['targetPort']}: "
                                                   "use another port or name"))

    for i, lb in enumerate(svc.loadBalancers or []):
        if lb.containerPort is None:
            continue
        lb_port = {"name": f"port-{lb.containerPort}", "port": lb.containerPort, "targetPort": lb.containerPort,
                   "protocol": protocol(lb.containerName, lb.containerPort)}
        add(name if i == 0 else f"{name}-{i}", [lb_port], path=f"loadBalancers[{i}]")
    for i, registry in enumerate(svc.serviceRegistries or []):
        port = registry.containerPort or registry.port
        ports = [{"name": f"port-{port}", "port": port, "targetPort": port,
                  "protocol": protocol(registry.containerName, port)}] if port else []
        add(f"{name}-discovery", ports, headless=True, path=f"serviceRegistries[{i}]")
    connect = svc.serviceConnectConfiguration
    if connect is None or not connect.enabled:
        return list(out.values())
    aliases = {e.path: e for e in connect_endpoints(svc, connect_namespace)}
    for i, s in enumerate(connect.services or []):
        found = [(c, p) for c in td.containerDefinitions for p in c.portMappings or [] if p.name == s.portName]
        if not found:
            plan.report.unsupported(f"serviceConnectConfiguration.services[{i}].portName",
                                    f"no portMappings entry named {s.portName!r} in the task definition")
            continue
        _, mapping = found[0]
        target = mapping.containerPort
        port = s.clientAliases[0].port if s.clientAliases else target
        base = {"name": dns_label(s.portName, 15), "port": port, "targetPort": target,
                "protocol": (mapping.protocol or "tcp").upper(),
                **({"appProtocol": mapping.appProtocol} if mapping.appProtocol else {})}
        add(s.discoveryName or s.portName, [base], path=f"serviceConnectConfiguration.services[{i}]")
        for j, alias in enumerate(s.clientAliases or []):
            endpoint = aliases[f"serviceConnectConfiguration.services[{i}].clientAliases[{j}].dnsName"]
            _report_endpoint(endpoint, plan)
            if endpoint.service is not None:
                add(endpoint.service, [{**base, "port": alias.port}], path=endpoint.path)
    return list(out.values())


def _report_endpoint(endpoint: Endpoint, plan: ServicePlan) -> None:
    where = f"{endpoint.dns_name!r}:{endpoint.port}" if endpoint.dns_name else f"port {endpoint.port}"
    if endpoint.service is None:
        message = (f"{where} cannot be served: no name Kubernetes can serve (lowercase letters, digits, '-' and '.', "
                   "labels of at most 63 characters; a default dnsName needs the namespace's name, not an ARN), "
                   "so no client task resolves it")
        plan.report.unsupported(endpoint.path, message)
        plan.unserved.append(f"{endpoint.path}: {message}")
    elif endpoint.hosts_entry:
        plan.report.approximated(endpoint.path, f"Service {endpoint.service} port {endpoint.port}",
                                 f"{where} is a hostAliases entry (/etc/hosts) of the tasks of every service with "
                                 "Service Connect in the namespace, to the ClusterIP of that Service")
    else:
        plan.report.approximated(endpoint.path, f"Service {endpoint.service} port {endpoint.port}",
                                 f"{where} resolves through cluster DNS in every Pod of the Kubernetes namespace, "
                                 "not only in the tasks of the Service Connect namespace")


def _network_configuration_problems(svc: ServiceSpec, mode: str) -> list[Problem]:
    has_awsvpc = svc.networkConfiguration is not None and svc.networkConfiguration.awsvpcConfiguration is not None
    if has_awsvpc and mode != "awsvpc":
        return [Problem("networkConfiguration.awsvpcConfiguration", f"only for awsvpc tasks; the task definition uses {mode}")]
    return []


def _report_deployment(svc: ServiceSpec, plan: ServicePlan) -> None:
    dc = svc.deploymentConfiguration
    if dc is not None and dc.strategy not in (None, "ROLLING") and svc.schedulingStrategy == "DAEMON":
        plan.report.unsupported("deploymentConfiguration.strategy",
                                f"{dc.strategy} deployments of a DAEMON service are not supported: rolling update instead")
    if dc is not None and dc.lifecycleHooks and (dc.strategy in (None, "ROLLING") or svc.schedulingStrategy == "DAEMON"):
        plan.report.unsupported("deploymentConfiguration.lifecycleHooks",
                                "hooks run only in BLUE_GREEN, LINEAR and CANARY deployments of REPLICA services: none run")
    if svc.deploymentController is not None and svc.deploymentController.type != "ECS":
        plan.report.unsupported("deploymentController.type", f"{svc.deploymentController.type}: the operator rolls out itself")
