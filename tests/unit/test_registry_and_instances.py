"""Task definition revisions as ECS numbers and resolves them (docs/ecs-semantics.md §Task definitions), and Nodes as
ECS container instances: attributes, registered and remaining resources in ECS units (section 7)."""

from __future__ import annotations

import pytest
from ecs_operator import labels as L
from ecs_operator.instances import (
    attributes_of,
    ecs_resources,
    instance_for_placement,
    pod_reservation,
    registered_resources,
    remaining_resources,
)
from ecs_operator.models import TaskDefinitionSpec
from ecs_operator.registry import UnknownTaskDefinition, content_hash, next_revision, resolve, revision_content, stored

ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition"


def spec(image: str, deregistered: list[int] | None = None) -> TaskDefinitionSpec:
    return TaskDefinitionSpec.model_validate({
        "family": "web", "containerDefinitions": [{"name": "web", "image": image, "memory": 64}],
        **({"kubernetes": {"deregisteredRevisions": deregistered}} if deregistered else {})})


def history(*images: str) -> list:
    entries = []
    for number, image in enumerate(images, start=1):
        content = revision_content(spec(image), "web")
        entries.append({"revision": number, "data": {"family": "web", "hash": content_hash(content), "content": content}})
    return stored(reversed(entries))  # the index holds them in any order


def test_revisions_are_numbered_as_ecs_does() -> None:
    assert next_revision([], revision_content(spec("nginx:1"), "web")) == 1
    revisions = history("nginx:1", "nginx:2")
    assert [r.revision for r in revisions] == [1, 2]
    assert next_revision(revisions, revision_content(spec("nginx:2"), "web")) is None  # unchanged: nothing new
    assert next_revision(revisions, revision_content(spec("nginx:1"), "web")) == 3  # a number is never reused
    # deregistering is not a change of the definition
    assert next_revision(revisions, revision_content(spec("nginx:2", deregistered=[1]), "web")) is None


@pytest.mark.parametrize(("ref", "expected"), [
    ("web", 3), ("web:1", 1), ("web:3", 3), (f"{ARN}/web:2", 2), (f"{ARN}/web", 3),
])
def test_references_by_family_family_revision_and_arn(ref: str, expected: int) -> None:
    assert resolve(ref, history("a", "b", "c"), deregistered=set()).revision == expected


def test_family_means_the_latest_active_revision() -> None:
    assert resolve("web", history("a", "b", "c"), deregistered={3}).revision == 2
    with pytest.raises(UnknownTaskDefinition, match="no ACTIVE revision"):
        resolve("web", history("a"), deregistered={1})


def test_inactive_and_unknown_revisions_are_refused_for_new_tasks() -> None:
    revisions = history("a", "b")
    with pytest.raises(UnknownTaskDefinition, match="web:1 is inactive"):
        resolve("web:1", revisions, deregistered={1})
    assert resolve("web:1", revisions, deregistered={1}, allow_inactive=True).revision == 1  # what runs keeps running
    with pytest.raises(UnknownTaskDefinition, match="web:7: latest revision is 2"):
        resolve("web:7", revisions, deregistered=set())
    with pytest.raises(UnknownTaskDefinition, match="no revision of family 'api'"):
        resolve("api", [], deregistered=set())
    with pytest.raises(UnknownTaskDefinition, match="must be a number"):
        resolve("web:latest", revisions, deregistered=set())


def node(labels: dict[str, str] | None = None, cpu: str = "4", memory: str = "16384Mi", gpus: int = 0) -> dict:
    allocatable = {"cpu": cpu, "memory": memory, "pods": "58"}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    return {"metadata": {"name": "n1", "labels": {
        "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "m5.xlarge",
        "topology.kubernetes.io/zone": "us-east-1a", **(labels or {})}},
        "status": {"allocatable": allocatable}}


def task_pod(containers: list[dict], phase: str = "Running", pod_resources: dict | None = None,
             host_network: bool = False) -> dict:
    spec = {"containers": containers, "hostNetwork": host_network}
    if pod_resources:
        spec["resources"] = pod_resources
    return {"metadata": {"name": "p"}, "spec": spec, "status": {"phase": phase}}


def test_attributes_come_from_well_known_and_prefixed_labels() -> None:
    attributes = attributes_of(node({f"attributes.{L.API_GROUP}/stack": "prod", L.EXTERNAL: "true", "other": "x"}))
    assert attributes == {"ecs.os-type": "linux", "ecs.cpu-architecture": "x86_64", "ecs.instance-type": "m5.xlarge",
                          "ecs.availability-zone": "us-east-1a", "stack": "prod", "ecs.capability.external": ""}


def test_registered_resources_in_ecs_units() -> None:
    shapes = {r["name"]: r for r in ecs_resources(registered_resources(node(cpu="4", memory="16Gi", gpus=1)))}
    assert shapes["CPU"] == {"name": "CPU", "type": "INTEGER", "integerValue": 4096}
    assert shapes["MEMORY"]["integerValue"] == 16384
    assert shapes["PORTS"] == {"name": "PORTS", "type": "STRINGSET", "stringSetValue": ["22", "2375", "2376", "51678", "51679"]}
    assert shapes["PORTS_UDP"]["stringSetValue"] == [] and shapes["GPU"]["integerValue"] == 1
    assert registered_resources(node(cpu="3500m")).cpu == 3584


def test_a_task_reserves_as_ecs_counts_it() -> None:
    soft = {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
            "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"}]}
    hard = {"name": "b", "resources": {"limits": {"memory": "1Gi"}}}
    reserved = pod_reservation(task_pod([soft, hard]))
    assert (reserved.cpu, reserved.memory) == (256, 256 + 1024)  # reservation if set, else the hard limit
    assert (reserved.ports, reserved.udp_ports) == (frozenset({8080}), frozenset({5353}))
    fargate = task_pod([{"name": "a"}], pod_resources={"requests": {"cpu": "250m", "memory": "512Mi"}})
    assert (pod_reservation(fargate).cpu, pod_reservation(fargate).memory) == (256, 512)  # the task size
    host = task_pod([{"name": "a", "ports": [{"containerPort": 9000}]}], host_network=True)
    assert pod_reservation(host).ports == frozenset({9000})


def test_remaining_resources_drop_while_tasks_run_and_come_back_when_they_stop() -> None:
    web = {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}, "ports": [{"containerPort": 80, "hostPort": 8080}]}
    left = remaining_resources(node(), [task_pod([web]), task_pod([web], phase="Succeeded")])
    assert (left.cpu, left.memory, 8080 in left.ports) == (4096 - 512, 16384 - 1024, True)
    assert remaining_resources(node(), [task_pod([web], phase="Failed")]) == registered_resources(node())


@pytest.mark.parametrize(("cpu", "units"), [("1k", 1024000), ("1e3", 1024000), ("3500m", 3584), ("2", 2048), ("0.5", 512)])
@pytest.mark.parametrize(("memory", "mib"), [("1e9", 953), ("1T", 953674), ("1Pi", 1073741824), ("1000k", 0), ("16Gi", 16384),
                                             ("16384Mi", 16384), ("7.5Gi", 7680)])
def test_every_valid_kubernetes_quantity_is_read(cpu: str, units: int, memory: str, mib: int) -> None:
    """Kubernetes accepts decimal, binary and exponent suffixes on Node capacity (issue 14.14: `1k` crashed)."""
    registered = registered_resources(node(cpu=cpu, memory=memory))
    assert (registered.cpu, registered.memory) == (units, mib)


def test_a_fargate_task_counts_on_no_container_instance_but_takes_its_share_of_the_node() -> None:
    ec2 = task_pod([{"name": "a", "resources": {"requests": {"cpu": "256m", "memory": "256Mi"}}}])
    fargate = task_pod([{"name": "a"}], pod_resources={"requests": {"cpu": "250m", "memory": "512Mi"}})
    fargate["metadata"]["labels"] = {L.LAUNCH_TYPE: "FARGATE"}
    seen = instance_for_placement(node(), [ec2, fargate])
    assert seen.runningTasksCount == 1  # what memberOf's runningTasksCount compares
    assert remaining_resources(node(), [ec2, fargate]).memory == 16384 - 256 - 512  # the scheduler's view
