"""Who asked, checked at admission: the chart's ValidatingAdmissionPolicy refuses an ECS object that
names a ServiceAccount, Secret, ConfigMap, PersistentVolumeClaim or CapacityProvider its author may
not use himself, naming the field and the missing permission; the same object is admitted once the
author has that permission. The session's `crds` fixture installs the policy from the chart.
"""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.translate.names import environment_file_configmap, secret_ref
from ecs_operator.translate.volumes import volume_name
from operator_fixtures import wait_for
from tenant_support import Tenant, fingerprint, grant, make_tenant

if TYPE_CHECKING:
    from conftest import Cluster

NGINX = {"name": "web", "image": "nginx", "memory": 64}


def ecs(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def task_definition(name: str, container: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    return ecs("TaskDefinition", name, {"family": name, "containerDefinitions": [{**NGINX, **(container or {})}], **spec})


PLURALS = {"TaskDefinition": "taskdefinitions", "Task": "tasks", "Service": "services", "Cluster": "clusters"}


def refused(tenant: Tenant, obj: dict[str, Any], new: bool = True) -> str:
    """The admission message for the tenant's `kubectl apply` of `obj` (the policy may take a moment
    to be in force after the session installs it: a server-side dry run polls for it first)."""
    dry = lambda: tenant.kubectl("apply", "--dry-run=server", "-n", tenant.namespace, "-f", "-",  # noqa: E731
                                 input=yaml.safe_dump(obj), check=False)
    wait_for(lambda: dry().returncode != 0, timeout=30, what="the reference policy to refuse the dry run")
    result = tenant.apply(obj, check=False)
    assert result.returncode != 0, f"admitted: {obj}"
    if new:
        absent = tenant.sandbox.kubectl("get", f"{PLURALS[obj['kind']]}.{API_GROUP}", obj["metadata"]["name"],
                                        "-n", tenant.namespace, check=False)
        assert absent.returncode != 0, "a refused object was stored"
    return result.stderr


def admitted(tenant: Tenant, obj: dict[str, Any]) -> None:
    tenant.apply(obj)
    tenant.sandbox.kubectl("get", f"{PLURALS[obj['kind']]}.{API_GROUP}", obj["metadata"]["name"], "-n", tenant.namespace)


SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/DB_password-AbCdEf"
ENV_FILE = "arn:aws:s3:::config-bucket/app/web.env"
POOL = "tenant-pool"

# (id, object, field, "may not ..." text with {ns}, RBAC rule that allows it, cluster-scoped rule)
CASES = [
    ("service-account",
     task_definition("sa", kubernetes={"serviceAccountName": "admin-sa"}),
     "spec.kubernetes.serviceAccountName", "may not use serviceaccount {ns}/admin-sa (nor create pods in {ns})",
     {"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["admin-sa"], "verbs": ["use"]}, False),
    ("service-account-by-pods",
     task_definition("sa-pods", kubernetes={"serviceAccountName": "admin-sa"}),
     "spec.kubernetes.serviceAccountName", "may not use serviceaccount {ns}/admin-sa",
     {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, False),
    ("secret",
     task_definition("secret", {"secrets": [{"name": "DB_PASSWORD", "valueFrom": SECRET}]}),
     "spec.containerDefinitions[0].secrets[0].valueFrom", "may not get secret {ns}/prod-db-password-abcdef",
     {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["prod-db-password-abcdef"], "verbs": ["get"]}, False),
    ("environment-file",
     task_definition("env-file", {"environmentFiles": [{"value": ENV_FILE, "type": "s3"}]}),
     "spec.containerDefinitions[0].environmentFiles[0].value", "may not get configmap {ns}/config-bucket-app-web-env",
     {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["config-bucket-app-web-env"], "verbs": ["get"]}, False),
    ("firelens-s3-config",
     task_definition("router", {"firelensConfiguration": {"type": "fluentbit", "options": {
         "config-file-type": "s3", "config-file-value": "arn:aws:s3:::config-bucket/fluent/extra.conf"}}}),
     "spec.containerDefinitions[0].firelensConfiguration.options", "may not get configmap {ns}/config-bucket-fluent-extra-conf",
     {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["config-bucket-fluent-extra-conf"], "verbs": ["get"]}, False),
    ("repository-credentials",
     task_definition("registry", {"repositoryCredentials": {"credentialsParameter":
                                  "arn:aws:secretsmanager:us-east-1:000000000000:secret:registry"}}),
     "spec.containerDefinitions[0].repositoryCredentials.credentialsParameter", "may not get secret {ns}/registry",
     {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["registry"], "verbs": ["get"]}, False),
    ("log-secret-options",
     task_definition("logs", {"logConfiguration": {"logDriver": "splunk", "secretOptions": [
         {"name": "splunk-token", "valueFrom": "/logging/splunk_token"}]}}),
     "spec.containerDefinitions[0].logConfiguration.secretOptions[0].valueFrom", "may not get secret {ns}/logging-splunk-token",
     {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["logging-splunk-token"], "verbs": ["get"]}, False),
    ("shared-volume",
     task_definition("shared", {"mountPoints": [{"sourceVolume": "Shared_Data", "containerPath": "/data"}]},
                     volumes=[{"name": "Shared_Data", "dockerVolumeConfiguration": {"scope": "shared", "driver": "local"}}]),
     "spec.volumes[0].dockerVolumeConfiguration.scope", "may not get persistentvolumeclaim {ns}/shared-data",
     {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "resourceNames": ["shared-data"], "verbs": ["get"]}, False),
    ("fsx-credentials",
     task_definition("fsx", {"mountPoints": [{"sourceVolume": "share", "containerPath": "/data"}]},
                     volumes=[{"name": "share", "fsxWindowsFileServerVolumeConfiguration": {
                         "fileSystemId": "fs-0123456789abcdef0", "rootDirectory": "share",
                         "authorizationConfig": {"credentialsParameter": SECRET, "domain": "corp.example.com"}}}]),
     "spec.volumes[0].fsxWindowsFileServerVolumeConfiguration.authorizationConfig.credentialsParameter",
     "may not get secret {ns}/prod-db-password-abcdef",
     {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["prod-db-password-abcdef"], "verbs": ["get"]}, False),
    ("cluster-capacity-providers",
     ecs("Cluster", "pooled", {"capacityProviders": ["FARGATE", POOL],
                               "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]}),
     "spec.capacityProviders[1]", f"may not use capacityprovider {POOL}",
     {"apiGroups": [API_GROUP], "resources": ["capacityproviders"], "resourceNames": [POOL], "verbs": ["use"]}, True),
    ("service-strategy",
     ecs("Service", "web", {"taskDefinition": "web", "desiredCount": 0, "capacityProviderStrategy": [
         {"capacityProvider": POOL, "weight": 1}]}),
     "spec.capacityProviderStrategy[0].capacityProvider", f"may not use capacityprovider {POOL}",
     {"apiGroups": [API_GROUP], "resources": ["capacityproviders"], "resourceNames": [POOL], "verbs": ["use"]}, True),
    ("task-strategy",
     ecs("Task", "once", {"taskDefinition": "web", "capacityProviderStrategy": [{"capacityProvider": POOL, "weight": 1}]}),
     "spec.capacityProviderStrategy[0].capacityProvider", f"may not use capacityprovider {POOL}",
     {"apiGroups": [API_GROUP], "resources": ["capacityproviders"], "resourceNames": [POOL], "verbs": ["use"]}, True),
    ("task-override-environment-file",
     ecs("Task", "override", {"taskDefinition": "web", "overrides": {"containerOverrides": [
         {"name": "web", "environmentFiles": [{"value": ENV_FILE, "type": "s3"}]}]}}),
     "spec.overrides.containerOverrides[0].environmentFiles[0].value", "may not get configmap {ns}/config-bucket-app-web-env",
     {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["config-bucket-app-web-env"], "verbs": ["get"]}, False),
]


@pytest.mark.parametrize(("obj", "field", "denial", "rule", "cluster_scoped"),
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_a_reference_the_author_may_not_use_is_refused_until_granted(
    crds: None, sandbox: Cluster, namespace: str, tmp_path: Path, obj: dict[str, Any], field: str, denial: str,
    rule: dict[str, Any], cluster_scoped: bool,
) -> None:
    tenant = make_tenant(sandbox, namespace, tmp_path, name=f"tenant-{uuid.uuid4().hex[:5]}")
    message = refused(tenant, obj)
    assert f"{field}: {tenant.user} {denial.format(ns=namespace)}" in message, message
    with grant(sandbox, tenant, rule, cluster_scoped):
        admitted(tenant, obj)


def test_the_policys_names_are_the_translations_names(crds: None, sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    """Each convention of translate/names.py, on odd inputs: the Secret, ConfigMap and PVC names the
    refusals name, one at a time in the order of the spec, are those the operator's Pods would
    mount; granting exactly those admits the object. Names the policy cannot reproduce (hashed when
    too long, or not ASCII) need the right on all."""
    values = [
        "arn:aws:secretsmanager:us-east-1:000000000000:secret:Prod/Api_Key-XyZ123:json-key::",
        "arn:aws:ssm:us-east-1:000000000000:parameter/prod/db_password",
        "arn:aws:ssm:us-east-1:000000000000:parameter//.a/b",
        "arn:aws:kms:us-east-1:000000000000:key/Key:Alias_1",
        "arn:aws:secretsmanager:us-east-1",
        "/a./B__c.d-/-e/",
        "--weird..name__",
        "plain.Name.with.dots",
    ]
    files = ["arn:aws:s3:::bucket/dir.v2/app.env", "bucket_two/x.env"]
    container = {"secrets": [{"name": f"S{i}", "valueFrom": v} for i, v in enumerate(values)],
                 "environmentFiles": [{"value": f, "type": "s3"} for f in files]}
    obj = task_definition("names", container, volumes=[
        {"name": "Data_Vol-1", "dockerVolumeConfiguration": {"scope": "shared", "driver": "local"}}])
    tenant = make_tenant(sandbox, namespace, tmp_path)
    expected = [(f"containerDefinitions[0].secrets[{i}].valueFrom", "secret", secret_ref(v)[0]) for i, v in enumerate(values)]
    expected += [(f"containerDefinitions[0].environmentFiles[{i}].value", "configmap", environment_file_configmap(f))
                 for i, f in enumerate(files)]
    expected += [("volumes[0].dockerVolumeConfiguration.scope", "persistentvolumeclaim", volume_name("Data_Vol-1"))]
    assert len({name for _, _, name in expected}) == len(expected)
    with ExitStack() as grants:
        for field, kind, name in expected:
            message = refused(tenant, obj)
            assert f"spec.{field}: {tenant.user} may not get {kind} {namespace}/{name}" in message, (name, message)
            grants.enter_context(grant(sandbox, tenant, {"apiGroups": [""], "resources": [f"{kind}s"], "resourceNames": [name],
                                                         "verbs": ["get"]}))
        admitted(tenant, obj)

    long_name = "arn:aws:secretsmanager:us-east-1:000000000000:secret:" + "a" * 70
    for value in (long_name, "/\u212aey"):  # KELVIN SIGN: Python lowers it to an ASCII k
        odd = task_definition(f"odd-{uuid.uuid4().hex[:5]}", {"secrets": [{"name": "X", "valueFrom": value}]})
        message = refused(tenant, odd)
        assert f"secrets[0].valueFrom: {tenant.user} may not get secrets in {namespace} (" in message, message
        assert secret_ref(value)[0] not in message
        with grant(sandbox, tenant, {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret_ref(value)[0]],
                                     "verbs": ["get"]}):
            assert tenant.apply(odd, check=False).returncode != 0, "one name is not enough when the policy cannot compute it"
        with grant(sandbox, tenant, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}):
            admitted(tenant, odd)


def test_admins_pass_and_metadata_updates_name_nothing_new(crds: None, sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    """A cluster admin may name anything; a tenant may still annotate that object (the spec, and so
    what it names, is unchanged), but not rewrite its spec without the rights it names."""
    obj = task_definition("admins", {"secrets": [{"name": "TOKEN", "valueFrom": "/admin/token"}]},
                          kubernetes={"serviceAccountName": "admin-sa"})
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))
    tenant = make_tenant(sandbox, namespace, tmp_path)
    tenant.kubectl("annotate", f"taskdefinitions.{API_GROUP}", "admins", "-n", namespace, "team=payments")
    before = fingerprint(sandbox, f"taskdefinitions.{API_GROUP}", "admins", namespace)
    changed = {**obj, "spec": {**obj["spec"], "cpu": "256"}}
    message = refused(tenant, changed, new=False)
    assert f"spec.containerDefinitions[0].secrets[0].valueFrom: {tenant.user} may not get secret {namespace}/admin-token" in message
    assert fingerprint(sandbox, f"taskdefinitions.{API_GROUP}", "admins", namespace) == before



def test_many_names_are_refused_unless_the_author_may_use_them_all(crds: None, sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    """Authorization checks are costly in CEL: past 16 names to check, the object is refused (never
    admitted unchecked); whoever may get every Secret of the namespace, or a cluster admin, passes."""
    obj = task_definition("many", {"secrets": [{"name": f"S{i}", "valueFrom": f"/app/s{i}"} for i in range(25)]})
    sandbox.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump(obj))
    tenant = make_tenant(sandbox, namespace, tmp_path)
    message = refused(tenant, obj)
    assert "spec: names 25 objects its author must be allowed to use; the admission policy checks at most 16" in message, message
    with grant(sandbox, tenant, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}):
        admitted(tenant, obj)
