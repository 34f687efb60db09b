"""ECS volumes through CSI on the real control plane (docs/volumes.md): the corpus's EFS task definition, an
FSx for Windows File Server volume and Docker volumes (the corpus's all-fields skeleton's shapes, its empty
placeholders filled in) and a configuredAtLaunch volume become Pods the API server admits, with the CSI drivers
named, and the claims they need exist, controlled by the ECS Cluster.

The sandbox has the CSIDriver objects and a StorageClass, but no CSI driver runs and kwok mounts nothing: the
API server validates and stores the Pods, PersistentVolumes and claims, kube-controller-manager binds the EFS
claim to its pre-bound volume (and makes the generic ephemeral claims), the scheduler places the Pods whose
claims are bound, and kwok then only marks their containers running. No file system is mounted and no volume
is provisioned (claims of the StorageClass stay Pending: no external-provisioner)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ecs_objects import apply_all, cluster, pods, task, wait_task
from operator_fixtures import wait_for

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
STORAGE_CLASS = "e2e-volumes-ebs"
FSX_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:fsx-admin-AbCdEf"
DRIVERS = ("efs.csi.aws.com", "smb.csi.k8s.io", "ebs.csi.aws.com")


@pytest.fixture(scope="module")
def csi(sandbox: Cluster) -> Iterator[None]:
    """The CSIDriver objects the drivers' own charts install (EFS: Persistent only; SMB: Ephemeral too), and an
    EBS StorageClass as the cluster's default."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "efs.csi.aws.com"},
         "spec": {"attachRequired": False}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "smb.csi.k8s.io"},
         "spec": {"attachRequired": False, "podInfoOnMount": True, "volumeLifecycleModes": ["Persistent", "Ephemeral"]}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "ebs.csi.aws.com"},
         "spec": {"attachRequired": True, "podInfoOnMount": False}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
         "metadata": {"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
         "provisioner": "ebs.csi.aws.com", "volumeBindingMode": "WaitForFirstConsumer", "parameters": {"type": "gp3"}},
    ]
    sandbox.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    yield
    sandbox.kubectl("delete", "storageclass", STORAGE_CLASS, "--wait=false", check=False)
    sandbox.kubectl("delete", "csidriver", *DRIVERS, "--wait=false", check=False)


def corpus_task_definition(file: str) -> dict[str, Any]:
    document = json.loads((CORPUS / file).read_text())
    return dict(document.get("taskDefinition") or document)


def skeleton_volume(**filled: Any) -> dict[str, Any]:
    """One volume kind of the corpus's all-fields skeleton (which puts every kind in one volume, with empty
    placeholders), its values given here."""
    (volume,) = corpus_task_definition("skeleton-all-fields-generate-cli-skeleton.json")["volumes"]
    ((kind, values),) = filled.items()
    assert set(values) <= set(volume[kind]) | {"authorizationConfig"}, f"{kind} fields not in the skeleton"
    return {kind: values}


def resource(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "TaskDefinition", "metadata": {"name": name},
            "spec": spec}


def the_pod(sandbox: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return wait_for(lambda: next(iter(pods(sandbox, namespace, name)), None), timeout=45, what=f"the Pod of task {name}")


def volumes_of(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in pod["spec"].get("volumes") or []}


def controller(obj: dict[str, Any]) -> tuple[str, str]:
    ref = next(r for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller"))
    return ref["kind"], ref["name"]


@pytest.mark.usefixtures("csi")
def test_the_corpus_efs_task_runs_on_a_claim_bound_to_an_efs_csi_volume_only_its_namespace_can_bind(
        sandbox: Cluster, namespace: str) -> None:
    spec = corpus_task_definition("firelens-efs-config-describe-output.json")
    family = spec["family"]
    apply_all(sandbox, namespace, cluster(), resource(family, spec), task("efs", family))
    pod = the_pod(sandbox, namespace, "efs")
    claim_name = volumes_of(pod)["firelens-conf"]["persistentVolumeClaim"]["claimName"]
    claim = sandbox.kubectl_json("get", "pvc", claim_name, "-n", namespace)
    assert controller(claim) == ("Cluster", "default")
    volume = sandbox.kubectl_json("get", "pv", claim["spec"]["volumeName"])
    assert volume["spec"]["csi"] == {"driver": "efs.csi.aws.com", "volumeHandle": "fs-c3c9bcbb:/",
                                     "volumeAttributes": {"encryptInTransit": "false"}}  # transitEncryption DISABLED
    assert volume["spec"]["claimRef"]["namespace"] == namespace and volume["spec"]["claimRef"]["name"] == claim_name
    # the controller-manager binds the pair; the scheduler places the Pod; kwok "runs" it (nothing mounted)
    wait_for(lambda: sandbox.kubectl_json("get", "pvc", claim_name, "-n", namespace)["status"].get("phase") == "Bound",
             timeout=45, what="the EFS claim bound")
    wait_task(sandbox, namespace, "efs", "RUNNING", timeout=60)

    # another namespace (tenant): its Service of the same task definition gets a claim and volume of its own, and
    # a claim there naming this namespace's volume never binds it (the volume is pre-bound to this claim)
    other = f"{namespace}-b"[:63]
    sandbox.kubectl("create", "namespace", other)
    try:
        apply_all(sandbox, other, cluster(), resource(family, spec),
                  {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": {"taskDefinition": family, "desiredCount": 1}})
        service_pod = wait_for(lambda: next(iter(sandbox.kubectl_json(
            "get", "pods", "-n", other, "-l", "ecs.operator.dev/service=web")["items"]), None), timeout=45,
            what="the service's Pod")
        assert volumes_of(service_pod)["firelens-conf"]["persistentVolumeClaim"] == {"claimName": claim_name}
        theirs = sandbox.kubectl_json("get", "pvc", claim_name, "-n", other)
        assert controller(theirs) == ("Cluster", "default") and theirs["spec"]["volumeName"] != volume["metadata"]["name"]
        assert sandbox.kubectl_json("get", "pv", theirs["spec"]["volumeName"])["spec"]["claimRef"]["namespace"] == other

        apply_all(sandbox, other, {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "steal"},
                                   "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "",
                                            "volumeName": volume["metadata"]["name"],
                                            "resources": {"requests": {"storage": "1Gi"}}}})
        wait_for(lambda: sandbox.kubectl_json("get", "pvc", claim_name, "-n", other)["status"].get("phase") == "Bound",
                 timeout=45, what="their own claim bound")  # the binder has had its turn
        assert sandbox.kubectl_json("get", "pvc", "steal", "-n", other)["status"].get("phase") == "Pending"
        assert sandbox.kubectl_json("get", "pv", volume["metadata"]["name"])["spec"]["claimRef"]["namespace"] == namespace
    finally:
        sandbox.kubectl("delete", "namespace", other, "--wait=false", check=False)

    # DeleteCluster once its task is gone: the claim goes with the Cluster, and the volume with them (Retain:
    # the file system itself is never touched)
    sandbox.kubectl("delete", "task", "efs", "-n", namespace)
    sandbox.kubectl("delete", "cluster", "default", "-n", namespace, "--wait=false")
    wait_for(lambda: sandbox.kubectl("get", "pv", volume["metadata"]["name"], check=False).returncode != 0,
             timeout=60, what="the EFS PersistentVolume deleted with its Cluster")


@pytest.mark.usefixtures("csi")
def test_an_fsx_windows_volume_is_an_inline_smb_csi_volume_with_the_namespace_secret(sandbox: Cluster, namespace: str) -> None:
    fsx = skeleton_volume(fsxWindowsFileServerVolumeConfiguration={
        "fileSystemId": "fs-0123456789abcdef0", "rootDirectory": "share",
        "authorizationConfig": {"credentialsParameter": FSX_SECRET_ARN, "domain": "corp.example.com"}})
    mount = {"sourceVolume": "winshare", "containerPath": "/data"}
    spec = {"family": "fsx", "volumes": [{"name": "winshare", **fsx}],
            "containerDefinitions": [{"name": "app", "image": "nginx:1.29", "memory": 128, "mountPoints": [mount]}]}
    apply_all(sandbox, namespace, cluster(), resource("fsx", spec), task("fsx", "fsx"))
    pod = the_pod(sandbox, namespace, "fsx")
    assert volumes_of(pod)["winshare"]["csi"] == {"driver": "smb.csi.k8s.io", "volumeAttributes": {
        "source": "//fs-0123456789abcdef0.corp.example.com/share", "secretName": "fsx-admin-abcdef",
        "mountOptions": "domain=corp.example.com"}}
    wait_task(sandbox, namespace, "fsx", "RUNNING", timeout=60)  # admitted and placed; no SMB mount happens


@pytest.mark.usefixtures("csi")
def test_docker_volumes_and_a_launch_volume_become_empty_dirs_and_claims(sandbox: Cluster, namespace: str) -> None:
    shared = skeleton_volume(dockerVolumeConfiguration={"scope": "shared", "autoprovision": True, "driver": "local",
                                                        "labels": {"team": "a"}})
    scratch = skeleton_volume(dockerVolumeConfiguration={"scope": "task", "driver": "local"})
    plugin = skeleton_volume(dockerVolumeConfiguration={"scope": "task", "driver": "rexray/ebs", "driverOpts": {"size": "5"}})
    volumes = [{"name": "cache", **shared}, {"name": "scratch", **scratch}, {"name": "blocks", **plugin},
               {"name": "db", "configuredAtLaunch": True}]
    spec = {"family": "docker", "volumes": volumes, "containerDefinitions": [
        {"name": "app", "image": "nginx:1.29", "memory": 128,
         "mountPoints": [{"sourceVolume": v["name"], "containerPath": f"/{v['name']}"} for v in volumes]}]}
    apply_all(sandbox, namespace, cluster(), resource("docker", spec),
              task("docker", "docker", volumeConfigurations=[{"name": "db", "managedEBSVolume": {"sizeInGiB": 20}}]))
    pod = the_pod(sandbox, namespace, "docker")
    got = volumes_of(pod)
    assert got["cache"]["persistentVolumeClaim"] == {"claimName": "cache"}
    assert got["scratch"]["emptyDir"] == {}
    assert got["blocks"]["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert got["db"]["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "20Gi"
    cache = sandbox.kubectl_json("get", "pvc", "cache", "-n", namespace)
    assert controller(cache) == ("Cluster", "default")
    assert cache["spec"]["storageClassName"] == STORAGE_CLASS  # the cluster's default StorageClass
    assert json.loads(cache["metadata"]["annotations"]["ecs.operator.dev/docker-volume-labels"]) == {"team": "a"}
    # the controller-manager makes the Pod's generic ephemeral claims, owned by the Pod
    pod_name = pod["metadata"]["name"]
    for volume, size in (("blocks", "1Gi"), ("db", "20Gi")):
        claim = wait_for(lambda v=volume: json.loads(sandbox.kubectl("get", "pvc", f"{pod_name}-{v}", "-n", namespace,
                                                                     "-o", "json", check=False).stdout or "null"),
                         timeout=45, what=f"the ephemeral claim {volume}")
        assert controller(claim) == ("Pod", pod_name)
        assert claim["spec"]["resources"]["requests"]["storage"] == size
    # a second task of the family uses the same shared claim (ECS: the same shared Docker volume)
    apply_all(sandbox, namespace, task("docker-2", "docker"))
    assert volumes_of(the_pod(sandbox, namespace, "docker-2"))["cache"]["persistentVolumeClaim"] == {"claimName": "cache"}
    assert [c["metadata"]["name"] for c in sandbox.kubectl_json("get", "pvc", "-n", namespace)["items"]
            if c["metadata"]["name"] == "cache"] == ["cache"]
