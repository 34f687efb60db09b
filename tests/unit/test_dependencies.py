"""dependsOn as start order (translate/dependencies.py; docs/ecs-semantics.md §dependsOn)."""

from __future__ import annotations

from typing import Any

from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.translate.pod import Revision, pod_template

CHECK = {"command": ["CMD", "grpc-health-probe", "-addr=:9901"], "interval": 10}


def translate(*containers: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    td = RegisterTaskDefinition.model_validate({"family": "f", "containerDefinitions": list(containers)})
    out = pod_template(Revision("f", 1, td), for_service=True)
    fields = {e.path: e.to_json() for e in out.report.entries(td.to_json())}
    return out.template["spec"], fields


def c(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "image": f"example/{name}:1", "memory": 64, **fields}


def test_independent_start_targets_are_regular_containers_started_before_their_dependent() -> None:
    spec, fields = translate(c("app", dependsOn=[{"containerName": "log-router", "condition": "START"},
                                                 {"containerName": "xray", "condition": "START"}]),
                             c("log-router", essential=False), c("xray", essential=False))
    assert "initContainers" not in spec
    assert [x["name"] for x in spec["containers"]] == ["log-router", "xray", "app"]
    assert all(x["restartPolicy"] == "Never" for x in spec["containers"])  # exited stays exited, as in ECS
    assert fields["containerDefinitions[0].dependsOn[0].condition"]["verdict"] == "exact"


def test_a_healthy_target_holds_the_later_containers_in_a_post_start_hook() -> None:
    spec, fields = translate(c("envoy", healthCheck=CHECK), c("app", dependsOn=[{"containerName": "envoy", "condition": "HEALTHY"}]),
                             c("cache"))
    assert [x["name"] for x in spec["containers"]] == ["cache", "envoy", "app"]  # what needs no wait first
    hook = spec["containers"][1]["lifecycle"]["postStart"]["exec"]["command"]
    assert hook[:2] == ["/bin/sh", "-c"] and hook[-2:] == ["grpc-health-probe", "-addr=:9901"]
    assert "startupProbe" not in spec["containers"][1]
    assert "/bin/sh" in fields["containerDefinitions[1].dependsOn[0].condition"]["note"]


def test_what_an_init_container_waits_for_becomes_a_native_sidecar_and_the_report_says_how_it_differs() -> None:
    spec, fields = translate(c("log-router", essential=False),
                             c("migrate", essential=False, dependsOn=[{"containerName": "log-router", "condition": "START"}]),
                             c("app", dependsOn=[{"containerName": "migrate", "condition": "SUCCESS"}]))
    assert [(x["name"], x.get("restartPolicy")) for x in spec["initContainers"]] == [("log-router", "Always"), ("migrate", None)]
    assert [x["name"] for x in spec["containers"]] == ["app"]
    note = fields["containerDefinitions[1].dependsOn[0].condition"]
    assert note["verdict"] == "approximated" and "restarts it when it exits" in note["note"]


def test_complete_ignores_the_exit_code_only_where_the_command_is_known() -> None:
    wrapped, fields = translate(c("seed", essential=False, entryPoint=["./seed"], command=["--once"]),
                                c("app", dependsOn=[{"containerName": "seed", "condition": "COMPLETE"}]))
    assert wrapped["initContainers"][0]["command"] == [
        "/bin/sh", "-c", '"$@"; echo ecs-exit-code=$? 2>/dev/null >/dev/termination-log; exit 0', "complete", "./seed", "--once"]
    assert wrapped["initContainers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert "args" not in wrapped["initContainers"][0]
    image_default, fields = translate(c("seed", essential=False, command=["--once"]),
                                      c("app", dependsOn=[{"containerName": "seed", "condition": "COMPLETE"}]))
    assert "command" not in image_default["initContainers"][0]
    assert "TaskFailedToStart" in fields["containerDefinitions[1].dependsOn[0].condition"]["note"]
    succeeded, _ = translate(c("seed", essential=False, entryPoint=["./seed"]),
                             c("app", dependsOn=[{"containerName": "seed", "condition": "SUCCESS"}]))
    assert succeeded["initContainers"][0]["command"] == ["./seed"]  # SUCCESS waits for 0: no wrapper


def test_a_non_essential_container_is_reported_as_counted_by_the_pods_ready_condition() -> None:
    _, fields = translate(c("app"), c("warm-cache", essential=False))
    entry = fields["containerDefinitions[1].essential"]
    assert entry["verdict"] == "approximated" and "Ready condition" in entry["note"]
