"""A tenant: an identity that may only use ECS objects in one namespace, as the security review's
attacker was (a Role on ecs.operator.dev, nothing else). Tests act as it through `tenant.kubectl`,
and compare foreign objects before and after an attack with `fingerprint`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ecs_objects import KUBECTL
from operator_fixtures import wait_for

from ecs_operator import API_GROUP

ECS_VERBS = ["create", "get", "list", "watch", "update", "patch", "delete"]


@dataclass
class Tenant:
    """kubectl as the tenant's ServiceAccount (a bearer token in a kubeconfig of its own)."""

    sandbox: Any
    namespace: str
    name: str
    env: dict[str, str]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120) -> Any:
        return self.sandbox.run(KUBECTL, *args, input=input, check=check, timeout=timeout, env=self.env)

    def apply(self, *objects: dict[str, Any], check: bool = True) -> Any:
        """`kubectl apply` of ECS objects in the tenant's namespace, as the tenant."""
        return self.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump_all(objects), check=check)


def make_tenant(sandbox: Any, namespace: str, tmp_path: Path, name: str = "tenant",
                extra_rules: list[dict[str, Any]] | None = None) -> Tenant:
    """A ServiceAccount with only ECS rights in `namespace` (plus `extra_rules`), and a kubeconfig for it."""
    rules = [{"apiGroups": [API_GROUP], "resources": ["*"], "verbs": ECS_VERBS}, *(extra_rules or [])]
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": f"{name}-ecs"}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": f"{name}-ecs"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{name}-ecs"},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))
    token = sandbox.kubectl("create", "token", name, "-n", namespace, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(Path(sandbox.kubeconfig).read_text())
    cluster = admin["clusters"][0]
    kubeconfig = tmp_path / f"{name}-{namespace}.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "clusters": [cluster],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": cluster["name"], "user": name, "namespace": namespace}}],
        "current-context": name,
    }))
    return Tenant(sandbox, namespace, name, {**sandbox.env, "KUBECONFIG": str(kubeconfig)})


def fingerprint(sandbox: Any, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    """What must not change when an attack fails: resourceVersion, uid, labels, annotations, ownerReferences, spec."""
    scope = ["-n", namespace] if namespace else []
    obj = json.loads(sandbox.kubectl("get", kind, name, *scope, "-o", "json").stdout)
    meta = obj["metadata"]
    return {"resourceVersion": meta["resourceVersion"], "uid": meta["uid"], "labels": meta.get("labels"),
            "annotations": meta.get("annotations"), "ownerReferences": meta.get("ownerReferences"),
            "spec": obj.get("spec"), "data": obj.get("data")}


@contextmanager
def grant(sandbox: Any, tenant: Tenant, rule: dict[str, Any], cluster_scoped: bool = False) -> Iterator[None]:
    """Give the tenant one more rule (a ClusterRole for cluster-scoped resources), in force when this
    returns (the tenant's own `kubectl auth can-i` says so), removed afterwards."""
    name = f"{tenant.name}-grant-{uuid.uuid4().hex[:5]}"
    kind, binding = ("ClusterRole", "ClusterRoleBinding") if cluster_scoped else ("Role", "RoleBinding")
    meta = {"name": name} if cluster_scoped else {"name": name, "namespace": tenant.namespace}
    objects = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "rules": [rule]},
               {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": binding, "metadata": meta,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": tenant.name, "namespace": tenant.namespace}]}]
    sandbox.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    group = rule["apiGroups"][0]
    target = rule["resources"][0] + (f".{group}" if group else "") + "".join(f"/{n}" for n in rule.get("resourceNames", [])[:1])
    wait_for(lambda: tenant.kubectl("auth", "can-i", rule["verbs"][0], target, "-n", tenant.namespace, check=False).returncode == 0,
             timeout=30, what=f"the tenant may {rule['verbs'][0]} {target}")
    try:
        yield
    finally:
        sandbox.kubectl("delete", "-f", "-", "--ignore-not-found", input=yaml.safe_dump_all(objects), check=False)
