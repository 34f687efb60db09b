"""The operator's image for the real nodes (`sandbox image build`): the repository's Dockerfile, built without
Docker and without any container registry.

1. A base root filesystem from Debian's packages: `debootstrap --variant=minbase` of bookworm (Python 3.11, as
   the Dockerfile's `python:3.11-slim`) with `python3-pip`, from the host's own Debian mirror (its apt sources).
   Debian marks that Python EXTERNALLY-MANAGED; the marker is removed, so `pip install .` installs into the
   system as in `python:3.11-slim`. Cached as a tarball keyed by the suite and packages.
2. buildah (`--isolation chroot --storage-driver vfs --pull-never`, storage in a temporary directory) commits the
   base locally and builds the Dockerfile with `--build-arg BASE=<that base>`; `pip install` inside it reaches
   PyPI through the host's CA bundle ($SSL_CERT_FILE), bind-mounted read-only over the image's.
3. `buildah push` writes an OCI archive whose `org.opencontainers.image.ref.name` is the full reference
   `localhost/ecs-operator:sandbox-<key>`, cached under `${XDG_CACHE_HOME:-~/.cache}/ecs-operator/images/`. The
   key hashes the Dockerfile, what it copies (pyproject.toml, README.md, operator/) and the base's key, so a CI
   run builds once and every later `sandbox image build` of the same sources only imports.
4. `ctr images import` into each real node's containerd: the kubelet finds it there and never pulls.

debootstrap, apt and pip are install-like steps that fetch from the package registries only; nothing is pulled
from a container registry (`--pull-never`, and the base is committed locally).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ecs_operator.sandbox import build, images, realnodes

REPOSITORY = "localhost/ecs-operator"
BASE_REPOSITORY = "localhost/ecs-operator-base"
SUITE = "bookworm"
BASE_PACKAGES = ("python3-pip", "passwd")
RECIPE = "1"
"""Part of every key: bump it when the steps below change what they produce."""
NEEDS = {"/usr/bin/buildah": "buildah", "/usr/sbin/debootstrap": "debootstrap", "/usr/bin/ctr": "containerd"}
COPIED = ("pyproject.toml", "README.md", "operator")
"""What the Dockerfile copies (its .dockerignore lets nothing else in)."""
IGNORED = re.compile(r"(^|/)(__pycache__|[^/]*\.egg-info)(/|$)|\.pyc$")
TIMEOUT = 1200.0
Log = Callable[[str], None]


class ImageBuildError(Exception):
    """The image could not be built or imported (the message names the step and its error)."""


@dataclass(frozen=True)
class Image:
    """A built image: its full reference and the OCI archive holding it."""

    reference: str
    archive: Path

    @property
    def repository(self) -> str:
        return self.reference.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.reference.rsplit(":", 1)[1]


def missing_requirements() -> list[str]:
    """What this machine lacks to build the image, phrased for the user (empty when nothing)."""
    problems = [] if os.geteuid() == 0 else ["building the image needs root (debootstrap, buildah's chroot)"]
    packages = sorted({package for path, package in NEEDS.items() if not Path(path).exists()})
    if packages:
        problems.append(f"missing Debian packages: {' '.join(packages)} "
                        f"(apt-get install -y --no-install-recommends {' '.join(packages)})")
    return problems


def repository_root() -> Path:
    """The checkout holding the Dockerfile (next to the package source: an editable install)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "Dockerfile").is_file():
        raise ImageBuildError(f"no Dockerfile in {root}: build from a clone (`pip install -e .`)")
    return root


def cache_root() -> Path:
    return build.cache_root().parent / "images"


def _files(root: Path) -> list[Path]:
    found = [root / "Dockerfile", root / ".dockerignore"]
    for name in COPIED:
        path = root / name
        found += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [p for p in found if p.is_file() and not IGNORED.search(p.relative_to(root).as_posix())]


def base_key() -> str:
    return hashlib.sha256(f"{RECIPE}\0{SUITE}\0{' '.join(BASE_PACKAGES)}".encode()).hexdigest()[:16]


def image_key(root: Path) -> str:
    """Hash of the Dockerfile, what it copies and the base: equal sources give the same image."""
    digest = hashlib.sha256(f"{RECIPE}\0{base_key()}\0".encode())
    for path in _files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached(root: Path | None = None) -> Image | None:
    """The image of these sources if it was built on this machine before."""
    key = image_key(root or repository_root())
    image = Image(f"{REPOSITORY}:sandbox-{key}", cache_root() / f"ecs-operator-{key}.oci.tar")
    return image if image.archive.is_file() else None


def _run(argv: list[str], log: Log, label: str, deadline: float, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    """Run a step, its output to a log file; on failure the error names the step and shows the output's tail."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as output:
        try:
            result = subprocess.run(argv, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                    timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as error:
            raise ImageBuildError(f"{label} timed out") from error
        if result.returncode != 0:
            output.seek(0)
            tail = "\n".join(output.read().splitlines()[-25:])
            raise ImageBuildError(f"{label} failed (exit {result.returncode}): `{' '.join(argv)}`\n{tail}")
    log(f"  {label}: {time.monotonic() - started:.0f}s")


def debian_mirror(sources: Path = Path("/etc/apt")) -> str | None:
    """The host's Debian mirror for the suite (its apt sources), or None for debootstrap's default."""
    files = sorted(sources.glob("sources.list.d/*.sources")) + [sources / "sources.list"]
    for path in files:
        text = path.read_text(errors="replace") if path.is_file() else ""
        for stanza in text.split("\n\n"):
            fields = dict(re.findall(r"^([A-Za-z-]+):\s*(.*)$", stanza, re.MULTILINE))
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs", "").startswith("http"):
                return str(fields["URIs"].split()[0])
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if words[:1] == ["deb"] and len(words) >= 3 and words[2] == SUITE and words[1].startswith("http"):
                return words[1]
    return None


def _base_archive(work: Path, deadline: float, log: Log) -> Path:
    """The base root filesystem as a tarball (cached): debootstrap, then the image-only trimming."""
    archive = cache_root() / f"base-{SUITE}-{base_key()}.tar.gz"
    if archive.is_file():
        return archive
    rootfs = work / "rootfs"
    mirror = debian_mirror()
    _run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs),
          *([mirror] if mirror else [])], log, f"debootstrap {SUITE} ({' '.join(BASE_PACKAGES)})", deadline)
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # python:3.11-slim's pip installs into the system: so does this base's
    for leftover in ("var/lib/apt/lists", "var/cache/apt", "var/log", "usr/share/doc", "usr/share/man",
                     "usr/share/info", "usr/share/locale"):
        with contextlib.suppress(FileNotFoundError):
            for entry in (rootfs / leftover).iterdir():
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    (rootfs / "etc/resolv.conf").unlink(missing_ok=True)  # the runtime mounts its own
    partial = archive.with_name(f"{archive.name}.partial-{os.getpid()}")
    archive.parent.mkdir(parents=True, exist_ok=True)
    _run(["tar", "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
          "--exclude=./run/*", "-C", str(rootfs), "-czf", str(partial), "."], log, "base tarball", deadline)
    partial.rename(archive)
    _remove_work(rootfs, log)
    return archive


@contextlib.contextmanager
def _buildah_storage(work: Path, log: Log) -> Iterator[list[str]]:
    """buildah with its own throw-away storage (vfs: no overlay mounts left behind), removed after (a RUN step
    interrupted may leave its chroot's bind mounts there: unmounted first)."""
    storage = ["buildah", "--root", str(work / "storage"), "--runroot", str(work / "run"), "--storage-driver", "vfs"]
    try:
        yield storage
    finally:
        subprocess.run([*storage, "rm", "--all"], capture_output=True, timeout=120)
        _remove_work(work / "storage", log)
        _remove_work(work / "run", log)


def _environment(work: Path) -> dict[str, str]:
    """buildah's environment: no registry is configured, so no short name could ever resolve to a pull."""
    registries = work / "registries.conf"
    registries.write_text('unqualified-search-registries = []\nshort-name-mode = "disabled"\n')
    return {**os.environ, "BUILDAH_ISOLATION": "chroot", "CONTAINERS_REGISTRIES_CONF": str(registries),
            "TMPDIR": str(work)}


def _remove_work(work: Path, log: Log) -> None:
    """Remove a build's work directory, first unmounting what debootstrap may have left mounted in it (proc, sysfs,
    devpts: removing files through those mounts would reach the host's)."""
    realnodes._unmount_under(work, log)
    if any(line.split()[4].startswith(f"{work}/") for line in Path("/proc/self/mountinfo").read_text().splitlines()):
        log(f"  {work} still has mounts: left in place")
        return
    shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _work_dir(key: str, log: Log) -> Iterator[Path]:
    """A work directory for one build (called under the key's lock, so earlier ones of this key are stale)."""
    for stale in cache_root().glob(f"ecs-image-{key}-*"):  # an interrupted build's
        _remove_work(stale, log)
    work = Path(tempfile.mkdtemp(prefix=f"ecs-image-{key}-", dir=cache_root()))
    try:
        yield work
    finally:
        _remove_work(work, log)


def _build(root: Path, image: Image, key: str, deadline: float, log: Log) -> None:
    with _work_dir(key, log) as work:
        base = _base_archive(work, deadline, log)
        env = _environment(work)
        base_reference = f"{BASE_REPOSITORY}:{SUITE}-{base_key()}"
        ca_bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
        if not ca_bundle.is_file():
            raise ImageBuildError(f"no CA bundle at {ca_bundle} (set SSL_CERT_FILE): pip in the build needs it")
        with _buildah_storage(work, log) as buildah:
            container = "ecs-base"
            _run([*buildah, "from", "--name", container, "scratch"], log, "base container", deadline, env=env)
            _run([*buildah, "add", container, str(base), "/"], log, "base layer", deadline, env=env)
            _run([*buildah, "config", "--env", images.PATH_ENV, "--cmd", "python3",
                  "--os", "linux", "--arch", "amd64", container], log, "base config", deadline, env=env)
            _run([*buildah, "commit", "--rm", container, base_reference], log, "base commit", deadline, env=env)
            _run([*buildah, "build", "--isolation", "chroot", "--pull-never", "--layers=false",
                  "--build-arg", f"BASE={base_reference}",
                  "--volume", f"{ca_bundle.resolve()}:/etc/ssl/certs/ca-certificates.crt:ro",
                  "--tag", image.reference, "--file", str(root / "Dockerfile"), str(root)],
                 log, "buildah build of the Dockerfile", deadline, env=env)
            partial = image.archive.with_name(image.archive.name + ".partial")
            partial.unlink(missing_ok=True)
            _run([*buildah, "push", image.reference, f"oci-archive:{partial}:{image.reference}"],
                 log, "OCI archive", deadline, env=env)
            partial.rename(image.archive)


def ensure_built(root: Path | None = None, log: Log = print, timeout: float = TIMEOUT, rebuild: bool = False) -> Image:
    """The image of this checkout: from the cache, else built (under a lock: concurrent callers build once)."""
    problems = missing_requirements()
    if problems:
        raise ImageBuildError("; ".join(problems))
    root = root or repository_root()
    key = image_key(root)
    image = Image(f"{REPOSITORY}:sandbox-{key}", cache_root() / f"ecs-operator-{key}.oci.tar")
    cache_root().mkdir(parents=True, exist_ok=True)
    with build._locked(cache_root() / f"ecs-operator-{key}.lock", log):
        if rebuild:
            image.archive.unlink(missing_ok=True)
        if image.archive.is_file():
            log(f"{image.reference}: cached ({image.archive})")
            return image
        started = time.monotonic()
        log(f"building {image.reference} from {root / 'Dockerfile'} (debootstrap + buildah; no container registry)")
        _build(root, image, key, time.monotonic() + timeout, log)
        log(f"{image.reference} built in {time.monotonic() - started:.0f}s ({image.archive})")
        for stale in cache_root().glob("ecs-operator-*.oci.tar"):  # older sources' images
            if stale != image.archive:
                stale.unlink(missing_ok=True)
    return image


def import_image(nodes: list[realnodes.RealNode], image: Image, log: Log = print) -> None:
    """`ctr images import` into each real node's containerd, under the image's full reference."""
    for node in nodes:
        started = time.monotonic()
        realnodes.ctr(node, "images", "import", "--no-unpack=false", str(image.archive))
        listed = realnodes.ctr(node, "images", "ls", "-q").split()
        if image.reference not in listed:
            raise ImageBuildError(f"`ctr images import` did not name the image {image.reference} on {node.name} "
                                  f"(it has: {listed})")
        log(f"{image.reference} imported into {node.name} in {time.monotonic() - started:.1f}s")
