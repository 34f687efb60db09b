"""The Pod a task definition becomes: private registry credentials as imagePullSecrets."""

from __future__ import annotations

from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.translate.pod import Revision, pod_template

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:team/registry-AbCdEf"


def test_repository_credentials_name_one_pull_secret_per_secret_and_the_report_says_which() -> None:
    definition = RegisterTaskDefinition.model_validate({"family": "app", "containerDefinitions": [
        {"name": "a", "image": "registry.example.com/a", "memory": 64, "repositoryCredentials": {"credentialsParameter": SECRET_ARN}},
        {"name": "b", "image": "registry.example.com/b", "memory": 64, "repositoryCredentials": {"credentialsParameter": SECRET_ARN}},
        {"name": "c", "image": "nginx", "memory": 64},
    ]})
    translation = pod_template(Revision("app", 1, definition), for_service=False)
    assert translation.template["spec"]["imagePullSecrets"] == [{"name": "team-registry-abcdef"}]
    entry = translation.report.overrides["containerDefinitions[1].repositoryCredentials.credentialsParameter"]
    assert (entry.verdict, entry.target) == ("approximated", "imagePullSecrets[].name team-registry-abcdef")


def test_no_repository_credentials_no_pull_secrets() -> None:
    definition = RegisterTaskDefinition.model_validate({"family": "app", "containerDefinitions": [
        {"name": "c", "image": "nginx", "memory": 64}]})
    assert "imagePullSecrets" not in pod_template(Revision("app", 1, definition), for_service=False).template["spec"]


def test_kubernetes_tolerations_reach_the_pod_as_written() -> None:
    from ecs_operator.models.task_definition import TaskDefinitionKubernetes

    definition = RegisterTaskDefinition.model_validate({"family": "app", "containerDefinitions": [
        {"name": "c", "image": "nginx", "memory": 64}]})
    kubernetes = TaskDefinitionKubernetes.model_validate({"tolerations": [
        {"key": "ecs.operator.dev/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]})
    spec = pod_template(Revision("app", 1, definition, kubernetes), for_service=False).template["spec"]
    assert spec["tolerations"] == [
        {"key": "ecs.operator.dev/real-node", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]
    assert "tolerations" not in pod_template(Revision("app", 1, definition), for_service=False).template["spec"]


def _kubelet_expansion(value: str, env: dict[str, str]) -> str:
    """What the kubelet does to command, args and env values (Kubernetes' expansion: `$$` is `$`, `$(NAME)` is
    NAME's value when the container defines it)."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "$" and i + 1 < len(value):
            if value[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if value[i + 1] == "(" and ")" in value[i + 2:]:
                end = value.index(")", i + 2)
                name = value[i + 2:end]
                out.append(env.get(name, f"$({name})"))
                i = end + 1
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def test_commands_and_environment_reach_the_process_as_written_whatever_their_dollar_signs() -> None:
    """Kubernetes would turn `$$` (the shell's PID) into `$` and replace `$(GREETING)`; ECS passes them as written."""
    entry, script = ["/bin/sh", "-c"], ["echo pid=$$ $(GREETING) $(date) ${HOME} cost=$5 $"]
    definition = RegisterTaskDefinition.model_validate({"family": "app", "containerDefinitions": [
        {"name": "c", "image": "busybox", "memory": 64, "entryPoint": entry, "command": script,
         "environment": [{"name": "GREETING", "value": "$(HOSTNAME)$$"}]}]})
    (c,) = pod_template(Revision("app", 1, definition), for_service=False).template["spec"]["containers"]
    env = {e["name"]: _kubelet_expansion(e["value"], {}) for e in c["env"]}
    assert env == {"GREETING": "$(HOSTNAME)$$"}
    assert [_kubelet_expansion(a, env) for a in c["command"]] == entry
    assert [_kubelet_expansion(a, env) for a in c["args"]] == script
