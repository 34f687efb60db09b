"""Bad input found by fuzzing (issue 18): each refused as ECS refuses it, naming the ECS field.

Integers are parsed exactly and bounded by ECS's Integer (botocore's ECS model: every numeric input
member of the shapes the project models is a 32-bit Integer); a TaskDefinition that translates into a
Pod the API server would refuse is refused at registration, named by its ECS field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ecs_operator.cli import main
from ecs_operator.models import TaskDefinitionSpec, problems_from_validation_error, validate
from ecs_operator.models.base import Problem
from ecs_operator.models.task import TaskSpec
from ecs_operator.models.units import cpu_units, memory_mib
from ecs_operator.settings import Settings
from ecs_operator.translate.pod import Revision
from ecs_operator.translate.pod_checks import registration_problems
from ecs_operator.translate.task import task_pods

HUGE = "999999999999999999999999999999"


def td(**container: Any) -> dict[str, Any]:
    return {"family": "web", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 128, **container}]}


def problems(spec: dict[str, Any]) -> list[Problem]:
    """What registration refuses: the model's own checks, then ECS's rules (the operator's order)."""
    try:
        model = TaskDefinitionSpec.model_validate(spec)
    except ValidationError as e:
        return problems_from_validation_error(e)
    return registration_problems(model)


def paths(spec: dict[str, Any]) -> list[str]:
    return [p.path for p in problems(spec)]


def test_units_parse_exactly_without_float() -> None:
    assert memory_mib(HUGE) == int(HUGE)  # float made it 1000000000000000019884624838656
    assert memory_mib(".5 GB") == 512 and memory_mib("2 GB") == 2048 and cpu_units(".25 vcpu") == 256
    assert cpu_units("12345678901234567890") == 12345678901234567890


def test_task_memory_beyond_ecs_integer_is_refused_naming_memory() -> None:
    found = problems({**td(), "memory": HUGE})
    assert [p.path for p in found] == ["memory"] and "2147483647" in found[0].message


@pytest.mark.parametrize("field", ["memory", "cpu", "memoryReservation"])
def test_container_integers_beyond_ecs_integer_are_refused(field: str) -> None:
    assert f"containerDefinitions[0].{field}" in paths(td(**{field: 2**31}))
    assert f"containerDefinitions[0].{field}" in paths(td(**{field: 2**64}))


def test_integer_bounds_reach_nested_lists() -> None:
    spec = td(restartPolicy={"enabled": True, "ignoredExitCodes": [1, 2**40]})
    assert paths(spec) == ["containerDefinitions[0].restartPolicy.ignoredExitCodes[1]"]


def test_run_task_override_cpu_is_named_under_overrides() -> None:
    rev = Revision("web", 1, TaskDefinitionSpec.model_validate(td()).ecs_part())
    plan = task_pods(TaskSpec.model_validate({"taskDefinition": "web:1", "overrides": {"cpu": ""}}), name="t",
                     namespace="ns", revision=rev, cluster="default", settings=Settings())
    assert [p.path for p in plan.problems] == ["overrides.cpu"]
    plan = task_pods(TaskSpec.model_validate({"taskDefinition": "web:1", "overrides": {"containerOverrides": [
        {"name": "app", "memory": 2}]}}), name="t", namespace="ns", revision=rev, cluster="default", settings=Settings())
    assert [p.path for p in plan.problems] == ["overrides.containerOverrides[0].memory"]
    plan = task_pods(TaskSpec.model_validate({"taskDefinition": "web:1", "overrides": {"containerOverrides": [
        {"name": "app", "environment": [{"name": "A=B", "value": "1"}]}]}}), name="t", namespace="ns", revision=rev,
        cluster="default", settings=Settings())
    assert [p.path for p in plan.problems] == ["overrides.containerOverrides[0].environment"]


@pytest.mark.parametrize(("strategy", "ok"), [
    ({"type": "spread", "field": "BOGUS"}, False),
    ({"type": "spread", "field": "attribute:"}, False),
    ({"type": "spread", "field": "instanceId"}, True),
    ({"type": "spread", "field": "host"}, True),
    ({"type": "spread", "field": "attribute:ecs.availability-zone"}, True),
    ({"type": "binpack", "field": "memory"}, True),
    ({"type": "random"}, True),
])
def test_placement_strategy_fields_as_ecs_takes_them(strategy: dict[str, Any], ok: bool) -> None:
    from ecs_operator.models import RunTask

    model = RunTask.model_validate({"taskDefinition": "web", "placementStrategy": [strategy]})
    assert ([p.path for p in validate(model)] == []) is ok
    if not ok:
        assert [p.path for p in validate(model)] == ["placementStrategy[0].field"]


@pytest.mark.parametrize(("option", "ok"), [
    ("BOGUS", False), ("apparmor:", False), ("label", False), ("", False),
    ("no-new-privileges", True), ("apparmor:docker-default", True), ("label:type:container_t", True),
    ("credentialspec:file://gmsa.json", True),
])
def test_docker_security_options_as_ecs_takes_them(option: str, ok: bool) -> None:
    found = paths(td(dockerSecurityOptions=["no-new-privileges", option]))
    assert found == ([] if ok else ["containerDefinitions[0].dockerSecurityOptions[1]"])


@pytest.mark.parametrize(("container", "path"), [
    ({"extraHosts": [{"hostname": "BOGUS_ENUM", "ipAddress": "10.0.0.1"}]}, "containerDefinitions[0].extraHosts[0].hostname"),
    ({"extraHosts": [{"hostname": "db", "ipAddress": "not-an-ip"}]}, "containerDefinitions[0].extraHosts[0].ipAddress"),
    ({"links": ["db:" + "a" * 10240]}, "containerDefinitions[0].links[0]"),
    ({"linuxParameters": {"tmpfs": [{"containerPath": "/t", "size": 1}, {"containerPath": "/t", "size": 2}]}},
     "containerDefinitions[0].linuxParameters.tmpfs[1].containerPath"),
    ({"hostname": "-bad-"}, "containerDefinitions[0].hostname"),
    ({"dnsServers": ["nameserver"]}, "containerDefinitions[0].dnsServers[0]"),
    ({"environment": [{"name": "A=B", "value": "x"}]}, "containerDefinitions[0].environment[0].name"),
    ({"image": " nginx"}, "containerDefinitions[0].image"),
    ({"portMappings": [{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]},
     "containerDefinitions[0].portMappings[1].name"),
    ({"portMappings": [{"containerPort": 80}, {"containerPort": 81}, {"containerPort": 82, "name": "a"}]}, None),
    ({"resourceRequirements": [{"type": "GPU", "value": "BOGUS_ENUM"}]}, "containerDefinitions[0].resourceRequirements[0].value"),
    ({"resourceRequirements": [{"type": "GPU", "value": "2"}]}, None),
])
def test_a_definition_that_can_never_yield_a_valid_pod_is_refused_naming_the_ecs_field(
        container: dict[str, Any], path: str | None) -> None:
    assert paths(td(**container)) == ([path] if path else [])


def run_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, str]:
    file = tmp_path / "td.json"
    file.write_text(text)
    code = main(["convert", "--to", "k8s", "--report", "none", str(file)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("text", "path"), [
    (json.dumps(td(memory=2**63 + 1)), "containerDefinitions[0].memory"),
    (json.dumps(td()).replace('"memory": 128', '"memory": 99999999999999999999999999'), "containerDefinitions[0].memory"),
    (json.dumps({**td(), "memory": HUGE}), "memory"),
    (json.dumps(td(extraHosts=[{"hostname": "BOGUS_ENUM", "ipAddress": "10.0.0.1"}])),
     "containerDefinitions[0].extraHosts[0].hostname"),
])
def test_convert_exits_2_naming_the_ecs_path(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                             path: str) -> None:
    code, err = run_convert(tmp_path, capsys, text)
    assert code == 2 and path in err, err


@pytest.mark.parametrize(("pod_path", "ecs"), [
    ("spec.hostAliases[0].hostnames[0]", "containerDefinitions[1].extraHosts[0].hostname"),
    ("spec.hostAliases[0].ip", "containerDefinitions[1].extraHosts[0].ipAddress"),
    ("spec.hostAliases[1].hostnames[0]", "containerDefinitions[0].links[0]"),
    ("template.spec.containers[0].env[0].name", "containerDefinitions[0].environment[0].name"),
    ("spec.containers[1].volumeMounts[1].mountPath", "containerDefinitions[1].linuxParameters.tmpfs[0].containerPath"),
    ("spec.containers[1].image", "containerDefinitions[1].image"),
    ("spec.containers[0].securityContext.runAsUser", "containerDefinitions[0].user"),
    ("spec.dnsConfig.nameservers[0]", "containerDefinitions[1].dnsServers[0]"),
    ("spec.hostname", "containerDefinitions[1].hostname"),
    ("metadata.annotations", ""),
])
def test_pod_paths_from_the_api_server_map_back_to_ecs_fields(pod_path: str, ecs: str) -> None:
    """What the operator's server-side dry-run answers is named by the ECS field, as pod_checks names its own."""
    from ecs_operator.translate.pod import pod_template
    from ecs_operator.translate.pod_checks import ecs_field

    spec = TaskDefinitionSpec.model_validate({"family": "web", "containerDefinitions": [
        {"name": "app", "image": "nginx", "memory": 128, "user": "1000", "links": ["db"],
         "environment": [{"name": "A", "value": "1"}]},
        {"name": "db", "image": "postgres", "memory": 128, "hostname": "db", "dnsServers": ["10.0.0.2"],
         "extraHosts": [{"hostname": "cache", "ipAddress": "10.0.0.9"}],
         "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}],
         "linuxParameters": {"tmpfs": [{"containerPath": "/t", "size": 1}]}}],
        "volumes": [{"name": "data"}]})
    td = spec.ecs_part()
    template = pod_template(Revision("web", 1, td), for_service=False).template
    assert ecs_field(td, template, pod_path) == ecs


def test_duplicate_volume_names_are_refused_as_ecs_refuses_them() -> None:
    spec = {**td(), "volumes": [{"name": "vol"}, {"name": "vol", "host": {"sourcePath": "/x"}}]}
    assert paths(spec) == ["volumes[1].name"]


def test_container_names_kubernetes_cannot_tell_apart_are_refused() -> None:
    spec = {"family": "web", "containerDefinitions": [{"name": "web_1", "image": "nginx", "memory": 64},
                                                      {"name": "web-1", "image": "nginx", "memory": 64}]}
    assert paths(spec) == ["containerDefinitions[1].name"]


def test_the_ecs_api_refuses_what_registration_refuses_naming_the_field() -> None:
    """RegisterTaskDefinition through the ECS API: the same shared checks, before anything is written."""
    from ecs_operator.api.rules import problems as api_problems

    found = api_problems(TaskDefinitionSpec, td(extraHosts=[{"hostname": "BOGUS_ENUM", "ipAddress": "10.0.0.1"}]))
    assert found.startswith("containerDefinitions[0].extraHosts[0].hostname: 'BOGUS_ENUM'"), found
