"""TaskDefinitions on the real control plane: immutable revisions as ECS numbers them, references by
family, family:revision and ARN, deregistration (INACTIVE), and bad specs refused or reported with
the field named and nothing half-applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ecs_objects import (
    API_GROUP,
    apply_all,
    cluster,
    condition,
    container,
    events_seen,
    pods,
    status,
    task,
    task_definition,
    wait_task,
)
from ecs_operator.cli import main
from operator_fixtures import wait_for

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition"
FARGATE = {"requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512"}


def revisions(sandbox: Cluster, namespace: str) -> dict[str, int]:
    """The ControllerRevisions that hold the namespace's task definition revisions: name -> revision."""
    items = sandbox.kubectl_json("get", "controllerrevisions", "-n", namespace, "-l", f"{API_GROUP}/revision-of")["items"]
    return {r["metadata"]["name"]: r["revision"] for r in items}


def registered(sandbox: Cluster, namespace: str, name: str, revision: int) -> dict[str, Any]:
    return wait_for(lambda: (s := status(sandbox, "taskdefinition", name, namespace)).get("revision") == revision and s,
                    what=f"{name}:{revision} registered")


def image_of(sandbox: Cluster, namespace: str, task_name: str) -> str:
    (pod,) = pods(sandbox, namespace, task_name)
    return pod["spec"]["containers"][0]["image"]


def refusal(sandbox: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """The Ready=False condition the operator reports on an object it cannot act on."""
    return wait_for(lambda: (c := condition(status(sandbox, kind, name, namespace))).get("status") == "False" and c,
                    what=f"{kind} {name} refused")


def set_spec(sandbox: Cluster, namespace: str, name: str, patch: dict[str, Any]) -> None:
    sandbox.kubectl("patch", "taskdefinition", name, "-n", namespace, "--type", "merge", "-p", json.dumps({"spec": patch}))


def test_a_changed_task_definition_registers_revision_2_and_revision_1_tasks_stay(sandbox: Cluster, namespace: str) -> None:
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web", "nginx:1.28", memory=64)),
              task("first", "web"))
    first = wait_task(sandbox, namespace, "first", "RUNNING")
    (first_pod,) = pods(sandbox, namespace, "first")
    one = registered(sandbox, namespace, "web", 1)
    assert (one["taskDefinition"], one["taskDefinitionArn"], one["status"]) == ("web:1", f"{ARN}/web:1", "ACTIVE")

    set_spec(sandbox, namespace, "web", {"containerDefinitions": [container("web", "nginx:1.29", memory=64)]})
    two = registered(sandbox, namespace, "web", 2)
    assert (two["taskDefinition"], two["taskDefinitionArn"], two["status"]) == ("web:2", f"{ARN}/web:2", "ACTIVE")
    assert [(r["revision"], r["status"]) for r in two["revisions"]] == [(1, "ACTIVE"), (2, "ACTIVE")]
    assert revisions(sandbox, namespace) == {"web-1": 1, "web-2": 2}  # immutable, one object per revision
    assert [e["message"] for e in events_seen(sandbox, namespace, "web", reason="Registered", count=2)] == [
        "registered task definition web:1", "registered task definition web:2"]

    # the revision-1 task is untouched: same Pod, same image, still reported as web:1
    (still,) = pods(sandbox, namespace, "first")
    assert still["metadata"]["uid"] == first_pod["metadata"]["uid"] and image_of(sandbox, namespace, "first") == "nginx:1.28"
    now = status(sandbox, "task", "first", namespace)
    assert (now["lastStatus"], now["taskDefinition"], now["taskArn"]) == ("RUNNING", "web:1", first["taskArn"])

    # references: family = latest ACTIVE, family:revision, the ARN
    apply_all(sandbox, namespace, task("by-family", "web"), task("by-revision", "web:1"), task("by-arn", f"{ARN}/web:2"))
    for name, revision, image in (("by-family", "web:2", "nginx:1.29"), ("by-revision", "web:1", "nginx:1.28"),
                                  ("by-arn", "web:2", "nginx:1.29")):
        assert wait_task(sandbox, namespace, name, "RUNNING")["taskDefinition"] == revision
        assert image_of(sandbox, namespace, name) == image

    # going back to revision 1's content registers revision 3: numbers are never reused
    set_spec(sandbox, namespace, "web", {"containerDefinitions": [container("web", "nginx:1.28", memory=64)]})
    assert registered(sandbox, namespace, "web", 3)["taskDefinition"] == "web:3"
    assert revisions(sandbox, namespace) == {"web-1": 1, "web-2": 2, "web-3": 3}


def test_a_deregistered_revision_is_inactive_running_tasks_keep_running_new_ones_are_refused(
        sandbox: Cluster, namespace: str) -> None:
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web", "nginx:1.28", memory=64)),
              task("old", "web:1"))
    wait_task(sandbox, namespace, "old", "RUNNING")
    (old_pod,) = pods(sandbox, namespace, "old")
    set_spec(sandbox, namespace, "web", {"containerDefinitions": [container("web", "nginx:1.29", memory=64)]})
    registered(sandbox, namespace, "web", 2)

    set_spec(sandbox, namespace, "web", {"kubernetes": {"deregisteredRevisions": [1]}})
    inactive = wait_for(lambda: (s := status(sandbox, "taskdefinition", "web", namespace))["revisions"][0]["status"] == "INACTIVE"
                        and s, what="web:1 INACTIVE")
    assert [(r["revision"], r["status"]) for r in inactive["revisions"]] == [(1, "INACTIVE"), (2, "ACTIVE")]
    assert (inactive["revision"], inactive["status"]) == (2, "ACTIVE")  # deregistering registers nothing
    assert revisions(sandbox, namespace) == {"web-1": 1, "web-2": 2}
    assert [e["message"] for e in events_seen(sandbox, namespace, "web", reason="Deregistered")] == ["task definition web:1 is INACTIVE"]

    apply_all(sandbox, namespace, task("new-on-1", "web:1"), task("new-by-family", "web"))
    refused = refusal(sandbox, namespace, "task", "new-on-1")
    assert refused["reason"] == "ClientException"
    assert refused["message"].startswith("taskDefinition:") and "web:1 is inactive" in refused["message"]
    assert not pods(sandbox, namespace, "new-on-1")
    assert events_seen(sandbox, namespace, "new-on-1", reason="ClientException")[0]["type"] == "Warning"
    assert wait_task(sandbox, namespace, "new-by-family", "RUNNING")["taskDefinition"] == "web:2"  # latest ACTIVE
    (still,) = pods(sandbox, namespace, "old")
    assert still["metadata"]["uid"] == old_pod["metadata"]["uid"]
    assert status(sandbox, "task", "old", namespace)["lastStatus"] == "RUNNING"

    set_spec(sandbox, namespace, "web", {"kubernetes": {"deregisteredRevisions": [1, 2]}})
    wait_for(lambda: status(sandbox, "taskdefinition", "web", namespace).get("status") == "INACTIVE", what="web INACTIVE")
    apply_all(sandbox, namespace, task("none-active", "web"))
    assert "no ACTIVE revision" in refusal(sandbox, namespace, "task", "none-active")["message"]
    assert not pods(sandbox, namespace, "none-active")


@pytest.mark.parametrize(("spec", "field", "message"), [
    pytest.param({**FARGATE, "containerDefinitions": [container("web")],
                  "volumes": [{"name": "data", "host": {"sourcePath": "/var/data"}}]},
                 "spec.volumes", "FARGATE does not allow host volumes with a sourcePath", id="fargate-host-volume"),
    pytest.param({"containerDefinitions": [container("web", memory=64, dependsOn=[{"containerName": "web", "condition": "START"}])]},
                 "spec.containerDefinitions", "a container cannot depend on itself", id="depends-on-itself"),
])
def test_specs_cel_can_judge_are_refused_at_admission(sandbox: Cluster, namespace: str, spec: dict[str, Any], field: str,
                                                      message: str) -> None:
    manifest = {**task_definition("bad", *spec["containerDefinitions"]),
                "spec": {"family": "bad", **spec}}
    result = sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0 and field in result.stderr and message in result.stderr, result.stderr
    assert sandbox.kubectl("get", "taskdefinition", "bad", "-n", namespace, check=False).returncode != 0
    assert revisions(sandbox, namespace) == {}


def test_specs_only_the_operator_can_judge_are_reported_naming_the_field(sandbox: Cluster, namespace: str) -> None:
    """Nothing is half-applied: no revision, no Pod; fixing the spec lets the waiting Task start."""
    apply_all(sandbox, namespace, cluster(),
              task_definition("fargate-size", container("web"), **{**FARGATE, "memory": "4 GB"}),  # 256 CPU allows 512-2048; CEL cannot parse "GB"
              task_definition("privileged", container("web", memory=64, privileged=True)),
              task("on-bad-size", "fargate-size", launchType="FARGATE",
                   networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-12345678"]}}),
              task("unknown-revision", "privileged:7"))

    size = refusal(sandbox, namespace, "taskdefinition", "fargate-size")
    assert size["reason"] == "InvalidTaskDefinition" and size["message"].startswith("memory:"), size
    assert "512-2048" in size["message"] and "4096" in size["message"]
    privileged = refusal(sandbox, namespace, "taskdefinition", "privileged")
    assert privileged["message"].startswith("containerDefinitions[0].privileged:"), privileged
    assert f"{API_GROUP}/allow-privileged-workloads" in privileged["message"]  # says how to opt in
    assert privileged["reason"] == "RefusedByWorkloadPolicy", privileged
    for name, reason in (("fargate-size", "InvalidTaskDefinition"), ("privileged", "RefusedByWorkloadPolicy")):
        (warning,) = events_seen(sandbox, namespace, name, reason=reason)
        assert warning["type"] == "Warning"
    unknown = refusal(sandbox, namespace, "task", "unknown-revision")
    assert unknown["reason"] == "ClientException" and unknown["message"].startswith("taskDefinition:")
    assert "privileged:7" in unknown["message"]
    assert "no revision" in refusal(sandbox, namespace, "task", "on-bad-size")["message"]
    assert revisions(sandbox, namespace) == {} and pods(sandbox, namespace) == []

    set_spec(sandbox, namespace, "fargate-size", {"memory": "1024"})
    assert registered(sandbox, namespace, "fargate-size", 1)["status"] == "ACTIVE"
    assert condition(status(sandbox, "taskdefinition", "fargate-size", namespace))["status"] == "True"
    launched = wait_task(sandbox, namespace, "on-bad-size", "RUNNING")
    assert launched["taskDefinition"] == "fargate-size:1" and condition(launched)["reason"] == "Launched"


def test_repository_credentials_become_the_pods_image_pull_secret(sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    """A private registry's credentials: the Secret the fidelity report names (the secrets convention of
    docs/conversion.md) is the Pod's imagePullSecret, on the control plane and in `convert --to k8s`."""
    credentials = {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:000000000000:secret:registry-creds-AbCdEf"}
    definition = task_definition("private", container("app", "registry.example.com/team/app:1.0", memory=64,
                                                      repositoryCredentials=credentials))
    apply_all(sandbox, namespace, cluster(), definition, task("pull", "private"))
    wait_task(sandbox, namespace, "pull", "RUNNING")
    (pod,) = pods(sandbox, namespace, "pull")
    assert pod["spec"].get("imagePullSecrets") == [{"name": "registry-creds-abcdef"}]
    reported = {f["path"]: f for f in registered(sandbox, namespace, "private", 1)["fidelity"]["fields"]}
    entry = reported["containerDefinitions[0].repositoryCredentials.credentialsParameter"]
    assert entry["verdict"] == "approximated" and "registry-creds-abcdef" in entry["target"], entry

    source = tmp_path / "private.yaml"
    source.write_text(yaml.safe_dump(definition))
    out = tmp_path / "out.yaml"
    assert main(["convert", "--to", "k8s", "--report", "none", "-o", str(out), str(source)]) == 0
    (template,) = [d["template"] for d in yaml.safe_load_all(out.read_text()) if d and d["kind"] == "PodTemplate"]
    assert template["spec"].get("imagePullSecrets") == [{"name": "registry-creds-abcdef"}]


READ_ONLY_OUTPUT = ["compatibilities", "registeredAt", "registeredBy", "requiresAttributes", "revision", "status",
                    "taskDefinitionArn"]


def test_pasted_describe_output_registers_ignoring_read_only_fields(sandbox: Cluster, namespace: str) -> None:
    """`aws ecs describe-task-definition` output pastes into `spec` unchanged: ECS's read-only fields are not
    part of the revision and the fidelity report lists them; `compatibilities` is what ECS reports."""
    described = {  # aws ecs describe-task-definition --task-definition api --query taskDefinition
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/api:7", "family": "api", "revision": 7,
        "status": "ACTIVE", "networkMode": "awsvpc", "cpu": "256", "memory": "512", "volumes": [], "placementConstraints": [],
        "containerDefinitions": [{"name": "api", "image": "nginx:1.29", "cpu": 0, "essential": True, "portMappings": [],
                                  "environment": [], "mountPoints": [], "volumesFrom": []}],
        "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"},
                               {"name": "ecs.capability.task-eni"}],
        "compatibilities": ["EC2"], "registeredAt": "2026-11-30T10:12:40.912000+00:00",
        "registeredBy": "arn:aws:iam::123456789012:user/dev",
    }
    apply_all(sandbox, namespace, {**task_definition("api"), "spec": described},
              task_definition("fg", container("web"), **FARGATE))

    api = registered(sandbox, namespace, "api", 1)  # this registry numbers its own revisions
    assert condition(api)["status"] == "True", api
    assert api["fidelity"]["ignoredReadOnlyFields"] == READ_ONLY_OUTPUT
    # awsvpc with a task size fits FARGATE, but ECS lists only EC2 and what requiresCompatibilities asked for
    assert (api["compatibilities"], api["compatibilitiesText"]) == (["EC2"], "EC2")
    stored = sandbox.kubectl_json("get", "controllerrevision", "api-1", "-n", namespace)["data"]["content"]["taskDefinition"]
    assert not set(READ_ONLY_OUTPUT) & set(stored) and stored["networkMode"] == "awsvpc"

    fargate = registered(sandbox, namespace, "fg", 1)
    assert fargate["compatibilities"] == ["EC2", "FARGATE"] and "ignoredReadOnlyFields" not in fargate["fidelity"]
