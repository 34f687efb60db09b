"""The chart's files agree with the code and the documentation (no cluster, no helm needed).

The chart ships byte-identical copies of the generated CRDs; the values table of the install
guide lists exactly the chart's values; the schema's feature names are the policy's; the image
runs as the user the chart's security context names.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from ecs_operator.adapters.kube import RESOURCES
from ecs_operator.crdgen.crd import render_all
from ecs_operator.translate.policy import FEATURES

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ecs-operator"
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())


def install_guide() -> str:
    """The README's install guide (values and RBAC tables)."""
    return (ROOT / "README.md").read_text()


def table(text: str, name: str) -> list[list[str]]:
    """The rows (cells, stripped) of the Markdown table between <!-- name:begin --> and <!-- name:end -->."""
    block = text.split(f"<!-- {name}:begin -->", 1)[1].split(f"<!-- {name}:end -->", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in block.strip().splitlines()]
    return [[cell.strip() for cell in row] for row in rows[2:]]


def leaves(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted paths of the values a user sets (maps whose defaults are empty or free-form are leaves)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        nested = isinstance(value, dict) and value and path not in FREE_FORM
        yield from (leaves(value, f"{path}.") if nested else [path])


# Values that are whole Kubernetes structures (or label maps): documented as one row.
FREE_FORM = {"resources", "api.resources", "livenessProbe", "podSecurityContext", "securityContext", "ecs.fargateNodeSelector",
             "ecs.fargateSpotNodeSelector"}


def test_chart_crds_are_the_generated_crds() -> None:
    generated = render_all()
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(generated)
    for name, text in generated.items():
        assert (ROOT / "crds" / name).read_bytes() == text.encode(), f"crds/{name} is stale: run `ecs-operator crds`"
        assert (CHART / "crds" / name).read_bytes() == text.encode(), f"the chart's {name} is stale: run `ecs-operator crds`"


def test_values_table_lists_every_value() -> None:
    documented = [row[0].strip("`") for row in table(install_guide(), "values")]
    assert len(documented) == len(set(documented)), "a value is documented twice"
    assert sorted(documented) == sorted(leaves(VALUES))


def test_values_table_defaults_are_the_values_yaml_defaults() -> None:
    for row in table(install_guide(), "values"):
        path, default = row[0].strip("`"), row[1]
        value: Any = VALUES
        for part in path.split("."):
            value = value[part]
        assert default.startswith("`") and default.endswith("`") and default.count("`") == 2, f"{path}: {default}"
        assert yaml.safe_load(default.strip("`")) == value, f"{path}: documented {default}, values.yaml has {value!r}"


def test_schema_accepts_the_policy_features_and_the_defaults_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    feature_enum = schema["properties"]["workloadPolicy"]["properties"]["allowedFeatures"]["items"]["enum"]
    assert tuple(feature_enum) == FEATURES
    assert set(schema["properties"]) == set(VALUES)
    assert set(schema["properties"]["ecs"]["properties"]) == set(VALUES["ecs"])


def test_chart_and_package_versions_agree() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
    assert f"ecs-operator:{project['version']}" in (ROOT / "Dockerfile").read_text()


def test_image_runs_the_operator_as_the_charts_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.split(None, 1) for line in dockerfile.splitlines() if line and not line.startswith((" ", "#"))]
    # `docker build` starts from python:3.11-slim; `sandbox image build` passes a locally made BASE instead
    assert instructions[:2] == [["ARG", "BASE=python:3.11-slim"], ["FROM", "${BASE}"]]
    user = next(arg for op, arg in instructions if op == "USER")
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and (uid, gid) == (VALUES["podSecurityContext"]["runAsUser"], VALUES["podSecurityContext"]["runAsGroup"])
    assert instructions[-1] == ["ENTRYPOINT", '["ecs-operator", "run"]']
    assert re.search(r"^RUN pip install \. ", dockerfile, re.M), "the package is installed from the repository, not editable"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("**") + 1:ignored.index("**") + 4] == ["!pyproject.toml", "!README.md", "!operator/"]


def test_hardened_defaults() -> None:
    pod, container = VALUES["podSecurityContext"], VALUES["securityContext"]
    assert pod["runAsNonRoot"] and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                         "capabilities": {"drop": ["ALL"]}}
    assert VALUES["workloadPolicy"]["allowedFeatures"] == [] and VALUES["nodePools"]["kwok"]["enabled"] is False


# Kubernetes verbs of Account's methods (operator/ecs_operator/api/account.py): `update` reads, then PUTs.
ACCOUNT_VERBS = {"items": {"list"}, "find": {"list"}, "get": {"get"}, "create": {"create"}, "update": {"get", "update"},
                 "patch": {"patch"}, "delete": {"delete"}}


def api_calls() -> dict[str, set[str]]:
    """The API operations' Kubernetes calls, as `resource[.group]` -> verbs, read from their source:
    `account.<method>("Kind", ...)` and `account.call(account.kube.<verb>, "Kind", ...)`, the kind also as `resource("Kind", ...)` or a manifest's `"kind"`."""
    calls: dict[str, set[str]] = {}
    for path in sorted((ROOT / "operator" / "ecs_operator" / "api").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "account"):
                continue
            method, args = node.func.attr, node.args
            if method == "call":
                fn = args[0]
                assert isinstance(fn, ast.Attribute) and ast.unparse(fn.value) == "account.kube", f"{path.name}:{node.lineno}"
                verbs, kind_node = {fn.attr}, args[1]
            elif method in ACCOUNT_VERBS:
                verbs, kind_node = ACCOUNT_VERBS[method], args[0]
            else:
                continue
            new = isinstance(kind_node, ast.Call) and ast.unparse(kind_node.func) == "resource"  # one of our kinds
            if new and isinstance(kind_node, ast.Call):
                kind_node = kind_node.args[0]
            elif isinstance(kind_node, ast.Dict):  # a manifest written out: its "kind"
                kind_node = next(v for k, v in zip(kind_node.keys, kind_node.values) if isinstance(k, ast.Constant) and k.value == "kind")
            if not isinstance(kind_node, ast.Constant):
                continue  # a kind in a variable (e.g. tagging any resource): the kinds it takes are called literally elsewhere
            kind = "Service.ecs" if new and kind_node.value == "Service" else kind_node.value
            assert kind in RESOURCES, f"{path.name}:{node.lineno}: {kind!s} is not in adapters/kube.py's RESOURCES"
            resource = RESOURCES[kind]
            calls.setdefault(resource.plural + (f".{resource.group}" if resource.group else ""), set()).update(verbs)
    return calls


def test_the_api_rbac_table_is_exactly_what_the_api_code_calls() -> None:
    """A new operation that reads or writes another kind fails here until the chart and README grant it
    (tests/e2e/test_chart.py checks the chart against this table)."""
    documented: dict[str, set[str]] = {}
    for group, resources, verbs, scope, _ in table(install_guide(), "api-rbac"):
        if scope in ("namespace", "cluster"):  # cluster: cluster-scoped kinds, in a ClusterRole even with watchNamespaces
            for resource in re.findall(r"`([^`]+)`", resources):
                key = resource if group == "core" else f"{resource}.{group.strip('`')}"
                documented.setdefault(key, set()).update(v.strip() for v in verbs.split(","))
        else:
            assert (group, resources.split(" ")[0], verbs, scope) == ("core", "`secrets`", "get, list, watch", "release")  # keys.py
    calls = api_calls()
    for resource, kind_verbs in VARIABLE_KIND_CALLS.items():
        calls.setdefault(resource, set()).update(kind_verbs)
    assert calls == documented


# Calls whose kind is a variable, which api_calls() skips: tags.py `_retag` calls `account.update(kind, ...)` for
# Cluster, Service, Task and CapacityProvider. Only Task is not updated literally elsewhere.
VARIABLE_KIND_CALLS = {"tasks.ecs.operator.dev": ACCOUNT_VERBS["update"]}


def test_metrics_port_agrees_with_the_operator_default_and_the_image(monkeypatch: pytest.MonkeyPatch) -> None:
    """README: Metrics. The chart's metrics port is `ecs-operator run --metrics`'s default port, which the image
    exposes; the metrics template renders only with metrics.enabled, its ServiceMonitor only when asked."""
    import argparse

    from ecs_operator.runner import add_arguments, metrics_address

    monkeypatch.delenv("ECS_OPERATOR_METRICS", raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    host, port = metrics_address(parser.parse_args([]).metrics)
    assert (host, port) == ("0.0.0.0", VALUES["metrics"]["port"])
    assert re.search(rf"^EXPOSE 8080 {port}$", (ROOT / "Dockerfile").read_text(), re.M)
    assert VALUES["metrics"]["enabled"] is True and VALUES["metrics"]["serviceMonitor"]["enabled"] is False
    template = (CHART / "templates" / "metrics.yaml").read_text()
    body = template.split("\n", 1)[1]  # after the comment line
    assert body.startswith("{{- if .Values.metrics.enabled }}") and body.rstrip().endswith("{{- end }}\n{{- end }}".strip())
    monitor = template.split("kind: ServiceMonitor", 1)[0].rsplit("---", 1)[0]
    assert monitor.rstrip().endswith("{{- if .Values.metrics.serviceMonitor.enabled }}")
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert "- --metrics=0.0.0.0:{{ .Values.metrics.port }}" in deployment and "containerPort: {{ .Values.metrics.port }}" in deployment
