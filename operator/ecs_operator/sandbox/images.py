"""The real nodes' two images, written as OCI image layouts with the standard library only (no Docker, no pull).

Both are one uncompressed layer holding Debian's statically linked busybox (`busybox-static`) with a symlink
per applet: `localhost/busybox:sandbox` runs `sh`, `localhost/pause:sandbox` is the Pod sandbox image (a
shell that waits, reaping orphans; it exits on SIGTERM). The tag is not `latest`, so the kubelet's default pull policy is
IfNotPresent and it never tries a registry. The full reference goes in `org.opencontainers.image.ref.name`:
`ctr images import` then names the image exactly so (with a bare tag it invents an `import-<date>` name
the kubelet cannot resolve).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
BUSYBOX_IMAGE = "localhost/busybox:sandbox"
PAUSE_IMAGE = "localhost/pause:sandbox"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
PAUSE_ENTRYPOINT = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while true; do sleep 2147483647 & wait; done"]
"""The Pod sandbox's process, an init as Kubernetes' pause is: PID 1 of a Pod that shares its process namespace
(ECS initProcessEnabled), it reaps the orphans it inherits (busybox sh's `wait` reaps any child)."""


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o644,
         kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.linkname = kind, mode, 0, link
    info.size = len(data) if data is not None else 0
    tar.addfile(info, io.BytesIO(data) if data is not None else None)


def busybox_layer(busybox: Path = BUSYBOX) -> bytes:
    """An uncompressed tar: /bin/busybox, its applets as symlinks, /etc/passwd and /etc/group, /tmp."""
    if not busybox.is_file():
        raise FileNotFoundError(f"{busybox} is missing (Debian package busybox-static)")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777),
                                ("proc", 0o755), ("sys", 0o755), ("dev", 0o755)):
            _add(tar, directory, mode=mode, kind=tarfile.DIRTYPE)
        _add(tar, "bin/busybox", busybox.read_bytes(), mode=0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, link="busybox")
        _add(tar, "etc/passwd", PASSWD.encode())
        _add(tar, "etc/group", GROUP.encode())
    return buffer.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest.split(':')[1]}", data)
    return digest


def oci_archive(reference: str, layer: bytes, config: dict) -> bytes:
    """A tar of an OCI image layout holding one image named `reference` (for `ctr images import`)."""
    image_config = {"architecture": "amd64", "os": "linux", "config": config,
                    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
                    "history": [{"created_by": "ecs-operator sandbox: busybox-static"}]}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        layer_digest = _blob(tar, layer)
        config_bytes = json.dumps(image_config, sort_keys=True).encode()
        config_digest = _blob(tar, config_bytes)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                        "size": len(layer)}],
        }, sort_keys=True).encode()
        manifest_digest = _blob(tar, manifest)
        _add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        _add(tar, "index.json", json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
                           "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"},
                           "annotations": {"org.opencontainers.image.ref.name": reference}}],
        }, sort_keys=True).encode())
    return buffer.getvalue()


def archives(busybox: Path = BUSYBOX) -> dict[str, bytes]:
    """reference -> OCI archive, for the busybox test image and the pause image."""
    layer = busybox_layer(busybox)
    return {
        BUSYBOX_IMAGE: oci_archive(BUSYBOX_IMAGE, layer, {"Env": [PATH_ENV], "Cmd": ["sh"]}),
        PAUSE_IMAGE: oci_archive(PAUSE_IMAGE, layer, {"Env": [PATH_ENV], "Entrypoint": PAUSE_ENTRYPOINT}),
    }
