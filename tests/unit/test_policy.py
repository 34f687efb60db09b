"""The workload policy (translate/policy.py): each host-level feature is found, named by its JSON
path, and refused unless allowed; harmless settings pass."""

from __future__ import annotations

from typing import Any

import pytest

from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.translate.policy import FEATURES, OPT_IN_LABEL, policy_violations


def definition(container: dict[str, Any] | None = None, **task: Any) -> RegisterTaskDefinition:
    return RegisterTaskDefinition.model_validate(
        {"family": "f", "containerDefinitions": [{"name": "a", "image": "nginx", "memory": 128}, {"name": "b", "image": "busybox", "memory": 64, **(container or {})}], **task}
    )


CASES: list[tuple[str, RegisterTaskDefinition, str]] = [
    ("privileged", definition({"privileged": True}), "containerDefinitions[1].privileged"),
    ("hostNetwork", definition(networkMode="host"), "networkMode"),
    ("hostPID", definition(pidMode="host"), "pidMode"),
    ("hostIPC", definition(ipcMode="host"), "ipcMode"),
    ("hostPath", definition(volumes=[{"name": "empty", "host": {}}, {"name": "logs", "host": {"sourcePath": "/var/log"}}]),
     "volumes[1].host.sourcePath"),
    ("capabilities", definition({"linuxParameters": {"capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}}),
     "containerDefinitions[1].linuxParameters.capabilities.add"),
    ("devices", definition({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
     "containerDefinitions[1].linuxParameters.devices[0]"),
]


def test_every_feature_has_a_case() -> None:
    assert sorted(feature for feature, _, _ in CASES) == sorted(FEATURES)


@pytest.mark.parametrize(("feature", "td", "path"), CASES, ids=[c[0] for c in CASES])
def test_feature_is_refused_by_default_and_named_by_its_path(feature: str, td: RegisterTaskDefinition, path: str) -> None:
    [problem] = policy_violations(td, frozenset())
    assert problem.path == path
    assert f"(feature {feature})" in problem.message
    assert f"label the namespace {OPT_IN_LABEL}=true or allow {feature}" in problem.message


@pytest.mark.parametrize(("feature", "td", "path"), CASES, ids=[c[0] for c in CASES])
def test_feature_is_allowed_when_the_settings_allow_it(feature: str, td: RegisterTaskDefinition, path: str) -> None:
    assert policy_violations(td, frozenset({feature})) == []
    assert policy_violations(td, frozenset(FEATURES) - {feature}) != []


def test_baseline_capabilities_and_ordinary_settings_pass() -> None:
    td = definition(
        {"linuxParameters": {"capabilities": {"add": ["CAP_NET_BIND_SERVICE", "chown"], "drop": ["ALL"]}, "initProcessEnabled": True},
         "user": "0", "portMappings": [{"containerPort": 80, "hostPort": 8080}]},
        networkMode="bridge", pidMode="task", ipcMode="task", volumes=[{"name": "scratch", "host": {}}],
    )
    assert policy_violations(td, frozenset()) == []


def test_each_use_is_reported() -> None:
    td = definition({"privileged": True, "linuxParameters": {"devices": [{"hostPath": "/dev/a"}, {"hostPath": "/dev/b"}]}},
                    networkMode="host")
    paths = [p.path for p in policy_violations(td, frozenset())]
    assert paths == ["networkMode", "containerDefinitions[1].privileged",
                     "containerDefinitions[1].linuxParameters.devices[0]", "containerDefinitions[1].linuxParameters.devices[1]"]
    assert [p.path for p in policy_violations(td, frozenset({"devices"}))] == ["networkMode", "containerDefinitions[1].privileged"]
