"""The Helm chart on the real control plane: lint, template and server-side dry-run; install,
upgrade and uninstall; RBAC that is exactly the documented list; and the operator's end-to-end
scenario run by the local operator with a token of the chart's ServiceAccount.

kwok fakes the operator's container, so the installed Deployment becomes Available without an
image; the RBAC is proven by running the operator from this checkout as that ServiceAccount.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import yaml
from botocore.config import Config

from ecs_operator import API_GROUP
from ecs_operator.nodepool.instance_types import KWOK_ANNOTATION, build_node, instance_type
from operator_fixtures import Operator, apply, get, wait_for
from ecs_objects import KUBECTL
from tenant_support import fingerprint

if TYPE_CHECKING:
    from conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ecs-operator"
FORBIDDEN_VERBS = {"*", "escalate", "bind", "impersonate"}


# -- rendering ---------------------------------------------------------------------------------

def set_args(values: dict[str, Any]) -> list[str]:
    """Values as `--set-json` arguments (exact types, lists and maps included)."""
    return [arg for key, value in values.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")]


def render(sandbox: Cluster, release: str, namespace: str, values: dict[str, Any], *extra: str) -> list[dict[str, Any]]:
    out = sandbox.helm("template", release, str(CHART), "--namespace", namespace, *set_args(values), *extra).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def rules(objects: list[dict[str, Any]], kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
    """The rules of `kind` in `namespace`, the leader election Role's left out (checked on its own)."""
    return [r for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace and not leader_election(o)
            for r in o["rules"]]


def leader_election(obj: dict[str, Any]) -> bool:
    return obj["kind"] in ("Role", "RoleBinding") and obj["metadata"]["name"].endswith("-leader-election")


def verbs_for(rule_list: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    return {v for r in rule_list if group in r["apiGroups"] and resource in r["resources"] for v in r["verbs"]}


def variants(namespace: str) -> dict[str, dict[str, Any]]:
    return {
        "defaults": {},
        "namespaces": {"watchNamespaces": [namespace, "default"]},
        "kwok": {"nodePools.kwok.enabled": True},
        "scale": {"nodePools.scaleTargets": [{"apiGroup": "cluster.x-k8s.io", "resource": "machinedeployments",
                                               "resourceNames": ["workers"]}, {"apiGroup": "apps", "resource": "statefulsets"}]},
        "policy": {"workloadPolicy.allowedFeatures": ["hostPath", "capabilities"], "ecs.fargateNodeSelector": {"a": "1", "b": "2"},
                   "ecs.alertmanagerUrl": "http://alertmanager-operated.monitoring:9093"},
        "api": {"api.enabled": True, "api.keys": [{"accessKeyId": "AKIATEST", "secretAccessKey": "s3cret", "namespace": namespace}]},
        "api-namespaces": {"api.enabled": True, "api.keysSecret": "team-keys", "watchNamespaces": [namespace, "default"]},
        "api-tls": {"api.enabled": True, "api.tls.secretName": "api-serving-cert"},
    }


def is_api_rule(objects: list[dict[str, Any]], rule: dict[str, Any]) -> bool:
    """`rule` is one of a Role or ClusterRole of the ECS API."""
    return any(is_api(o) and rule in o.get("rules", []) for o in objects if o["kind"] in ("ClusterRole", "Role"))


def is_api(obj: dict[str, Any]) -> bool:
    """One of the ECS API's objects (templates/api.yaml)."""
    return obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "api"


@pytest.mark.parametrize("variant", ["defaults", "namespaces", "kwok", "scale", "policy", "api", "api-namespaces", "api-tls"])
def test_lint_template_and_server_dry_run(sandbox: Cluster, namespace: str, variant: str) -> None:
    values = variants(namespace)[variant]
    lint = sandbox.helm("lint", "--strict", str(CHART), *set_args(values))
    assert "0 chart(s) failed" in lint.stdout
    every_object = render(sandbox, "dry", namespace, values, "--include-crds")
    sandbox.kubectl("apply", "--dry-run=server", "--server-side", "--field-manager=dry-run", "-f", "-",
                    input=yaml.safe_dump_all(every_object))
    api_objects = [o for o in every_object if is_api(o)]
    assert bool(api_objects) == variant.startswith("api")
    if api_objects:
        check_api_objects(api_objects, values, namespace)
    objects = [o for o in every_object if not is_api(o)]  # the operator's: unchanged by api.*

    every_rule = [r for o in every_object if o["kind"] in ("ClusterRole", "Role") for r in o["rules"]]
    for rule in every_rule:
        assert "*" not in rule["apiGroups"] + rule["resources"], rule
        assert not set(rule["verbs"]) & FORBIDDEN_VERBS, rule
        assert not {"admissionregistration.k8s.io", "rbac.authorization.k8s.io"} & set(rule["apiGroups"]), rule
        assert "serviceaccounts" not in rule["resources"], rule
        if "configmaps" in rule["resources"]:  # the API's, for the tenants' `ecs-account-settings`; the
            # operator's, for the FireLens configurations it owns (the children policy refuses any other write)
            assert rule == ({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "update"]}
                            if is_api_rule(every_object, rule) else
                            {"apiGroups": [""], "resources": ["configmaps"],
                             "verbs": ["get", "list", "watch", "create", "patch", "delete"]}), rule
        if "secrets" in rule["resources"]:  # only the API's, only its key Secret, by name
            assert rule == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"],
                            "resourceNames": [values.get("api.keysSecret", "ecs-api-keys")]}, rule
    cluster_rules = rules(objects, "ClusterRole")
    node_verbs = verbs_for(cluster_rules, "", "nodes")
    if variant == "kwok":
        assert node_verbs == {"get", "list", "watch", "create", "patch", "delete"}
    else:
        assert node_verbs == {"list", "watch", "patch"}
    scale_rules = [r for r in every_rule if any(res.endswith("/scale") for res in r["resources"])]
    if variant == "scale":
        assert [(r["apiGroups"], r["resources"], r["verbs"], r.get("resourceNames")) for r in scale_rules] == [
            (["cluster.x-k8s.io"], ["machinedeployments/scale"], ["get", "patch"], ["workers"]),
            (["apps"], ["statefulsets/scale"], ["get", "patch"], None),
        ]
    else:
        assert scale_rules == []

    # the admission policies: what ECS objects name (every author), and the operator's own writes
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"}
    bindings = {o["spec"]["policyName"] for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert sorted(policies) == sorted(bindings) == [f"dry-ecs-operator-{p}" for p in ("children", "nodes", "references", "volumes")]
    user = f"system:serviceaccount:{namespace}:dry-ecs-operator"
    assert [c["name"] for c in policies["dry-ecs-operator-references"]["spec"]["matchConditions"]] == ["spec-written"]
    assert all(f"== '{user}'" in policies[f"dry-ecs-operator-{p}"]["spec"]["matchConditions"][0]["expression"]
               for p in ("children", "nodes", "volumes"))
    delete_annotations = next(v["expression"] for v in policies["dry-ecs-operator-nodes"]["spec"]["variables"] if v["name"] == "deleteAnnotations")
    assert delete_annotations == ("['cluster.x-k8s.io/delete-machine']" if variant == "scale" else "[]")

    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "dry-ecs-operator"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    if values.get("watchNamespaces"):
        assert args[:2] == [f"--namespace={namespace}", "--namespace=default"]
        assert verbs_for(cluster_rules, "", "pods") == set()
        for ns in (namespace, "default"):
            assert verbs_for(rules(objects, "Role", ns), "", "pods") == {"get", "list", "watch", "create", "patch", "delete"}
        assert rules(objects, "Role", namespace) == rules(objects, "Role", "default")
        assert verbs_for(cluster_rules, "", "namespaces") == {"get", "list", "watch"}
    else:
        assert not [o for o in objects if o["kind"] in ("Role", "RoleBinding") and not leader_election(o)]
        assert verbs_for(cluster_rules, "", "namespaces") == {"get"}
    # leader election: the Lease of the release namespace only, by name but for create (which RBAC cannot narrow)
    [election] = [o for o in objects if o["kind"] == "Role" and leader_election(o)]
    assert election["metadata"]["namespace"] == namespace
    assert election["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "resourceNames": ["dry-ecs-operator"], "verbs": ["get", "update"]},
    ]
    assert {"--leader-elect", f"--leader-election-namespace={namespace}", "--lease-name=dry-ecs-operator"} <= set(args)
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert [o["spec"] for o in objects if o["kind"] == "PodDisruptionBudget"] == [
        {"minAvailable": 1, "selector": deployment["spec"]["selector"]}]
    if variant == "defaults":  # the operator's default: FARGATE tasks go to the nodes an administrator set aside
        assert not [a for a in args if a.startswith(("--fargate-node-selector", "--alertmanager-url"))]
    if variant == "policy":
        assert [a for a in args if a.startswith("--allow-workload-feature")] == [
            "--allow-workload-feature=hostPath", "--allow-workload-feature=capabilities"]
        assert "--fargate-node-selector=a=1,b=2" in args
        assert "--alertmanager-url=http://alertmanager-operated.monitoring:9093" in args  # deployment alarms


def documented_api_rights(scope: str, keys_secret: str = "ecs-api-keys") -> dict[tuple[str, str], set[str]]:
    """The README's table of the ECS API's rights in `scope` ("namespace", "cluster" or "release"), as can-i lists them."""
    block = install_guide().split("<!-- api-rbac:begin -->", 1)[1].split("<!-- api-rbac:end -->", 1)[0]
    rights: dict[tuple[str, str], set[str]] = {}
    for line in block.strip().splitlines()[2:]:
        group, resources, verbs, row_scope, _ = (c.strip() for c in line.strip().strip("|").split("|"))
        if row_scope != scope:
            continue
        for resource in re.findall(r"`([^`]+)`", resources.split("(")[0]):
            key = resource if group == "core" else f"{resource}.{group.strip('`')}"
            names = keys_secret if resource == "secrets" else ""
            rights.setdefault((key, names), set()).update(v.strip() for v in verbs.split(","))
    return rights


def rendered_rights(rule_list: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    rights: dict[tuple[str, str], set[str]] = {}
    for rule in rule_list:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                key = (resource if not group else f"{resource}.{group}", " ".join(rule.get("resourceNames", [])))
                rights.setdefault(key, set()).update(rule["verbs"])
    return rights


def check_api_objects(objects: list[dict[str, Any]], values: dict[str, Any], namespace: str) -> None:
    """The API's RBAC is the README's table, its Pod as hardened as the operator's, its keys from api.keys."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    name, keys_secret = "dry-ecs-operator-api", values.get("api.keysSecret", "ecs-api-keys")
    [account] = by_kind["ServiceAccount"]
    assert account["metadata"]["name"] == name
    watched = values.get("watchNamespaces")
    roles = {o["metadata"]["namespace"]: o for o in by_kind["Role"] if o["metadata"]["name"] == name}
    [keys_role] = [o for o in by_kind["Role"] if o["metadata"]["name"] == f"{name}-keys"]
    assert keys_role["metadata"]["namespace"] == namespace
    assert rendered_rights(keys_role["rules"]) == documented_api_rights("release", keys_secret)
    # cluster-scoped kinds: a ClusterRole of their own, with or without watchNamespaces (a Role cannot grant them)
    cluster_roles = {o["metadata"]["name"]: o for o in by_kind["ClusterRole"]}
    assert rendered_rights(cluster_roles.pop(f"{name}-cluster")["rules"]) == documented_api_rights("cluster")
    if watched:
        assert not cluster_roles and sorted(roles) == sorted(watched)
        for role in roles.values():
            assert rendered_rights(role["rules"]) == documented_api_rights("namespace")
    else:
        [cluster_role] = cluster_roles.values()
        assert rendered_rights(cluster_role["rules"]) == documented_api_rights("namespace") and not roles
    bindings = [b for kind in ("RoleBinding", "ClusterRoleBinding") for b in by_kind.get(kind, [])]
    assert len(bindings) == len(roles) + 1 + 1 + (0 if watched else 1)
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": namespace}] for b in bindings)

    [deployment] = by_kind["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert pod["serviceAccountName"] == name and pod["securityContext"] == defaults["podSecurityContext"]
    assert container["securityContext"] == defaults["securityContext"]
    assert container["command"] == ["ecs-operator", "api"]
    assert container["args"][:3] == ["--host=0.0.0.0", "--port=8085", f"--keys-secret={keys_secret}"]
    tls = values.get("api.tls.secretName")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http", "scheme": "HTTPS" if tls else "HTTP"}
    tls_args = [a for a in container["args"] if a.startswith("--tls-")]
    if tls:  # the kubelet mounts the certificate: the API's ServiceAccount never reads that Secret
        assert tls_args == ["--tls-cert=/etc/ecs-api/tls/tls.crt", "--tls-key=/etc/ecs-api/tls/tls.key"]
        assert {"name": "tls", "secret": {"secretName": tls}} in pod["volumes"]
        assert {"name": "tls", "mountPath": "/etc/ecs-api/tls", "readOnly": True} in container["volumeMounts"]
    else:
        assert not tls_args and "tls" not in {v["name"] for v in pod["volumes"]}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/name"] == "ecs-operator-api"  # the operator's selector never matches its Pods
    [service] = by_kind["Service"]
    assert service["spec"]["selector"] == selector and service["spec"]["ports"][0]["port"] == 8085

    secrets = by_kind.get("Secret", [])
    if values.get("api.keys"):
        [secret] = secrets
        decoded = {k: json.loads(base64.b64decode(v)) for k, v in secret["data"].items()}
        assert secret["metadata"]["name"] == keys_secret
        assert decoded == {"AKIATEST": {"secretAccessKey": "s3cret", "namespace": namespace, "capacityProviders": False}}
    else:
        assert secrets == []  # the chart expects an existing Secret


def test_metrics_service_and_the_optional_service_monitor(sandbox: Cluster, namespace: str) -> None:
    """README: Metrics. By default the operator serves /metrics on the container port `metrics` behind a ClusterIP
    Service; a ServiceMonitor only when asked; metrics.enabled=false: no port, no Service, `--metrics=`."""
    def operator_objects(values: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]], list[dict[str, Any]]]:
        objects = render(sandbox, "dry", namespace, values)
        container = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
        return ([a for a in container["args"] if a.startswith("--metrics")], container["ports"],
                [o for o in objects if o["metadata"]["name"].startswith("dry-ecs-operator") and o["kind"] in ("Service", "ServiceMonitor")])

    args, ports, extra = operator_objects({})
    assert args == ["--metrics=0.0.0.0:8081"] and {"name": "metrics", "containerPort": 8081, "protocol": "TCP"} in ports
    [service] = extra
    assert (service["kind"], service["metadata"]["name"], service["spec"]["type"]) == ("Service", "dry-ecs-operator-metrics", "ClusterIP")
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8081, "targetPort": "metrics", "protocol": "TCP"}]
    deployment = next(o for o in render(sandbox, "dry", namespace, {}) if o["kind"] == "Deployment")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    sandbox.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(service))

    args, ports, extra = operator_objects({"metrics.port": 9100, "metrics.serviceMonitor.enabled": True,
                                           "metrics.serviceMonitor.labels": {"release": "prometheus"}})
    assert args == ["--metrics=0.0.0.0:9100"]
    monitor = next(o for o in extra if o["kind"] == "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics"

    args, ports, extra = operator_objects({"metrics.enabled": False, "metrics.serviceMonitor.enabled": True})
    assert args == ["--metrics="] and "metrics" not in {p["name"] for p in ports} and extra == []
    taken = sandbox.helm("template", "x", str(CHART), *set_args({"metrics.port": 8080}), check=False)
    assert taken.returncode != 0 and "metrics" in taken.stderr


def test_values_schema_refuses_unknown_features_and_keys(sandbox: Cluster) -> None:
    bad_feature = sandbox.helm("template", "x", str(CHART), *set_args({"workloadPolicy.allowedFeatures": ["sysAdmin"]}), check=False)
    assert bad_feature.returncode != 0 and "allowedFeatures" in bad_feature.stderr
    typo = sandbox.helm("template", "x", str(CHART), *set_args({"watchNamespace": ["a"]}), check=False)
    assert typo.returncode != 0 and "watchNamespace" in typo.stderr
    kube_system = sandbox.helm("template", "x", str(CHART), *set_args({"watchNamespaces": ["apps", "kube-system"]}), check=False)
    assert kube_system.returncode != 0 and "watchNamespaces" in kube_system.stderr
    keyless = sandbox.helm("template", "x", str(CHART), *set_args({"api.enabled": True, "api.keys": [{"accessKeyId": "AKIA1"}]}), check=False)
    assert keyless.returncode != 0 and "secretAccessKey" in keyless.stderr
    tls = sandbox.helm("template", "x", str(CHART), *set_args({"api.tls": {"secretName": "t", "certFile": "x"}}), check=False)
    assert tls.returncode != 0 and "certFile" in tls.stderr
    no_scheme = sandbox.helm("template", "x", str(CHART), *set_args({"ecs.alertmanagerUrl": "alertmanager:9093"}), check=False)
    assert no_scheme.returncode != 0 and "alertmanagerUrl" in no_scheme.stderr


# -- install, upgrade, uninstall ---------------------------------------------------------------

# Cluster-scoped kinds the chart never creates but other tests' capacity providers may be
# changing meanwhile (nodes come and go with their ContainerInstances); componentstatuses is
# deprecated (a warning, nothing to find).
CHURNING = {"nodes", "containerinstances.ecs.operator.dev", "componentstatuses"}


def cluster_scoped(sandbox: Cluster) -> set[str]:
    """Every cluster-scoped object, as kind/name."""
    kinds = sandbox.kubectl("api-resources", "--namespaced=false", "--verbs=list", "-o", "name").stdout.split()
    return set(sandbox.kubectl("get", ",".join(k for k in kinds if k not in CHURNING), "-o", "name").stdout.split())


def test_install_upgrade_uninstall(sandbox: Cluster, namespace: str) -> None:
    # the operator's own Pod meets Pod Security "restricted"
    sandbox.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    release = f"eo-{uuid.uuid4().hex[:5]}"
    before = cluster_scoped(sandbox)
    sandbox.helm("install", release, str(CHART), "--namespace", namespace, "--wait", "--timeout", "180s")
    name = f"{release}-ecs-operator"
    deployment = sandbox.kubectl_json("get", "deployment", name, "-n", namespace)
    assert {c["type"]: c["status"] for c in deployment["status"]["conditions"]}["Available"] == "True"
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    assert deployment["spec"]["replicas"] == 2
    assert "--leader-elect" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    budget = sandbox.kubectl_json("get", "poddisruptionbudget", name, "-n", namespace)
    assert budget["spec"]["minAvailable"] == 1
    operator_pods = sandbox.kubectl_json("get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={release}")["items"]
    assert len(operator_pods) == 2
    for pod in operator_pods:
        node = sandbox.kubectl_json("get", "node", pod["spec"]["nodeName"])
        assert node["metadata"]["annotations"][KWOK_ANNOTATION] == "fake"
    service_account = f"system:serviceaccount:{namespace}:{name}"
    assert sandbox.kubectl("auth", "can-i", "update", f"leases.coordination.k8s.io/{name}", "-n", namespace,
                           f"--as={service_account}", check=False).stdout.strip() == "yes"
    assert sandbox.kubectl("auth", "can-i", "update", "leases.coordination.k8s.io/other", "-n", namespace,
                           f"--as={service_account}", check=False).stdout.strip() == "no"
    assert sandbox.kubectl("auth", "can-i", "create", "leases.coordination.k8s.io", "-n", "default",
                           f"--as={service_account}", check=False).stdout.strip() == "no"
    installed = cluster_scoped(sandbox) - before
    assert {f"clusterrole.rbac.authorization.k8s.io/{name}", f"clusterrolebinding.rbac.authorization.k8s.io/{name}"} <= installed

    # the documented upgrade: the CRDs first (Helm never upgrades crds/), server-side over Helm's copy
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CHART / "crds"))
    upgraded = sandbox.helm("upgrade", release, str(CHART), "--namespace", namespace, "--reuse-values",
                            "--set", "logLevel=DEBUG", "--wait", "--timeout", "180s")
    assert "REVISION: 2" in upgraded.stdout
    deployment = sandbox.kubectl_json("get", "deployment", name, "-n", namespace)
    assert "--log-level=DEBUG" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    wait_for(lambda: (deployment := sandbox.kubectl_json("get", "deployment", name, "-n", namespace))["status"].get("updatedReplicas") == 2
             and deployment["status"].get("availableReplicas") == 2 and deployment["status"].get("replicas") == 2,
             timeout=120, what="the upgraded operator Pods to be available")

    sandbox.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "180s")
    left = cluster_scoped(sandbox) - before
    crds = {f"customresourcedefinition.apiextensions.k8s.io/{p.name.removesuffix('.yaml')}" for p in (CHART / "crds").glob("*.yaml")}
    # the API server registers an APIService for the CRDs' group version; it goes with them
    documented = crds | {f"apiservice.apiregistration.k8s.io/v1alpha1.{API_GROUP}"}
    assert left <= documented, f"uninstall left {sorted(left - documented)} behind (only the CRDs are documented to stay)"
    assert crds <= cluster_scoped(sandbox), "the CRDs stay after uninstall (documented)"
    assert sandbox.kubectl_json("get", "all,serviceaccounts,roles,rolebindings", "-n", namespace,
                                "-l", f"app.kubernetes.io/instance={release}")["items"] == []


# -- the ECS API: installed, its ServiceAccount's rights, and boto3 served with them ------------

def token_kubeconfig(sandbox: Cluster, account: str, namespace: str, path: Path) -> Path:
    """The sandbox's cluster with a token of ServiceAccount `namespace/account`, as its Pod would have."""
    token = sandbox.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    config = json.loads(sandbox.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    config["users"] = [{"name": account, "user": {"token": token}}]
    config["contexts"][0]["context"].update(user=account, namespace=namespace)
    path.write_text(json.dumps(config))
    return path


def rights_of(sandbox: Cluster, user: str, release_namespace: str, namespace: str) -> dict[tuple[str, str], set[str]]:
    """What `user` can do in `namespace` beyond what every ServiceAccount can."""
    everyone = can_i_list(sandbox, f"system:serviceaccount:{release_namespace}:default", namespace)
    ours = can_i_list(sandbox, user, namespace)
    return {k: v - everyone.get(k, set()) for k, v in ours.items() if v - everyone.get(k, set())}


def test_api_release_serves_boto3_with_exactly_its_documented_rights(
    sandbox: Cluster, namespace: str, running_operator: Operator, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:5]
    release, home = f"api-{suffix}", f"e2e-api-home-{suffix}"
    key_id, secret = f"AKIA{suffix.upper()}00000000000", uuid.uuid4().hex
    sandbox.kubectl("create", "namespace", home)
    sandbox.kubectl("label", "namespace", home, "pod-security.kubernetes.io/enforce=restricted")
    # a key an administrator lets write capacity providers: every call the API makes is exercised
    values = {"api.enabled": True, "api.keys": [{"accessKeyId": key_id, "secretAccessKey": secret, "namespace": namespace,
                                                 "capacityProviders": True}]}
    api_log = tmp_path / "api.log"
    try:
        sandbox.helm("install", release, str(CHART), "--namespace", home, *set_args(values), "--wait", "--timeout", "180s")
        name = f"{release}-ecs-operator-api"
        deployment = sandbox.kubectl_json("get", "deployment", name, "-n", home)
        assert deployment["status"].get("availableReplicas") == 1
        user = f"system:serviceaccount:{home}:{name}"
        cluster_wide = {**documented_api_rights("namespace"), **documented_api_rights("cluster")}
        assert rights_of(sandbox, user, home, namespace) == cluster_wide
        assert rights_of(sandbox, user, home, home) == {**cluster_wide, **documented_api_rights("release")}

        # the API from this checkout, as the release's ServiceAccount (kwok fakes the Deployment's container)
        env = {**sandbox.env, "KUBECONFIG": str(token_kubeconfig(sandbox, name, home, tmp_path / "api.kubeconfig"))}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with api_log.open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "ecs_operator.cli", "api", "--port", str(port),
                                        "--namespace", home, "--keys-secret", "ecs-api-keys"],
                                       env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz") if process.poll() is None
                     else pytest.fail(api_log.read_text()), timeout=30, what="the API")
            exercise_every_kubernetes_call(namespace, boto3.client(
                "ecs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id=key_id,
                aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1})))
        finally:
            process.terminate()
            process.wait(timeout=20)
        text = api_log.read_text(errors="replace")
        assert "Traceback" not in text and "Forbidden" not in text and "forbidden" not in text, text
        sandbox.helm("uninstall", release, "--namespace", home, "--wait")
        left = sandbox.kubectl("get", "clusterroles,clusterrolebindings", "-o", "name").stdout.split()
        assert [o for o in left if o.split("/")[-1] in (name, f"{name}-cluster")] == [], "uninstall left the API's cluster-scoped RBAC"
        assert sandbox.kubectl_json("get", "all,serviceaccounts,roles,rolebindings,secrets", "-n", home,
                                    "-l", f"app.kubernetes.io/instance={release}")["items"] == []
    finally:
        sandbox.helm("uninstall", release, "--namespace", home, "--wait", check=False)
        sandbox.kubectl("delete", "namespace", home, "--wait=false", check=False)


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def exercise_every_kubernetes_call(namespace: str, ecs: Any) -> None:
    """Operations that between them make every call of the API's RBAC table (a refused one is a ServerException)."""
    fast = {"Delay": 1, "MaxAttempts": 120}
    cluster = ecs.create_cluster(clusterName="default")["cluster"]["clusterArn"]  # clusters: create, list, get
    assert ecs.list_clusters()["clusterArns"] == [cluster]
    ecs.list_container_instances(cluster="default")  # containerinstances: list (patch, UpdateContainerInstancesState, would drain a shared Node)
    container = [{"name": "web", "image": "nginx:1.29", "memory": 128}]
    ecs.register_task_definition(family="web", containerDefinitions=container)  # taskdefinitions: create
    ecs.register_task_definition(family="web", containerDefinitions=[{**container[0], "image": "nginx:1.30"}])  # update
    assert ecs.describe_task_definition(taskDefinition="web:1")["taskDefinition"]["revision"] == 1  # controllerrevisions: get
    ecs.create_service(cluster="default", serviceName="web", taskDefinition="web:2", desiredCount=1)  # services: create
    ecs.get_waiter("services_stable").wait(cluster="default", services=["web"], WaiterConfig=fast)
    [service_task] = ecs.list_tasks(cluster="default", serviceName="web")["taskArns"]  # pods: list
    assert ecs.describe_tasks(cluster="default", tasks=[service_task])["tasks"][0]["lastStatus"] == "RUNNING"
    [task] = [t["taskArn"] for t in ecs.run_task(cluster="default", taskDefinition="web:2")["tasks"]]  # tasks: create, get
    ecs.tag_resource(resourceArn=task, tags=[{"key": "k", "value": "v"}])  # tasks: get, update
    ecs.stop_task(cluster="default", task=task, reason="done")  # tasks: patch
    ecs.update_service(cluster="default", service="web", desiredCount=0)  # services: update
    ecs.delete_service(cluster="default", service="web")  # services: delete
    ecs.deregister_task_definition(taskDefinition="web:1")  # taskdefinitions: update
    ecs.get_waiter("tasks_stopped").wait(cluster="default", tasks=[task], WaiterConfig=fast)
    assert ecs.delete_cluster(cluster="default")["cluster"]["status"] == "INACTIVE"  # clusters: delete
    ecs.put_account_setting_default(name="containerInsights", value="enabled")  # configmaps: get, create
    ecs.put_account_setting(name="awsvpcTrunking", value="enabled")  # configmaps: get, update
    ecs.list_account_settings(effectiveSettings=True)
    ecs.delete_account_setting(name="awsvpcTrunking")
    provider = ecs.create_capacity_provider(name=f"{namespace[:40]}-api", autoScalingGroupProvider={  # capacityproviders: create
        "autoScalingGroupArn": "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:x:autoScalingGroupName/asg"})["capacityProvider"]
    ecs.describe_capacity_providers(include=["TAGS"])  # capacityproviders: list
    ecs.update_capacity_provider(name=provider["name"], autoScalingGroupProvider={"managedTerminationProtection": "DISABLED"})
    ecs.delete_capacity_provider(capacityProvider=provider["name"])  # capacityproviders: get, update, delete


# -- the installed ServiceAccount: its rights, and the operator running with them ----------------

@dataclass
class Installed:
    """A release of the chart whose operator runs locally with the release's ServiceAccount."""

    variant: str
    release: str
    namespace: str
    """The release namespace (the ServiceAccount's)."""
    work: str
    """Where the scenario's ECS objects live (the watched namespace in the `namespaced` variant)."""
    values: dict[str, Any]
    args: list[str] = field(default_factory=list)
    """The chart's operator flags (from the installed Deployment), less --liveness and --metrics (the test's
    operator runs on this machine beside others: no fixed ports)."""

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}-ecs-operator"


RBAC_VARIANTS = {
    "clusterwide": {"nodePools.kwok.enabled": True},
    "namespaced": {"nodePools.kwok.enabled": True,
                   "nodePools.scaleTargets": [{"apiGroup": "cluster.x-k8s.io", "resource": "machinedeployments", "resourceNames": ["workers"]}]},
}
SCENARIO_VALUES = {"ecs.serviceTaskReadySeconds": 3, "ecs.capacityEvaluationSeconds": 3,
                   "workloadPolicy.allowedFeatures": ["hostPath"], "logFormat": "plain"}


@pytest.fixture(scope="module", params=sorted(RBAC_VARIANTS))
def installed(request: pytest.FixtureRequest, sandbox: Cluster) -> Iterator[Installed]:
    suffix = uuid.uuid4().hex[:5]
    release, namespace, work = f"rb-{suffix}", f"e2e-chart-{suffix}", f"e2e-chart-work-{suffix}"
    values = {**RBAC_VARIANTS[request.param], **SCENARIO_VALUES}
    if request.param == "namespaced":
        values["watchNamespaces"] = [work]
    for ns in (namespace, work):
        sandbox.kubectl("create", "namespace", ns)
    sandbox.helm("install", release, str(CHART), "--namespace", namespace, *set_args(values), "--wait", "--timeout", "180s")
    deployment = sandbox.kubectl_json("get", "deployment", f"{release}-ecs-operator", "-n", namespace)
    args = [a for a in deployment["spec"]["template"]["spec"]["containers"][0]["args"] if not a.startswith(("--liveness", "--metrics"))]
    try:
        yield Installed(request.param, release, namespace, work, values, args)
    finally:
        sandbox.helm("uninstall", release, "--namespace", namespace, "--wait", check=False)
        for ns in (work, namespace):
            sandbox.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def install_guide() -> str:
    return (ROOT / "README.md").read_text()




def documented_rights(values: dict[str, Any], scope: str, full_name: str = "") -> dict[tuple[str, str], set[str]]:
    """The RBAC table's rows that apply with these values and in this scope ("namespace", "cluster",
    "default", the namespace where the Events of cluster-scoped objects go, or "release", the release
    namespace, where the Lease named `full_name` is)."""
    text = install_guide()
    block = text.split("<!-- rbac:begin -->", 1)[1].split("<!-- rbac:end -->", 1)[0]
    rights: dict[tuple[str, str], set[str]] = {}
    for line in block.strip().splitlines()[2:]:
        group, resources, verbs, row_scope, when, _ = (c.strip() for c in line.strip().strip("|").split("|"))
        conditions = {"always": True, "`watchNamespaces`": bool(values.get("watchNamespaces")),
                      "`nodePools.kwok.enabled`": bool(values.get("nodePools.kwok.enabled")),
                      "`nodePools.scaleTargets`": False}  # added from the values below
        if row_scope.strip("`") != scope or not conditions[when]:
            continue
        names = full_name if "named like the Deployment" in resources else ""
        for resource in re.findall(r"`([^`]+)`", resources):
            name, _, sub = resource.partition("/")
            key = name if group == "core" else f"{name}.{group.strip('`')}"
            rights.setdefault((key + (f"/{sub}" if sub else ""), names), set()).update(v.strip() for v in verbs.split(","))
    if scope == "cluster":
        for target in values.get("nodePools.scaleTargets", []):
            names = " ".join(target.get("resourceNames", []))
            rights.setdefault((f"{target['resource']}.{target['apiGroup']}/scale", names), set()).update({"get", "patch"})
    return rights


def can_i_list(sandbox: Cluster, user: str, namespace: str) -> dict[tuple[str, str], set[str]]:
    """`kubectl auth can-i --list` as (resource, resource names) -> verbs (non-resource URLs left out)."""
    out = sandbox.kubectl("auth", "can-i", "--list", f"--as={user}", "-n", namespace).stdout
    rights: dict[tuple[str, str], set[str]] = {}
    for line in out.splitlines()[1:]:
        match = re.match(r"^(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$", line)
        if match:
            resource, _, names, verbs = match.groups()
            rights.setdefault((resource, names), set()).update(verbs.split())
    return rights


def own_rights(sandbox: Cluster, installed: Installed, namespace: str) -> dict[tuple[str, str], set[str]]:
    """What the ServiceAccount can do in `namespace` beyond what every ServiceAccount can."""
    everyone = can_i_list(sandbox, f"system:serviceaccount:{installed.namespace}:default", namespace)
    ours = can_i_list(sandbox, installed.user, namespace)
    return {k: v - everyone.get(k, set()) for k, v in ours.items() if v - everyone.get(k, set())}


def test_service_account_can_do_exactly_the_documented_list(sandbox: Cluster, installed: Installed) -> None:
    cluster = documented_rights(installed.values, "cluster")
    namespaced = documented_rights(installed.values, "namespace")
    assert own_rights(sandbox, installed, installed.work) == {**cluster, **namespaced}
    in_default = documented_rights(installed.values, "default")
    assert in_default == {("events", ""): {"create"}}
    if installed.variant == "namespaced":
        assert own_rights(sandbox, installed, "default") == {**cluster, **in_default}
        # it posts nothing in its own namespace: there it only elects its leader
        release = documented_rights(installed.values, "release", installed.user.rsplit(":", 1)[1])
        assert release == {("leases.coordination.k8s.io", ""): {"create"},
                           ("leases.coordination.k8s.io", installed.user.rsplit(":", 1)[1]): {"get", "update"}}
        assert own_rights(sandbox, installed, installed.namespace) == {**cluster, **release}
    else:
        assert own_rights(sandbox, installed, "default") == {**cluster, **namespaced}


Check = tuple[str, str, str | None, str, str, str]  # verb, resource, namespace, group, subresource, name


def allowed(sandbox: Cluster, installed: Installed, checks: list[Check]) -> dict[Check, bool]:
    """SubjectAccessReviews for the ServiceAccount (with the groups its token has), in one request."""
    groups = ["system:serviceaccounts", f"system:serviceaccounts:{installed.namespace}", "system:authenticated"]
    reviews = [{"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
        "user": installed.user, "groups": groups,
        "resourceAttributes": {k: v for k, v in zip(("verb", "resource", "namespace", "group", "subresource", "name"), check) if v}}}
        for check in checks]
    out = sandbox.kubectl("create", "-f", "-", "-o", "json", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": reviews})).stdout
    documents = [d for d in re.split(r"(?m)^(?=\{$)", out) if d.strip()]  # one JSON document per created object
    answers = [bool(json.loads(d)["status"].get("allowed")) for d in documents]
    assert len(answers) == len(checks)
    return dict(zip(checks, answers))


def test_service_account_cannot_do_anything_else(sandbox: Cluster, installed: Installed) -> None:
    ns, work, namespaced = installed.namespace, installed.work, installed.variant == "namespaced"
    rbac, admission, crds = "rbac.authorization.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io"
    may: list[Check] = [
        ("create", "pods", work, "", "", ""), ("create", "pods", work, "", "eviction", ""), ("patch", "nodes", None, "", "", ""),
        ("create", "nodes", None, "", "", ""), ("delete", "tasks", work, API_GROUP, "", ""),
        ("patch", "tasks", work, API_GROUP, "status", ""), ("update", "tasks", work, API_GROUP, "finalizers", ""),
        ("create", "containerinstances", None, API_GROUP, "", ""), ("create", "events", "default", "", "", ""),
        ("watch", "customresourcedefinitions", None, crds, "", ""),
        ("create", "configmaps", work, "", "", ""),  # FireLens configurations (writes narrowed by the children policy)
    ]
    may_not: list[Check] = [
        ("create", "clusterrolebindings", None, rbac, "", ""), ("create", "rolebindings", work, rbac, "", ""),
        ("escalate", "clusterroles", None, rbac, "", ""), ("bind", "clusterroles", None, rbac, "", ""),
        ("impersonate", "users", None, "", "", ""), ("impersonate", "serviceaccounts", work, "", "", ""),
        ("impersonate", "groups", None, "", "", ""),
        ("get", "secrets", work, "", "", ""), ("list", "secrets", ns, "", "", ""),
        ("create", "serviceaccounts", work, "", "token", ""), ("create", "pods", work, "", "exec", ""),
        ("create", "validatingwebhookconfigurations", None, admission, "", ""),
        ("patch", "mutatingwebhookconfigurations", None, admission, "", ""),
        ("create", "customresourcedefinitions", None, crds, "", ""),
        ("delete", "namespaces", None, "", "", ""), ("patch", "namespaces", None, "", "", ""),
        ("update", "nodes", None, "", "status", ""), ("patch", "deployments", work, "apps", "scale", ""),
        ("create", "jobs", work, "batch", "", ""), ("create", "taskdefinitions", work, API_GROUP, "", ""),
        ("create", "services", work, API_GROUP, "", ""), ("patch", "machinedeployments", None, "cluster.x-k8s.io", "scale", ""),
    ]
    if namespaced:
        may.append(("patch", "machinedeployments", "capi", "cluster.x-k8s.io", "scale", "workers"))
        may_not += [("create", "pods", "default", "", "", ""), ("create", "events", ns, "", "", ""),
                    ("create", "events", "kube-system", "", "", ""), ("patch", "events", "default", "", "", ""),
                    ("create", "deployments", "kube-system", "apps", "", "")]
    answers = allowed(sandbox, installed, may + may_not)
    assert [c for c in may if not answers[c]] == [], "the ServiceAccount lacks these rights"
    assert [c for c in may_not if answers[c]] == [], "the ServiceAccount has rights it must not have"


def service_account_kubeconfig(sandbox: Cluster, installed: Installed, path: Path) -> Path:
    """The sandbox's cluster with a token of the chart's ServiceAccount, in the release namespace as the
    operator's Pod is (the Events of cluster-scoped objects still go to `default`)."""
    token = sandbox.kubectl("create", "token", f"{installed.release}-ecs-operator", "-n", installed.namespace,
                            "--duration=1h").stdout.strip()
    config = json.loads(sandbox.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    config["users"] = [{"name": "operator", "user": {"token": token}}]
    config["contexts"][0]["context"].update(user="operator", namespace=installed.namespace)
    path.write_text(json.dumps(config))
    return path


def condition(obj: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), {})


def test_operator_scenario_with_the_service_account_token(
    sandbox: Cluster, installed: Installed, running_operator: Operator, tmp_path: Path
) -> None:
    """Task RUNNING, Service COMPLETED with its Kubernetes Service, a kwok node pool scaled out with
    its ContainerInstance, the workload policy from the chart's values, an EFS volume's claim and
    PersistentVolume: all as the ServiceAccount."""
    env = {**sandbox.env, "KUBECONFIG": str(service_account_kubeconfig(sandbox, installed, tmp_path / "sa.kubeconfig"))}
    operator = Operator(env=env, log_path=tmp_path / "operator.log")
    running_operator.stop()  # one operator at a time handles the objects
    try:
        operator.start(*installed.args, env=env)
        try:
            run_scenario(sandbox, installed)
            remove_pool(sandbox, *pool_names(installed), installed.work)  # deleting works too, with these rights
        finally:
            operator.stop()
        denied = [line for line in operator.log().splitlines()
                  if f'User "{installed.user}" cannot' in line or "ValidatingAdmissionPolicy" in line]  # RBAC, the chart's policies
        assert denied == [], "\n".join(denied[:5])
    finally:
        running_operator.start()
        remove_pool(sandbox, *pool_names(installed), installed.work, check=False)  # after a failure: the session's operator finishes it


def pool_names(installed: Installed) -> tuple[str, str]:
    """The scenario's (cluster-scoped) capacity provider and the ECS cluster it serves."""
    suffix = installed.release.split("-")[-1]
    return f"pool-{suffix}", f"cp-{suffix}"


def remove_pool(sandbox: Cluster, pool: str, cluster: str, work: str, check: bool = True) -> None:
    """POOL_SCENARIO's objects: Service, then Cluster, then CapacityProvider (ECS refuses them in another
    order); the pool's Nodes last."""
    for kind, name, namespace in (("services.ecs.operator.dev", "worker", work),
                                  ("clusters.ecs.operator.dev", cluster, work),
                                  ("capacityproviders.ecs.operator.dev", pool, None)):
        sandbox.kubectl("delete", kind, name, *(["-n", namespace] if namespace else []), "--ignore-not-found",
                        "--timeout=120s", check=check)
    sandbox.kubectl("delete", "nodes", "-l", f"{API_GROUP}/capacity-provider={pool}", "--timeout=60s", check=check)


def run_scenario(sandbox: Cluster, installed: Installed) -> None:
    ns = installed.work
    pool, cluster = pool_names(installed)
    apply(sandbox, ns, SCENARIO.format(pool=pool, cluster=cluster, namespace=ns))

    task = wait_for(lambda: (t := get(sandbox, "tasks.ecs.operator.dev", "nginx", ns)).get("status", {}).get("lastStatus") == "RUNNING" and t,
                    timeout=120, what="Task nginx RUNNING")
    assert task["status"]["taskDefinition"] == "nginx-demo:1"
    # an EFS volume: the claim (controlled by the Cluster) and its pre-bound PersistentVolume, within the
    # chart's rights and its volumes policy; the controller-manager binds them, so the task runs
    wait_for(lambda: get(sandbox, "tasks.ecs.operator.dev", "efs", ns).get("status", {}).get("lastStatus") == "RUNNING",
             timeout=120, what="Task efs RUNNING")
    [claim] = sandbox.kubectl_json("get", "pvc", "-n", ns)["items"]
    assert claim["metadata"]["ownerReferences"][0]["kind"] == "Cluster" and claim["status"]["phase"] == "Bound"
    assert sandbox.kubectl_json("get", "pv", claim["spec"]["volumeName"])["spec"]["mountOptions"] == ["iam"]
    web = wait_for(lambda: (s := get(sandbox, "services.ecs.operator.dev", "web", ns)).get("status", {}).get("rolloutState") == "COMPLETED" and s,
                   timeout=180, what="Service web COMPLETED")
    assert web["status"]["runningCount"] == 2
    kube_service = sandbox.kubectl_json("get", "service", "web", "-n", ns)
    assert [p["port"] for p in kube_service["spec"]["ports"]] == [80]

    worker = wait_for(lambda: (s := get(sandbox, "services.ecs.operator.dev", "worker", ns)).get("status", {}).get("runningCount") == 1 and s,
                      timeout=180, what="the capacity provider's node and its task")
    [node] = sandbox.kubectl_json("get", "nodes", "-l", f"{API_GROUP}/capacity-provider={pool}")["items"]
    instance = wait_for(lambda: (i := sandbox.kubectl_json("get", "containerinstances.ecs.operator.dev", node["metadata"]["name"]))
                        .get("status", {}).get("registeredResources") and i, timeout=60, what="the new node's ContainerInstance status")
    assert instance["status"]["clusterName"] == cluster and worker["status"]["clusterName"] == cluster

    # the chart's workloadPolicy.allowedFeatures=[hostPath] reached the operator; privileged is still refused
    host_path = wait_for(lambda: condition(get(sandbox, "taskdefinitions.ecs.operator.dev", "host-path", ns)), timeout=60, what="host-path handled")
    assert host_path["status"] == "True", host_path
    privileged = wait_for(lambda: condition(get(sandbox, "taskdefinitions.ecs.operator.dev", "privileged", ns)), timeout=60, what="privileged handled")
    assert privileged["status"] == "False" and "containerDefinitions[0].privileged" in privileged["message"]

    events = sandbox.kubectl_json("get", "events", "-n", ns)["items"]
    assert any(e["reason"] == "Registered" and e["involvedObject"]["name"] == "host-path" for e in events)
    # a cluster-scoped object's Events go to `default` without a namespace, where `kubectl describe` finds them
    scaling = wait_for(lambda: [e for e in sandbox.kubectl_json("get", "events", "-n", "default")["items"]
                                if e["involvedObject"]["kind"] == "CapacityProvider" and e["involvedObject"]["name"] == pool],
                       timeout=30, what="the capacity provider's scaling Event in default")
    assert "ScaleOut" in [e["reason"] for e in scaling] and not [e for e in scaling if "namespace" in e["involvedObject"]], scaling
    described = sandbox.kubectl("describe", "capacityproviders.ecs.operator.dev", pool).stdout.split("\nEvents:")[-1]
    assert "ScaleOut" in described, described
    ecs_events_in_release_namespace = [e for e in sandbox.kubectl_json("get", "events", "-n", installed.namespace)["items"]
                                       if e["involvedObject"].get("apiVersion", "").startswith(API_GROUP)]
    assert ecs_events_in_release_namespace == []


POOL_SCENARIO = """
apiVersion: ecs.operator.dev/v1alpha1
kind: CapacityProvider
metadata: {{name: {pool}}}
spec:
  autoScalingGroupProvider:
    managedScaling: {{status: ENABLED, targetCapacity: 100, instanceWarmupPeriod: 0}}
  kubernetes:
    allowedNamespaces: [{namespace}]
    nodePool: {{backend: kwok, instanceType: m5.large, minSize: 0, maxSize: 2}}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Cluster
metadata: {{name: {cluster}}}
spec:
  capacityProviders: [{pool}]
  defaultCapacityProviderStrategy: [{{capacityProvider: {pool}, weight: 1}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {{name: worker}}
spec:
  family: worker
  containerDefinitions: [{{name: worker, image: busybox, cpu: 512, memory: 1024}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Service
metadata: {{name: worker}}
spec: {{cluster: {cluster}, taskDefinition: worker, desiredCount: 1}}
"""
"""A service on a kwok capacity provider that starts empty, in its own ECS cluster."""

SCENARIO = POOL_SCENARIO + """---
apiVersion: ecs.operator.dev/v1alpha1
kind: Cluster
metadata: {{name: default}}
spec: {{clusterName: default}}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {{name: nginx-demo}}
spec:
  family: nginx-demo
  containerDefinitions: [{{name: nginx, image: nginx}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata: {{name: nginx}}
spec: {{cluster: default, taskDefinition: nginx-demo}}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {{name: efs-demo}}
spec:
  family: efs-demo
  volumes: [{{name: data, efsVolumeConfiguration: {{fileSystemId: fs-12345678, transitEncryption: ENABLED,
                                                   authorizationConfig: {{accessPointId: fsap-1, iam: ENABLED}}}}}}]
  containerDefinitions: [{{name: app, image: nginx, memory: 64, mountPoints: [{{sourceVolume: data, containerPath: /data}}]}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Task
metadata: {{name: efs}}
spec: {{cluster: default, taskDefinition: efs-demo}}
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {{name: web}}
spec:
  family: web
  requiresCompatibilities: [FARGATE]
  networkMode: awsvpc
  cpu: "256"
  memory: "512"
  containerDefinitions: [{{name: web, image: nginx, portMappings: [{{containerPort: 80}}]}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: Service
metadata: {{name: web}}
spec:
  cluster: default
  taskDefinition: web
  desiredCount: 2
  launchType: FARGATE
  networkConfiguration: {{awsvpcConfiguration: {{subnets: [subnet-1]}}}}
  loadBalancers: [{{targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1", containerName: web, containerPort: 80}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {{name: host-path}}
spec:
  family: host-path
  volumes: [{{name: logs, host: {{sourcePath: /var/log}}}}]
  containerDefinitions: [{{name: agent, image: busybox, memory: 64, mountPoints: [{{sourceVolume: logs, containerPath: /logs}}]}}]
---
apiVersion: ecs.operator.dev/v1alpha1
kind: TaskDefinition
metadata: {{name: privileged}}
spec:
  family: privileged
  containerDefinitions: [{{name: tool, image: busybox, memory: 64, privileged: true}}]
"""



def test_a_kwok_pool_without_the_charts_node_rights_is_a_condition(
    sandbox: Cluster, namespace: str, running_operator: Operator, tmp_path: Path
) -> None:
    """With the chart's default nodePools.kwok.enabled=false the operator may not create Nodes: a kwok
    provider's Ready condition says so and names the value to set; nothing crashes or loops in the log."""
    suffix = uuid.uuid4().hex[:5]
    release, release_ns, pool, cluster = f"nokwok-{suffix}", f"e2e-chart-{suffix}", f"nokwok-{suffix}", f"nk-{suffix}"
    sandbox.kubectl("create", "namespace", release_ns)
    operator: Operator | None = None
    try:
        sandbox.helm("install", release, str(CHART), "--namespace", release_ns, *set_args(SCENARIO_VALUES), "--wait", "--timeout", "180s")
        installed = Installed("no-kwok", release, release_ns, namespace, SCENARIO_VALUES)
        env = {**sandbox.env, "KUBECONFIG": str(service_account_kubeconfig(sandbox, installed, tmp_path / "sa.kubeconfig"))}
        operator = Operator(env=env, log_path=tmp_path / "operator.log")
        running_operator.stop()
        operator.start(env=env)
        apply(sandbox, namespace, POOL_SCENARIO.format(pool=pool, cluster=cluster, namespace=namespace))
        refused = wait_for(lambda: (c := condition(get(sandbox, "capacityproviders.ecs.operator.dev", pool, namespace))).get("reason") == "NodePoolRefused" and c,
                           timeout=90, what="the provider's Ready condition NodePoolRefused")
        assert refused["status"] == "False"
        assert refused["message"].startswith("kubernetes.nodePool.backend kwok: the API server refused a node-pool change: 403")
        assert "nodePools.kwok.enabled" in refused["message"]
        assert sandbox.kubectl_json("get", "nodes", "-l", f"{API_GROUP}/capacity-provider={pool}")["items"] == []
        remove_pool(sandbox, pool, cluster, namespace)  # with these rights too
        assert "Traceback" not in operator.log()
    finally:
        if operator is not None:
            operator.stop()
        running_operator.start()
        sandbox.kubectl("delete", "capacityproviders.ecs.operator.dev", pool, "--ignore-not-found", "--wait=false", check=False)
        sandbox.helm("uninstall", release, "--namespace", release_ns, "--wait", check=False)
        sandbox.kubectl("delete", "namespace", release_ns, "--wait=false", check=False)


def test_the_service_accounts_node_and_child_writes_are_narrowed(sandbox: Cluster, installed: Installed, tmp_path: Path) -> None:
    """RBAC lets the ServiceAccount patch every Node and create or delete Nodes (kwok); the chart's
    policies let its token change only the operator's own labels, annotations and taint and
    spec.unschedulable, create and delete only node-pool Nodes, and write children only when an
    ECS object controls them, never in kube-system. Refused writes leave the object as it was."""
    sa = {**sandbox.env, "KUBECONFIG": str(service_account_kubeconfig(sandbox, installed, tmp_path / "sa.kubeconfig"))}
    as_sa = lambda *args, input=None: sandbox.run(str(KUBECTL), *args, input=input, check=False, env=sa)  # noqa: E731
    suffix = uuid.uuid4().hex[:5]
    foreign, pooled = f"narrow-{suffix}", f"narrow-pool-{suffix}"
    taint = {"key": "e2e/narrow", "value": "true", "effect": "NoSchedule"}
    node = build_node(foreign, instance_type("m5.large"), "us-east-1a", labels={"team": "platform"}, taints=[taint])
    sandbox.kubectl("apply", "-f", "-", input=json.dumps(node))
    try:
        # in force once the first forbidden write is refused (a server-side dry run: nothing changes meanwhile)
        wait_for(lambda: as_sa("label", "node", foreign, "team=attacker", "--overwrite", "--dry-run=server").returncode != 0,
                 timeout=30, what="the node policy in force")
        # kwok makes the Node Ready; the controllers then take their not-ready taint off
        wait_for(lambda: (n := sandbox.kubectl_json("get", "node", foreign))["spec"].get("taints") == [taint]
                 and {c["type"]: c["status"] for c in n.get("status", {}).get("conditions", [])}.get("Ready") == "True",
                 timeout=60, what=f"{foreign} Ready with only its own taint")
        before = fingerprint(sandbox, "node", foreign)
        forbidden = {
            "a foreign label": ("label", "node", foreign, "team=attacker", "--overwrite"),
            "a new foreign label": ("label", "node", foreign, "node-role.kubernetes.io/control-plane="),
            "a foreign annotation": ("annotate", "node", foreign, "example.com/owner=attacker"),
            "spec.podCIDR": ("patch", "node", foreign, "-p", '{"spec": {"podCIDR": "10.99.0.0/24"}}'),
            "a foreign taint": ("patch", "node", foreign, "-p", '{"spec": {"taints": []}}'),
            "deleting a Node of no pool": ("delete", "node", foreign, "--wait=false"),
        }
        for what, args in forbidden.items():
            result = as_sa(*args)
            assert result.returncode != 0 and installed.user in result.stderr and "may " in result.stderr, (what, result.stderr)
        after = fingerprint(sandbox, "node", foreign)  # kwok's status updates may bump the resourceVersion
        assert (after["uid"], after["spec"], after["ownerReferences"]) == (before["uid"], before["spec"], before["ownerReferences"])
        assert after["labels"]["team"] == "platform" and "node-role.kubernetes.io/control-plane" not in after["labels"]
        assert "example.com/owner" not in (after["annotations"] or {})

        # what the operator does: its warming-up taint on and off (the other taints as they are), its
        # labels and annotations, cordoning for DRAINING and back
        warming = {"key": "ecs.operator.dev/warming-up", "value": "true", "effect": "NoSchedule"}
        taints = sandbox.kubectl_json("get", "node", foreign)["spec"]["taints"]
        allowed = [("patch", "node", foreign, "-p", json.dumps({"spec": {"taints": [*taints, warming]}})),
                   ("patch", "node", foreign, "-p", json.dumps({"spec": {"taints": taints}})),
                   ("label", "node", foreign, "ecs.operator.dev/draining=true"),
                   ("annotate", "node", foreign, "ecs.operator.dev/cordoned-for-draining=true"),
                   ("label", "node", foreign, "attributes.ecs.operator.dev/gpu=yes"),
                   ("label", "node", foreign, "memberof.ecs.operator.dev/0123456789abcdef0123=true"),
                   ("label", "node", foreign, "memberof.ecs.operator.dev/0123456789abcdef0123-"),
                   ("patch", "node", foreign, "-p", '{"spec": {"unschedulable": true}}'),
                   ("patch", "node", foreign, "-p", '{"spec": {"unschedulable": false}}'),
                   ("label", "node", foreign, "ecs.operator.dev/draining-")]
        for args in allowed:
            result = as_sa(*args)
            assert result.returncode == 0, (args, result.stderr)
        delete_machine = as_sa("annotate", "node", foreign, "cluster.x-k8s.io/delete-machine=yes")
        assert (delete_machine.returncode == 0) == bool(installed.values.get("nodePools.scaleTargets")), delete_machine.stderr

        no_pool = build_node(f"narrow-new-{suffix}", instance_type("m5.large"), "us-east-1a")
        created = as_sa("create", "-f", "-", input=json.dumps(no_pool))
        assert created.returncode != 0 and "may create only Nodes of its node pools" in created.stderr, created.stderr
        pool_node = build_node(pooled, instance_type("m5.large"), "us-east-1a", labels={f"{API_GROUP}/capacity-provider": "narrow"})
        assert as_sa("create", "-f", "-", input=json.dumps(pool_node)).returncode == 0
        deleted = as_sa("delete", "node", pooled)
        assert deleted.returncode == 0, deleted.stderr

        # children: only those an ECS object controls, never in kube-system
        sandbox.kubectl("create", "service", "clusterip", f"payments-{suffix}", "--tcp=80:80", "-n", installed.work)
        service_before = fingerprint(sandbox, "service", f"payments-{suffix}", installed.work)
        takeover = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"payments-{suffix}", "namespace": installed.work},
                    "spec": {"selector": {"app": "attacker"}}}  # as the operator writes: server-side apply with force
        hijack = as_sa("apply", "--server-side", "--force-conflicts", "--field-manager=ecs-operator", "-f", "-", input=json.dumps(takeover))
        assert hijack.returncode != 0 and "may update only services controlled by an ECS object" in hijack.stderr, hijack.stderr
        removal = as_sa("delete", "service", f"payments-{suffix}", "-n", installed.work, "--wait=false")
        assert removal.returncode != 0 and "may delete only services controlled by an ECS object" in removal.stderr, removal.stderr
        assert fingerprint(sandbox, "service", f"payments-{suffix}", installed.work) == service_before
        orphan = as_sa("create", "service", "clusterip", f"orphan-{suffix}", "--tcp=80:80", "-n", installed.work)
        assert orphan.returncode != 0 and "may create only services controlled by an ECS object" in orphan.stderr, orphan.stderr
        config = as_sa("create", "configmap", f"orphan-{suffix}", "--from-literal=a=b", "-n", installed.work)
        assert config.returncode != 0 and "may create only configmaps controlled by an ECS object" in config.stderr, config.stderr
        # PersistentVolumes (cluster-scoped): only the EFS volumes of its claims, e.g. never a hostPath one
        def volume(name: str, source: dict[str, Any]) -> str:
            return json.dumps({"apiVersion": "v1", "kind": "PersistentVolume",
                               "metadata": {"name": name, "labels": {f"{API_GROUP}/cluster-uid": "u"}},
                               "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteMany"],
                                        "persistentVolumeReclaimPolicy": "Retain", **source,
                                        "claimRef": {"namespace": installed.work, "name": f"claim-{suffix}"}}})
        host = volume(f"narrow-host-{suffix}", {"hostPath": {"path": "/"}})
        refusal = wait_for(lambda: (r := as_sa("create", "--dry-run=server", "-f", "-", input=host)).returncode != 0 and r,
                           timeout=30, what="the volumes policy in force")
        assert "may create only the EFS PersistentVolumes of its claims" in refusal.stderr, refusal.stderr
        efs = volume(f"narrow-efs-{suffix}", {"csi": {"driver": "efs.csi.aws.com", "volumeHandle": "fs-1"}})
        assert as_sa("create", "-f", "-", input=efs).returncode == 0
        assert as_sa("delete", "pv", f"narrow-efs-{suffix}", "--wait=false").returncode == 0
        # nor may its token point an ECS object at a Secret (it patches ECS objects, their metadata only)
        td = {"apiVersion": f"{API_GROUP}/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": f"narrow-{suffix}", "namespace": installed.work},
              "spec": {"family": "narrow", "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}]}}
        sandbox.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(td))
        td["spec"]["containerDefinitions"][0]["secrets"] = [{"name": "TOKEN", "valueFrom": "/admin/token"}]
        pointed = as_sa("apply", "--server-side", "--force-conflicts", "--field-manager=ecs-operator", "-f", "-", input=json.dumps(td))
        assert pointed.returncode != 0 and (f"spec.containerDefinitions[0].secrets[0].valueFrom: {installed.user} may not get secret "
                                            f"{installed.work}/admin-token") in pointed.stderr, pointed.stderr
        # a Pod of the operator's: only its pod-deletion-cost may change (draining); anyone else's Pod, nothing
        cost = "controller.kubernetes.io/pod-deletion-cost"
        for name, labels in ((f"ours-{suffix}", "app.kubernetes.io/managed-by=ecs-operator"), (f"theirs-{suffix}", "team=platform")):
            sandbox.kubectl("run", name, "--image=busybox", "-n", installed.work, f"--labels={labels}")
        ours_before = fingerprint(sandbox, "pod", f"ours-{suffix}", installed.work)
        marked = as_sa("annotate", "pod", f"ours-{suffix}", "-n", installed.work, f"{cost}=-2147483648")
        assert marked.returncode == 0, marked.stderr
        for args in (("annotate", "pod", f"ours-{suffix}", "-n", installed.work, "example.com/owner=attacker"),
                     ("label", "pod", f"ours-{suffix}", "-n", installed.work, "team=attacker"),
                     ("patch", "pod", f"ours-{suffix}", "-n", installed.work, "-p", '{"spec": {"activeDeadlineSeconds": 5}}'),
                     ("annotate", "pod", f"theirs-{suffix}", "-n", installed.work, f"{cost}=-2147483648")):
            refused = as_sa(*args)
            assert refused.returncode != 0 and "may update only pods controlled by an ECS object" in refused.stderr, (args, refused.stderr)
        ours_after = fingerprint(sandbox, "pod", f"ours-{suffix}", installed.work)
        assert ours_after["labels"] == ours_before["labels"] and "activeDeadlineSeconds" not in ours_after["spec"]
        assert (ours_after["annotations"] or {}) == {cost: "-2147483648"}
        assert cost not in (fingerprint(sandbox, "pod", f"theirs-{suffix}", installed.work)["annotations"] or {})
        pod = as_sa("run", f"narrow-{suffix}", "--image=busybox", "-n", "kube-system")
        assert pod.returncode != 0, pod.stderr
        if installed.variant == "clusterwide":  # RBAC grants Pods everywhere: the policy refuses kube-system
            assert "may not write pods in namespace kube-system" in pod.stderr, pod.stderr
    finally:
        sandbox.kubectl("delete", "node", foreign, pooled, f"narrow-new-{suffix}", "--ignore-not-found", "--wait=false", check=False)
