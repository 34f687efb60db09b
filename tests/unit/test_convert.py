"""`ecs-operator convert`: input detection, tolerant parsing, output, exit codes, messages, report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
from botocore.model import StructureShape
import pytest
import yaml

from ecs_operator.cli import main
from ecs_operator.convert.emit import to_yaml
from ecs_operator.convert.load import strip_trailing_commas
from ecs_operator.models import kind_named
from ecs_operator.models.readonly import READ_ONLY, ReadOnlyOutput

# The mission document's example, verbatim (note the trailing comma).
MISSION = """{
 "family": "nginx-demo",
 "containerDefinitions": [
 {
 "name": "nginx",
 "image": "nginx",
 }
 ]
}
"""

TASK_DEFINITION: dict[str, Any] = {
    "family": "web",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [{
        "name": "app", "image": "nginx:1.29", "essential": True,
        "portMappings": [{"containerPort": 80, "protocol": "tcp"}],
        "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
    }],
}
SERVICE: dict[str, Any] = {
    "serviceName": "web-svc", "taskDefinition": "web", "desiredCount": 2, "launchType": "FARGATE",
    "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
    "loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web/1",
                       "containerName": "app", "containerPort": 80}],
}
RUN_TASK: dict[str, Any] = {"taskDefinition": "web:1", "count": 2, "launchType": "FARGATE",
                            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}
CLUSTER: dict[str, Any] = {"clusterName": "prod", "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
                           "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]}
CAPACITY_PROVIDER: dict[str, Any] = {
    "name": "pool-a", "autoScalingGroupProvider": {"autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:1:asg",
                                                   "managedScaling": {"status": "ENABLED", "targetCapacity": 90}}}


def convert(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["convert", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return str(path)


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def report(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, _, err = convert(capsys, *args, "--report", "json")
    assert code == 0, err
    entries: list[dict[str, Any]] = json.loads(err)
    return entries


# --- the mission example, tolerant JSON, YAML, several documents -------------------------------

def test_mission_example_converts_to_a_task_definition_resource(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = convert(capsys, write(tmp_path, "mission.json", MISSION))
    assert code == 0, err
    assert docs(out) == [{
        "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": "nginx-demo"},
        "spec": {"family": "nginx-demo", "containerDefinitions": [{"name": "nginx", "image": "nginx"}]},
    }]
    assert "3 exact, 0 approximated, 0 unsupported" in err


def test_mission_example_converts_to_a_pod_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = convert(capsys, "--to", "k8s", "-n", "demo", write(tmp_path, "mission.json", MISSION))
    assert code == 0, err
    (template,) = docs(out)
    assert (template["apiVersion"], template["kind"], template["metadata"]["name"]) == ("v1", "PodTemplate", "nginx-demo")
    assert template["metadata"]["namespace"] == "demo"
    spec = template["template"]["spec"]
    assert spec["containers"] == [{"name": "nginx", "image": "nginx"}]
    assert spec["restartPolicy"] == "Never"  # a task's Pod: ECS restarts no container in place
    assert template["template"]["metadata"]["labels"]["ecs.operator.dev/revision"] == "1"


def test_trailing_commas_are_removed_outside_strings_only() -> None:
    text = '{"a": "x,]", "b": [1, 2,\n ],\n "c": {"d": "\\",}",},}'
    cleaned = strip_trailing_commas(text)
    assert json.loads(cleaned) == {"a": "x,]", "b": [1, 2], "c": {"d": '",}'}}
    assert len(cleaned) == len(text)  # error positions stay where the user sees them


def test_yaml_with_several_documents_and_several_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = yaml.safe_dump_all([TASK_DEFINITION, SERVICE])
    code, out, err = convert(capsys, write(tmp_path, "app.yaml", stream), write(tmp_path, "cluster.json", CLUSTER))
    assert code == 0, err
    assert [(d["kind"], d["metadata"]["name"]) for d in docs(out)] == [
        ("TaskDefinition", "web"), ("Service", "web-svc"), ("Cluster", "prod")]


def test_standard_input(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(yaml.safe_dump(TASK_DEFINITION)))
    code, out, err = convert(capsys, "-")
    assert code == 0, err
    assert docs(out)[0]["spec"] == TASK_DEFINITION
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(TASK_DEFINITION["containerDefinitions"])))
    code, out, err = convert(capsys, "--report", "json")  # no FILE: standard input
    assert code == 0 and json.loads(err)[0]["file"] == "<stdin>" and docs(out)[0]["metadata"]["name"] == "stdin"
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"family": "x"}'))
    code, _, err = convert(capsys, "-")
    assert code == 2 and "<stdin>: containerDefinitions: Field required" in err


def test_yaml_output_reads_back_as_the_same_data() -> None:
    strings = ["", "y", "N", "yes", "On", "null", "~", "1", "1.29", "1:20", "0x1F", "-c", "- a", "a: b", "a:b", "a #b",
               "#x", "x ", " x", ".inf", "true", "nginx:1.29", "img@sha256:ab", "ecs.operator.dev/family", "/bin/sh -c",
               "a\nb", "tab\tx", "é", "😀", "\x85", "\u2028", "\x7f", "'q'", '"q"', "&a", "*a", "!x", "%x", "@x", "`x",
               "{x}", "[x]", "x,y", "?x", "|", ">", "<<", "=", "a=b", "x:", "_", "C:\\inetpub"]
    data: dict[str, Any] = {"strings": strings, "keys": {s: s for s in strings},
            "values": [0, -1, 10**20, True, False, None, [], {}, [[1, [2]], {"k": []}], [{"a": {"b": [{"c": 1}]}, "e": 2}]]}
    text = to_yaml([data, {"second": "document"}])
    assert list(yaml.safe_load_all(text)) == [data, {"second": "document"}]
    assert to_yaml([{"metadata": {"name": "web", "labels": {"app": "web"}}}]) == (
        "metadata:\n  name: web\n  labels:\n    app: web\n")


def test_output_file_that_cannot_be_written(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = convert(capsys, "-o", str(tmp_path / "missing" / "out.yaml"), write(tmp_path, "a.json", TASK_DEFINITION))
    assert code == 2 and out == "" and "out.yaml: cannot write it: No such file or directory" in err


# --- detection of every kind -----------------------------------------------------------------

def test_register_task_definition_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (entry,) = report(capsys, write(tmp_path, "td.json", TASK_DEFINITION))
    assert (entry["kind"], entry["name"], entry["input"]) == ("TaskDefinition", "web", "RegisterTaskDefinition input")


def test_describe_task_definition_output_drops_read_only_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    described = {
        "taskDefinition": {**TASK_DEFINITION, "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:7",
                           "revision": 7, "status": "ACTIVE", "compatibilities": ["EC2", "FARGATE"],
                           "requiresAttributes": [{"name": "ecs.capability.task-eni"}],
                           "registeredAt": "2024-01-01T00:00:00Z", "registeredBy": "arn:aws:iam::1:root"},
        "tags": [{"key": "team", "value": "web"}],
    }
    file = write(tmp_path, "described.json", described)
    code, out, err = convert(capsys, file)
    assert code == 0, err
    assert docs(out)[0]["spec"] == {**TASK_DEFINITION, "tags": [{"key": "team", "value": "web"}]}
    (entry,) = report(capsys, file)
    assert set(entry["dropped"]) == {"taskDefinitionArn", "revision", "status", "compatibilities",
                                     "requiresAttributes", "registeredAt", "registeredBy"}
    assert "read-only fields dropped" in entry["input"]
    code, out, _ = convert(capsys, "--to", "k8s", file)
    assert docs(out)[0]["template"]["metadata"]["labels"]["ecs.operator.dev/revision"] == "7"


def test_flattened_describe_output_with_nulls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flat = {**TASK_DEFINITION, "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/web:3", "revision": 3,
            "status": "ACTIVE", "ipcMode": None, "pidMode": None,
            "containerDefinitions": [{**TASK_DEFINITION["containerDefinitions"][0], "links": None, "memory": None}]}
    code, out, err = convert(capsys, write(tmp_path, "flat.json", flat))
    assert code == 0, err
    assert docs(out)[0]["spec"] == TASK_DEFINITION


def test_container_definitions_array_takes_the_family_from_the_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path, "My_Service.containers.json", TASK_DEFINITION["containerDefinitions"])
    code, out, err = convert(capsys, file)
    assert code == 0, err
    (cr,) = docs(out)
    assert cr["metadata"]["name"] == "my-service"
    assert cr["spec"] == {"containerDefinitions": TASK_DEFINITION["containerDefinitions"]}
    (entry,) = report(capsys, file)
    assert entry["input"].startswith("containerDefinitions array")


def test_create_service_input_and_describe_services_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    described = {"services": [
        {**SERVICE, "serviceArn": "arn:aws:ecs:us-east-1:1:service/prod/web-svc", "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod",
         "status": "ACTIVE", "runningCount": 2, "pendingCount": 0, "deployments": [{"id": "ecs-svc/1"}],
         "events": [{"id": "1", "message": "(service web-svc) has reached a steady state."}],
         "createdAt": "2024-01-01T00:00:00Z", "createdBy": "arn:aws:iam::1:role/x", "roleArn": "arn:aws:iam::1:role/y",
         "platformFamily": "Linux"},
        {**SERVICE, "serviceName": "other", "desiredCount": 1},
    ], "failures": []}
    entries = report(capsys, write(tmp_path, "services.json", described),
                     write(tmp_path, "service.json", {**SERVICE, "serviceName": "third"}))
    assert [(e["kind"], e["name"], e["index"]) for e in entries] == [
        ("Service", "web-svc", 0), ("Service", "other", 1), ("Service", "third", 0)]
    assert set(entries[0]["dropped"]) == {"serviceArn", "clusterArn", "status", "runningCount", "pendingCount",
                                          "deployments", "events", "createdAt", "createdBy", "roleArn", "platformFamily"}
    assert entries[2]["input"] == "CreateService input"


def test_create_cluster_input_and_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = {"cluster": {**CLUSTER, "clusterName": "prod2", "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod2",
                          "status": "ACTIVE", "registeredContainerInstancesCount": 0, "runningTasksCount": 0,
                          "pendingTasksCount": 0, "activeServicesCount": 0, "statistics": [], "attachments": [],
                          "attachmentsStatus": "UPDATE_COMPLETE"}}
    entries = report(capsys, write(tmp_path, "c.json", CLUSTER), write(tmp_path, "out.json", output))
    assert [(e["kind"], e["name"]) for e in entries] == [("Cluster", "prod"), ("Cluster", "prod2")]
    assert "attachments" in entries[1]["dropped"]


def test_capacity_provider_input_and_describe_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = {"capacityProviders": [{**CAPACITY_PROVIDER, "name": "pool-b", "status": "ACTIVE", "type": "EC2_AUTOSCALING",
                                     "capacityProviderArn": "arn:aws:ecs:us-east-1:1:capacity-provider/pool-b"}]}
    file_in, file_out = write(tmp_path, "cp.json", CAPACITY_PROVIDER), write(tmp_path, "cps.json", output)
    entries = report(capsys, file_in, file_out)
    assert [(e["kind"], e["name"]) for e in entries] == [("CapacityProvider", "pool-a"), ("CapacityProvider", "pool-b")]
    code, out, _ = convert(capsys, "-n", "prod", file_in)
    assert "namespace" not in docs(out)[0]["metadata"]  # capacity providers are cluster-scoped


def test_run_task_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (entry,) = report(capsys, write(tmp_path, "nightly-job.json", RUN_TASK))
    assert (entry["kind"], entry["name"], entry["input"]) == ("Task", "nightly-job", "RunTask input")
    assert entry["taskDefinition"]["resolved"] is None and "not among the inputs" in entry["taskDefinition"]["note"]


def test_custom_resources_are_accepted_and_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs = [write(tmp_path, f"{i}.json", doc) for i, doc in
              enumerate([TASK_DEFINITION, SERVICE, RUN_TASK, CLUSTER, CAPACITY_PROVIDER])]
    code, first, err = convert(capsys, "-n", "team", *inputs)
    assert code == 0, err
    resources = write(tmp_path, "resources.yaml", first)
    code, second, err = convert(capsys, resources)
    assert code == 0, err
    assert second == first
    assert [e["input"] for e in report(capsys, resources)] == [
        f"{kind} custom resource" for kind in ("TaskDefinition", "Service", "Task", "Cluster", "CapacityProvider")]


@pytest.mark.parametrize(("document", "message"), [
    ({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}, "a Kubernetes Deployment (apps/v1), not an ECS document"),
    ({"apiVersion": "ecs.operator.dev/v1beta9", "kind": "TaskDefinition"}, "apiVersion: apiVersion ecs.operator.dev/v1beta9 is not served"),
    ({"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "ContainerInstance", "metadata": {"name": "n"}, "spec": {}}, "kind: kind 'ContainerInstance' cannot be converted"),
    ({"image": "nginx", "name": "web"}, "a single container definition: put it in a JSON array"),
    ({"cpu": "256", "name": "x", "memory": 3}, "mixes fields of different ECS requests"),
    ({"tags": []}, "not an ECS document: expected containerDefinitions"),
    ({"serviceName": "a", "count": 2, "taskDefinition": "t"}, "mixes fields of different ECS requests (Service: serviceName; Task: count)"),
    (json.dumps("just a string"), "expected an ECS JSON object, got a string"),
    ([1, 2], "a JSON array that is not a list of container definitions"),
])
def test_what_is_not_an_ecs_document_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], document: Any, message: str) -> None:
    code, out, err = convert(capsys, write(tmp_path, "doc.json", document))
    assert code == 2 and out == ""
    assert f"doc.json: {message}" in err


# --- errors: exit 2, every message names the file and the JSON path --------------------------

def test_ecs_rules_name_the_file_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = json.loads(json.dumps(TASK_DEFINITION))
    bad["containerDefinitions"][0]["portMappings"].append({"containerPort": 81, "hostPort": 8081})
    bad["containerDefinitions"][0].update(memory=100, memoryReservation=200)
    code, out, err = convert(capsys, write(tmp_path, "bad.json", bad), write(tmp_path, "good.json", CLUSTER))
    assert code == 2 and out == ""  # nothing is written when any input is invalid
    lines = err.splitlines()
    assert f"{tmp_path}/bad.json: containerDefinitions[0].portMappings[1].hostPort: must be omitted or equal to containerPort in awsvpc network mode" in lines
    assert f"{tmp_path}/bad.json: containerDefinitions[0].memoryReservation: memory (the hard limit) must be greater than memoryReservation" in lines
    assert all(line.startswith(f"{tmp_path}/bad.json: ") for line in lines)


def test_schema_errors_name_the_file_document_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrong = {**TASK_DEFINITION, "containerDefinitions": [{"name": "app", "image": "x", "Essential": True}]}
    stream = yaml.safe_dump_all([CLUSTER, wrong])
    code, _, err = convert(capsys, write(tmp_path, "two.yaml", stream))
    assert code == 2
    assert f"{tmp_path}/two.yaml (document 2): containerDefinitions[0].Essential: unknown field (not part of this ECS shape)" in err


def test_errors_in_wrapped_and_array_inputs_use_the_file_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wrapped = {"taskDefinition": {**TASK_DEFINITION, "networkMode": "bridged"}}
    array = [{"name": "a", "image": "x", "memory": 2}]
    code, _, err = convert(capsys, write(tmp_path, "w.json", wrapped), write(tmp_path, "a.json", array))
    assert code == 2
    assert "w.json: taskDefinition.networkMode: must be one of 'bridge', 'host', 'awsvpc' or 'none'; got 'bridged'" in err
    assert "a.json: [0].memory: a container needs at least 6 MiB of memory; got 2" in err


def test_broken_json_names_line_column_and_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = '{\n  "family": "x",\n  "containerDefinitions": [{"name": "a", "image": "b", "command": [{{command}}]}]\n}\n'
    code, _, err = convert(capsys, write(tmp_path, "tpl.json", text))
    assert code == 2
    assert err.startswith(f"{tmp_path}/tpl.json: not valid JSON at line 3 column 69 (it looks like a mustache/Go template")
    assert "{{command}}" in err


def test_templates_that_parse_convert_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    templated = {**TASK_DEFINITION, "taskRoleArn": "${task_role_arn}"}
    code, out, err = convert(capsys, write(tmp_path, "t.json", templated))
    assert code == 0 and docs(out)[0]["spec"]["taskRoleArn"] == "${task_role_arn}"
    assert f"{tmp_path}/t.json: warning: it looks like a Terraform/envsubst template: ${{task_role_arn}}" in err


def test_invalid_templates_say_which_placeholders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    templated = [{"name": "$$$NAME$$$", "image": "<IMAGE_URI>", "memory": 64}]
    code, _, err = convert(capsys, write(tmp_path, "t.json", templated))
    assert code == 2
    assert "t.json: [0].name: String should match pattern" in err
    assert "t.json: it looks like a $$$NAME$$$ placeholder (ECS agent tests): $$$NAME$$$: render the template first" in err
    assert "t.json: it looks like a <PLACEHOLDER> template: <IMAGE_URI>: render the template first" in err


def test_unreadable_and_empty_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = convert(capsys, str(tmp_path / "missing.json"), write(tmp_path, "empty.yaml", "# nothing\n"))
    assert code == 2
    assert f"{tmp_path}/missing.json: cannot read it:" in err
    assert f"{tmp_path}/empty.yaml: no ECS document in it" in err
    code, _, err = convert(capsys, write(tmp_path, "bad.yaml", "a: [1, 2\nb: c\n"))
    assert code == 2 and "bad.yaml: not valid YAML at line" in err


def test_duplicate_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = convert(capsys, write(tmp_path, "a.json", TASK_DEFINITION), write(tmp_path, "b.json", TASK_DEFINITION))
    assert code == 2
    assert f"{tmp_path}/b.json: a second TaskDefinition named 'web' (the first is {tmp_path}/a.json #0)" in err


def test_bad_namespace_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = convert(capsys, "-n", "Not_A_Namespace", write(tmp_path, "a.json", TASK_DEFINITION))
    assert code == 2 and "--namespace 'Not_A_Namespace'" in err


# --- --to k8s: services and tasks find their task definition ----------------------------------

@pytest.mark.parametrize("reference", ["web", "web:1", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"])
def test_service_resolves_its_task_definition(tmp_path: Path, capsys: pytest.CaptureFixture[str], reference: str) -> None:
    service = write(tmp_path, "svc.json", {**SERVICE, "taskDefinition": reference})
    code, out, err = convert(capsys, "--to", "k8s", "-n", "web", service, write(tmp_path, "td.json", TASK_DEFINITION))
    assert code == 0, err
    kinds = [(d["kind"], d["metadata"]["name"], d["metadata"]["namespace"]) for d in docs(out)]
    assert ("Deployment", "web-svc", "web") in kinds and ("Service", "web-svc", "web") in kinds
    assert ("PodTemplate", "web", "web") in kinds
    deployment = next(d for d in docs(out) if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.29"


def test_service_without_its_task_definition_fails_for_k8s_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service = write(tmp_path, "svc.json", SERVICE)
    code, _, err = convert(capsys, "--to", "k8s", service)
    assert code == 2
    assert f"{tmp_path}/svc.json: taskDefinition: task definition 'web' is not among the inputs" in err
    code, _, err = convert(capsys, "--to", "k8s", service, write(tmp_path, "td.json", {**TASK_DEFINITION, "family": "other"}))
    assert code == 2 and "'web' is not among the inputs" in err
    assert convert(capsys, service)[0] == 0  # a custom resource refers to the task definition by name


def test_revision_must_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = convert(capsys, "--to", "k8s", write(tmp_path, "svc.json", {**SERVICE, "taskDefinition": "web:4"}),
                           write(tmp_path, "td.json", TASK_DEFINITION))
    assert code == 2 and "task definition 'web:4' is not among the inputs (the inputs have web:1)" in err


@pytest.mark.parametrize("reference", ["web:42", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:42"])
def test_a_source_revision_number_becomes_the_family_in_custom_resources(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], reference: str) -> None:
    """describe output's `revision: 42` is the source account's: applied, the TaskDefinition registers web:1."""
    described = write(tmp_path, "td.json", {"taskDefinition": {**TASK_DEFINITION, "revision": 42, "status": "ACTIVE"}})
    args = (write(tmp_path, "svc.json", {**SERVICE, "taskDefinition": reference}),
            write(tmp_path, "job.json", {**RUN_TASK, "taskDefinition": reference}), described)
    code, out, err = convert(capsys, *args, "--report", "none")
    assert code == 0, err
    assert [d["spec"].get("taskDefinition") for d in docs(out)] == ["web", "web", None]
    for entry in report(capsys, *args):
        if entry["kind"] != "TaskDefinition":
            field = next(f for f in entry["fields"] if f["path"] == "taskDefinition")
            assert (field["verdict"], field["target"]) == ("approximated", "taskDefinition web")
            assert f"{reference!r} names the source account's revision 42" in field["note"]
            assert (entry["taskDefinition"]["resolved"], entry["taskDefinition"]["applied"]) == ("web:42", "web")
    code, out, _ = convert(capsys, "--to", "k8s", *args, "--report", "none")  # the Kubernetes objects are unchanged
    assert code == 0 and {d["kind"] for d in docs(out)} >= {"Deployment", "Pod"}


def test_a_family_a_revision_numbered_here_or_a_reference_outside_the_run_is_kept(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    td = write(tmp_path, "td.json", TASK_DEFINITION)
    for reference, alone in (("web", False), ("web:1", False), ("web:7", True)):
        service = write(tmp_path, "svc.json", {**SERVICE, "taskDefinition": reference})
        code, out, err = convert(capsys, service, *(() if alone else (td,)), "--report", "none")
        assert code == 0, err
        assert docs(out)[0]["spec"]["taskDefinition"] == reference


def test_run_task_becomes_pods(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = convert(capsys, "--to", "k8s", write(tmp_path, "job.json", RUN_TASK), write(tmp_path, "td.json", TASK_DEFINITION))
    assert code == 0, err
    pods = [d for d in docs(out) if d["kind"] == "Pod"]
    assert [p["metadata"]["name"] for p in pods] == ["job-0", "job-1"]
    assert all("namespace" not in p["metadata"] for p in pods)  # no --namespace: kubectl's current one


def test_member_of_the_operator_evaluates_says_who_sets_the_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    regex = "attribute:ecs.instance-type =~ t3.*"
    service = {**SERVICE, "launchType": "EC2", "placementConstraints": [{"type": "memberOf", "expression": regex}]}
    code, out, err = convert(capsys, "--to", "k8s", write(tmp_path, "svc.json", service), write(tmp_path, "td.json", TASK_DEFINITION))
    assert code == 0, err
    template = next(d for d in docs(out) if d["kind"] == "Deployment")["spec"]["template"]
    [(key, expression)] = [(k, v) for k, v in template["metadata"]["annotations"].items() if k.startswith("memberof.")]
    assert expression == regex and key in json.dumps(template["spec"]["affinity"]) and "hostname" not in json.dumps(template["spec"]["affinity"])
    assert f"the Pods require node labels the operator maintains on the container instances ({key}=true where '{regex}' " \
           "holds): without the operator no node carries them and the Pods stay Pending" in err


def test_launch_problems_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bridge = {**TASK_DEFINITION, "networkMode": "bridge", "requiresCompatibilities": ["EC2"]}
    code, _, err = convert(capsys, "--to", "k8s", write(tmp_path, "svc.json", SERVICE), write(tmp_path, "td.json", bridge))
    assert code == 2
    assert "svc.json: taskDefinition.requiresCompatibilities: Task definition does not support launch_type FARGATE." in err


def test_clusters_and_capacity_providers_make_no_kubernetes_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, "c.json", CLUSTER), write(tmp_path, "cp.json", CAPACITY_PROVIDER)]
    code, out, err = convert(capsys, "--to", "k8s", *files)
    assert code == 0 and docs(out) == []
    assert "a Cluster is kept by the operator as a custom resource: no plain Kubernetes objects" in err
    entries = report(capsys, "--to", "k8s", *files)
    assert [e["objects"] for e in entries] == [[], []]


# --- the report --------------------------------------------------------------------------------

def leaf_paths(value: Any, path: str = "") -> set[str]:
    """The test's own walk: one path per scalar, scalar list, map of free-form values or empty object."""
    if isinstance(value, dict) and value and not path.endswith(("dockerLabels", "options", "driverOpts", "labels")):
        return set().union(*(leaf_paths(v, f"{path}.{k}" if path else k) for k, v in value.items()))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return set().union(*(leaf_paths(v, f"{path}[{i}]") for i, v in enumerate(value)))
    return {path}


def test_report_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, "td.json", TASK_DEFINITION), write(tmp_path, "svc.json", SERVICE)]
    td, svc = report(capsys, "--to", "k8s", *files)
    assert set(td) == {"file", "index", "kind", "name", "input", "summary", "fields", "objects"}
    assert (td["file"], td["index"], td["kind"], td["name"]) == (files[0], 0, "TaskDefinition", "web")
    assert {f["path"] for f in td["fields"]} == leaf_paths(TASK_DEFINITION)
    for field in td["fields"] + svc["fields"]:
        assert set(field) == {"path", "verdict", "target", "note"}
        assert field["verdict"] in ("exact", "approximated", "unsupported")
    verdicts = {f["path"]: f["verdict"] for f in td["fields"]}
    assert verdicts["containerDefinitions[0].portMappings[0].containerPort"] == "exact"
    assert verdicts["containerDefinitions[0].ulimits[0].softLimit"] == "unsupported"
    assert td["summary"] == {"exact": sum(v == "exact" for v in verdicts.values()),
                             "approximated": sum(v == "approximated" for v in verdicts.values()),
                             "unsupported": sum(v == "unsupported" for v in verdicts.values()),
                             "summary": td["summary"]["summary"]}
    assert {f["path"] for f in svc["fields"]} == leaf_paths(SERVICE)
    block = svc["taskDefinition"]
    assert (block["reference"], block["resolved"], block["file"], block["index"]) == ("web", "web:1", files[0], 0)
    assert {f["path"] for f in block["fields"]} == leaf_paths(TASK_DEFINITION)
    assert svc["objects"][0] == "Deployment/web-svc"


def test_report_text_lists_unsupported_then_approximated_then_counts_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    td = {**TASK_DEFINITION, "taskRoleArn": "arn:aws:iam::1:role/app"}
    code, _, err = convert(capsys, write(tmp_path, "td.json", td))
    assert code == 0
    lines = err.splitlines()
    assert lines[0].startswith(f"{tmp_path}/td.json #0  TaskDefinition web (RegisterTaskDefinition input): ")
    verdicts = [line.split()[0] for line in lines[1:] if line.split()[0] in ("unsupported", "approximated")]
    assert verdicts == sorted(verdicts, key=("unsupported", "approximated").index) and len(set(verdicts)) == 2
    assert any("containerDefinitions[0].ulimits (3 fields)" in line for line in lines)
    assert any(line.strip().endswith("fields exact") for line in lines)


def test_output_file_puts_the_report_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.yaml"
    code, out, err = convert(capsys, "-o", str(target), "--report", "json", write(tmp_path, "td.json", TASK_DEFINITION))
    assert code == 0 and err == ""
    assert json.loads(out)[0]["name"] == "web"
    assert docs(target.read_text())[0]["kind"] == "TaskDefinition"


def test_report_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = convert(capsys, "--report", "none", write(tmp_path, "td.json", TASK_DEFINITION))
    assert code == 0 and err == "" and docs(out)


# --- read-only field lists agree with botocore ------------------------------------------------

@pytest.mark.parametrize(("kind", "output", "request_shape"), [
    ("TaskDefinition", "TaskDefinition", "RegisterTaskDefinitionRequest"),
    ("Service", "Service", "CreateServiceRequest"),
    ("Cluster", "Cluster", "CreateClusterRequest"),
    ("CapacityProvider", "CapacityProvider", "CreateCapacityProviderRequest"),
])
def test_read_only_fields_match_botocore(kind: str, output: str, request_shape: str) -> None:
    ecs = botocore.session.get_session().get_service_model("ecs")
    output_shape, request = ecs.shape_for(output), ecs.shape_for(request_shape)
    assert isinstance(output_shape, StructureShape) and isinstance(request, StructureShape)
    expected = set(output_shape.members) - set(request.members)
    assert READ_ONLY[kind] == expected


@pytest.mark.parametrize("kind", sorted(READ_ONLY))
def test_specs_accept_and_ignore_exactly_the_read_only_fields(kind: str) -> None:
    spec_model = kind_named(kind).spec_model
    assert {n for n, f in spec_model.model_fields.items() if f.exclude} == READ_ONLY[kind]
    minimals: dict[str, dict[str, Any]] = {
        "TaskDefinition": {"containerDefinitions": [{"name": "web", "image": "nginx"}]},
        "Service": {"taskDefinition": "web"}, "Cluster": {}, "CapacityProvider": {"name": "pool"}}
    minimal = minimals[kind]
    spec = spec_model.model_validate({**minimal, **{name: "x" for name in READ_ONLY[kind]}})
    assert isinstance(spec, ReadOnlyOutput)
    assert spec.ignored_read_only_fields == sorted(READ_ONLY[kind])
    assert not set(spec.to_json()) & READ_ONLY[kind]  # never part of what the operator acts on


# --- start-up: the convert path imports neither kubernetes nor kopf ----------------------------

def test_convert_imports_neither_kubernetes_nor_kopf(tmp_path: Path) -> None:
    file = write(tmp_path, "mission.json", MISSION)
    probe = ("import sys; from ecs_operator.cli import main; "
             f"code = main(['convert', '--to', 'k8s', '--report', 'none', {file!r}]); "
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('kubernetes', 'kopf')); "
             "print(code, heavy, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stderr.strip() == "0 []"


def test_what_the_workload_policy_would_refuse_converts_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gated = {"family": "tool", "containerDefinitions": [{"name": "tool", "image": "busybox", "memory": 64,
                                                         "dockerSecurityOptions": ["apparmor:unconfined"]}]}
    service = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"taskDefinition": "tool", "desiredCount": 1, "kubernetes": {"loadBalancerServiceType": "NodePort"}}}
    code, out, err = convert(capsys, "--to", "k8s", write(tmp_path, "td.json", gated), write(tmp_path, "svc.json", service))
    assert code == 0 and docs(out)
    assert (f"{tmp_path}/td.json: warning: containerDefinitions[0].dockerSecurityOptions[0]: the AppArmor profile 'unconfined' "
            "is refused by the workload policy (feature securityProfiles)") in err
    assert f"{tmp_path}/svc.json: warning: spec.kubernetes.loadBalancerServiceType: a Kubernetes Service of type NodePort" in err
