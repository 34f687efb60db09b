"""Capacity providers and clusters belong to someone (issue 13, item 2), tried as a tenant whose only rights
are ECS objects in its own namespace: a provider scales and places only for the namespaces its administrator
lists, and a cluster's tasks run only on that namespace's instances, whatever the cluster is named.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from capacity_support import (
    Watch,
    apply_objects,
    capacity_provider,
    ecs_cluster,
    ecs_service,
    new_provider,
    patch,
    pool_node_names,
    pool_nodes,
    provider_status,
    providers,  # noqa: F401  (fixture)
    service_pods,
    service_running,
    sized_task_definition,
    wait_pool,
)
from ecs_objects import API, API_GROUP, changes_during, condition, events, kwok_nodes, pods, status, task, unique, wait_task
from operator_fixtures import wait_for
from tenant_support import Tenant, fingerprint, grant, make_tenant

from ecs_operator import labels as L

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

CLUSTERS = f"clusters.{API_GROUP}"
SERVICES = f"services.{API_GROUP}"
CAPACITY_PROVIDERS = f"capacityproviders.{API_GROUP}"


@pytest.fixture
def tenant(sandbox: Cluster, tmp_path: Path) -> Iterator[Tenant]:
    """A tenant in a namespace of its own (the test's `namespace` is the administrator's or another team's)."""
    name = f"e2e-tenant-{uuid.uuid4().hex[:5]}"
    sandbox.kubectl("create", "namespace", name)
    yield make_tenant(sandbox, name, tmp_path)
    sandbox.kubectl("delete", "namespace", name, "--wait=false", check=False)


def refused(get_status: Any, kind: str = "Ready", field: str = "") -> dict[str, Any]:
    """The `kind` condition once it is False naming `field` (a refusal for another reason may come first:
    a TaskDefinition applied together is not registered yet)."""
    return wait_for(lambda: (c := condition(get_status(), kind)).get("status") == "False"
                    and c.get("message", "").startswith(field) and c, 60, what=f"{kind} False at {field}")


def test_a_tenant_cannot_scale_or_use_the_admins_pool_until_the_admin_allows_it(
        sandbox: Cluster, namespace: str, tenant: Tenant, providers: list[str]) -> None:
    admin_pool, cluster = new_provider(providers), unique("ecs")
    watch = Watch.nodes(sandbox, admin_pool)
    admin_pods = Watch.pods(sandbox, namespace)
    # the administrator's service: 3 tasks of 1024 CPU units, two per m5.large, on a pool of at most 3 instances
    apply_objects(sandbox, namespace, capacity_provider(admin_pool, [namespace], max_size=3), ecs_cluster(cluster, admin_pool),
                  sized_task_definition("web", cpu=1024, memory=1024), ecs_service("web", cluster, "web", 3, admin_pool))
    wait_for(lambda: service_running(sandbox, namespace, "web", 3), timeout=180, what="the admin's 3 tasks RUNNING")
    admin_nodes = wait_pool(sandbox, admin_pool, 2)
    wait_for(lambda: (s := provider_status(sandbox, admin_pool)).get("currentSize") == s.get("desiredSize") == 2, 30,
             what="the round after the scale-out (steady state)")
    before = fingerprint(sandbox, CAPACITY_PROVIDERS, admin_pool)
    attack_started = time.monotonic()

    # the tenant: a Cluster of the same name listing the admin's provider, a Service and a Task on it
    attack = (ecs_cluster(cluster, admin_pool), sized_task_definition("grab", cpu=1024, memory=1024),
              ecs_service("grab", cluster, "grab", 2, admin_pool),
              task("grab-task", "grab", cluster=cluster, capacityProviderStrategy=[{"capacityProvider": admin_pool, "weight": 1}]))
    ns = tenant.namespace
    # the chart's reference policy refuses at admission whoever may not `use` the provider (issue 13, item 4) ...
    admission = tenant.apply(*attack, check=False)
    assert admission.returncode != 0 and f"may not use capacityprovider {admin_pool}" in admission.stderr, admission.stderr
    # ... and with that right (granted for some other namespace's sake) the provider's own list still refuses it
    use = {"apiGroups": [API_GROUP], "resources": ["capacityproviders"], "resourceNames": [admin_pool], "verbs": ["use"]}
    with grant(sandbox, tenant, use, cluster_scoped=True):
        tenant.apply(*attack)
        denied = f"capacity provider {admin_pool} does not allow namespace {ns} (cluster {cluster}): its spec.kubernetes.allowedNamespaces lists {namespace}"
        association = refused(lambda: status(sandbox, CLUSTERS, cluster, ns), "CapacityProviders", "capacityProviders[0]")
        assert association["reason"] == "AccessDeniedException"
        assert association["message"].startswith(f"capacityProviders[0]: {denied} (the CapacityProvider's administrator may add {ns!r} or")
        assert f"defaultCapacityProviderStrategy[0].capacityProvider: {denied}" in association["message"]
        warnings = events(sandbox, ns, cluster, "AccessDeniedException")
        assert {(e["type"], e["message"]) for e in warnings} == {("Warning", association["message"])}, warnings
        service = refused(lambda: status(sandbox, SERVICES, "grab", ns), field="capacityProviderStrategy[0].capacityProvider")
        assert service["message"].startswith(f"capacityProviderStrategy[0].capacityProvider: {denied}"), service
        grab_task = refused(lambda: status(sandbox, "task", "grab-task", ns), field="capacityProviderStrategy[0].capacityProvider")
        assert grab_task["message"].startswith(f"capacityProviderStrategy[0].capacityProvider: {denied}"), grab_task

        # nothing exists that could make the pool grow or land on it: a few evaluation rounds (3 s each) change nothing
        assert not changes_during(sandbox, 8, (f"{CAPACITY_PROVIDERS}/{admin_pool}", None))
        assert sandbox.kubectl_json("get", "pods,deployments", "-n", ns)["items"] == []
        assert watch.most() == 2 and pool_node_names(sandbox, admin_pool) == admin_nodes
        state = provider_status(sandbox, admin_pool)
        assert (state["desiredSize"], state["clusters"]) == (2, [f"{namespace}/{cluster}"])
        assert service_running(sandbox, namespace, "web", 3)
        assert fingerprint(sandbox, CAPACITY_PROVIDERS, admin_pool) == before  # the tenant has no way to change it

        # the administrator allows the tenant's cluster: its service's tasks get a node of their own, labelled for them
        tenant.kubectl("delete", "task", "grab-task", "-n", ns, "--wait=false")  # only the service's tasks from here on
        patch(sandbox, CAPACITY_PROVIDERS, admin_pool, {"spec": {"kubernetes": {"allowedNamespaces": [namespace, f"{ns}/{cluster}"]}}})
        wait_for(lambda: service_running(sandbox, ns, "grab", 2), timeout=180, what="the tenant's 2 tasks RUNNING once allowed")
        (added,) = set(wait_pool(sandbox, admin_pool, 3)) - set(admin_nodes)
        labels = next(n for n in pool_nodes(sandbox, admin_pool) if n["metadata"]["name"] == added)["metadata"]["labels"]
        assert (labels[L.CLUSTER], labels[L.CLUSTER_NAMESPACE]) == (cluster, ns)
        assert {p["spec"]["nodeName"] for p in service_pods(sandbox, ns, "grab")} == {added}
        assert {p["spec"]["nodeName"] for p in service_pods(sandbox, namespace, "web")} == set(admin_nodes)
        wait_for(lambda: condition(status(sandbox, CLUSTERS, cluster, ns), "CapacityProviders").get("status") == "True", 30,
                 what="the tenant's association accepted")
        # the admin's service kept every task throughout: none of its Pods was ever deleted
        assert [o["metadata"]["name"] for t, kind, o in admin_pods.events() if kind == "DELETED" and t >= attack_started] == []
        assert service_running(sandbox, namespace, "web", 3)
        watch.stop()
        admin_pods.stop()


def test_a_tenant_cluster_named_like_another_teams_gets_none_of_its_nodes(
        sandbox: Cluster, namespace: str, tenant: Tenant) -> None:
    name, ns = unique("team"), tenant.namespace
    with kwok_nodes(sandbox, [f"{name}-dedicated"], name, namespace) as (dedicated,):  # the other team's own instance
        apply_objects(sandbox, namespace, ecs_cluster(name), sized_task_definition("app"), task("mine", "app", cluster=name))
        wait_task(sandbox, namespace, "mine", "RUNNING")
        assert pods(sandbox, namespace, "mine")[0]["spec"]["nodeName"] == dedicated

        tenant.apply(ecs_cluster(name), sized_task_definition("app"), task("theirs", "app", cluster=name),
                     {"apiVersion": API, "kind": "Service", "metadata": {"name": "daemon"},
                      "spec": {"cluster": name, "taskDefinition": "app", "schedulingStrategy": "DAEMON"}})
        waiting = wait_task(sandbox, ns, "theirs", "PROVISIONING")
        (pod,) = pods(sandbox, ns, "theirs")
        unscheduled = wait_for(lambda: (c := condition(pods(sandbox, ns, "theirs")[0]["status"], "PodScheduled")).get("reason")
                               == "Unschedulable" and c, 60, what="the tenant's task refused by the scheduler")
        assert unscheduled["status"] == "False" and "nodeName" not in pods(sandbox, ns, "theirs")[0]["spec"]
        assert waiting["lastStatus"] == "PROVISIONING"
        # the selector names the cluster and the namespace (or a shared instance), never the cluster alone
        assert pod["spec"]["nodeSelector"] == {L.CLUSTER: name}
        terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        assert sorted(e["key"] for t in terms for e in t["matchExpressions"] if e["key"] != L.EXTERNAL) == [
            L.CLUSTER_NAMESPACE, L.SHARED_INSTANCE]
        assert {"key": L.CLUSTER_NAMESPACE, "operator": "In", "values": [ns]} in [e for t in terms for e in t["matchExpressions"]]

        # ECS's view agrees: the tenant's cluster has no instance, the DAEMON service no task; the other team's has its node
        wait_for(lambda: status(sandbox, CLUSTERS, name, ns).get("registeredContainerInstancesCount") == 0
                 and status(sandbox, CLUSTERS, name, ns).get("pendingTasksCount") == 1, 60, what="the tenant's cluster counters")
        wait_for(lambda: status(sandbox, CLUSTERS, name, namespace).get("registeredContainerInstancesCount") == 1, 60,
                 what="the other team's cluster counters")
        daemon = wait_for(lambda: (s := status(sandbox, SERVICES, "daemon", ns)).get("deployments") and s, 60, what="the DAEMON service")
        assert (daemon["desiredCount"], daemon["runningCount"]) == (0, 0)
        wait_for(lambda: (i := status(sandbox, f"containerinstances.{API_GROUP}", dedicated)) and (
            i.get("clusterName"), i.get("clusterNamespace"), i.get("runningTasksCount")) == (name, namespace, 1), 60,
            what="the dedicated node's ContainerInstance: the other team's, with its one task")
        assert [p["metadata"]["name"] for p in sandbox.kubectl_json("get", "pods", "-n", ns)["items"]
                if p["spec"].get("nodeName")] == []
