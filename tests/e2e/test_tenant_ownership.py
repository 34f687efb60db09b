"""Ownership, never adoption (issue 13, item 1), acting as a tenant with only ECS rights: every name
the operator derives from an ECS object (a Kubernetes Service, PodDisruptionBudget, NetworkPolicy,
Deployment, a task's Pod, a revision's ControllerRevision) that is held by an object the ECS object
does not control is a ResourceConflict naming the ECS field and the object in the way, and the
foreign object is left byte-for-byte unchanged, also when the ECS object is deleted."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from capacity_support import (
    PROVIDER_LABEL,
    apply_objects,
    capacity_provider,
    new_provider,
    pool_node_names,
    provider_events,
    provider_status,
    providers,  # noqa: F401  (fixture)
)
from ecs_objects import condition, events_seen, kwok_nodes, status, unique
from operator_fixtures import Operator, get, wait_for
from service_support import ECS_SERVICE, cluster, service, task_definition
from tenant_support import Tenant, fingerprint, make_tenant

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.nodepool.instance_types import build_node, instance_type

TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"
REGISTRY = "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-0123456789abcdef"
FOREIGN_LABELS = {"app": "foreign"}


def load_balancer(port: int = 80) -> dict[str, Any]:
    return {"targetGroupArn": TARGET_GROUP, "containerName": "app", "containerPort": port}


def create(sandbox: Any, namespace: str, *objects: dict[str, Any]) -> None:
    """Foreign objects, created by the administrator (the tenant may not create them)."""
    for obj in objects:
        sandbox.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj))


def k8s_service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": FOREIGN_LABELS},
            "spec": {"selector": FOREIGN_LABELS, "ports": [{"port": 443, "targetPort": 8443}]}}


def ready_tenant(sandbox: Any, namespace: str, tmp_path: Path, network_mode: str | None = None, name: str = "tenant") -> Tenant:
    """The tenant, with its Cluster and the task definition web:1 registered."""
    tenant = make_tenant(sandbox, namespace, tmp_path, name=name)
    td = task_definition()
    if network_mode is not None:  # no port mappings without a network
        td["spec"]["networkMode"] = network_mode
        td["spec"]["containerDefinitions"][0].pop("portMappings")
    tenant.apply(cluster(), td)
    wait_for(lambda: (get(sandbox, f"taskdefinitions.{API_GROUP}", "web", namespace).get("status") or {}).get("revision") == 1,
             60, what="web:1 registered")
    return tenant


def conflict_reported(sandbox: Any, namespace: str, resource: str, name: str, *parts: str) -> str:
    """The ECS object's Ready=False ResourceConflict condition and Warning Event, each naming `parts`
    (the ECS field and the object in the way); returns the condition's message."""
    def reported() -> str | None:
        ready = condition(status(sandbox, resource, name, namespace))
        ok = ready.get("status") == "False" and ready.get("reason") == "ResourceConflict"
        return ready["message"] if ok and all(p in ready["message"] for p in parts) else None

    message = wait_for(reported, 60, what=f"{name}: ResourceConflict naming {parts}")
    warnings = events_seen(sandbox, namespace, name, "ResourceConflict")
    assert any(e["type"] == "Warning" and all(p in e["message"] for p in parts) for e in warnings), warnings
    return message


def delete_as_tenant(sandbox: Any, tenant: Tenant, resource: str, name: str) -> None:
    tenant.kubectl("delete", resource, name, "-n", tenant.namespace, "--wait=false")
    wait_for(lambda: not get(sandbox, resource, name, tenant.namespace), 60, what=f"{resource} {name} deleted")


def settled(sandbox: Any, kind: str, name: str, namespace: str) -> dict[str, Any]:
    """The fingerprint once the object's controller has written its status (its resourceVersion then holds)."""
    def observed() -> bool:
        obj = get(sandbox, kind, name, namespace)
        return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]
    wait_for(observed, 60, what=f"{kind} {name} observed by its controller")
    return fingerprint(sandbox, kind, name, namespace)


def settled_node(node: dict[str, Any]) -> bool:
    """Ready, and the node lifecycle controller's writes done: the beta os/arch labels added, the
    not-ready taint removed."""
    labels = node.get("metadata", {}).get("labels") or {}
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in (node.get("status") or {}).get("conditions") or [])
    tainted = any(t.get("key") == "node.kubernetes.io/not-ready" for t in (node.get("spec") or {}).get("taints") or [])
    return ready and not tainted and "beta.kubernetes.io/os" in labels and "beta.kubernetes.io/arch" in labels


def node_fingerprint(sandbox: Any, name: str) -> dict[str, Any]:
    """A Node's fingerprint without its resourceVersion: kwok writes the Node's status (heartbeats)."""
    return {k: v for k, v in fingerprint(sandbox, "node", name).items() if k != "resourceVersion"}


def test_load_balancer_service_name_held_by_a_kubernetes_service_is_a_conflict(
        sandbox: Any, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    tenant = ready_tenant(sandbox, namespace, tmp_path)
    create(sandbox, namespace, k8s_service("payments"))
    before = fingerprint(sandbox, "service", "payments", namespace)

    tenant.apply(service("payments", desired=1, loadBalancers=[load_balancer()]))
    conflict_reported(sandbox, namespace, ECS_SERVICE, "payments", "loadBalancers[0]", f"Service {namespace}/payments")
    assert fingerprint(sandbox, "service", "payments", namespace) == before
    deployments = sandbox.kubectl_json("get", "deployments", "-n", namespace)["items"]
    assert deployments == []  # nothing half-applied: the conflict refused the whole plan

    delete_as_tenant(sandbox, tenant, ECS_SERVICE, "payments")
    assert fingerprint(sandbox, "service", "payments", namespace) == before


def test_every_derived_kubernetes_service_name_is_checked(
        sandbox: Any, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    """<name>-N, <name>-discovery, Service Connect discoveryName and clientAliases (free text)."""
    tenant = ready_tenant(sandbox, namespace, tmp_path)
    names = ["shop-1", "shop-discovery", "orders", "billing-local"]
    create(sandbox, namespace, *(k8s_service(n) for n in names))
    before = {n: fingerprint(sandbox, "service", n, namespace) for n in names}

    tenant.apply(service(
        "shop", desired=1, loadBalancers=[load_balancer(), load_balancer()],
        serviceRegistries=[{"registryArn": REGISTRY, "containerName": "app", "containerPort": 80}],
        serviceConnectConfiguration={"enabled": True, "namespace": "local", "services": [
            {"portName": "http", "discoveryName": "orders", "clientAliases": [{"port": 8080, "dnsName": "billing.local"}]}]},
    ))
    conflict_reported(
        sandbox, namespace, ECS_SERVICE, "shop",
        f"loadBalancers[1]: needs the Service {namespace}/shop-1",
        f"serviceRegistries[0]: needs the Service {namespace}/shop-discovery",
        f"serviceConnectConfiguration.services[0]: needs the Service {namespace}/orders",
        f"serviceConnectConfiguration.services[0].clientAliases[0].dnsName: needs the Service {namespace}/billing-local",
    )
    assert get(sandbox, "service", "shop", namespace) == {}  # its free name was not written either
    assert {n: fingerprint(sandbox, "service", n, namespace) for n in names} == before

    delete_as_tenant(sandbox, tenant, ECS_SERVICE, "shop")
    assert {n: fingerprint(sandbox, "service", n, namespace) for n in names} == before


def test_pod_disruption_budget_and_network_policy_names_are_checked(
        sandbox: Any, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    tenant = ready_tenant(sandbox, namespace, tmp_path, network_mode="none")
    create(sandbox, namespace,
           {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "guard", "labels": FOREIGN_LABELS},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": FOREIGN_LABELS}}},
           {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "guard-isolated"},
            "spec": {"podSelector": {"matchLabels": FOREIGN_LABELS}, "policyTypes": ["Ingress"]}})
    budget = settled(sandbox, "pdb", "guard", namespace)
    policy = fingerprint(sandbox, "networkpolicy", "guard-isolated", namespace)

    tenant.apply(service("guard", desired=2))
    conflict_reported(sandbox, namespace, ECS_SERVICE, "guard",
                      f"deploymentConfiguration.minimumHealthyPercent: needs the PodDisruptionBudget {namespace}/guard",
                      f"taskDefinition.networkMode: needs the NetworkPolicy {namespace}/guard-isolated")
    assert fingerprint(sandbox, "pdb", "guard", namespace) == budget
    assert fingerprint(sandbox, "networkpolicy", "guard-isolated", namespace) == policy

    delete_as_tenant(sandbox, tenant, ECS_SERVICE, "guard")
    assert fingerprint(sandbox, "pdb", "guard", namespace) == budget
    assert fingerprint(sandbox, "networkpolicy", "guard-isolated", namespace) == policy


def test_deployment_name_is_checked_and_a_freed_name_is_then_used(
        sandbox: Any, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    tenant = ready_tenant(sandbox, namespace, tmp_path)
    create(sandbox, namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": FOREIGN_LABELS},
        "spec": {"replicas": 0, "selector": {"matchLabels": FOREIGN_LABELS},
                 "template": {"metadata": {"labels": FOREIGN_LABELS}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    before = settled(sandbox, "deployment", "web", namespace)

    tenant.apply(service("web", desired=1))
    conflict_reported(sandbox, namespace, ECS_SERVICE, "web", f"metadata.name: needs the Deployment {namespace}/web")
    assert fingerprint(sandbox, "deployment", "web", namespace) == before

    # the administrator removes it: the Service takes the name on its next look and runs
    sandbox.kubectl("delete", "deployment", "web", "-n", namespace, "--wait=true")
    owner = get(sandbox, ECS_SERVICE, "web", namespace)["metadata"]["uid"]
    wait_for(lambda: condition(status(sandbox, ECS_SERVICE, "web", namespace)).get("status") == "True", 60,
             what="the Service Ready once the name is free")
    [ref] = get(sandbox, "deployment", "web", namespace)["metadata"]["ownerReferences"]
    assert (ref["apiVersion"], ref["kind"], ref["uid"], ref["controller"]) == (f"{API_GROUP}/{API_VERSION}", "Service", owner, True)


def test_the_in_cluster_api_service_default_kubernetes_is_never_taken(
        sandbox: Any, running_operator: Operator, tmp_path: Path) -> None:
    assert not get(sandbox, f"clusters.{API_GROUP}", "default", "default"), "namespace default must have no ECS Cluster yet"
    tenant_name = f"tenant-{uuid.uuid4().hex[:5]}"
    before = fingerprint(sandbox, "service", "kubernetes", "default")
    try:
        tenant = ready_tenant(sandbox, "default", tmp_path, name=tenant_name)
        tenant.apply(service("kubernetes", desired=1, loadBalancers=[load_balancer()]))
        conflict_reported(sandbox, "default", ECS_SERVICE, "kubernetes", "loadBalancers[0]", "Service default/kubernetes")
        assert fingerprint(sandbox, "service", "kubernetes", "default") == before
        delete_as_tenant(sandbox, tenant, ECS_SERVICE, "kubernetes")
        assert fingerprint(sandbox, "service", "kubernetes", "default") == before
    finally:
        sandbox.kubectl("delete", "-n", "default", f"services.{API_GROUP}/kubernetes", f"taskdefinitions.{API_GROUP}/web",
                        f"clusters.{API_GROUP}/default", f"serviceaccount/{tenant_name}", f"role/{tenant_name}-ecs",
                        f"rolebinding/{tenant_name}-ecs", "--ignore-not-found", "--wait=true", timeout=90)


def test_a_task_whose_pod_name_is_held_by_a_foreign_pod_reports_the_conflict(
        sandbox: Any, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    tenant = ready_tenant(sandbox, namespace, tmp_path)
    create(sandbox, namespace, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job-0", "labels": FOREIGN_LABELS},
                                "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    wait_for(lambda: (get(sandbox, "pod", "job-0", namespace).get("status") or {}).get("phase") == "Running", 60,
             what="the foreign Pod Running")
    before = fingerprint(sandbox, "pod", "job-0", namespace)
    foreign_uid = before["uid"]

    tenant.apply({"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Task", "metadata": {"name": "job"},
                  "spec": {"cluster": "default", "taskDefinition": "web:1"}})
    conflict_reported(sandbox, namespace, f"tasks.{API_GROUP}", "job", f"metadata.name: needs the Pod {namespace}/job-0")
    task = status(sandbox, f"tasks.{API_GROUP}", "job", namespace)
    assert task.get("lastStatus") != "RUNNING"
    assert not task.get("tasks")  # no task record, so no task ARN with the foreign Pod's UID
    assert foreign_uid.replace("-", "") not in json.dumps(task)
    assert fingerprint(sandbox, "pod", "job-0", namespace) == before

    delete_as_tenant(sandbox, tenant, f"tasks.{API_GROUP}", "job")
    assert fingerprint(sandbox, "pod", "job-0", namespace) == before


def test_a_task_definition_revision_name_held_by_a_foreign_controller_revision_is_a_conflict(
        sandbox: Any, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    tenant = make_tenant(sandbox, namespace, tmp_path)
    create(sandbox, namespace, {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                                "metadata": {"name": "api-1", "labels": FOREIGN_LABELS}, "revision": 1, "data": {"family": "api"}})
    before = fingerprint(sandbox, "controllerrevision", "api-1", namespace)

    tenant.apply(task_definition("api"))
    conflict_reported(sandbox, namespace, f"taskdefinitions.{API_GROUP}", "api",
                      f"metadata.name: needs the ControllerRevision {namespace}/api-1")
    assert "revision" not in status(sandbox, f"taskdefinitions.{API_GROUP}", "api", namespace)  # the foreign data is no revision
    assert fingerprint(sandbox, "controllerrevision", "api-1", namespace) == before

    delete_as_tenant(sandbox, tenant, f"taskdefinitions.{API_GROUP}", "api")
    assert fingerprint(sandbox, "controllerrevision", "api-1", namespace) == before


def test_a_container_instance_the_node_does_not_control_is_left_alone(sandbox: Any, namespace: str, running_operator: Operator) -> None:
    """A ContainerInstance named like a Node, created by someone else (here before the Node joins a
    cluster): the operator neither reports on it nor drains the Node for it."""
    name = unique("foreign-ci")
    sandbox.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "ContainerInstance",
        "metadata": {"name": name, "labels": FOREIGN_LABELS}, "spec": {"status": "DRAINING"}}))
    try:
        before = fingerprint(sandbox, f"containerinstances.{API_GROUP}", name)
        with kwok_nodes(sandbox, [name], unique("cluster"), namespace):
            wait_for(lambda: f"the ContainerInstance {name} exists and is not controlled by the Node {name}" in running_operator.log(),
                     60, what="the conflict logged")
            assert fingerprint(sandbox, f"containerinstances.{API_GROUP}", name) == before
            assert not sandbox.kubectl_json("get", "node", name)["spec"].get("unschedulable")  # not drained for it
    finally:
        sandbox.kubectl("delete", f"containerinstances.{API_GROUP}", name, "--ignore-not-found")


def test_a_kwok_pool_leaves_alone_a_node_it_did_not_launch(
        sandbox: Any, namespace: str, running_operator: Operator, providers: list[str]) -> None:
    """A Node someone else labelled for the provider is reported and never scaled in or deleted; the
    Nodes the pool launches are controlled by the CapacityProvider."""
    provider = new_provider(providers)
    stranger = unique("stranger")
    node = build_node(stranger, instance_type("m5.large"), "us-east-1a", labels={PROVIDER_LABEL: provider})
    sandbox.kubectl("create", "-f", "-", input=json.dumps(node))
    try:
        wait_for(lambda: settled_node(get(sandbox, "node", stranger, "default")), 60,
                 what="the stranger Ready and labelled by the node lifecycle controller")
        before = node_fingerprint(sandbox, stranger)
        apply_objects(sandbox, namespace, capacity_provider(provider, [namespace], min_size=1, max_size=2, scale_in_after=0))
        state = wait_for(lambda: (s := provider_status(sandbox, provider)).get("foreignNodes") == [stranger] and s, 60,
                         what="the stranger reported")
        warnings = wait_for(lambda: [e for e in provider_events(sandbox, provider) if e["reason"] == "ForeignNodes"], 30,
                            what="the ForeignNodes Warning")
        assert any(e["type"] == "Warning" and stranger in e["message"] for e in warnings), warnings
        [launched] = wait_for(lambda: [n for n in pool_node_names(sandbox, provider) if n != stranger] or None, 60,
                              what="minSize: one node launched")
        uid = sandbox.kubectl_json("get", f"capacityproviders.{API_GROUP}", provider)["metadata"]["uid"]
        [ref] = sandbox.kubectl_json("get", "node", launched)["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["uid"], ref["controller"]) == ("CapacityProvider", uid, True)
        assert state["conditions"][0]["status"] == "True"

        sandbox.kubectl("delete", f"capacityproviders.{API_GROUP}", provider, "--wait=true", timeout=90)
        wait_for(lambda: pool_node_names(sandbox, provider) == [stranger], 60, what="only the launched node deleted")
        assert node_fingerprint(sandbox, stranger) == before
    finally:
        sandbox.kubectl("delete", "node", stranger, "--wait=false", "--ignore-not-found")
