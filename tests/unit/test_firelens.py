"""FireLens (translate/firelens.py, docs/ecs-semantics.md §FireLens): the log router's configuration is the one
the ECS agent generates (its outputs are each awsfirelens container's options, the ECS metadata fields, the
included file, secretOptions as the router's variables), a ConfigMap the Task or Service controls, mounted where
the agent mounts its file; other log drivers get their verdicts and awslogs its annotations."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ecs_operator.models import RegisterTaskDefinition, ServiceSpec, TaskSpec, validate
from ecs_operator.settings import Settings
from ecs_operator.translate.dependencies import start_order
from ecs_operator.translate.firelens import Metadata, config_text, router_of, s3_config_map
from ecs_operator.translate.pod import Revision, pod_template
from ecs_operator.translate.pod_checks import ecs_field
from ecs_operator.translate.policy import ALLOW_ALL
from ecs_operator.translate.service import service_objects
from ecs_operator.translate.task import task_pods

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
SETTINGS = Settings()
TASK_OWNER = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task", "name": "logs", "uid": "u-1"}
SERVICE_OWNER = {**TASK_OWNER, "kind": "Service", "name": "web"}
TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:splunk/token"


def sections(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """A fluent-bit classic configuration as (header, {key: [values]}) in order (@INCLUDE as its own header)."""
    out: list[tuple[str, dict[str, list[str]]]] = []
    for line in text.splitlines():
        if line.startswith("[") or line.startswith("@INCLUDE"):
            out.append((line, {}))
        elif line.strip():
            key, _, value = line.strip().partition(" ")
            out[-1][1].setdefault(key, []).append(value)
    return out


def outputs(text: str) -> dict[str, dict[str, str]]:
    """Match pattern -> the [OUTPUT]'s other entries (each once)."""
    return {body["Match"][0]: {k: v[0] for k, v in body.items() if k != "Match"}
            for header, body in sections(text) if header == "[OUTPUT]"}


def definition(router: dict[str, Any], *apps: dict[str, Any]) -> RegisterTaskDefinition:
    return RegisterTaskDefinition.model_validate({"family": "logs", "containerDefinitions": [
        {"name": "log_router", "image": "fluent/fluent-bit", "memory": 64, "essential": True, "firelensConfiguration": router},
        *({"image": "nginx", "memory": 64, **a} for a in apps)]})


def launch(td: RegisterTaskDefinition, **kwargs: Any) -> Any:
    plan = task_pods(TaskSpec.model_validate({"taskDefinition": "logs"}), name="logs", namespace="team", cluster="prod",
                     revision=Revision("logs", 4, td), settings=SETTINGS, owner=TASK_OWNER, **kwargs)
    assert not plan.problems
    return plan


def corpus_definition() -> RegisterTaskDefinition:
    return RegisterTaskDefinition.model_validate(
        json.loads((CORPUS / "appmesh-firelens-envoy-proxyconfig-fargate.json").read_text()))


def test_the_corpus_router_gets_the_agents_configuration_with_envoys_output_as_a_configmap_of_the_task() -> None:
    td = corpus_definition()
    plan = task_pods(TaskSpec.model_validate({"taskDefinition": "x", "launchType": "FARGATE"}), name="colors",
                     namespace="team", cluster="prod", revision=Revision("appmesh-firelens-colorteller-black", 2, td), settings=SETTINGS,
                     owner={**TASK_OWNER, "name": "colors"})
    assert not plan.problems
    [config_map] = [o for o in plan.extra if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "colors-firelens" and config_map["metadata"]["namespace"] == "team"
    assert config_map["metadata"]["ownerReferences"] == [{**TASK_OWNER, "name": "colors", "controller": True}]
    text = config_map["data"]["fluent-bit.conf"]
    envoy = td.containerDefinitions[2].logConfiguration
    assert envoy is not None and envoy.options is not None
    expected = {k: v for k, v in envoy.options.items()}
    assert outputs(text)["envoy-firelens*"] == expected  # Name is the plugin, the rest its options, as written
    assert outputs(text)["firelens-healthcheck"] == {"Name": "null"}
    headers = [h for h, _ in sections(text)]
    assert "@INCLUDE /fluent-bit/conf/parse_envoy.conf" in headers  # config-file-type file
    [metadata] = [b for h, b in sections(text) if h == "[FILTER]" and b["Name"] == ["record_modifier"]]
    records = dict(r.split(" ", 1) for r in metadata["Record"])
    assert records == {"ec2_instance_id": "${FIRELENS_NODE_NAME}", "ecs_cluster": "prod",
                       "ecs_task_arn": "arn:aws:ecs:us-east-1:000000000000:task/prod/${FIRELENS_POD_UID}",
                       "ecs_task_definition": "appmesh-firelens-colorteller-black:2"}
    inputs = [b for h, b in sections(text) if h == "[INPUT]"]
    assert {"Name": ["forward"], "unix_path": ["/var/run/fluent.sock"]} in inputs
    assert {"Name": ["forward"], "Listen": ["0.0.0.0"], "Port": ["24224"]} in inputs
    assert not any(i["Name"] == ["tail"] for i in inputs)  # no hostPath without the workload policy's opt-in

    pod = plan.pods[0]
    router = next(c for c in pod["spec"]["containers"] if c["name"] == "log-router")
    assert {"name": "firelens-config", "mountPath": "/fluent-bit/etc/fluent-bit.conf", "subPath": "fluent-bit.conf",
            "readOnly": True} in router["volumeMounts"]
    assert {"name": "firelens-socket", "mountPath": "/var/run"} in router["volumeMounts"]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in router["env"]}
    assert env == {"FIRELENS_POD_NAMESPACE": "metadata.namespace", "FIRELENS_POD_NAME": "metadata.name",
                   "FIRELENS_POD_UID": "metadata.uid", "FIRELENS_NODE_NAME": "spec.nodeName"}
    assert {"name": "firelens-config", "configMap": {"name": "colors-firelens"}} in pod["spec"]["volumes"]
    assert not any("hostPath" in v for v in pod["spec"]["volumes"])
    # every ${VAR} the file reads is in the router's environment
    assert set(re.findall(r"\$\{(\w+)\}", text)) <= set(env)
    # the awslogs options of the router itself are annotations a node-level agent can read
    annotations = pod["metadata"]["annotations"]
    assert annotations["awslogs.ecs.operator.dev/log-router.group"] == "appmesh-firelens"
    assert annotations["awslogs.ecs.operator.dev/log-router.stream-prefix"] == "fluentbit"
    assert annotations["awslogs.ecs.operator.dev/log-router.region"] == "us-east-1"


def test_each_awsfirelens_container_has_its_own_output_with_patterns_as_filters_and_secret_options_as_variables() -> None:
    td = definition(
        {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "false"}},
        {"name": "web", "logConfiguration": {"logDriver": "awsfirelens", "options": {
            "Name": "splunk", "Host": "splunk.example.com", "include-pattern": "^ERROR", "exclude-pattern": "health",
            "log-driver-buffer-limit": "2097152"}, "secretOptions": [{"name": "Splunk_Token", "valueFrom": TOKEN_ARN}]}},
        {"name": "worker", "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "stdout"}}},
        {"name": "quiet"},
    )
    plan = launch(td)
    text = plan.extra[0]["data"]["fluent-bit.conf"]
    assert outputs(text) == {
        "firelens-healthcheck": {"Name": "null"},
        "web-firelens*": {"Name": "splunk", "Host": "splunk.example.com", "Splunk_Token": "${Splunk_Token_1}"},
        "worker-firelens*": {"Name": "stdout"},
    }
    filters = [b for h, b in sections(text) if h == "[FILTER]"]
    assert {"Name": ["grep"], "Match": ["web-firelens*"], "Regex": ["log ^ERROR"]} in filters
    assert {"Name": ["grep"], "Match": ["web-firelens*"], "Exclude": ["log health"]} in filters
    assert not any(f["Name"] == ["record_modifier"] for f in filters)  # enable-ecs-log-metadata false
    router = plan.pods[0]["spec"]["containers"][0]
    assert {"name": "Splunk_Token_1", "valueFrom": {"secretKeyRef": {"name": "splunk-token", "key": "value"}}} in router["env"]
    report = pod_template(Revision("logs", 4, td), for_service=False).report
    for leaf in ("name", "valueFrom"):
        assert report.overrides[f"containerDefinitions[1].logConfiguration.secretOptions[0].{leaf}"].verdict == "exact"


def test_fluentd_router_gets_sources_a_record_transformer_and_match_sections() -> None:
    td = definition(
        {"type": "fluentd", "options": {"config-file-type": "s3",
                                        "config-file-value": "arn:aws:s3:::configs/fluent/extra.conf"}},
        {"name": "app", "logConfiguration": {"logDriver": "awsfirelens", "options": {
            "@type": "kinesis_firehose", "delivery_stream_name": "demo", "region": "eu-west-1"},
            "secretOptions": [{"name": "key", "valueFrom": "/prod/firehose-key"}]}},
    )
    plan = launch(td)
    text = plan.extra[0]["data"]["fluent.conf"]
    assert "<source>\n    @type unix\n    path /var/run/fluent.sock\n</source>" in text
    assert "<source>\n    @type forward\n    bind 0.0.0.0\n    port 24224\n</source>" in text
    assert ('<match app-firelens*>\n    @type kinesis_firehose\n    delivery_stream_name demo\n'
            '    key "#{ENV[\'key_1\']}"\n    region eu-west-1\n</match>') in text
    assert "@include /fluentd/etc/external.conf" in text
    assert "    ecs_task_arn \"arn:aws:ecs:us-east-1:000000000000:task/prod/#{ENV['FIRELENS_POD_UID']}\"" in text
    assert "    ecs_cluster prod\n" in text and "    ecs_task_definition logs:4\n" in text
    router = plan.pods[0]["spec"]["containers"][0]
    assert {"name": "firelens-config", "mountPath": "/fluentd/etc/fluent.conf", "subPath": "fluent.conf",
            "readOnly": True} in router["volumeMounts"]
    name, key = s3_config_map("arn:aws:s3:::configs/fluent/extra.conf")
    assert (name, key) == ("configs-fluent-extra-conf", "extra.conf")
    assert {"name": "firelens-s3-config", "mountPath": "/fluentd/etc/external.conf", "subPath": "extra.conf",
            "readOnly": True} in router["volumeMounts"]
    assert {"name": "firelens-s3-config", "configMap": {"name": name}} in plan.pods[0]["spec"]["volumes"]
    assert {"name": "key_1", "valueFrom": {"secretKeyRef": {"name": "prod-firehose-key", "key": "value"}}} in router["env"]


def test_where_host_paths_are_allowed_the_router_tails_its_own_pods_container_logs_read_only() -> None:
    td = definition({"type": "fluentbit"}, {"name": "web", "logConfiguration": {
        "logDriver": "awsfirelens", "options": {"Name": "stdout"}}})
    plan = launch(td, policy=ALLOW_ALL)
    text = plan.extra[0]["data"]["fluent-bit.conf"]
    [tail] = [b for h, b in sections(text) if h == "[INPUT]" and b["Name"] == ["tail"]]
    assert tail["Path"] == ["/var/log/pods/${FIRELENS_POD_NAMESPACE}_${FIRELENS_POD_NAME}_${FIRELENS_POD_UID}/web/*.log"]
    assert tail["Tag"] == ["web-firelens-stdout"]  # matched by web's output: web-firelens*
    spec = plan.pods[0]["spec"]
    router = spec["containers"][0]
    assert {"name": "firelens-pod-logs", "mountPath": "/var/log/pods", "readOnly": True} in router["volumeMounts"]
    assert {"name": "firelens-pod-logs", "hostPath": {"path": "/var/log/pods", "type": "Directory"}} in spec["volumes"]
    entry = pod_template(Revision("logs", 4, td), for_service=False, tail_pod_logs=True).report.overrides[
        "containerDefinitions[1].logConfiguration"]
    assert "tails" in entry.note


def test_the_router_starts_before_the_containers_that_log_to_it() -> None:
    td = RegisterTaskDefinition.model_validate({"family": "logs", "containerDefinitions": [
        {"name": "app", "image": "nginx", "memory": 64, "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "stdout"}}},
        {"name": "log_router", "image": "fluent/fluent-bit", "memory": 64, "firelensConfiguration": {"type": "fluentbit"}}]})
    assert start_order(td).main == ("log_router", "app")


def test_a_service_owns_one_configuration_for_all_its_tasks() -> None:
    td = definition({"type": "fluentbit"}, {"name": "web", "logConfiguration": {
        "logDriver": "awsfirelens", "options": {"Name": "stdout"}}})
    plan = service_objects(ServiceSpec.model_validate({"taskDefinition": "logs:4", "desiredCount": 2}), name="web",
                           namespace="team", revision=Revision("logs", 4, td), cluster="prod", settings=SETTINGS,
                           owner=SERVICE_OWNER)
    [config_map] = [o for o in plan.extra if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["name"] == "web-firelens"
    assert config_map["metadata"]["ownerReferences"][0]["kind"] == "Service"
    volumes = plan.workloads[0]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "firelens-config", "configMap": {"name": "web-firelens"}} in volumes
    assert plan.origins[("ConfigMap", "web-firelens")] == "taskDefinition.containerDefinitions[0].firelensConfiguration"


@pytest.mark.parametrize(("containers", "path", "message"), [
    ([{"name": "a", "image": "x", "memory": 64, "logConfiguration": {"logDriver": "awsfirelens"}}],
     "containerDefinitions[0].logConfiguration.logDriver", "needs a log router"),
    ([{"name": "a", "image": "x", "memory": 64, "firelensConfiguration": {"type": "fluentbit"}},
      {"name": "b", "image": "x", "memory": 64, "firelensConfiguration": {"type": "fluentd"}}],
     "containerDefinitions[1].firelensConfiguration", "only one FireLens log router"),
    ([{"name": "a", "image": "x", "memory": 64, "firelensConfiguration": {"type": "fluentbit", "options": {
        "config-file-type": "http", "config-file-value": "x"}}}],
     "containerDefinitions[0].firelensConfiguration.options", "s3 or file"),
    ([{"name": "a", "image": "x", "memory": 64, "firelensConfiguration": {"type": "fluentbit", "options": {
        "config-file-type": "file"}}}],
     "containerDefinitions[0].firelensConfiguration.options", "needs config-file-value"),
])
def test_bad_firelens_definitions_are_refused_naming_the_field(containers: list[dict[str, Any]], path: str, message: str) -> None:
    problems = validate(RegisterTaskDefinition.model_validate({"family": "f", "containerDefinitions": containers}))
    assert any(p.path == path and message in p.message for p in problems), problems


@pytest.mark.parametrize(("driver", "verdict"), [
    ("awslogs", "approximated"), ("splunk", "approximated"), ("gelf", "approximated"), ("fluentd", "approximated"),
    ("json-file", "approximated"), ("syslog", "approximated"), ("journald", "approximated")])
def test_other_log_drivers_get_a_verdict_and_their_secret_options_are_unsupported(driver: str, verdict: str) -> None:
    td = RegisterTaskDefinition.model_validate({"family": "f", "containerDefinitions": [
        {"name": "a", "image": "x", "memory": 64, "logConfiguration": {
            "logDriver": driver, "options": {"awslogs-group": "g"}, "secretOptions": [{"name": "t", "valueFrom": TOKEN_ARN}]}}]})
    translation = pod_template(Revision("f", 1, td), for_service=False)
    report = translation.report.overrides
    assert report["containerDefinitions[0].logConfiguration.logDriver"].verdict == verdict
    assert report["containerDefinitions[0].logConfiguration.secretOptions[0].valueFrom"].verdict == "unsupported"
    assert translation.router is None
    has_annotation = "awslogs.ecs.operator.dev/a.group" in translation.template["metadata"]["annotations"]
    assert has_annotation == (driver == "awslogs")


def test_a_router_without_routed_containers_still_gets_its_inputs_and_metadata() -> None:
    router = router_of(definition({"type": "fluentbit"}))
    assert router is not None and router.outputs == ()
    text = config_text(router, Metadata("c", "f:1", "arn:aws:ecs:r:a:task/c/"), tail_pod_logs=True)
    assert outputs(text) == {"firelens-healthcheck": {"Name": "null"}}
    assert not any(b["Name"] == ["tail"] for h, b in sections(text) if h == "[INPUT]")


def test_an_awslogs_annotation_the_api_server_refuses_is_named_by_its_ecs_field() -> None:
    td = RegisterTaskDefinition.model_validate({"family": "f", "containerDefinitions": [
        {"name": "quiet", "image": "x", "memory": 64},
        {"name": "Web_App", "image": "x", "memory": 64, "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "g"}}}]})
    template = pod_template(Revision("f", 1, td), for_service=False).template
    assert "awslogs.ecs.operator.dev/web-app.group" in template["metadata"]["annotations"]
    path = "metadata.annotations[awslogs.ecs.operator.dev/web-app.group]"
    assert ecs_field(td, template, path) == "containerDefinitions[1].logConfiguration"
