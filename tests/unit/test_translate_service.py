"""CreateService -> Deployments (one per capacity provider) or a DaemonSet, Kubernetes Services and a
PodDisruptionBudget (translate/service.py; docs/ecs-semantics.md §Rolling deployments and docs/conversion.md)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ecs_operator import labels as L
from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.policy import ALLOW_ALL, WorkloadPolicy
from ecs_operator.translate.service import DRAINING_LABEL, ServicePlan, desired_count_problems, service_objects

SETTINGS = Settings(service_task_ready_seconds=40, fargate_node_selector={"pool": "fargate"},
                    fargate_spot_node_selector={"pool": "spot"})
OWNER = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "name": "web", "uid": "u-1"}


def revision(health_check: bool = False, **task: Any) -> Revision:
    container: dict[str, Any] = {"name": "app", "image": "nginx", "memory": 64,
                                 "portMappings": [{"containerPort": 80, "name": "http"}]}
    if health_check:
        container["healthCheck"] = {"command": ["CMD-SHELL", "true"]}
    definition = RegisterTaskDefinition.model_validate({"family": "web", "containerDefinitions": [container], **task})
    return Revision("web", 3, definition)


def plan(spec: dict[str, Any], rev: Revision | None = None, default: list[dict[str, Any]] | None = None,
         daemon_instances: int = 0, policy: WorkloadPolicy = WorkloadPolicy(),
         access: dict[str, list[str]] | None = None) -> ServicePlan:
    return service_objects(
        ServiceSpec.model_validate({"taskDefinition": "web:3", **spec}), name="web", namespace="ns", revision=rev or revision(),
        cluster="default", settings=SETTINGS,
        cluster_default_strategy=[CapacityProviderStrategyItem.model_validate(i) for i in default or []],
        daemon_instance_count=daemon_instances, provider_access=access, owner=OWNER,
        template_labels={"ecs.operator.dev/deployment": "123"}, policy=policy,
    )


def by_kind(p: ServicePlan, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in [*p.workloads, *p.services, *p.extra] if o["kind"] == kind}


def test_replica_service_is_one_deployment_with_ecs_rolling_bounds_as_integers() -> None:
    out = plan({"desiredCount": 4, "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}})
    assert out.problems == []
    [deployment] = out.workloads
    spec = deployment["spec"]
    assert (deployment["kind"], deployment["metadata"]["name"], spec["replicas"]) == ("Deployment", "web", 4)
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 4, "maxUnavailable": 2}}
    assert spec["minReadySeconds"] == 40  # ECS counts a task without health check healthy after 40 s
    assert spec["selector"]["matchLabels"] == {L.SERVICE: "web", "ecs.operator.dev/workload": "web"}
    labels = spec["template"]["metadata"]["labels"]
    assert labels["ecs.operator.dev/deployment"] == "123" and labels[L.GROUP] == "service.web"
    assert spec["template"]["metadata"]["annotations"]["ecs.operator.dev/group"] == "service:web"
    [ref] = deployment["metadata"]["ownerReferences"]
    assert (ref["uid"], ref["controller"], ref["blockOwnerDeletion"]) == ("u-1", True, True)
    assert deployment["metadata"]["annotations"] == {"ecs.operator.dev/task-definition": "web:3"}
    pdb = by_kind(out, "PodDisruptionBudget")["web"]
    assert pdb["spec"] == {"minAvailable": 2, "selector": {"matchLabels": {L.SERVICE: "web"}}}


def test_defaults_and_rounding_for_one_task() -> None:
    spec = plan({"desiredCount": 1}).workloads[0]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}  # 100/200: start one, then stop one
    spec = plan({"desiredCount": 3, "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 150}}).workloads[0]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 1}  # floor(4.5)-3, 3-ceil(1.5)


def test_health_checked_tasks_are_healthy_when_the_check_passes_not_after_40_seconds() -> None:
    assert "minReadySeconds" not in plan({"desiredCount": 2}, revision(health_check=True)).workloads[0]["spec"]


def test_stuck_and_zero_tasks_still_give_kubernetes_a_valid_strategy() -> None:
    stuck = plan({"desiredCount": 4, "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 100}})
    assert stuck.bounds is not None and stuck.bounds.stuck
    assert stuck.workloads[0]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    empty = plan({"desiredCount": 0})
    assert empty.workloads[0]["spec"]["replicas"] == 0
    assert empty.workloads[0]["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert "PodDisruptionBudget" not in {o["kind"] for o in empty.extra}


def test_capacity_provider_strategy_is_one_deployment_per_provider_split_by_base_and_weight() -> None:
    strategy = [{"capacityProvider": "pool-a", "base": 2, "weight": 1}, {"capacityProvider": "pool-b", "weight": 3}]
    out = plan({"desiredCount": 10, "capacityProviderStrategy": strategy})
    deployments = by_kind(out, "Deployment")
    assert {name: d["spec"]["replicas"] for name, d in deployments.items()} == {"web-pool-a": 4, "web-pool-b": 6}
    for provider in ("pool-a", "pool-b"):
        template = deployments[f"web-{provider}"]["spec"]["template"]
        assert template["spec"]["nodeSelector"] == {L.CAPACITY_PROVIDER: provider, L.CLUSTER: "default"}  # registered instances only
        assert template["metadata"]["labels"][L.CAPACITY_PROVIDER] == provider
    pdb = by_kind(out, "PodDisruptionBudget")["web"]
    assert pdb["spec"]["minAvailable"] == 10  # the service's bound, over both workloads


def test_fargate_providers_use_the_configured_node_selectors() -> None:
    out = plan({"desiredCount": 3, "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
                "capacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1},
                                             {"capacityProvider": "FARGATE_SPOT", "weight": 2}]},
               revision(networkMode="awsvpc", cpu="256", memory="512", requiresCompatibilities=["FARGATE"]))
    assert out.problems == []
    deployments = by_kind(out, "Deployment")
    assert {n: d["spec"]["replicas"] for n, d in deployments.items()} == {"web-fargate": 1, "web-fargate-spot": 2}
    assert deployments["web-fargate-spot"]["spec"]["template"]["spec"]["nodeSelector"] == {"pool": "spot"}


def test_without_launch_type_or_strategy_the_cluster_default_strategy_applies() -> None:
    out = plan({"desiredCount": 2}, default=[{"capacityProvider": "pool-b", "weight": 1}])
    [deployment] = out.workloads
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {L.CAPACITY_PROVIDER: "pool-b", L.CLUSTER: "default"}
    ec2 = plan({"desiredCount": 2, "launchType": "EC2"}, default=[{"capacityProvider": "pool-b", "weight": 1}]).workloads[0]
    assert ec2["spec"]["template"]["spec"]["nodeSelector"] == {L.CLUSTER: "default"}


def test_a_provider_that_does_not_allow_the_namespace_is_refused_and_nothing_is_planned() -> None:
    access = {"pool-b": ["ops"]}
    refused = plan({"desiredCount": 2, "capacityProviderStrategy": [{"capacityProvider": "pool-b", "weight": 1}]}, access=access)
    assert [p.path for p in refused.problems] == ["capacityProviderStrategy[0].capacityProvider"] and refused.workloads == []
    by_default = plan({"desiredCount": 2}, default=[{"capacityProvider": "pool-b", "weight": 1}], access=access)
    assert [p.path for p in by_default.problems] == ["defaultCapacityProviderStrategy[0].capacityProvider"]
    allowed = plan({"desiredCount": 2}, default=[{"capacityProvider": "pool-b", "weight": 1}], access={"pool-b": ["ns/default"]})
    assert allowed.problems == [] and len(allowed.workloads) == 1
    daemon = plan({"schedulingStrategy": "DAEMON"}, default=[{"capacityProvider": "pool-b", "weight": 1}], access=access)
    assert daemon.problems == []  # a DAEMON service runs on the cluster's instances, never through a provider


def test_daemon_is_a_daemon_set_that_leaves_draining_instances() -> None:
    out = plan({"schedulingStrategy": "DAEMON"}, daemon_instances=3)
    [daemon_set] = out.workloads
    assert daemon_set["kind"] == "DaemonSet"
    assert daemon_set["spec"]["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 3, "maxSurge": 0}  # DAEMON 0/100
    terms = daemon_set["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert all({"key": DRAINING_LABEL, "operator": "NotIn", "values": ["true"]} in t["matchExpressions"]
               for t in terms["nodeSelectorTerms"])
    assert "PodDisruptionBudget" not in {o["kind"] for o in out.extra}


def test_load_balancers_registries_and_service_connect_become_kubernetes_services() -> None:
    out = plan({
        "desiredCount": 2,
        "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}],
        "serviceRegistries": [{"registryArn": "arn:sd", "containerName": "app", "containerPort": 80}],
        "serviceConnectConfiguration": {"enabled": True, "services": [
            {"portName": "http", "discoveryName": "web-sc", "clientAliases": [{"port": 8080, "dnsName": "web-alias.local"}]}]},
    })
    services = by_kind(out, "Service")
    assert set(services) == {"web", "web-discovery", "web-sc", "web-alias-local"}
    for svc in services.values():
        assert "selector" not in svc["spec"]  # the operator writes the endpoints: only essential containers count
        assert svc["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    slices = by_kind(out, "EndpointSlice")
    assert set(slices) == set(services)
    assert slices["web-alias-local"]["metadata"]["labels"]["kubernetes.io/service-name"] == "web-alias-local"
    assert slices["web-alias-local"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP"}]  # the container port
    assert services["web"]["spec"]["type"] == "ClusterIP"
    assert services["web"]["spec"]["ports"] == [{"name": "port-80", "port": 80, "targetPort": 80, "protocol": "TCP"}]
    assert services["web-discovery"]["spec"]["clusterIP"] == "None"
    assert services["web-alias-local"]["spec"]["ports"][0]["port"] == 8080 and services["web-alias-local"]["spec"]["ports"][0]["targetPort"] == 80
    external = {"desiredCount": 1, "kubernetes": {"loadBalancerServiceType": "LoadBalancer"},
                "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}]}
    refused = plan(external)  # the workload policy's externalServices
    assert [p.path for p in refused.problems] == ["kubernetes.loadBalancerServiceType"] and not refused.services
    lb_type = plan(external, policy=ALLOW_ALL)
    assert by_kind(lb_type, "Service")["web"]["spec"]["type"] == "LoadBalancer"


def test_placement_constraints_and_strategies_reach_the_template() -> None:
    out = plan({"desiredCount": 2, "placementConstraints": [{"type": "distinctInstance"}],
                "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}]})
    spec = out.workloads[0]["spec"]["template"]["spec"]
    [anti] = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti == {"labelSelector": {"matchLabels": {L.GROUP: "service.web"}}, "topologyKey": "kubernetes.io/hostname"}
    [spread] = spec["topologySpreadConstraints"]
    assert (spread["topologyKey"], spread["maxSkew"], spread["whenUnsatisfiable"]) == ("topology.kubernetes.io/zone", 1, "ScheduleAnyway")


def test_unparseable_member_of_is_refused_with_the_position() -> None:
    out = plan({"desiredCount": 1, "placementConstraints": [{"type": "memberOf", "expression": "attribute:stack in [a, b"}]})
    assert [p.path for p in out.problems] == ["placementConstraints[0].expression"]
    assert "position 24" in out.problems[0].message
    assert out.workloads == []


def test_applying_twice_plans_the_same_objects() -> None:
    spec = {"desiredCount": 3, "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}]}
    first, second = plan(spec), plan(spec)
    assert [*first.workloads, *first.services, *first.extra] == [*second.workloads, *second.services, *second.extra]


def test_desired_count_within_ecs_quota_and_the_operators_limit() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 5000"):
        ServiceSpec.model_validate({"desiredCount": 5001})
    assert desired_count_problems(ServiceSpec.model_validate({"desiredCount": 5000}), 5000) == []
    assert desired_count_problems(ServiceSpec.model_validate({"schedulingStrategy": "DAEMON"}), 10) == []
    [problem] = desired_count_problems(ServiceSpec.model_validate({"desiredCount": 11}), 10)
    assert problem.path == "desiredCount"
    assert problem.message.startswith("11 tasks are more than this operator allows per service (10)")
    assert "chart value ecs.maxServiceTasks" in problem.message


def pod(name: str, ip: str, statuses: dict[str, dict[str, Any]], deleting: bool = False) -> dict[str, Any]:
    """A service task's Pod: `app` essential, `warm-cache` not."""
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"uid-{name}",
                            "annotations": {L.ESSENTIAL_CONTAINERS: "app"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta,
            "spec": {"nodeName": "node-1", "containers": [{"name": "app"}, {"name": "warm-cache"}]},
            "status": {"phase": "Running", "podIP": ip,
                       "containerStatuses": [{"name": n, **st} for n, st in statuses.items()]}}


RUNNING = {"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "ready": True}
EXITED = {"state": {"terminated": {"exitCode": 0}}, "ready": False}
FAILING = {"state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, "ready": False}


def test_endpoints_list_the_tasks_ecs_keeps_registered_only_essential_containers_count() -> None:
    tasks = [pod("a", "10.0.0.1", {"app": RUNNING, "warm-cache": EXITED}),  # a non-essential container exited
             pod("b", "10.0.0.2", {"app": RUNNING, "warm-cache": FAILING}),  # its health check fails
             pod("c", "10.0.0.3", {"app": FAILING, "warm-cache": RUNNING}),  # the essential one's fails
             pod("d", "10.0.0.4", {"app": RUNNING, "warm-cache": RUNNING}, deleting=True)]  # stopping: deregistered
    out = service_objects(
        ServiceSpec.model_validate({"taskDefinition": "web:3", "desiredCount": 4, "loadBalancers": [
            {"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}]}),
        name="web", namespace="ns", revision=revision(), cluster="default", settings=SETTINGS, owner=OWNER, pods=tasks)
    web = by_kind(out, "EndpointSlice")["web"]
    assert web["addressType"] == "IPv4" and web["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"]
    assert {e["addresses"][0]: e["conditions"]["ready"] for e in web["endpoints"]} == {
        "10.0.0.1": True, "10.0.0.2": True, "10.0.0.3": False}
    assert web["endpoints"][0]["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}


def test_a_service_of_more_than_1000_tasks_has_one_endpoint_slice_per_1000() -> None:
    """The API server takes at most 1,000 endpoints per slice; a service may run 5,000 tasks."""
    tasks = [pod(f"t{i:04}", f"10.0.{i // 250}.{i % 250 + 1}", {"app": RUNNING}) for i in range(2500)]
    out = service_objects(
        ServiceSpec.model_validate({"taskDefinition": "web:3", "desiredCount": 2500, "loadBalancers": [
            {"targetGroupArn": "arn:tg", "containerName": "app", "containerPort": 80}]}),
        name="web", namespace="ns", revision=revision(), cluster="default", settings=SETTINGS, owner=OWNER, pods=tasks)
    slices = by_kind(out, "EndpointSlice")
    assert {name: len(s["endpoints"]) for name, s in slices.items()} == {"web": 1000, "web-2": 1000, "web-3": 500}
    assert all(s["metadata"]["labels"]["kubernetes.io/service-name"] == "web" for s in slices.values())
    assert len({e["addresses"][0] for s in slices.values() for e in s["endpoints"]}) == 2500
