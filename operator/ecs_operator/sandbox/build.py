"""Build the control-plane binaries from the Go wrapper modules under `controlplane/`, once per machine.

The machine has no Docker and no release downloads, only the Go module proxy, so kube-apiserver,
kube-controller-manager, kube-scheduler and etcd (one multi-call binary, `k8s-cp`), kwok and helm
are compiled from source: about 15 minutes cold on two cores, so results are cached outside the
repository under `${XDG_CACHE_HOME:-~/.cache}/ecs-operator/controlplane/<key>/`. The key hashes
the wrapper modules' files, the build flags and the Go version: any change builds afresh, nothing
else does. A build goes to a temporary directory and is renamed into place under a lock, so two
processes building at once never see (or leave) a half-written cache entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CONTROLPLANE_DIR_ENV = "ECS_OPERATOR_CONTROLPLANE_DIR"
BIN_DIR_ENV = "ECS_OPERATOR_BIN_DIR"
MULTICALL = "k8s-cp"
MULTICALL_NAMES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "etcd")
BUILD_ENV = {"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}
DEFAULT_TIMEOUT = 45 * 60.0
PROGRESS_EVERY = 30.0
ZERO_COMMIT = "0" * 40

Log = Callable[[str], None]


class BuildError(Exception):
    """A build problem, phrased for the user in one line."""


@dataclass(frozen=True)
class Target:
    """One binary: the wrapper module (a directory under controlplane/) and the package built there."""

    module: str
    package: str
    output: str
    version_module: str
    """The dependency whose go.mod version is stamped into the binary."""

    def ldflags(self, version: str) -> str:
        flags = ["-s", "-w"]
        if self.module == "k8s":
            major, minor = version.lstrip("v").split(".")[:2]
            for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
                flags += [f"-X {pkg}.{k}={v}" for k, v in (
                    ("gitVersion", version), ("gitMajor", major), ("gitMinor", minor), ("gitTreeState", "clean"),
                    ("gitCommit", ZERO_COMMIT), ("buildDate", "1970-01-01T00:00:00Z"))]
        elif self.module == "kwok":
            flags.append(f"-X sigs.k8s.io/kwok/pkg/consts.Version={version}")
        elif self.module == "helm":
            flags.append(f"-X helm.sh/helm/v3/internal/version.version={version}")
        return " ".join(flags)


TARGETS = (
    Target("k8s", ".", MULTICALL, "k8s.io/kubernetes"),
    Target("kwok", "sigs.k8s.io/kwok/cmd/kwok", "kwok", "sigs.k8s.io/kwok"),
    Target("helm", "helm.sh/helm/v3/cmd/helm", "helm", "helm.sh/helm/v3"),
)


def controlplane_dir(explicit: Path | None = None) -> Path:
    """The `controlplane/` directory: flag, then environment, then next to the package source (editable install)."""
    candidates = [explicit] if explicit else []
    if os.environ.get(CONTROLPLANE_DIR_ENV):
        candidates.append(Path(os.environ[CONTROLPLANE_DIR_ENV]))
    candidates.append(Path(__file__).resolve().parents[3] / "controlplane")
    for candidate in candidates:
        if (candidate / "k8s" / "go.mod").is_file():
            return candidate
    raise BuildError(f"controlplane/ Go modules not found (looked in {', '.join(map(str, candidates))}); "
                     f"install from a clone with `pip install -e .` or set {CONTROLPLANE_DIR_ENV}")


def cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ecs-operator" / "controlplane"


def module_version(go_mod: str, module: str) -> str:
    """The version `go.mod` requires for `module` (in a block or on a single `require` line)."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod, re.MULTILINE)
    if not match:
        raise BuildError(f"go.mod does not require {module}")
    return match.group(1)


def versions(cp_dir: Path) -> dict[str, str]:
    """binary -> the version stamped into it, read from the wrapper modules' go.mod files."""
    return {t.output: module_version((cp_dir / t.module / "go.mod").read_text(), t.version_module) for t in TARGETS}


def source_hash(cp_dir: Path) -> str:
    """Hash of everything that decides the binaries except the Go toolchain: module files and build flags."""
    digest = hashlib.sha256()
    stamped = versions(cp_dir)
    for target in TARGETS:
        module_dir = cp_dir / target.module
        for path in sorted(p for p in module_dir.iterdir() if p.is_file() and p.suffix in (".mod", ".sum", ".go")):
            digest.update(f"{target.module}/{path.name}\0".encode())
            digest.update(path.read_bytes())
        digest.update(f"{target.package} {target.output} {target.ldflags(stamped[target.output])}\0".encode())
    digest.update(json.dumps(BUILD_ENV, sort_keys=True).encode())
    return digest.hexdigest()


def build_key(src_hash: str, go_version: str) -> str:
    """The cache entry name: sources and the toolchain (`go1.26.8 linux/amd64`)."""
    return hashlib.sha256(f"{src_hash}\0{go_version}".encode()).hexdigest()[:16]


def go_environment() -> dict[str, str]:
    env = {**os.environ, **BUILD_ENV}
    env.pop("GOWORK", None)
    return env


def go_version() -> str:
    """`go1.26.8 linux/amd64`, or a BuildError when Go is missing."""
    if not shutil.which("go"):
        raise BuildError("`go` not found on PATH: the control plane is built from Go modules (install Go >= 1.26)")
    result = subprocess.run(["go", "env", "GOVERSION", "GOOS", "GOARCH"], capture_output=True, text=True,
                            env=go_environment(), timeout=60)
    if result.returncode != 0:
        raise BuildError(f"`go env` failed: {result.stderr.strip()}")
    version, goos, goarch = result.stdout.split()
    return f"{version} {goos}/{goarch}"


def is_complete(bin_dir: Path) -> bool:
    return (bin_dir / "manifest.json").is_file()


def find_cached(cp_dir: Path) -> Path | None:
    """A finished build of these sources, whatever Go built it (used when Go itself is missing)."""
    src = source_hash(cp_dir)
    root = cache_root()
    if not root.is_dir():
        return None
    for entry in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            if json.loads((entry / "manifest.json").read_text()).get("source_hash") == src:
                return entry
        except (OSError, ValueError):
            continue
    return None


def binaries_dir(cp_dir: Path | None = None) -> Path | None:
    """The directory with the built binaries, if there is one (never builds)."""
    if os.environ.get(BIN_DIR_ENV):
        return Path(os.environ[BIN_DIR_ENV])
    cp_dir = controlplane_dir(cp_dir)
    try:
        entry = cache_root() / build_key(source_hash(cp_dir), go_version())
        return entry if is_complete(entry) else None
    except BuildError:
        return find_cached(cp_dir)


@contextmanager
def _locked(path: Path, log: Log) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build of the same binaries to finish (lock {path})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(argv: list[str], cwd: Path, label: str, deadline: float, log: Log,
         on_line: Callable[[str], None] = lambda _: None, progress: Callable[[], str] = lambda: "") -> None:
    """Run a Go command, print a progress line every PROGRESS_EVERY s, kill it at the deadline."""
    process = subprocess.Popen(argv, cwd=cwd, env=go_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    last_lines: deque[str] = deque(maxlen=20)

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            last_lines.append(line.rstrip())
            on_line(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    started = next_report = time.monotonic()
    try:
        while process.poll() is None:
            now = time.monotonic()
            if now > deadline:
                raise BuildError(f"{label} did not finish before the build deadline (raise --timeout)")
            if now >= next_report + PROGRESS_EVERY:
                next_report = now
                log(f"  {label}: {progress()}{_elapsed(now - started)} elapsed")
            time.sleep(0.5)
    except BaseException:  # the deadline, or Ctrl-C: go runs in its own session and would not get the signal
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    reader.join(timeout=5)
    if process.returncode != 0:
        details = "\n    ".join(last_lines)
        raise BuildError(f"{label} failed (exit {process.returncode}):\n    {details}")


class _Counter:
    """Packages `go build -v` reports compiling (it does not list those it takes from the cache)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0

    def line(self, line: str) -> None:
        self.done += not line.startswith(("#", "go:"))

    def progress(self) -> str:
        return f"{self.done}/{self.total} packages compiled, "


def _elapsed(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _proxy_url() -> str | None:
    """The first HTTP(S) entry of GOPROXY, if any (`direct` and `off` cannot be probed)."""
    result = subprocess.run(["go", "env", "GOPROXY"], capture_output=True, text=True, env=go_environment())
    first = re.split(r"[,|]", result.stdout.strip())[0]
    return first.rstrip("/") if first.startswith(("http://", "https://")) else None


def _check_proxy(cp_dir: Path) -> None:
    """Fail in seconds, not after a long hang, when modules must be fetched and the proxy is unreachable."""
    url = _proxy_url()
    if url is None:
        return
    k8s = module_version((cp_dir / "k8s" / "go.mod").read_text(), "k8s.io/kubernetes")
    probe = f"{url}/k8s.io/kubernetes/@v/{k8s}.info"
    try:
        urllib.request.urlopen(probe, timeout=15).read()
    except (urllib.error.URLError, OSError) as error:
        raise BuildError(f"the Go module proxy {url} is unreachable ({getattr(error, 'reason', error)}); "
                         "the first build downloads ~1.5 GB of modules from it") from None


def _package_count(target: Target, cp_dir: Path, env_proxy_off: bool) -> int | None:
    """Packages the target compiles (for progress), or None when a module is not in the module cache yet."""
    env = go_environment()
    if env_proxy_off:
        env["GOPROXY"] = "off"
    result = subprocess.run(["go", "list", "-deps", target.package], cwd=cp_dir / target.module,
                            capture_output=True, text=True, env=env)
    return len(result.stdout.splitlines()) if result.returncode == 0 else None


def _download(cp_dir: Path, deadline: float, log: Log) -> dict[str, int]:
    """Make sure every module is in the module cache; return each target's package count."""
    counts: dict[str, int] = {}
    for target in TARGETS:
        count = _package_count(target, cp_dir, env_proxy_off=True)
        if count is None:
            _check_proxy(cp_dir)
            log(f"downloading the Go modules of {target.output} (first time only)")
            _run(["go", "list", "-deps", target.package], cp_dir / target.module,
                 f"module download for {target.output}", deadline, log)
            count = _package_count(target, cp_dir, env_proxy_off=True) or 0
        counts[target.output] = count
    return counts


def _verify(bin_dir: Path, stamped: dict[str, str]) -> None:
    """The binaries run and report the versions they were stamped with."""
    checks = {
        MULTICALL: ([str(bin_dir / MULTICALL), "kube-apiserver", "--version"], stamped[MULTICALL]),
        "kwok": ([str(bin_dir / "kwok"), "--version"], stamped["kwok"]),
        "helm": ([str(bin_dir / "helm"), "version", "--short"], stamped["helm"]),
    }
    with tempfile.TemporaryDirectory() as home:  # helm must not touch the user's configuration
        env = {**os.environ, "HOME": home}
        results = {name: subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
                   for name, (argv, _) in checks.items()}
    for name, (_, expected) in checks.items():
        result = results[name]
        if result.returncode != 0 or expected not in result.stdout:
            output = (result.stdout + result.stderr).strip()[:300]
            raise BuildError(f"built {name} does not report {expected}: {output}")


def ensure_built(cp_dir: Path | None = None, timeout: float = DEFAULT_TIMEOUT, log: Log = print) -> Path:
    """The binaries directory, building it first if this machine has not built these sources yet."""
    if os.environ.get(BIN_DIR_ENV):
        return Path(os.environ[BIN_DIR_ENV])
    cp_dir = controlplane_dir(cp_dir)
    toolchain = go_version()
    src = source_hash(cp_dir)
    key = build_key(src, toolchain)
    root = cache_root()
    final = root / key
    if is_complete(final):
        log(f"control-plane binaries: {final} (cached)")
        return final
    with _locked(root / f"{key}.lock", log):
        if is_complete(final):  # another process finished it while this one waited
            log(f"control-plane binaries: {final} (built by another process)")
            return final
        for stale in root.glob(f".tmp-{key}-*"):  # left by an interrupted build; the lock makes them ours
            shutil.rmtree(stale, ignore_errors=True)
        return _build(cp_dir, final, src, toolchain, timeout, log)


def _build(cp_dir: Path, final: Path, src: str, toolchain: str, timeout: float, log: Log) -> Path:
    started = time.monotonic()
    deadline = started + timeout
    stamped = versions(cp_dir)
    log(f"building control-plane binaries with {toolchain} into {final}")
    log("  (first build on a machine: ~15-25 min on 2 cores; later builds reuse the cache)")
    counts = _download(cp_dir, deadline, log)
    tmp = final.parent / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir(parents=True)
    try:
        for target in TARGETS:
            log(f"building {target.output} {stamped[target.output]} ({counts[target.output]} packages)")
            step = time.monotonic()
            counter = _Counter(counts[target.output])
            _run(["go", "build", "-v", "-ldflags", target.ldflags(stamped[target.output]),
                  "-o", str(tmp / target.output), target.package],
                 cp_dir / target.module, f"go build {target.output}", deadline, log,
                 on_line=counter.line, progress=counter.progress)
            log(f"  {target.output}: done in {_elapsed(time.monotonic() - step)}")
        for name in MULTICALL_NAMES:
            (tmp / name).symlink_to(MULTICALL)
        _verify(tmp, stamped)
        manifest = {"source_hash": src, "go": toolchain, "versions": stamped,
                    "build_seconds": round(time.monotonic() - started),
                    "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        shutil.rmtree(final, ignore_errors=True)  # without a manifest an entry is incomplete
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(p.stat().st_size for p in final.iterdir() if p.is_file() and not p.is_symlink())
    log(f"control-plane binaries built in {_elapsed(time.monotonic() - started)}: {final} ({size / 2**20:.0f} MiB)")
    return final
