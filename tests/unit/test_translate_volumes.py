"""ECS volumes through CSI (translate/volumes.py, docs/volumes.md): EFS as a claim pre-bound to an EFS CSI
PersistentVolume, FSx for Windows as an inline SMB CSI volume, Docker volumes by scope and driver, and
configuredAtLaunch volumes from the launch's managedEBSVolume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.translate.pod import PodTranslation, Revision, pod_template
from ecs_operator.translate.volumes import CLAIM_ANNOTATION, StorageClasses, storage_objects

CLUSTER = {"apiVersion": "ecs.operator.dev/v1", "kind": "Cluster", "name": "default", "uid": "u-1"}


def translate(volume: dict[str, Any], *, launch: dict[str, Any] | None = None,
              storage: StorageClasses | None = None) -> PodTranslation:
    definition = RegisterTaskDefinition.model_validate({"family": "app", "volumes": [volume], "containerDefinitions": [
        {"name": "app", "image": "nginx", "memory": 64,
         "mountPoints": [{"sourceVolume": volume["name"], "containerPath": "/data"}]}]})
    return pod_template(Revision("app", 1, definition), for_service=False, launch_volumes=launch,
                        storage=storage or StorageClasses())


def pod_volume(t: PodTranslation) -> dict[str, Any]:
    (volume,) = t.template["spec"]["volumes"]
    return dict(volume)


def verdict(t: PodTranslation, path: str) -> tuple[str, str]:
    entry = t.report.overrides[path]
    return entry.verdict, entry.target


EFS = {"name": "shared", "efsVolumeConfiguration": {
    "fileSystemId": "fs-1234", "transitEncryption": "ENABLED", "transitEncryptionPort": 2049,
    "authorizationConfig": {"accessPointId": "fsap-9", "iam": "ENABLED"}}}


def test_efs_with_access_point_iam_and_tls_is_a_claim_bound_to_an_efs_csi_volume_only_it_can_bind() -> None:
    t = translate(EFS)
    (claim,) = t.claims
    assert pod_volume(t) == {"name": "shared", "persistentVolumeClaim": {"claimName": claim.name}}
    pv, pvc = storage_objects(t.claims, "team-a", CLUSTER)
    assert pv["kind"] == "PersistentVolume" and pvc["kind"] == "PersistentVolumeClaim"
    assert pv["spec"]["csi"] == {"driver": "efs.csi.aws.com", "volumeHandle": "fs-1234::fsap-9",
                                 "volumeAttributes": {"encryptInTransit": "true"}}
    assert pv["spec"]["mountOptions"] == ["iam", "tlsport=2049"]
    assert pv["spec"]["claimRef"] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "team-a",
                                      "name": claim.name}
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"  # Delete would have the driver remove the access point
    assert pv["metadata"]["annotations"][CLAIM_ANNOTATION] == f"team-a/{claim.name}"
    assert "ownerReferences" not in pv["metadata"]  # cluster-scoped: no namespaced owner, but its Cluster's UID
    assert pv["metadata"]["labels"]["ecs.operator.dev/cluster-uid"] == "u-1"
    assert pvc["metadata"]["namespace"] == "team-a" and pvc["spec"]["volumeName"] == pv["metadata"]["name"]
    assert pvc["spec"]["storageClassName"] == "" and pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["metadata"]["ownerReferences"] == [{**CLUSTER, "controller": True}]
    assert verdict(t, "volumes[0].efsVolumeConfiguration.transitEncryption")[0] == "exact"
    assert verdict(t, "volumes[0].efsVolumeConfiguration.authorizationConfig.iam")[0] == "approximated"


def test_efs_volumes_of_other_namespaces_or_clusters_are_other_persistent_volumes() -> None:
    claims = translate(EFS).claims
    names = {storage_objects(claims, ns, {**CLUSTER, "uid": uid})[0]["metadata"]["name"]
             for ns, uid in [("team-a", "u-1"), ("team-b", "u-1"), ("team-a", "u-2")]}
    assert len(names) == 3


def test_efs_at_ecs_defaults_mounts_the_root_without_tls_as_ecs_does() -> None:
    t = translate({"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}})
    pv, _ = storage_objects(t.claims, "ns", CLUSTER)
    assert pv["spec"]["csi"]["volumeHandle"] == "fs-1"
    assert pv["spec"]["csi"]["volumeAttributes"] == {"encryptInTransit": "false"}  # the driver's default is TLS
    assert "mountOptions" not in pv["spec"]


def test_efs_root_directory_is_the_volume_handle_path_and_another_configuration_another_claim() -> None:
    root = translate({"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/logs"}})
    pv, _ = storage_objects(root.claims, "ns", CLUSTER)
    assert pv["spec"]["csi"]["volumeHandle"] == "fs-1:/logs"
    plain = translate({"name": "data", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}})
    assert root.claims[0].name != plain.claims[0].name


FSX = {"name": "winshare", "fsxWindowsFileServerVolumeConfiguration": {
    "fileSystemId": "fs-0123", "rootDirectory": "\\share\\app",
    "authorizationConfig": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:000000000000:secret:fsx-creds-AbCdEf",
                            "domain": "corp.example.com"}}}


def test_fsx_is_an_inline_smb_csi_volume_with_the_secret_the_secrets_convention_names() -> None:
    t = translate(FSX)
    assert pod_volume(t) == {"name": "winshare", "csi": {"driver": "smb.csi.k8s.io", "volumeAttributes": {
        "source": "//fs-0123.corp.example.com/share/app", "secretName": "fsx-creds-abcdef",
        "mountOptions": "domain=corp.example.com"}}}
    assert t.claims == []
    assert verdict(t, "volumes[0].fsxWindowsFileServerVolumeConfiguration.authorizationConfig.credentialsParameter") == (
        "approximated", "csi.volumeAttributes.secretName fsx-creds-abcdef")


def test_task_scoped_local_docker_volume_is_an_empty_dir_and_tmpfs_one_in_memory() -> None:
    assert pod_volume(translate({"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}})) == {
        "name": "scratch", "emptyDir": {}}
    tmpfs = translate({"name": "scratch", "dockerVolumeConfiguration": {"driverOpts": {"type": "tmpfs", "device": "tmpfs"}}})
    assert pod_volume(tmpfs) == {"name": "scratch", "emptyDir": {"medium": "Memory"}}


def test_task_scoped_volume_of_a_mapped_driver_is_a_generic_ephemeral_claim_of_its_storage_class() -> None:
    t = translate({"name": "scratch", "dockerVolumeConfiguration": {
        "scope": "task", "driver": "rexray/ebs", "driverOpts": {"volumetype": "gp3"}, "labels": {"team": "a"}}},
        storage=StorageClasses(docker={"rexray/ebs": "gp3"}))
    template = pod_volume(t)["ephemeral"]["volumeClaimTemplate"]
    assert template["spec"]["storageClassName"] == "gp3"
    assert template["metadata"]["annotations"] == {
        "ecs.operator.dev/docker-volume-labels": '{"team": "a"}',
        "ecs.operator.dev/docker-volume-driver-opts": '{"volumetype": "gp3"}'}
    assert verdict(t, "volumes[0].dockerVolumeConfiguration.driver") == ("approximated", "StorageClass gp3")
    # an unmapped driver other than local: the cluster's default StorageClass
    other = translate({"name": "scratch", "dockerVolumeConfiguration": {"scope": "task", "driver": "netapp"}})
    assert "storageClassName" not in pod_volume(other)["ephemeral"]["volumeClaimTemplate"]["spec"]


def test_shared_docker_volume_is_the_namespace_claim_named_after_it_created_only_with_autoprovision() -> None:
    shared = {"scope": "shared", "autoprovision": True, "driver": "local"}
    auto = translate({"name": "Cache", "dockerVolumeConfiguration": shared}, storage=StorageClasses(docker={"local": "standard"}))
    assert pod_volume(auto) == {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}
    (pvc,) = storage_objects(auto.claims, "team-a", CLUSTER)
    assert (pvc["metadata"]["name"], pvc["spec"]["storageClassName"]) == ("cache", "standard")
    assert pvc["metadata"]["ownerReferences"][0]["kind"] == "Cluster"
    manual = translate({"name": "cache", "dockerVolumeConfiguration": {"scope": "shared"}})
    assert storage_objects(manual.claims, "team-a", CLUSTER) == []
    assert verdict(manual, "volumes[0].dockerVolumeConfiguration.autoprovision")[0] == "approximated"


def test_configured_at_launch_volume_takes_size_and_snapshot_from_the_launch_and_the_ebs_storage_class() -> None:
    t = translate({"name": "db", "configuredAtLaunch": True},
                  launch={"db": {"sizeInGiB": 50, "volumeType": "gp3", "snapshotId": "snap-0abc"}},
                  storage=StorageClasses(ebs="ebs-gp3"))
    spec = pod_volume(t)["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert spec == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "50Gi"}},
                    "storageClassName": "ebs-gp3",
                    "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap-0abc"}}
    bare = translate({"name": "db", "configuredAtLaunch": True})  # no volumeConfigurations: ECS's smallest size
    assert pod_volume(bare)["ephemeral"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "1Gi"


def test_operator_flags_map_docker_drivers_and_the_ebs_storage_class() -> None:
    import argparse

    from ecs_operator.runner import add_arguments, settings_from

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    settings = settings_from(parser.parse_args(["--docker-volume-storage-class", "rexray/ebs=gp3",
                                                "--docker-volume-storage-class", "local=", "--ebs-storage-class", "io2"]))
    assert settings.storage_classes == StorageClasses(docker={"rexray/ebs": "gp3", "local": ""}, ebs="io2")


def test_convert_to_k8s_writes_the_efs_claim_and_with_a_namespace_its_pre_bound_volume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ecs_operator.cli import main

    definition = {"family": "app", "volumes": [EFS], "containerDefinitions": [
        {"name": "app", "image": "nginx", "memory": 64, "mountPoints": [{"sourceVolume": "shared", "containerPath": "/d"}]}]}
    (tmp_path / "td.json").write_text(json.dumps(definition))
    (tmp_path / "run.json").write_text(json.dumps({"taskDefinition": "app"}))
    files = [str(tmp_path / "td.json"), str(tmp_path / "run.json")]

    assert main(["convert", "--to", "k8s", "--report", "none", "-n", "team-a", *files]) == 0
    objects = {o["kind"]: o for o in yaml.safe_load_all(capsys.readouterr().out) if o}
    pv, pvc, pod = objects["PersistentVolume"], objects["PersistentVolumeClaim"], objects["Pod"]
    assert "namespace" not in pv["metadata"] and pv["spec"]["claimRef"]["namespace"] == "team-a"
    assert pvc["spec"]["volumeName"] == pv["metadata"]["name"] and "ownerReferences" not in pvc["metadata"]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]

    assert main(["convert", "--to", "k8s", "--report", "text", *files]) == 0
    out, err = capsys.readouterr()
    kinds = [o["kind"] for o in yaml.safe_load_all(out) if o]
    assert "PersistentVolumeClaim" in kinds and "PersistentVolume" not in kinds  # no namespace to pre-bind it to
    assert "convert with --namespace to get the PersistentVolume" in err


def test_a_local_driver_nfs_volume_is_an_nfs_volume_and_its_labels_are_reported_lost() -> None:
    t = translate({"name": "share", "dockerVolumeConfiguration": {
        "scope": "task", "driver": "local", "labels": {"team": "a"},
        "driverOpts": {"type": "nfs", "o": "addr=10.0.0.5,rw,nfsvers=4", "device": ":/exports/share"}}})
    assert pod_volume(t) == {"name": "share", "nfs": {"server": "10.0.0.5", "path": "/exports/share"}}
    assert verdict(t, "volumes[0].dockerVolumeConfiguration.driverOpts") == ("approximated", "nfs volume")
    assert verdict(t, "volumes[0].dockerVolumeConfiguration.labels")[0] == "unsupported"
