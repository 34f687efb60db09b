"""The workload policy (translate/policy.py): each host-level or security-weakening feature is found,
named by its JSON path, and refused unless allowed; a namespace's non-root request refuses root
users; harmless settings pass."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_operator.models import RegisterTaskDefinition, ServiceSpec
from ecs_operator.models.task_definition import TaskDefinitionKubernetes
from ecs_operator.translate.pod import Revision, pod_template
from ecs_operator.translate.policy import (
    FEATURES,
    NON_ROOT_LABEL,
    OPT_IN_LABEL,
    SAFE_SYSCTLS,
    WorkloadPolicy,
    policy_violations,
    service_policy_violations,
)

NONE = WorkloadPolicy()


def definition(container: dict[str, Any] | None = None, **task: Any) -> RegisterTaskDefinition:
    return RegisterTaskDefinition.model_validate(
        {"family": "f", "containerDefinitions": [{"name": "a", "image": "nginx", "memory": 128}, {"name": "b", "image": "busybox", "memory": 64, **(container or {})}], **task}
    )


def extension(**fields: Any) -> TaskDefinitionKubernetes:
    return TaskDefinitionKubernetes.model_validate(fields)


def violations(td: RegisterTaskDefinition, kubernetes: TaskDefinitionKubernetes | None = None,
               policy: WorkloadPolicy = NONE) -> list[str]:
    return [str(p) for p in policy_violations(td, kubernetes, policy)]


CASES: list[tuple[str, RegisterTaskDefinition, TaskDefinitionKubernetes | None, str]] = [
    ("privileged", definition({"privileged": True}), None, "containerDefinitions[1].privileged"),
    ("hostNetwork", definition(networkMode="host"), None, "networkMode"),
    ("hostPID", definition(pidMode="host"), None, "pidMode"),
    ("hostIPC", definition(ipcMode="host"), None, "ipcMode"),
    ("hostPath", definition(volumes=[{"name": "empty", "host": {}}, {"name": "logs", "host": {"sourcePath": "/var/log"}}]),
     None, "volumes[1].host.sourcePath"),
    ("capabilities", definition({"linuxParameters": {"capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}}),
     None, "containerDefinitions[1].linuxParameters.capabilities.add"),
    ("devices", definition({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
     None, "containerDefinitions[1].linuxParameters.devices[0]"),
    ("securityProfiles", definition({"dockerSecurityOptions": ["no-new-privileges", "label:type:spc_t"]}),
     None, "containerDefinitions[1].dockerSecurityOptions[1]"),
    ("sysctls", definition({"systemControls": [{"namespace": "net.ipv4.tcp_syncookies", "value": "1"},
                                               {"namespace": "kernel.core_pattern", "value": "|/tmp/x"}]}),
     None, "containerDefinitions[1].systemControls[1].namespace"),
    ("hostPorts", definition({"portMappings": [{"containerPort": 80}, {"containerPort": 22, "hostPort": 22}]}),
     None, "containerDefinitions[1].portMappings[1].hostPort"),
    ("reservedMetadata", definition(), extension(podLabels={"app": "x", "ecs.operator.dev/service": "payments"}),
     'kubernetes.podLabels["ecs.operator.dev/service"]'),
]


def test_every_task_definition_feature_has_a_case() -> None:
    # externalServices is a Service's setting: test_external_service_types below
    assert sorted(feature for feature, *_ in CASES) == sorted(set(FEATURES) - {"externalServices"})


@pytest.mark.parametrize(("feature", "td", "kubernetes", "path"), CASES, ids=[c[0] for c in CASES])
def test_feature_is_refused_by_default_and_named_by_its_path(feature: str, td: RegisterTaskDefinition,
                                                             kubernetes: TaskDefinitionKubernetes | None, path: str) -> None:
    [problem] = policy_violations(td, kubernetes, NONE)
    assert problem.path == path
    assert f"(feature {feature})" in problem.message
    assert f"label the namespace {OPT_IN_LABEL}=true or allow {feature} in the operator's settings" in problem.message
    assert "chart value workloadPolicy.allowedFeatures" in problem.message


@pytest.mark.parametrize(("feature", "td", "kubernetes", "path"), CASES, ids=[c[0] for c in CASES])
def test_feature_is_allowed_when_the_policy_allows_it(feature: str, td: RegisterTaskDefinition,
                                                      kubernetes: TaskDefinitionKubernetes | None, path: str) -> None:
    assert policy_violations(td, kubernetes, WorkloadPolicy(frozenset({feature}))) == []
    assert policy_violations(td, kubernetes, WorkloadPolicy(frozenset(FEATURES) - {feature})) != []


@pytest.mark.parametrize("option", ["label:type:spc_t", "label:disable", "label:level:s0:c100", "apparmor:unconfined",
                                    "apparmor:my-profile"])
def test_selinux_labels_and_apparmor_profiles_other_than_the_default_are_refused(option: str) -> None:
    [message] = violations(definition({"dockerSecurityOptions": [option]}))
    assert message.startswith("containerDefinitions[1].dockerSecurityOptions[0]: the ")
    assert "(feature securityProfiles)" in message


@pytest.mark.parametrize("option", ["no-new-privileges", "apparmor:runtime/default", "apparmor:docker-default"])
def test_harmless_security_options_pass(option: str) -> None:
    assert violations(definition({"dockerSecurityOptions": [option]})) == []


@pytest.mark.parametrize(("key", "value"), [
    ("container.apparmor.security.beta.kubernetes.io/b", "unconfined"),
    ("container.apparmor.security.beta.kubernetes.io/b", "localhost/custom"),
    ("seccomp.security.alpha.kubernetes.io/pod", "unconfined"),
    ("container.seccomp.security.alpha.kubernetes.io/b", "localhost/profile.json"),
])
def test_profile_annotations_other_than_the_runtime_default_are_refused(key: str, value: str) -> None:
    [message] = violations(definition(), extension(podAnnotations={key: value}))
    assert message.startswith(f'kubernetes.podAnnotations["{key}"]: the ')
    assert f"profile {value!r} is refused" in message and "(feature securityProfiles)" in message


def test_runtime_default_profile_annotations_pass() -> None:
    annotations = {"container.apparmor.security.beta.kubernetes.io/b": "runtime/default",
                   "seccomp.security.alpha.kubernetes.io/pod": "runtime/default"}
    assert violations(definition(), extension(podAnnotations=annotations)) == []


@pytest.mark.parametrize("sysctl", sorted(SAFE_SYSCTLS) + ["net/ipv4/tcp_syncookies"])
def test_safe_sysctls_pass(sysctl: str) -> None:
    assert violations(definition({"systemControls": [{"namespace": sysctl, "value": "1"}]})) == []


@pytest.mark.parametrize("sysctl", ["kernel.core_pattern", "kernel.shmmax", "net.core.somaxconn", "vm.swappiness",
                                    "net.ipv4.ip_forward"])
def test_other_sysctls_are_refused(sysctl: str) -> None:
    [message] = violations(definition({"systemControls": [{"namespace": sysctl, "value": "1"}]}))
    assert message.startswith(f"containerDefinitions[1].systemControls[0].namespace: sysctl {sysctl} (not in Kubernetes' safe set)")


def test_host_ports_below_1024_say_so() -> None:
    td = definition({"portMappings": [{"containerPort": 22, "hostPort": 22}, {"containerPort": 10250, "hostPort": 10250},
                                      {"containerPort": 8080, "hostPort": 0}]})
    assert [m.split(" is refused")[0] for m in violations(td)] == [
        "containerDefinitions[1].portMappings[0].hostPort: host port 22 (a privileged port, below 1024)",
        "containerDefinitions[1].portMappings[1].hostPort: host port 10250",
    ]


def test_ports_of_the_pod_network_are_no_host_ports() -> None:
    td = definition({"portMappings": [{"containerPort": 80, "hostPort": 80}]}, networkMode="awsvpc")
    assert violations(td) == []


@pytest.mark.parametrize("key", ["ecs.operator.dev/task", "memberof.ecs.operator.dev/0123", "kubernetes.io/metadata.name", "node.kubernetes.io/x",
                                 "k8s.io/x", "cluster-autoscaler.kubernetes.io/safe-to-evict"])
def test_reserved_prefixes_are_refused_in_labels_and_annotations(key: str) -> None:
    for field in ("podLabels", "podAnnotations"):
        [message] = violations(definition(), extension(**{field: {key: "x"}}))
        assert message.startswith(f'kubernetes.{field}["{key}"]: the key {key!r} in a prefix reserved for the operator or Kubernetes')
        assert "(feature reservedMetadata)" in message


def test_application_and_own_keys_pass() -> None:
    keys = {"app": "web", "team.example.com/owner": "x", "app.kubernetes.io/name": "web", "sim.ecs.operator.dev/exit": "a=1",
            "example.com/kubernetes.io": "x"}
    assert violations(definition(), extension(podLabels=keys, podAnnotations=keys)) == []


@pytest.mark.parametrize("user", ["0", "root", "0:0", "root:wheel"])
def test_root_is_refused_where_the_namespace_asks_for_non_root(user: str) -> None:
    td = definition({"user": user})
    assert violations(td) == []
    assert violations(td, policy=WorkloadPolicy(frozenset(FEATURES))) == []
    [message] = violations(td, policy=WorkloadPolicy(non_root=True))
    assert message == (f"containerDefinitions[1].user: running as root (user {user!r}) is refused: the namespace is labelled "
                       f"{NON_ROOT_LABEL}=true; set a non-zero numeric user, or remove the label")
    # the opt-in to privileged workloads does not override the namespace's own request
    assert len(violations(td, policy=WorkloadPolicy(frozenset(FEATURES), non_root=True))) == 1


@pytest.mark.parametrize("user", ["1000", "1000:0", "nginx", "10:root"])
def test_other_users_pass_where_the_namespace_asks_for_non_root(user: str) -> None:
    assert violations(definition({"user": user}), policy=WorkloadPolicy(non_root=True)) == []


def service(kind: str | None) -> ServiceSpec:
    return ServiceSpec.model_validate({"desiredCount": 1, **({"kubernetes": {"loadBalancerServiceType": kind}} if kind else {})})


@pytest.mark.parametrize("kind", ["NodePort", "LoadBalancer"])
def test_external_service_types(kind: str) -> None:
    [problem] = service_policy_violations(service(kind), NONE, "ClusterIP")
    assert problem.path == "kubernetes.loadBalancerServiceType"
    assert problem.message.startswith(f"a Kubernetes Service of type {kind} (reachable from outside the cluster) is refused "
                                      "by the workload policy (feature externalServices); "
                                      f"label the namespace {OPT_IN_LABEL}=true or allow externalServices")
    assert "chart value ecs.loadBalancerServiceType" in problem.message
    assert service_policy_violations(service(kind), WorkloadPolicy(frozenset({"externalServices"})), "ClusterIP") == []
    # the type the administrator gives every Service is no escalation
    assert service_policy_violations(service(kind), NONE, kind) == []


@pytest.mark.parametrize("kind", [None, "ClusterIP"])
def test_cluster_internal_services_pass(kind: str | None) -> None:
    assert service_policy_violations(service(kind), NONE, "ClusterIP") == []


def test_baseline_capabilities_and_ordinary_settings_pass() -> None:
    td = definition(
        {"linuxParameters": {"capabilities": {"add": ["CAP_NET_BIND_SERVICE", "chown"], "drop": ["ALL"]}, "initProcessEnabled": True},
         "user": "0", "portMappings": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}],
         "dockerSecurityOptions": ["no-new-privileges"], "systemControls": [{"namespace": "net.ipv4.ip_local_port_range", "value": "1024 65000"}]},
        networkMode="bridge", pidMode="task", ipcMode="task", volumes=[{"name": "scratch", "host": {}}],
    )
    assert violations(td, extension(podLabels={"app": "web"}, podAnnotations={"note": "x"})) == []


def test_each_use_is_reported() -> None:
    td = definition({"privileged": True, "linuxParameters": {"devices": [{"hostPath": "/dev/a"}, {"hostPath": "/dev/b"}]}},
                    networkMode="host")
    paths = [p.path for p in policy_violations(td, None, NONE)]
    assert paths == ["networkMode", "containerDefinitions[1].privileged",
                     "containerDefinitions[1].linuxParameters.devices[0]", "containerDefinitions[1].linuxParameters.devices[1]"]
    assert [p.path for p in policy_violations(td, None, WorkloadPolicy(frozenset({"devices"})))] == ["networkMode", "containerDefinitions[1].privileged"]


@pytest.mark.parametrize(("option", "profile"), [
    ("apparmor:unconfined", {"type": "Unconfined"}),
    ("apparmor:runtime/default", {"type": "RuntimeDefault"}),
    ("apparmor:custom", {"type": "Localhost", "localhostProfile": "custom"}),
])
def test_an_allowed_apparmor_option_becomes_the_profile_it_names(option: str, profile: dict[str, str]) -> None:
    template = pod_template(Revision("f", 1, definition({"dockerSecurityOptions": [option]})), for_service=False).template
    assert template["spec"]["containers"][1]["securityContext"]["appArmorProfile"] == profile
