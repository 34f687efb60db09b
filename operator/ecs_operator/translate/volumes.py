"""Task volumes, mountPoints and volumesFrom, and the volumes linuxParameters imply.

ECS's file systems become CSI volumes (docs/volumes.md says why each takes the form it does):
- EFS: a PersistentVolumeClaim of the namespace, pre-bound to a PersistentVolume of the EFS CSI driver
  (`efs.csi.aws.com` declares no Ephemeral lifecycle mode, so no inline `csi:` volume);
- FSx for Windows File Server: an inline `csi:` volume of the SMB CSI driver (`smb.csi.k8s.io`, which
  declares Ephemeral), credentials from the namespace's Secret;
- Docker volumes: task scope as an emptyDir (`local` driver) or a generic ephemeral volume of the
  StorageClass mapped to the driver; shared scope as a PersistentVolumeClaim named after the volume;
- configuredAtLaunch: a generic ephemeral volume sized from the launch's managedEBSVolume.
The claims that outlive a Pod are returned as `SharedClaim`s; `storage_objects` makes their objects once
the namespace and the owner are known.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecs_operator import API_GROUP, labels as L
from ecs_operator.models import ContainerDefinition, RegisterTaskDefinition
from ecs_operator.models.task_definition import (
    DockerVolumeConfiguration,
    EFSVolumeConfiguration,
    FSxWindowsFileServerVolumeConfiguration,
)

from .fidelity import FidelityReport
from .names import dns_label, dns_subdomain, secret_ref

EFS_DRIVER = "efs.csi.aws.com"
SMB_DRIVER = "smb.csi.k8s.io"
EBS_DRIVER = "ebs.csi.aws.com"
LOCAL_DRIVER = "local"
CLAIM_SIZE = "1Gi"
"""What a claim asks for where ECS names no size: EFS is elastic (the CSI driver ignores capacity), Docker
volumes have none."""
CLAIM_ANNOTATION = f"{API_GROUP}/claim"
"""PersistentVolume annotation: the namespace/name of the only claim that may bind it."""
CLUSTER_UID_LABEL = f"{API_GROUP}/cluster-uid"
"""PersistentVolume label: the UID of the ECS Cluster whose claim it serves (deleted with that Cluster)."""
DOCKER_LABELS_ANNOTATION = f"{API_GROUP}/docker-volume-labels"
DOCKER_DRIVER_OPTS_ANNOTATION = f"{API_GROUP}/docker-volume-driver-opts"


@dataclass(frozen=True)
class StorageClasses:
    """The operator's storage mapping (chart values `ecs.dockerVolumeStorageClasses`, `ecs.ebsStorageClass`)."""

    docker: Mapping[str, str] = field(default_factory=dict)
    """Docker volume driver -> StorageClass of its claims ("" or absent: the cluster's default). The `local`
    driver, unless listed, is an emptyDir for task-scoped volumes."""
    ebs: str = ""
    """StorageClass of configuredAtLaunch (managedEBSVolume) claims ("": the cluster's default)."""


NO_STORAGE_CLASSES = StorageClasses()
"""No mapping: the `local` driver is an emptyDir, everything else the cluster's default StorageClass."""


@dataclass(frozen=True)
class SharedClaim:
    """A PersistentVolumeClaim of the namespace that Pods name (not one per Pod)."""

    name: str
    create: bool
    """False: it must exist (a shared Docker volume without autoprovision); True: created when missing."""
    spec: dict[str, Any]
    annotations: dict[str, str] = field(default_factory=dict)
    csi: dict[str, Any] | None = None
    """The PersistentVolume source to pre-bind it to (EFS)."""
    mount_options: tuple[str, ...] = ()
    """That PersistentVolume's mountOptions."""


def volume_name(ecs_name: str) -> str:
    return dns_label(ecs_name)


def task_volumes(
    td: RegisterTaskDefinition, report: FidelityReport, launch: Mapping[str, Mapping[str, Any]],
    classes: StorageClasses = NO_STORAGE_CLASSES,
) -> tuple[list[dict[str, Any]], list[SharedClaim]]:
    """(Pod volumes, the namespace's claims they name). `launch`: volume name -> the launch's managedEBSVolume."""
    out: list[dict[str, Any]] = []
    claims: list[SharedClaim] = []
    for i, v in enumerate(td.volumes or []):
        path = f"volumes[{i}]"
        vol: dict[str, Any] = {"name": volume_name(v.name)}
        if v.host is not None and v.host.sourcePath:
            vol["hostPath"] = {"path": v.host.sourcePath, "type": "DirectoryOrCreate"}
        elif v.dockerVolumeConfiguration is not None:
            claims += _docker(v.name, v.dockerVolumeConfiguration, vol, f"{path}.dockerVolumeConfiguration", classes, report)
        elif v.efsVolumeConfiguration is not None:
            claim = efs_claim(v.name, v.efsVolumeConfiguration, f"{path}.efsVolumeConfiguration", report)
            vol["persistentVolumeClaim"] = {"claimName": claim.name}
            claims.append(claim)
        elif v.fsxWindowsFileServerVolumeConfiguration is not None:
            vol["csi"] = fsx_csi(v.fsxWindowsFileServerVolumeConfiguration, f"{path}.fsxWindowsFileServerVolumeConfiguration",
                                 report)
        elif v.configuredAtLaunch:
            vol["ephemeral"] = {"volumeClaimTemplate": {"spec": launch_claim_spec(launch.get(v.name) or {}, classes)}}
            _report_launch(path, launch.get(v.name) or {}, classes, report)
        elif v.s3filesVolumeConfiguration is not None:
            vol["emptyDir"] = {}
            report.unsupported(path, "no Kubernetes volume type for this file system: an empty directory stands in")
        else:
            vol["emptyDir"] = {}  # `host: {}` or a bare name: Docker-managed scratch space
        if vol["name"] != v.name:
            report.approximated(f"{path}.name", "volumes[].name", f"renamed to {vol['name']!r} (DNS label)")
        out.append(vol)
    return out, claims


def efs_claim(name: str, efs: EFSVolumeConfiguration, path: str, report: FidelityReport) -> SharedClaim:
    """The claim of an EFS volume: one per namespace and configuration (its name carries a hash of it),
    pre-bound to a PersistentVolume of the EFS CSI driver: volumeHandle `fs-id:path:access-point`."""
    auth = efs.authorizationConfig
    access_point = auth.accessPointId if auth is not None and auth.accessPointId else ""
    root = "" if access_point else (efs.rootDirectory or "")
    handle = ":".join([efs.fileSystemId, root, access_point]).rstrip(":")
    tls = efs.transitEncryption == "ENABLED"
    options = ["iam"] if auth is not None and auth.iam == "ENABLED" else []
    if efs.transitEncryptionPort:
        options.append(f"tlsport={efs.transitEncryptionPort}")
    csi: dict[str, Any] = {"driver": EFS_DRIVER, "volumeHandle": handle,
                           "volumeAttributes": {"encryptInTransit": "true" if tls else "false"}}
    digest = hashlib.sha256(json.dumps([csi, options], sort_keys=True).encode()).hexdigest()[:8]
    claim = f"efs-{dns_label(name, 44)}-{digest}"
    report.exact(path, f"persistentVolumeClaim {claim} -> PersistentVolume (csi {EFS_DRIVER}, volumeHandle {handle})",
                 "a claim of the namespace pre-bound to a PersistentVolume only it can bind; the EFS CSI driver mounts")
    report.exact(f"{path}.transitEncryption", f"csi.volumeAttributes.encryptInTransit={'true' if tls else 'false'}",
                 "set either way: the driver's own default is TLS")
    if efs.transitEncryptionPort:
        report.exact(f"{path}.transitEncryptionPort", f"mountOptions tlsport={efs.transitEncryptionPort}", "")
    if auth is not None and auth.iam == "ENABLED":
        report.approximated(f"{path}.authorizationConfig.iam", "mountOptions iam",
                            "the mount authorizes with the EFS CSI node's IAM identity, not the task role")
    elif auth is not None and auth.iam:
        report.exact(f"{path}.authorizationConfig.iam", "(no iam mount option)", "DISABLED: no IAM authorization")
    return SharedClaim(
        name=claim, create=True,
        spec={"accessModes": ["ReadWriteMany"], "storageClassName": "", "resources": {"requests": {"storage": CLAIM_SIZE}}},
        csi=csi, mount_options=tuple(options),
    )


def fsx_csi(fsx: FSxWindowsFileServerVolumeConfiguration, path: str, report: FidelityReport) -> dict[str, Any]:
    """An inline SMB CSI volume: `//<fileSystemId>.<domain>/<rootDirectory>`, credentials from the Secret the
    secrets convention names for credentialsParameter (keys `username` and `password`)."""
    auth = fsx.authorizationConfig
    share = fsx.rootDirectory.replace("\\", "/").strip("/")
    source = f"//{fsx.fileSystemId}.{auth.domain}/{share}"
    secret = secret_ref(auth.credentialsParameter)[0]
    report.approximated(path, f"csi {SMB_DRIVER} source {source}",
                        "ECS looks the file system's DNS name up; here <fileSystemId>.<domain> must resolve to it "
                        "(a DNS alias in the domain)")
    report.approximated(f"{path}.authorizationConfig.credentialsParameter", f"csi.volumeAttributes.secretName {secret}",
                        "a Secret of this name in the task's namespace must hold the keys username and password")
    report.exact(f"{path}.authorizationConfig.domain", "mountOptions domain=", "")
    return {"driver": SMB_DRIVER, "volumeAttributes": {"source": source, "secretName": secret,
                                                       "mountOptions": f"domain={auth.domain}"}}


def _docker(name: str, dvc: DockerVolumeConfiguration, vol: dict[str, Any], path: str, classes: StorageClasses,
            report: FidelityReport) -> list[SharedClaim]:
    """Task scope: an emptyDir (the `local` driver) or a generic ephemeral volume of the driver's StorageClass;
    shared scope: the namespace's PersistentVolumeClaim named after the volume (created when autoprovision)."""
    driver = dvc.driver or LOCAL_DRIVER
    mapped = driver in classes.docker
    storage_class = classes.docker.get(driver) or ""
    annotations = {k: json.dumps(v, sort_keys=True) for k, v in
                   ((DOCKER_LABELS_ANNOTATION, dvc.labels), (DOCKER_DRIVER_OPTS_ANNOTATION, dvc.driverOpts)) if v}
    where = f"StorageClass {storage_class}" if storage_class else "the cluster's default StorageClass"
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": CLAIM_SIZE}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    if dvc.driver:
        report.approximated(f"{path}.driver", where if mapped or driver != LOCAL_DRIVER else "emptyDir",
                            "Docker volume drivers are StorageClasses in Kubernetes (operator setting "
                            "--docker-volume-storage-class DRIVER=CLASS)")
    if dvc.scope == "shared" or driver != LOCAL_DRIVER or mapped:
        for key in ("labels", "driverOpts"):
            if getattr(dvc, key):
                report.approximated(f"{path}.{key}", "claim annotation",
                                    "kept as an annotation of the claim; a StorageClass's parameters carry driver options")
    if dvc.scope == "shared":
        claim = dns_label(name)
        vol["persistentVolumeClaim"] = {"claimName": claim}
        report.approximated(f"{path}.scope", f"persistentVolumeClaim {claim}",
                            "one claim of the namespace, kept after the task stops as a shared Docker volume is")
        if dvc.autoprovision:
            report.exact(f"{path}.autoprovision", f"PersistentVolumeClaim {claim} ({where})",
                         "created when missing, controlled by the ECS Cluster; an existing claim is used as it is")
        else:
            report.approximated(f"{path}.autoprovision", f"PersistentVolumeClaim {claim}",
                                "not provisioned: a PersistentVolumeClaim of this name must exist")
        return [SharedClaim(name=claim, create=bool(dvc.autoprovision), spec=spec, annotations=annotations)]
    if driver == LOCAL_DRIVER and not mapped:
        _local(dvc, vol, path, report)
        return []
    vol["ephemeral"] = {"volumeClaimTemplate": {"metadata": {"annotations": annotations}, "spec": spec}
                        if annotations else {"spec": spec}}
    report.exact(f"{path}.scope", f"generic ephemeral volume ({where})",
                 "a claim created with the task's Pod and deleted with it, as a task-scoped volume")
    return []


def _local(dvc: DockerVolumeConfiguration, vol: dict[str, Any], path: str, report: FidelityReport) -> None:
    """A task-scoped volume of Docker's local driver: a directory of the task (emptyDir); its driverOpts
    `type: tmpfs` in memory, `type: nfs` (`o: addr=HOST,...`, `device: :/path`) an NFS mount."""
    opts = dvc.driverOpts or {}
    kind = opts.get("type", "")
    server = next((o[len("addr="):] for o in opts.get("o", "").split(",") if o.startswith("addr=")), "")
    if kind in ("nfs", "nfs4") and server:
        vol["nfs"] = {"server": server, "path": opts.get("device", "/").split(":", 1)[-1] or "/"}
        report.approximated(f"{path}.driverOpts", "nfs volume", "type, addr and device are the NFS volume's server and "
                            "path; the other mount options (o) are the node's NFS client's defaults")
        report.exact(f"{path}.scope", "nfs volume", "mounted for the task's Pod and unmounted with it")
    else:
        vol["emptyDir"] = {"medium": "Memory"} if kind == "tmpfs" else {}
        report.exact(f"{path}.scope", "emptyDir", "created with the task and removed with it, as a task-scoped local volume")
        if kind == "tmpfs":
            report.approximated(f"{path}.driverOpts", "emptyDir medium Memory",
                                "type tmpfs is a memory-backed emptyDir; the other options (o, device) are not applied")
        elif opts:
            report.approximated(f"{path}.driverOpts", "emptyDir", "the local driver's options are not applied")
    if dvc.labels:
        report.unsupported(f"{path}.labels", "an emptyDir or NFS volume carries no labels")


def launch_claim_spec(ebs: Mapping[str, Any], classes: StorageClasses) -> dict[str, Any]:
    """The claim of a configuredAtLaunch volume from the launch's managedEBSVolume (sizeInGiB, 1 GiB without
    one), of the EBS StorageClass; snapshotId as a VolumeSnapshot data source of that name."""
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": f"{int(ebs.get('sizeInGiB') or 1)}Gi"}}}
    if classes.ebs:
        spec["storageClassName"] = classes.ebs
    if ebs.get("snapshotId"):
        spec["dataSource"] = {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                              "name": dns_subdomain(str(ebs["snapshotId"]))}
    return spec


def _report_launch(path: str, ebs: Mapping[str, Any], classes: StorageClasses, report: FidelityReport) -> None:
    where = f"StorageClass {classes.ebs}" if classes.ebs else "the cluster's default StorageClass"
    report.approximated(f"{path}.configuredAtLaunch", f"generic ephemeral volume ({where})",
                        f"sizeInGiB is the claim's size; volumeType, iops, throughput, encrypted and kmsKeyId are the "
                        f"StorageClass's (the {EBS_DRIVER} parameters), not set per task"
                        + ("; snapshotId: a VolumeSnapshot of that name must exist" if ebs.get("snapshotId") else ""))


def storage_objects(claims: list[SharedClaim], namespace: str, owner: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims to create when missing (controlled by `owner`, the ECS Cluster; None: for
    `convert`, no owner) and, for EFS, the PersistentVolume each is pre-bound to (none without a namespace
    to bind to). The volume's claimRef names the claim's namespace and name, so no
    other claim (another tenant's included) can bind it; its name hashes the namespace, the claim and the owner's
    UID, so a Cluster created again gets volumes of its own (handlers/storage.py deletes them with the Cluster).
    Claims that must exist already make nothing."""
    out: list[dict[str, Any]] = []
    for claim in {c.name: c for c in claims if c.create}.values():
        labels = {L.MANAGED_BY: L.MANAGED_BY_VALUE}
        meta: dict[str, Any] = {"name": claim.name, "labels": labels}
        if namespace:
            meta["namespace"] = namespace
        if owner is not None:
            # no blockOwnerDeletion: it would need update on clusters/finalizers, and nothing waits for the claims
            meta["ownerReferences"] = [{**owner, "controller": True}]
        if claim.annotations:
            meta["annotations"] = dict(claim.annotations)
        spec = dict(claim.spec)
        uid = str((owner or {}).get("uid", ""))
        if claim.csi is not None and namespace:
            digest = hashlib.sha256(f"{namespace}/{claim.name}/{uid}".encode()).hexdigest()[:20]
            volume = f"ecs-efs-{digest}"
            spec["volumeName"] = volume
            pv_spec: dict[str, Any] = {
                "capacity": {"storage": CLAIM_SIZE}, "accessModes": ["ReadWriteMany"], "volumeMode": "Filesystem",
                "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": namespace, "name": claim.name},
                "csi": dict(claim.csi),
            }
            if claim.mount_options:
                pv_spec["mountOptions"] = list(claim.mount_options)
            out.append({"apiVersion": "v1", "kind": "PersistentVolume",
                        "metadata": {"name": volume, "labels": {**labels, CLUSTER_UID_LABEL: uid},
                                     "annotations": {CLAIM_ANNOTATION: f"{namespace}/{claim.name}"}},
                        "spec": pv_spec})
        out.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec})
    return out


def container_mounts(
    td: RegisterTaskDefinition, c: ContainerDefinition, index: int, report: FidelityReport
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumeMounts, extra Pod volumes) for one container: mountPoints, volumesFrom, shm, tmpfs, devices."""
    mounts = [_mount(m.sourceVolume or "", m.containerPath or "", bool(m.readOnly)) for m in c.mountPoints or []]
    for vf in c.volumesFrom or []:
        source = td.container(vf.sourceContainer or "")
        for m in (source.mountPoints if source else None) or []:
            mounts.append(_mount(m.sourceVolume or "", m.containerPath or "", bool(vf.readOnly or m.readOnly)))
    extra: list[dict[str, Any]] = []
    lp = c.linuxParameters
    prefix = dns_label(c.name, 40)
    if lp is not None:
        if lp.sharedMemorySize:
            name = f"{prefix}-shm"
            extra.append({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": f"{lp.sharedMemorySize}Mi"}})
            mounts.append({"name": name, "mountPath": "/dev/shm"})
        for j, t in enumerate(lp.tmpfs or []):
            name = f"{prefix}-tmpfs-{j}"
            extra.append({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": f"{t.size}Mi"}})
            mounts.append({"name": name, "mountPath": t.containerPath})
        for j, d in enumerate(lp.devices or []):
            name = f"{prefix}-device-{j}"
            extra.append({"name": name, "hostPath": {"path": d.hostPath, "type": "CharDevice"}})
            mounts.append({"name": name, "mountPath": d.containerPath or d.hostPath})
    return mounts, extra


def mount_sources(td: RegisterTaskDefinition, index: int) -> list[str]:
    """The ECS field of each volumeMounts entry container_mounts makes, in its order."""
    c, here = td.containerDefinitions[index], f"containerDefinitions[{index}]"
    out = [f"{here}.mountPoints[{k}].containerPath" for k, _ in enumerate(c.mountPoints or [])]
    for k, vf in enumerate(c.volumesFrom or []):
        source = td.container(vf.sourceContainer or "")
        out += [f"{here}.volumesFrom[{k}]"] * len((source.mountPoints if source else None) or [])
    lp = c.linuxParameters
    if lp is not None:
        out += [f"{here}.linuxParameters.sharedMemorySize"] if lp.sharedMemorySize else []
        out += [f"{here}.linuxParameters.tmpfs[{k}].containerPath" for k, _ in enumerate(lp.tmpfs or [])]
        out += [f"{here}.linuxParameters.devices[{k}].containerPath" for k, _ in enumerate(lp.devices or [])]
    return out


def _mount(source: str, path: str, read_only: bool) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": volume_name(source), "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount
