"""Task volumes, mountPoints and volumesFrom, and the volumes linuxParameters imply."""

from __future__ import annotations

from typing import Any

from ecs_operator.models import ContainerDefinition, RegisterTaskDefinition

from .fidelity import FidelityReport
from .names import dns_label


def volume_name(ecs_name: str) -> str:
    return dns_label(ecs_name)


def task_volumes(
    td: RegisterTaskDefinition, report: FidelityReport, region: str, launch_sizes: dict[str, int]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, v in enumerate(td.volumes or []):
        path = f"volumes[{i}]"
        vol: dict[str, Any] = {"name": volume_name(v.name)}
        if v.host is not None and v.host.sourcePath:
            vol["hostPath"] = {"path": v.host.sourcePath, "type": "DirectoryOrCreate"}
        elif v.dockerVolumeConfiguration is not None:
            if v.dockerVolumeConfiguration.scope == "shared":
                vol["persistentVolumeClaim"] = {"claimName": vol["name"]}
                report.approximated(f"{path}.dockerVolumeConfiguration.scope", "persistentVolumeClaim",
                                    f"a PersistentVolumeClaim named {vol['name']} must exist")
            else:
                vol["emptyDir"] = {}
                if v.dockerVolumeConfiguration.scope:
                    report.approximated(f"{path}.dockerVolumeConfiguration.scope", "emptyDir",
                                        "created with the task and removed with it, as a task-scoped Docker volume")
        elif v.efsVolumeConfiguration is not None:
            efs = v.efsVolumeConfiguration
            vol["nfs"] = {"server": f"{efs.fileSystemId}.efs.{region}.amazonaws.com", "path": efs.rootDirectory or "/"}
        elif v.configuredAtLaunch:
            size = launch_sizes.get(v.name, 1)
            vol["ephemeral"] = {
                "volumeClaimTemplate": {
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": f"{size}Gi"}}}
                }
            }
        elif v.s3filesVolumeConfiguration is not None or v.fsxWindowsFileServerVolumeConfiguration is not None:
            vol["emptyDir"] = {}
            report.unsupported(path, "no Kubernetes volume type for this file system: an empty directory stands in")
        else:
            vol["emptyDir"] = {}  # `host: {}` or a bare name: Docker-managed scratch space
        if vol["name"] != v.name:
            report.approximated(f"{path}.name", "volumes[].name", f"renamed to {vol['name']!r} (DNS label)")
        out.append(vol)
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
