"""Capacity providers and the tasks and clusters that use them: tasks placed by a provider wait in
PROVISIONING and run only on its nodes; PutClusterCapacityProviders and DeleteCapacityProvider
refuse to drop a provider in use; FARGATE and FARGATE_SPOT map to the operator's node selection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from capacity_support import (
    PROVIDER_LABEL,
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
from ecs_objects import API_GROUP, condition, events_seen, kwok_nodes, pods, status, task, unique, wait_task
from operator_fixtures import get, wait_for

from ecs_operator.handlers.capacity_association import IN_USE

if TYPE_CHECKING:
    from conftest import Cluster
    from operator_fixtures import Operator

pytestmark = pytest.mark.usefixtures("running_operator")

CAPACITY_PROVIDERS = f"capacityproviders.{API_GROUP}"
CLUSTERS = f"clusters.{API_GROUP}"


def test_tasks_placed_by_a_provider_wait_in_provisioning_and_run_only_on_its_nodes(
        sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    provider, cluster = new_provider(providers), unique("ecs")
    with kwok_nodes(sandbox, [unique("roomy")], cluster, namespace, type_name="m5.2xlarge") as (roomy,):  # the cluster's, not the provider's
        apply_objects(sandbox, namespace, capacity_provider(provider, [namespace], instanceWarmupPeriod=15), ecs_cluster(cluster, provider),
                      sized_task_definition("web"),
                      task("runner", "web", cluster=cluster, capacityProviderStrategy=[{"capacityProvider": provider, "weight": 1}]))

        waiting = wait_task(sandbox, namespace, "runner", "PROVISIONING", timeout=60)
        (pod,) = pods(sandbox, namespace, "runner")
        assert pod["spec"]["nodeSelector"] == {PROVIDER_LABEL: provider, f"{API_GROUP}/cluster": cluster} and pod["metadata"]["labels"][PROVIDER_LABEL] == provider
        assert waiting["launchType"] == "EC2" and "nodeName" not in pod["spec"]  # room on `roomy` does not count
        (node,) = wait_pool(sandbox, provider, 1)  # launched, warming up: not taking tasks yet
        # the operator's taint; the node controller's not-ready one may still be there for a moment (kwok has not
        # reported the new node Ready yet), and that one is not ours to assert on
        taints = {t["key"] for t in pool_nodes(sandbox, provider)[0]["spec"]["taints"]}
        assert f"{API_GROUP}/warming-up" in taints and taints <= {f"{API_GROUP}/warming-up", "node.kubernetes.io/not-ready"}
        wait_for(lambda: provider_status(sandbox, provider).get("provisioningTasks") == 1, 30, what="the task counted as PROVISIONING")
        assert wait_task(sandbox, namespace, "runner", "PROVISIONING")  # still, while the node warms up

        wait_task(sandbox, namespace, "runner", "RUNNING", timeout=90)
        assert pods(sandbox, namespace, "runner")[0]["spec"]["nodeName"] == node != roomy
        assert not pool_nodes(sandbox, provider)[0]["spec"].get("taints")
        assert pool_node_names(sandbox, provider) == [node]


def test_a_provider_in_use_can_neither_be_deleted_nor_leave_its_cluster(sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    provider, cluster = new_provider(providers), unique("ecs")
    apply_objects(sandbox, namespace, capacity_provider(provider, [namespace]), ecs_cluster(cluster, provider),
                  sized_task_definition("web"), ecs_service("web", cluster, "web", 1, provider))
    wait_for(lambda: service_running(sandbox, namespace, "web", 1), timeout=120, what="1 task RUNNING")
    wait_for(lambda: condition(status(sandbox, CLUSTERS, cluster, namespace), "CapacityProviders").get("status") == "True", 30,
             what="the association condition")

    # DeleteCapacityProvider: refused while a service strategy, a cluster or tasks use it
    sandbox.kubectl("delete", CAPACITY_PROVIDERS, provider, "--wait=false")
    refused = f"The capacity provider {provider} is in use by service {namespace}/web, cluster {namespace}/{cluster}, 1 task(s): remove it from them first"
    wait_for(lambda: condition(provider_status(sandbox, provider)).get("message") == refused, 60, what="the deletion refused")
    assert condition(provider_status(sandbox, provider))["reason"] == "ResourceInUseException"
    assert get(sandbox, CAPACITY_PROVIDERS, provider, "default")["metadata"].get("deletionTimestamp")
    assert len(pool_node_names(sandbox, provider)) == 1 and service_running(sandbox, namespace, "web", 1)

    # PutClusterCapacityProviders without it: refused while the service uses it; it stays associated
    patch(sandbox, CLUSTERS, cluster, {"spec": {"capacityProviders": [], "defaultCapacityProviderStrategy": []}}, namespace)
    in_use = f"{IN_USE} {provider} is used by service web, 1 task(s)"
    association = wait_for(lambda: (c := condition(status(sandbox, CLUSTERS, cluster, namespace), "CapacityProviders"))
                           .get("status") == "False" and c, 30, what="the removal refused")
    assert (association["reason"], association["message"]) == ("ResourceInUseException", in_use)
    assert [e["message"] for e in events_seen(sandbox, namespace, cluster, "ResourceInUseException")] == [in_use]
    assert condition(status(sandbox, CLUSTERS, cluster, namespace))["status"] == "True"  # the cluster itself is fine

    # once nothing uses it, the association goes, and so does the provider with its simulated nodes
    sandbox.kubectl("delete", f"services.{API_GROUP}", "web", "-n", namespace, "--wait=false")
    wait_for(lambda: (c := condition(status(sandbox, CLUSTERS, cluster, namespace), "CapacityProviders")).get("status") == "True"
             and c["message"] == "capacity providers associated: none", 120, what="the association released")
    wait_for(lambda: not get(sandbox, CAPACITY_PROVIDERS, provider, "default"), 60, what="the provider deleted")
    wait_pool(sandbox, provider, 0, timeout=30)


def test_fargate_and_fargate_spot_run_on_the_configured_node_selection(
        sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    tag = unique("fg")
    with kwok_nodes(sandbox, [f"{tag}-od"], unique("none"), namespace, labels={"test/fargate": tag}), \
            kwok_nodes(sandbox, [f"{tag}-spot"], unique("none"), namespace, labels={"test/fargate-spot": tag}):
        running_operator.stop()
        running_operator.start("--fargate-node-selector", f"test/fargate={tag}", "--fargate-spot-node-selector", f"test/fargate-spot={tag}")
        try:
            cluster = unique("ecs")
            fargate = sized_task_definition("web")
            fargate["spec"].update(requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="1024", memory="2048")
            apply_objects(sandbox, namespace, ecs_cluster(cluster, "FARGATE", "FARGATE_SPOT"), fargate,
                          ecs_service("web", cluster, "web", 4, "FARGATE", "FARGATE_SPOT",
                                      networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c"]}}))
            wait_for(lambda: service_running(sandbox, namespace, "web", 4), timeout=120, what="4 tasks RUNNING")
            placed = {(p["metadata"]["labels"][PROVIDER_LABEL], p["metadata"]["labels"][f"{API_GROUP}/launch-type"],
                       tuple(p["spec"]["nodeSelector"].items()), p["spec"]["nodeName"]) for p in service_pods(sandbox, namespace, "web")}
            assert placed == {("FARGATE", "FARGATE", (("test/fargate", tag),), f"{tag}-od"),
                              ("FARGATE_SPOT", "FARGATE", (("test/fargate-spot", tag),), f"{tag}-spot")}
            on = [p["spec"]["nodeName"] for p in service_pods(sandbox, namespace, "web")]
            assert (on.count(f"{tag}-od"), on.count(f"{tag}-spot")) == (2, 2)  # weights 1:1
        finally:
            running_operator.stop()
            running_operator.extra_args = ()
            running_operator.start()


def test_bad_input_is_a_condition_and_an_event_naming_the_field(sandbox: Cluster, namespace: str, providers: list[str]) -> None:
    unknown, missing = new_provider(providers), new_provider(providers)
    target = {"apiVersion": "pools.test.ecs.operator.dev/v9", "kind": "NodeGroup", "name": "none", "namespace": namespace}
    apply_objects(sandbox, namespace, capacity_provider(unknown, [namespace], instance_type="m9.huge"),
                  capacity_provider(missing, [namespace], backend="scale", scale_target=target))
    for name, reason, text in ((unknown, "InvalidParameterException", "kubernetes.nodePool.instanceType: unknown instance type 'm9.huge'"),
                               (missing, "ScaleTargetUnavailable", "kubernetes.nodePool.scaleTarget: NodeGroup none: ")):
        ready = wait_for(lambda: (c := condition(provider_status(sandbox, name))).get("status") == "False" and c, 60,
                         what=f"{name} refused")
        assert ready["reason"] == reason and ready["message"].startswith(text), ready
        warnings = [e for e in sandbox.kubectl_json("get", "events", "-A", "--field-selector",
                                                    f"involvedObject.name={name},type=Warning")["items"]]
        assert [e["reason"] for e in warnings] == [reason]
        assert not pool_node_names(sandbox, name)
