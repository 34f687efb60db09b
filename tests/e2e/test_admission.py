"""The generated CRDs and the converted corpus against a real API server.

Every CRD installs (server-side apply) and `kubectl get ecs` lists the kinds; every object that
`ecs-operator convert` writes for the corpus passes a server-side dry-run (custom resources and
plain Kubernetes objects); invalid manifests are refused at admission with the field named.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.cli import main
from ecs_operator.models import KINDS
from operator_fixtures import kubectl_wait

if TYPE_CHECKING:
    from conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"
CORPUS = ROOT.parent / "shared" / "corpus"
# The task definition the AWS CLI's create-service example refers to (see tests/unit/test_corpus.py).
ECS_DEMO = {"family": "ecs-demo", "containerDefinitions": [
    {"name": "simple-demo", "image": "httpd:2.4", "memory": 300, "portMappings": [{"containerPort": 80, "hostPort": 80}]}]}
MISSION = '{\n "family": "nginx-demo",\n "containerDefinitions": [\n {\n "name": "nginx",\n "image": "nginx",\n }\n ]\n}\n'


@pytest.fixture(scope="module")
def crds(sandbox: Cluster) -> Cluster:
    """The CRDs, applied server-side as a GitOps tool would (and as a chart upgrade would, with conflicts forced)."""
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    names = [f"crd/{kind.plural}.{API_GROUP}" for kind in KINDS]
    kubectl_wait(sandbox, "--for=condition=Established", *names)
    return sandbox


def convert(tmp_path: Path, to: str, *files: str) -> tuple[int, str]:
    """Exit code and the YAML `convert` wrote (as kubectl reads it: never re-serialised)."""
    out = tmp_path / f"{to}.yaml"
    out.unlink(missing_ok=True)
    code = main(["convert", "--to", to, "--report", "none", "-o", str(out), *files])
    return code, out.read_text() if code == 0 else ""


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_every_crd_installs(crds: Cluster) -> None:
    resources = crds.kubectl("api-resources", f"--api-group={API_GROUP}", "-o", "name").stdout.split()
    assert sorted(resources) == sorted(f"{kind.plural}.{API_GROUP}" for kind in KINDS)
    for kind in KINDS:
        crd = crds.kubectl_json("get", "crd", f"{kind.plural}.{API_GROUP}")
        assert crd["spec"]["names"]["shortNames"] == [kind.short_name]
        assert crd["spec"]["names"]["categories"] == [kind.category]
        assert {c["type"]: c["status"] for c in crd["status"]["conditions"]}["NamesAccepted"] == "True"


def test_kubectl_get_ecs_lists_the_resources(crds: Cluster, namespace: str, tmp_path: Path) -> None:
    mission = tmp_path / "mission.json"
    mission.write_text(MISSION)
    code, resources = convert(tmp_path, "crs", str(mission))
    assert code == 0
    crds.kubectl("apply", "-n", namespace, "-f", "-", input=resources)
    listed = crds.kubectl("get", "ecs", "-n", namespace, "-o", "name").stdout.split()
    assert listed == [f"taskdefinition.{API_GROUP}/nginx-demo"]
    empty = crds.kubectl("get", "ecs", "-A", check=False)
    assert empty.returncode == 0, empty.stderr


def corpus_conversions(tmp_path: Path, to: str) -> dict[str, str]:
    """file name -> YAML, for every corpus file that converts on its own (the ELB service with its task definition)."""
    assert CORPUS.is_dir(), f"the corpus directory {CORPUS} is missing"
    companion = tmp_path / "ecs-demo.json"
    companion.write_text(json.dumps(ECS_DEMO))
    converted: dict[str, str] = {}
    for file in sorted(CORPUS.glob("*.json")):
        code, text = convert(tmp_path, to, str(file))
        if code != 0 and file.name == "awscli-create-service-classic-elb-input.json":
            code, text = convert(tmp_path, to, str(file), str(companion))
        if code == 0:
            converted[file.name] = text
    return converted


def dry_run(cluster: Cluster, namespace: str, text: str) -> str:
    """kubectl's complaint about the YAML `text` at a server-side dry-run ("" when every object passes)."""
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=text, check=False)
    return "" if result.returncode == 0 else result.stderr.strip() or result.stdout.strip()


@pytest.mark.parametrize("to", ["k8s", "crs"])
def test_converted_corpus_passes_server_side_dry_run(crds: Cluster, namespace: str, tmp_path: Path, to: str) -> None:
    converted = corpus_conversions(tmp_path, to)
    assert len(converted) >= 20, f"only these corpus files converted: {sorted(converted)}"
    assert sum(len(documents(text)) for text in converted.values()) >= 20
    objects = {name: text for name, text in converted.items() if documents(text)}  # a Cluster makes no k8s objects
    failures = [f"{name}: {complaint}" for name, text in objects.items() if (complaint := dry_run(crds, namespace, text))]
    assert not failures, "\n".join(failures)


def test_tasks_and_daemons_of_the_corpus_pass_server_side_dry_run(crds: Cluster, namespace: str, tmp_path: Path) -> None:
    """Each corpus task definition run as a task (Pods) and as a DAEMON service (a DaemonSet)."""
    launches = tmp_path / "launches.yaml"
    launched, failures = [], []
    for name, text in corpus_conversions(tmp_path, "crs").items():
        (resource, *_) = documents(text)
        if resource["kind"] != "TaskDefinition":
            continue
        launches.write_text(yaml.safe_dump_all([
            {"taskDefinition": resource["spec"].get("family", resource["metadata"]["name"]), "count": 1},
            {"serviceName": "daemon", "taskDefinition": resource["spec"].get("family", resource["metadata"]["name"]),
             "schedulingStrategy": "DAEMON"},
        ]))
        code, objects = convert(tmp_path, "k8s", str(CORPUS / name), str(launches))
        assert code == 0, name
        launched += [o["kind"] for o in documents(objects) if o["kind"] in ("Pod", "DaemonSet")]
        if complaint := dry_run(crds, namespace, objects):
            failures.append(f"{name}: {complaint}")
    assert launched.count("Pod") >= 15 and launched.count("DaemonSet") == launched.count("Pod")
    assert not failures, "\n".join(failures)


WEB = {"name": "web", "image": "nginx:1.29", "essential": True}
FARGATE = {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}


@pytest.mark.parametrize(("kind", "spec", "field", "message"), [
    pytest.param("TaskDefinition", {**FARGATE, "containerDefinitions": [WEB],
                                     "volumes": [{"name": "data", "host": {"sourcePath": "/data"}}]},
                 "spec.volumes", "FARGATE does not allow host volumes with a sourcePath", id="fargate-host-path"),
    pytest.param("TaskDefinition", {"containerDefinitions": [
                     {**WEB, "dependsOn": [{"containerName": "web", "condition": "START"}]}]},
                 "spec.containerDefinitions", "a container cannot depend on itself", id="depends-on-itself"),
    pytest.param("Service", {"taskDefinition": "web", "desiredCount": 1, "launchType": "EC2",
                             "capacityProviderStrategy": [{"capacityProvider": "pool", "weight": 1}]},
                 "spec.capacityProviderStrategy", "launchType and capacityProviderStrategy are mutually exclusive",
                 id="launch-type-and-strategy"),
    pytest.param("TaskDefinition", {"containerDefinitions": [{**WEB, "memory": 128, "memoryReservation": 256}]},
                 "spec.containerDefinitions[0].memoryReservation", "must be greater than memoryReservation",
                 id="reservation-above-memory"),
    pytest.param("TaskDefinition", {**FARGATE, "memory": "4096", "containerDefinitions": [WEB]},
                 "spec.memory", "FARGATE needs a supported cpu/memory pair", id="fargate-size-pair"),
    pytest.param("TaskDefinition", {**FARGATE, "cpu": 1024, "memory": 1024, "containerDefinitions": [WEB]},
                 "spec.memory", "FARGATE needs a supported cpu/memory pair", id="fargate-size-pair-numbers"),
    pytest.param("TaskDefinition", {**FARGATE, "cpu": "300", "containerDefinitions": [WEB]},
                 "spec.memory", "FARGATE needs a supported cpu/memory pair", id="fargate-size-unknown-cpu"),
    pytest.param("TaskDefinition", {"containerDefinitions": [{**WEB, "Essential": True}]},
                 'unknown field "spec.containerDefinitions[0].Essential"', "", id="unknown-field"),
    pytest.param("TaskDefinition", {"containerDefinitions": [WEB, {**WEB, "image": "httpd"}]},
                 "spec.containerDefinitions[1]", "Duplicate value", id="duplicate-container-names"),
])
def test_invalid_manifests_are_refused_naming_the_field(crds: Cluster, namespace: str, kind: str, spec: dict[str, Any],
                                                         field: str, message: str) -> None:
    manifest = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": "bad"}, "spec": spec}
    result = crds.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0, f"accepted: {manifest}"
    assert field in result.stderr and message in result.stderr, result.stderr
    assert crds.kubectl("get", kind.lower(), "bad", "-n", namespace, check=False).returncode != 0


def test_the_mission_example_is_accepted(crds: Cluster, namespace: str, tmp_path: Path) -> None:
    mission = tmp_path / "mission.json"
    mission.write_text(MISSION)
    code, resource = convert(tmp_path, "crs", str(mission))
    assert code == 0 and len(documents(resource)) == 1
    crds.kubectl("apply", "-n", namespace, "-f", "-", input=resource)
    stored = crds.kubectl_json("get", "taskdef", "nginx-demo", "-n", namespace)
    assert stored["spec"] == {"family": "nginx-demo", "containerDefinitions": [{"name": "nginx", "image": "nginx"}]}


# Output of the AWS CLI as a user pastes it, read-only fields included (values as ECS prints them).
ACCOUNT = "arn:aws:ecs:us-east-1:123456789012"
DESCRIBED: dict[str, dict[str, Any]] = {
    "TaskDefinition": {  # aws ecs describe-task-definition --task-definition web --query taskDefinition
        "taskDefinitionArn": f"{ACCOUNT}:task-definition/web:3", "family": "web", "revision": 3, "status": "ACTIVE",
        "containerDefinitions": [{"name": "web", "image": "nginx:1.29", "cpu": 0, "essential": True,
                                  "portMappings": [], "environment": [], "mountPoints": [], "volumesFrom": []}],
        "networkMode": "awsvpc", "volumes": [], "placementConstraints": [],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
                               {"name": "ecs.capability.task-eni"}],
        "compatibilities": ["EC2", "FARGATE"], "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512",
        "registeredAt": "2026-11-30T10:12:40.912000+00:00", "registeredBy": "arn:aws:iam::123456789012:user/dev",
        "deregisteredAt": "2026-12-01T08:00:00+00:00", "deleteRequestedAt": "2026-12-01T08:05:00+00:00",
    },
    "Service": {  # aws ecs describe-services --services web --query 'services[0]'
        "serviceArn": f"{ACCOUNT}:service/default/web", "serviceName": "web", "clusterArn": f"{ACCOUNT}:cluster/default",
        "loadBalancers": [], "serviceRegistries": [], "status": "ACTIVE", "desiredCount": 2, "runningCount": 2,
        "pendingCount": 0, "launchType": "EC2", "taskDefinition": f"{ACCOUNT}:task-definition/web:3",
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
        "deployments": [{"id": "ecs-svc/1234567890123456789", "status": "PRIMARY", "desiredCount": 2,
                         "runningCount": 2, "rolloutState": "COMPLETED"}],
        "roleArn": "arn:aws:iam::123456789012:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
        "events": [{"id": "e1", "createdAt": "2026-11-30T10:15:00+00:00",
                    "message": "(service web) has reached a steady state."}],
        "createdAt": "2026-11-30T10:13:00+00:00", "placementConstraints": [], "placementStrategy": [],
        "schedulingStrategy": "REPLICA", "createdBy": "arn:aws:iam::123456789012:user/dev",
        "enableECSManagedTags": False, "propagateTags": "NONE", "enableExecuteCommand": False,
    },
    "Cluster": {  # aws ecs describe-clusters --clusters default --query 'clusters[0]'
        "clusterArn": f"{ACCOUNT}:cluster/default", "clusterName": "default", "status": "ACTIVE",
        "registeredContainerInstancesCount": 0, "runningTasksCount": 0, "pendingTasksCount": 0,
        "activeServicesCount": 1, "statistics": [], "tags": [], "settings": [{"name": "containerInsights", "value": "disabled"}],
        "capacityProviders": [], "defaultCapacityProviderStrategy": [], "attachments": [], "attachmentsStatus": "UPDATE_COMPLETE",
    },
    "CapacityProvider": {  # aws ecs describe-capacity-providers --capacity-providers pool --query 'capacityProviders[0]'
        "capacityProviderArn": f"{ACCOUNT}:capacity-provider/pool", "name": "pool", "status": "ACTIVE",
        "autoScalingGroupProvider": {
            "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:1:autoScalingGroupName/pool",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100, "minimumScalingStepSize": 1,
                               "maximumScalingStepSize": 10000, "instanceWarmupPeriod": 300},
            "managedTerminationProtection": "DISABLED", "managedDraining": "ENABLED"},
        "updateStatus": "UPDATE_COMPLETE", "updateStatusReason": "", "tags": [], "type": "EC2_AUTOSCALING",
    },
}


@pytest.mark.parametrize("kind", sorted(DESCRIBED))
def test_pasted_describe_output_passes_strict_field_validation(crds: Cluster, namespace: str, kind: str) -> None:
    """describe-* output pastes into `spec` unchanged: its read-only fields are accepted (and ignored by the operator)."""
    manifest = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": "pasted"},
                "spec": DESCRIBED[kind]}
    result = crds.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-",
                          input=yaml.safe_dump(manifest), check=False)
    assert result.returncode == 0, result.stderr
