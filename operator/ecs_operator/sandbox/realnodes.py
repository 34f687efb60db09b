"""Real nodes for the sandbox (`sandbox up --real-nodes N`): a kubelet with containerd and runc per node.

Each real node gets, under `<state>/real-nodes/n<i>/`: a containerd of its own (root, state, socket, runc
root, CNI configuration), the kubelet's root, certificates and logs, and on the host: a bridge link
(`ecsrn<id><i>`) carrying the node IP 10.K.i.1/24 (never loopback: the kubelet refuses loopback), which is
also the gateway address the bridge CNI wants there (it refuses a bridge holding any other IPv4 address),
the Pods' subnet 10.K.i.0/24 (no default route: Pods reach nothing beyond their bridge) and a cgroup root
(`/ecs-sandbox-<id>-<i>` in every hierarchy, so kubelets of two sandboxes never share `kubepods`).

The network rule holds: the API server dials kubelets by InternalIP (no DNS lookup), containerd runs with
HTTP(S)_PROXY pointing at a closed loopback port (any registry pull fails at once, locally, before any name
lookup), the images are imported from local OCI archives (images.py) under non-`latest` tags (so the
kubelet never pulls), and the Pods' resolv.conf names 127.0.0.1 only.

Real nodes are labelled `ecs.operator.dev/real-node=true`, belong to the ECS cluster `real` (shared by every
namespace, so kwok nodes keep cluster `default` to themselves) and carry the taint
`ecs.operator.dev/real-node=true:NoSchedule`: only Pods that tolerate it (a TaskDefinition's
`spec.kubernetes.tolerations`) land there.

Pods reach the API server as in-cluster clients do, at the `kubernetes` Service (10.96.0.1:443, the variables
the kubelet sets) with their ServiceAccount token, without kube-proxy: the CNI gives Pods one route, to that
address through the bridge; on the host a DNAT rule of the bridge's sends TCP 443 there to the API server on
127.0.0.1 (the bridge alone has `route_localnet`, so this loopback destination is allowed from it), and a
FORWARD rule drops whatever else a Pod sends beyond its bridge but to the other real nodes' Pods (10.K.0.0/16).
Both rules carry the comment `ecs-operator sandbox <bridge>` and go with the node.

`teardown` undoes every side effect, in order: the Pods (through the API, so the kubelet stops their
containers and the CNI releases their addresses), the kubelet, any container left (ctr), containerd and its
shims, mounts under the node directory, the bridges, the iptables chains the kubelet adds, the kernel
settings the kubelet and the bridge plugin change, the cgroups (depth-first) and the host directories they
created (/run/containerd, /run/netns, /var/log/containers) when empty.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from ecs_operator import labels as L
from ecs_operator.sandbox import images, pki
from ecs_operator.sandbox.apiclient import ApiClient, ApiError
from ecs_operator.sandbox.processes import ProcessRecord, stop

REAL_NODE_LABEL = f"{L.API_GROUP}/real-node"
REAL_NODE_TAINT = {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
DOWN_TAINT = {"key": f"{L.API_GROUP}/sandbox-down", "value": "true", "effect": "NoExecute"}
"""Put on the real nodes by `down` before it deletes their Pods: a DaemonSet's Pods tolerate the cordon (and the
real-node taint, when their TaskDefinition does) but not this, so their controller does not put them back."""
REAL_NODE_TOLERATION = {"key": REAL_NODE_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
REAL_NODE_CLUSTER = "real"
"""The ECS cluster of the real nodes (in every namespace): tasks of cluster `default` stay on kwok nodes."""
REAL_NODE_LABELS = {REAL_NODE_LABEL: "true", L.CLUSTER: REAL_NODE_CLUSTER, L.SHARED_INSTANCE: "true"}
KUBERNETES_SERVICE_IP = str(next(ipaddress.ip_network(pki.SERVICE_CLUSTER_IP_RANGE).hosts()))
"""The `kubernetes` Service's ClusterIP (the first of the range, as the API server allocates it)."""
CNI_BIN = Path("/usr/lib/cni")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CLOSED_PORT_PROXY = "http://127.0.0.1:9"
"""containerd's HTTP(S) proxy: the discard port, closed here, so a pull fails with 'connection refused'."""
KUBELET_CHAINS = ("KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT")
INOTIFY_INSTANCES = "fs/inotify/max_user_instances"
MIN_INOTIFY_INSTANCES = 1024
"""Each kubelet and containerd takes several inotify instances (the kernel's default allows 128 per user): with two
real nodes beside other sandboxes' a containerd failed to load its CRI plugin (`failed to create fsnotify watcher:
too many open files`), so `start` raises the limit to this when it is lower."""
SYSCTLS = ("net/ipv4/ip_forward", "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
           "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", INOTIFY_INSTANCES)
"""What the kubelet (setupKernelTunables), the bridge plugin (isGateway) and `start` (the inotify instances) may
change: restored by teardown."""
HOST_DIRS = ("/run/containerd/s", "/run/containerd", "/run/netns", "/var/log/containers", "/var/lib/cni/results",
             "/var/lib/cni", "/var/lib/kubelet/device-plugins", "/var/lib/kubelet")
"""Host directories a kubelet or containerd creates whatever their settings (libcni's cache, the device
plugins' socket, the shims' sockets, network namespaces, log links): removed when empty unless they existed."""
DEVICE_PLUGIN_SOCKET = Path("/var/lib/kubelet/device-plugins/kubelet.sock")
"""Every kubelet on a host serves its device-plugin registry here (a fixed path, no flag moves it): each one deletes
the directory's sockets, then listens. Two kubelets doing that at once failed (`bind: address already in use`), so
the nodes' kubelets start one after another, each once the previous one listens."""
CNI_CACHE = Path("/var/lib/cni/results")
PREFIXES = Path("/run/ecs-operator-real-node-prefixes")
"""One file per 10.K.0.0/16 taken by a sandbox's real nodes (its content: that sandbox's state directory),
so two sandboxes starting at the same instant never pick the same K (`reserve_prefix`)."""
SECOND_OCTETS = range(150, 200)
ORIGINALS = "host-sysctls.json"
"""Beside the reservations: the kernel settings (SYSCTLS) as the first of the sandboxes running at once found them,
so whichever of them goes down last restores those, not what another one had already changed."""
NEEDS = {  # what must exist -> the Debian package that provides it
    "/usr/bin/containerd": "containerd", "/usr/bin/ctr": "containerd",
    "/usr/bin/containerd-shim-runc-v2": "containerd", "/usr/sbin/runc": "runc",
    str(CNI_BIN / "bridge"): "containernetworking-plugins", str(CNI_BIN / "host-local"): "containernetworking-plugins",
    str(CNI_BIN / "loopback"): "containernetworking-plugins", str(images.BUSYBOX): "busybox-static",
    "/usr/sbin/iptables": "iptables", "/usr/sbin/ip": "iproute2", "/usr/bin/mount": "mount",
}
Log = Callable[[str], None]


class RealNodeError(Exception):
    """A real node could not be set up (the message names the step and the error)."""


@dataclass(frozen=True)
class RealNode:
    """One real node's names and addresses (kept in state.json)."""

    name: str
    index: int
    dir: str
    bridge: str
    node_ip: str
    pod_subnet: str
    cgroup_root: str

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def socket(self) -> Path:
        return self.path / "containerd.sock"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RealNode:
        return cls(**data)


def missing_requirements() -> list[str]:
    """What this machine lacks for real nodes, phrased for the user (empty when nothing)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("real nodes need root (containerd, runc, links and cgroups)")
    packages = sorted({package for path, package in NEEDS.items() if not Path(path).exists()})
    if packages:
        problems.append(f"missing Debian packages: {' '.join(packages)} "
                        f"(apt-get install -y --no-install-recommends {' '.join(packages)})")
    return problems


def _run(*argv: str, check: bool = True, input: bytes | None = None, timeout: float = 60) -> str:
    result = subprocess.run(list(argv), capture_output=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise RealNodeError(f"`{' '.join(argv)}` failed (exit {result.returncode}): "
                            f"{(result.stderr or result.stdout).decode(errors='replace').strip()}")
    return result.stdout.decode(errors="replace")


def sandbox_id(root: Path) -> str:
    return hashlib.sha256(str(root).encode()).hexdigest()[:5]


def _used_prefixes() -> str:
    return _run("ip", "-4", "addr", "show", check=False) + _run("ip", "-4", "route", "show", "table", "all", check=False)


def plan(root: Path, count: int, prefixes: Path | None = None) -> list[RealNode]:
    """Names and addresses for `count` nodes: 10.K.i.0/24 Pod subnets and node IPs 10.K.i.1, with K the
    first of 150-199 (clear of the service range 10.96/16 and kwok's fake 10.244/16) that the host does not
    use and no other sandbox has reserved (`reserve_prefix`; `release_prefix` gives it back)."""
    sid = sandbox_id(root)
    longest = str(root / "real-nodes" / f"n{count}" / "containerd.sock") + ".ttrpc"
    if len(longest) > 107:  # sockaddr_un.sun_path
        raise RealNodeError(f"the state directory's path is too long for containerd's unix sockets ({longest}): "
                            "choose a shorter --state-dir")
    second = reserve_prefix(root, _used_prefixes(), prefixes)
    return [RealNode(name=f"sandbox-real-{i}", index=i, dir=str(root / "real-nodes" / f"n{i}"),
                     bridge=f"ecsrn{sid}{i}", node_ip=f"10.{second}.{i}.1", pod_subnet=f"10.{second}.{i}.0/24",
                     cgroup_root=f"/ecs-sandbox-{sid}-{i}")
            for i in range(1, count + 1)]


@contextlib.contextmanager
def _prefixes_locked(prefixes: Path) -> Iterator[None]:
    """An exclusive flock on the reservations' directory (created if missing). A `release_prefix` may remove
    the directory while this waits for the lock: then it starts again on the new one."""
    while True:
        prefixes.mkdir(mode=0o755, exist_ok=True)
        fd = os.open(prefixes, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(prefixes).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)  # releases the lock


def reserve_prefix(root: Path, used: str, prefixes: Path | None = None) -> int:
    """The first K of 150-199 that `used` (`ip addr` and `ip route` output) does not mention and no live
    sandbox has reserved, reserved for `root` by creating `<prefixes>/10.K` exclusively, all under one lock:
    choosing and reserving are one step for every sandbox on the machine. A reservation whose state
    directory is gone (a sandbox removed without `down`) is taken over."""
    prefixes = prefixes or PREFIXES
    with _prefixes_locked(prefixes):
        for k in SECOND_OCTETS:
            if re.search(rf"(^|\s)10\.{k}\.", used, re.MULTILINE):
                continue
            entry = prefixes / f"10.{k}"
            with contextlib.suppress(FileNotFoundError):
                owner = entry.read_text().strip()
                if owner != str(root) and Path(owner).is_dir():
                    continue
                entry.unlink()
            others = [e for e in prefixes.glob("10.*") if _owner(e) not in ("", str(root)) and Path(_owner(e)).is_dir()]
            if not others:  # the first sandbox running: the settings are still the machine's own
                (prefixes / ORIGINALS).write_text(json.dumps(
                    {name: value for name in SYSCTLS if (value := _read_sysctl(name)) is not None}))
            fd = os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "w") as out:
                out.write(str(root))
            return k
    raise RealNodeError("no free 10.K.0.0/16 (K in 150-199) for the real nodes' addresses")


def _owner(entry: Path) -> str:
    try:
        return entry.read_text().strip()
    except OSError:
        return ""


def original_sysctls(prefixes: Path | None = None) -> dict[str, str]:
    """The kernel settings as the first of the running sandboxes found them (empty if not recorded)."""
    try:
        values: dict[str, str] = json.loads(((prefixes or PREFIXES) / ORIGINALS).read_text())
        return values
    except (OSError, ValueError):
        return {}


def release_prefix(root: Path, prefixes: Path | None = None) -> None:
    """Remove `root`'s reservations, and the recorded settings and the directory once no sandbox holds one."""
    prefixes = prefixes or PREFIXES
    if not prefixes.is_dir():
        return
    with _prefixes_locked(prefixes):
        for entry in prefixes.glob("10.*"):
            if _owner(entry) == str(root):
                entry.unlink(missing_ok=True)
        if not list(prefixes.glob("10.*")):
            (prefixes / ORIGINALS).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                prefixes.rmdir()


def reservations(root: Path, prefixes: Path | None = None) -> list[Path]:
    """`root`'s reservation files (for `leftovers`)."""
    prefixes = prefixes or PREFIXES
    found = []
    for entry in prefixes.glob("10.*") if prefixes.is_dir() else []:
        with contextlib.suppress(OSError):
            if entry.read_text().strip() == str(root):
                found.append(entry)
    return found


def sandbox_network(node: RealNode) -> str:
    """10.K.0.0/16: every real node's Pod subnet of this sandbox (the Pods' route to the other nodes' Pods)."""
    return str(ipaddress.ip_network(node.pod_subnet).supernet(new_prefix=16))


# --- host snapshot ---------------------------------------------------------------------------------------------

def _read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


def _chains() -> list[str]:
    """`iptables|ip6tables TABLE CHAIN` of the kubelet's chains that exist now."""
    found = []
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            out = _run(tool, "-w", "5", "-t", table, "-S", check=False)
            found += [f"{tool} {table} {c}" for c in KUBELET_CHAINS if f"-N {c}\n" in out + "\n"]
    return found


def host_snapshot() -> dict[str, Any]:
    """What teardown restores or leaves alone: kernel settings, host directories and chains that existed before."""
    return {"sysctls": {name: value for name in SYSCTLS if (value := _read_sysctl(name)) is not None},
            "existing_dirs": [d for d in HOST_DIRS if Path(d).exists()],
            "existing_chains": _chains(),
            "existing_netns": sorted(p.name for p in Path("/run/netns").glob("*")) if Path("/run/netns").is_dir() else []}


# --- set-up ------------------------------------------------------------------------------------------------------

def _hierarchies() -> list[Path]:
    """The mounted cgroup hierarchies (v1 controllers, name=systemd, and the v2 `unified` mount)."""
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    return sorted({Path(line.split()[1]) for line in mounts
                   if line.split()[2] in ("cgroup", "cgroup2") and line.split()[1].startswith(str(CGROUP_ROOT))})


def _create_cgroups(node: RealNode) -> None:
    for hierarchy in _hierarchies():
        path = hierarchy / node.cgroup_root.lstrip("/")
        path.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():  # a new cpuset is empty: no task may join it until filled
            for name in ("cpuset.cpus", "cpuset.mems"):
                (path / name).write_text((hierarchy / name).read_text())


def _create_link(node: RealNode) -> None:
    _run("ip", "link", "add", node.bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{node.node_ip}/24", "dev", node.bridge)
    _run("ip", "link", "set", node.bridge, "up")


def _issue(keys: pki.Pki, stem: str, common_name: str, organisation: str | None,
           usage: x509.ObjectIdentifier, ip: str | None = None, dns: str | None = None) -> tuple[Path, Path]:
    """A certificate signed by the sandbox CA (client, or serving with IP and DNS names)."""
    ca_cert = x509.load_pem_x509_certificate(keys.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(keys.ca_key.read_bytes(), password=None)
    key = pki._new_key()
    builder = (pki._builder(pki._name(common_name, organisation), ca_cert.subject, key.public_key())
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if ip or dns:
        names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip))] if ip else []
        names += [x509.DNSName(dns)] if dns else []
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    pki._write(keys.cert(stem), cert.public_bytes(serialization.Encoding.PEM))
    pki._write(keys.key(stem), pki._key_pem(key), private=True)
    return keys.cert(stem), keys.key(stem)


def _containerd_config(node: RealNode) -> str:
    d = node.path
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d / 'containerd-root'}"
state = "{d / 'containerd-state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{node.socket}"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d / 'containerd-opt'}"

[{cri}]
  sandbox_image = "{images.PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{d / 'runc'}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d / 'cni'}"
    max_conf_num = 1
  [{cri}.registry]
    config_path = "{d / 'registry-hosts'}"
"""


def _cni_config(node: RealNode) -> dict[str, Any]:
    """bridge + host-local: Pod IPs on the node's bridge, no default route and no masquerade (nothing leaves);
    two routes through the bridge: to 10.K.0.0/16 (the host forwards it to the other nodes' bridges, so Pods on
    different real nodes reach each other) and to the `kubernetes` Service (the host sends it to the API server)."""
    return {"cniVersion": "1.0.0", "name": cni_network(node), "plugins": [{
        "type": "bridge", "bridge": node.bridge, "isGateway": True, "isDefaultGateway": False, "ipMasq": False,
        "hairpinMode": True,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": node.pod_subnet}]],
                 "routes": [{"dst": sandbox_network(node)}, {"dst": f"{KUBERNETES_SERVICE_IP}/32"}],
                 "dataDir": str(node.path / "cni-ipam")},
    }]}


def cni_network(node: RealNode) -> str:
    """The CNI network's name, unique per sandbox and node: libcni's cache (/var/lib/cni) files start with it."""
    return f"ecs-{node.bridge}"


def _kubelet_config(node: RealNode, keys: pki.Pki, serving: tuple[Path, Path]) -> dict[str, Any]:
    d = node.path
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
        "address": node.node_ip, "port": 10250, "readOnlyPort": 0, "healthzPort": 0,
        "tlsCertFile": str(serving[0]), "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(keys.ca_cert)}},
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs", "cgroupRoot": node.cgroup_root, "failCgroupV1": False, "failSwapOn": False,
        "oomScoreAdj": 0,  # root lacks CAP_SYS_RESOURCE here: no negative scores
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "resolvConf": str(d / "resolv.conf"), "podLogsDir": str(d / "pod-logs"),
        "volumePluginDir": str(d / "volume-plugins"),
        "registerNode": True, "registerWithTaints": [REAL_NODE_TAINT], "maxPods": 30,
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False, "shutdownGracePeriod": "0s", "logging": {"format": "text"},
    }


def service_rules(node: RealNode, apiserver_port: int) -> list[list[str]]:
    """iptables rules (table, then the rule) that make the `kubernetes` Service answer on this node's bridge:
    TCP 443 to its ClusterIP goes to the API server on loopback; anything else leaving the bridge is dropped but
    what goes to 10.K.0.0/16 (the sandbox's other real nodes' Pods)."""
    comment = ["-m", "comment", "--comment", _rule_comment(node)]
    return [["nat", "PREROUTING", "-i", node.bridge, "-d", f"{KUBERNETES_SERVICE_IP}/32", "-p", "tcp", "--dport", "443",
             *comment, "-j", "DNAT", "--to-destination", f"127.0.0.1:{apiserver_port}"],
            ["filter", "FORWARD", "-i", node.bridge, "!", "-d", sandbox_network(node), *comment, "-j", "DROP"]]


def _rule_comment(node: RealNode) -> str:
    return f"ecs-operator sandbox {node.bridge}"


def _add_service_rules(node: RealNode, apiserver_port: int) -> None:
    Path(f"/proc/sys/net/ipv4/conf/{node.bridge}/route_localnet").write_text("1")  # goes with the link
    for table, chain, *rule in service_rules(node, apiserver_port):
        _run("iptables", "-w", "5", "-t", table, "-I", chain, "1", *rule)


def _service_rules_present(node: RealNode) -> list[tuple[str, list[str]]]:
    """(table, `-A ...` rule) of this node's rules that exist now (found by their comment)."""
    found = []
    for table in ("nat", "filter"):
        for line in _run("iptables", "-w", "5", "-t", table, "-S", check=False).splitlines():
            parts = shlex.split(line)
            if parts[:1] == ["-A"] and _rule_comment(node) in parts:
                found.append((table, parts))
    return found


def _remove_service_rules(node: RealNode) -> None:
    for table, parts in _service_rules_present(node):
        _run("iptables", "-w", "5", "-t", table, "-D", *parts[1:], check=False)


def prepare(node: RealNode, keys: pki.Pki, server: str) -> None:
    """Directories, certificates, configuration files, the bridge and the cgroup root of one node."""
    d = node.path
    for sub in ("cni", "cni-ipam", "registry-hosts", "kubelet", "pod-logs", "volume-plugins", "runc"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "containerd.toml").write_text(_containerd_config(node))
    (d / "cni" / "10-ecs-sandbox.conflist").write_text(json.dumps(_cni_config(node), indent=2))
    (d / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # a Pod's own loopback: no query leaves it
    _issue(keys, f"kubelet-{node.name}", f"system:node:{node.name}", "system:nodes", ExtendedKeyUsageOID.CLIENT_AUTH)
    serving = _issue(keys, f"kubelet-serving-{node.name}", node.name, None, ExtendedKeyUsageOID.SERVER_AUTH,
                     ip=node.node_ip, dns=node.name)
    pki.write_kubeconfig(d / "kubelet.kubeconfig", server, keys, f"kubelet-{node.name}")
    (d / "kubelet.yaml").write_text(yaml.safe_dump(_kubelet_config(node, keys, serving)))
    _create_link(node)
    _add_service_rules(node, int(server.rsplit(":", 1)[1]))
    _create_cgroups(node)


def containerd_argv(node: RealNode) -> list[str]:
    return ["/usr/bin/containerd", "--config", str(node.path / "containerd.toml"), "--log-level", "warn"]


def containerd_env() -> dict[str, str]:
    """Set on top of the environment (and recorded in state.json): every proxy variable, so none inherited counts."""
    return {"HTTP_PROXY": CLOSED_PORT_PROXY, "HTTPS_PROXY": CLOSED_PORT_PROXY, "NO_PROXY": "",
            "http_proxy": CLOSED_PORT_PROXY, "https_proxy": CLOSED_PORT_PROXY, "no_proxy": ""}


def kubelet_argv(multicall: Path, node: RealNode) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in REAL_NODE_LABELS.items())
    return [str(multicall), "kubelet", f"--config={node.path / 'kubelet.yaml'}",
            f"--kubeconfig={node.path / 'kubelet.kubeconfig'}", f"--root-dir={node.path / 'kubelet'}",
            f"--cert-dir={node.path / 'kubelet' / 'pki'}", f"--hostname-override={node.name}",
            f"--node-ip={node.node_ip}", f"--node-labels={labels}", "--v=1"]


def ctr(node: RealNode, *args: str, input: bytes | None = None, check: bool = True) -> str:
    return _run("/usr/bin/ctr", "--address", str(node.socket), "--namespace", "k8s.io", *args, input=input,
                check=check, timeout=120)


def containerd_ready(node: RealNode) -> bool:
    if not node.socket.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(node.socket))
            return True
        except OSError:
            return False


def import_images(node: RealNode, archives: dict[str, bytes]) -> None:
    for reference, archive in archives.items():
        ctr(node, "images", "import", "--no-unpack=false", "-", input=archive)
        listed = ctr(node, "images", "ls", "-q")
        if reference not in listed.split():
            raise RealNodeError(f"`ctr images import` did not name the image {reference} (it has: {listed.split()})")


# --- teardown ----------------------------------------------------------------------------------------------------

def _other_processes(program: str, ours: set[int]) -> list[int]:
    """PIDs of running `program` processes (by argv) that are not among `ours`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in ours:
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(program).encode() in (os.path.basename(a) for a in argv[:2]):
            found.append(int(proc.name))
    return found


def delete_pods(client: ApiClient, nodes: list[RealNode], timeout: float, log: Log) -> None:
    """Delete the Pods bound to the real nodes (grace 1 s) and wait until the kubelets confirm (their
    containers are stopped and the CNI has released their addresses); timeout 0 when no kubelet runs. The nodes
    are cordoned and tainted (DOWN_TAINT) first, so no controller puts a Pod back, a DaemonSet's neither."""
    def bound() -> list[dict[str, Any]]:
        found = []
        for node in nodes:
            found += client.get(f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node.name}").get("items", [])
        return found

    try:
        for node in nodes:  # nothing new is scheduled there meanwhile
            client.request("PATCH", f"/api/v1/nodes/{node.name}",
                           {"spec": {"unschedulable": True, "taints": [REAL_NODE_TAINT, DOWN_TAINT]}},
                           "application/merge-patch+json")
        pods = bound()
        if pods:
            log(f"deleting {len(pods)} Pod(s) on the real nodes")
        for pod in pods:
            meta = pod["metadata"]
            try:
                client.request("DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                               {"gracePeriodSeconds": 1})
            except ApiError as error:
                if error.status != 404:
                    raise
        deadline = time.monotonic() + timeout
        while (left := bound()) and time.monotonic() < deadline:
            time.sleep(0.5)
        if left:
            log(f"  {len(left)} Pod(s) still on the real nodes after {timeout:.0f}s; removing their containers")
    except (ApiError, OSError) as error:
        log(f"  could not delete the real nodes' Pods through the API ({error}); removing their containers")


def _remove_containers(node: RealNode) -> None:
    if not containerd_ready(node):
        return
    for task in ctr(node, "tasks", "ls", "-q", check=False).split():
        ctr(node, "tasks", "kill", "-s", "SIGKILL", task, check=False)
    time.sleep(0.3)
    for task in ctr(node, "tasks", "ls", "-q", check=False).split():
        ctr(node, "tasks", "delete", "-f", task, check=False)
    for container in ctr(node, "containers", "ls", "-q", check=False).split():
        ctr(node, "containers", "delete", container, check=False)


def _kill_shims(node: RealNode) -> None:
    """containerd-shim-runc-v2 processes of this node's containerd (they outlive it if a task was left)."""
    address = str(node.socket).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address in argv:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def _unmount_under(path: Path, log: Log) -> None:
    """Every mount point under `path` (the kubelet's bind mount, overlay roots, shm, secrets), deepest first."""
    prefix = str(path) + "/"
    for _ in range(3):
        points = [line.split()[4].replace("\\040", " ") for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        ours = sorted({p for p in points if p.startswith(prefix) or p == str(path)}, key=len, reverse=True)
        if not ours:
            return
        for point in ours:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
    log(f"  mounts left under {path}")


def _kill_cgroup_processes(node: RealNode) -> None:
    """SIGKILL whatever still runs in the node's cgroups (containers whose kubelet and containerd were killed:
    their shims' children outlive them)."""
    for _ in range(10):
        pids = set()
        for hierarchy in _hierarchies():
            top = hierarchy / node.cgroup_root.lstrip("/")
            for procs in top.rglob("cgroup.procs") if top.is_dir() else []:
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in procs.read_text().split()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _remove_cgroups(node: RealNode) -> list[str]:
    """rmdir the node's cgroup tree in every hierarchy, deepest first; what could not be removed."""
    _kill_cgroup_processes(node)
    left = []
    for hierarchy in _hierarchies():
        top = hierarchy / node.cgroup_root.lstrip("/")
        if not top.is_dir():
            continue
        tree = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
        for path in [*tree, top]:
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(str(path))
    return left


def _remove_chains(snapshot: dict[str, Any]) -> None:
    """The kubelet's chains that did not exist before: first the rules jumping to them, then the chains."""
    before = set(snapshot.get("existing_chains", []))
    for entry in _chains():
        if entry in before:
            continue
        tool, table, chain = entry.split()
        rules = _run(tool, "-w", "5", "-t", table, "-S", check=False).splitlines()
        for rule in rules:
            parts = shlex.split(rule)
            if parts[:1] == ["-A"] and f"-j {chain}" in rule and parts[1] != chain:
                _run(tool, "-w", "5", "-t", table, "-D", *parts[1:], check=False)
        _run(tool, "-w", "5", "-t", table, "-F", chain, check=False)
    for entry in _chains():  # chains may jump to one another: delete once all are empty
        if entry not in before:
            tool, table, chain = entry.split()
            _run(tool, "-w", "5", "-t", table, "-X", chain, check=False)


def _restore_sysctls(snapshot: dict[str, Any]) -> None:
    for name, value in snapshot.get("sysctls", {}).items():
        if _read_sysctl(name) != value:
            with contextlib.suppress(OSError):
                Path("/proc/sys", name).write_text(value)


def _cni_cache_files(nodes: list[RealNode]) -> list[Path]:
    """libcni's cached results of the nodes' networks and of their Pods' loopback (by sandbox id)."""
    if not CNI_CACHE.is_dir():
        return []
    found = []
    for node in nodes:
        prefix = f"{cni_network(node)}-"
        for entry in CNI_CACHE.glob(f"{prefix}*"):
            sandbox = entry.name[len(prefix):].rsplit("-", 1)[0]
            found += [entry, *CNI_CACHE.glob(f"cni-loopback-{sandbox}-*")]
    return found


def _remove_host_dirs(nodes: list[RealNode], snapshot: dict[str, Any], alone: bool) -> None:
    for entry in _cni_cache_files(nodes):
        entry.unlink(missing_ok=True)
    if alone and "/var/lib/kubelet" not in snapshot.get("existing_dirs", []):
        DEVICE_PLUGIN_SOCKET.unlink(missing_ok=True)
    logs = Path("/var/log/containers")
    if logs.is_dir():
        for link in logs.iterdir():
            if link.is_symlink() and any(os.readlink(link).startswith(n.dir + "/") for n in nodes):
                link.unlink(missing_ok=True)
    before = set(snapshot.get("existing_netns", []))
    if Path("/run/netns").is_dir() and not _other_processes("/usr/bin/containerd", set()):
        for netns in Path("/run/netns").glob("cni-*"):  # left by a sandbox whose Pods were not deleted
            if netns.name not in before:
                subprocess.run(["umount", str(netns)], capture_output=True)
                netns.unlink(missing_ok=True)
    if "/run/containerd" not in snapshot.get("existing_dirs", []) and not _other_processes("/usr/bin/containerd", set()):
        shutil.rmtree("/run/containerd", ignore_errors=True)  # ours: only the sockets of shims killed with SIGKILL
    for directory in HOST_DIRS:
        if directory not in snapshot.get("existing_dirs", []):
            with contextlib.suppress(OSError):
                Path(directory).rmdir()


def teardown(client: ApiClient | None, nodes: list[RealNode], processes: list[ProcessRecord],
             snapshot: dict[str, Any], log: Log) -> list[str]:
    """Undo everything `up` did for the real nodes, in order; returns what was left (empty when clean)."""
    by_name = {p.name: p for p in processes}
    kubelets = [by_name[f"kubelet-{n.name}"] for n in nodes if f"kubelet-{n.name}" in by_name]
    if client is not None and nodes:
        delete_pods(client, nodes, timeout=30 if any(k.alive() for k in kubelets) else 0, log=log)
    stop(kubelets)
    for node in nodes:
        _remove_containers(node)
    stop([by_name[f"containerd-{n.name}"] for n in nodes if f"containerd-{n.name}" in by_name])
    left: list[str] = []
    for node in nodes:
        _kill_shims(node)
        _unmount_under(node.path, log)
        _remove_service_rules(node)
        if subprocess.run(["ip", "link", "show", node.bridge], capture_output=True).returncode == 0:
            _run("ip", "link", "del", node.bridge, check=False)
    ours = {p.pid for p in processes}
    alone = not _other_processes("kubelet", ours)  # another sandbox's kubelet shares the chains and settings
    if alone:
        _remove_chains(snapshot)
        _restore_sysctls(snapshot)
    for node in nodes:
        left += _remove_cgroups(node)
    _remove_host_dirs(nodes, snapshot, alone)
    if nodes:
        release_prefix(_root(nodes))
    return left


def _root(nodes: list[RealNode]) -> Path:
    """The sandbox's state directory (nodes live in `<root>/real-nodes/n<i>`)."""
    return nodes[0].path.parents[1]


def leftovers(nodes: list[RealNode], snapshot: dict[str, Any]) -> list[str]:
    """Side effects still present (for tests and `down`'s report): links, mounts, cgroups, chains, settings."""
    found = []
    links = _run("ip", "-o", "link", "show", check=False)
    found += [f"link {n.bridge}" for n in nodes if f" {n.bridge}:" in links or f" {n.bridge}@" in links]
    mountinfo = Path("/proc/self/mountinfo").read_text()
    found += [f"mounts under {n.dir}" for n in nodes if f" {n.dir}/" in mountinfo or f" {n.dir} " in mountinfo]
    found += [f"cgroup {h / n.cgroup_root.lstrip('/')}" for n in nodes for h in _hierarchies()
              if (h / n.cgroup_root.lstrip("/")).exists()]
    if not _other_processes("kubelet", set()):  # else the chains and settings are still that kubelet's
        found += [f"chain {c}" for c in set(_chains()) - set(snapshot.get("existing_chains", []))]
        found += [f"sysctl {k}={_read_sysctl(k)} (was {v})" for k, v in snapshot.get("sysctls", {}).items()
                  if _read_sysctl(k) != v]
    found += [f"process {pid} (shim)" for pid in _other_processes("containerd-shim-runc-v2", set())
              if any(str(n.socket) in Path(f"/proc/{pid}/cmdline").read_text(errors="replace") for n in nodes)]
    found += [f"file {f}" for f in _cni_cache_files(nodes)]
    found += [f"reservation {f}" for f in (reservations(_root(nodes)) if nodes else [])]
    found += [f"iptables -t {table} {' '.join(rule)}" for n in nodes for table, rule in _service_rules_present(n)]
    if not _other_processes("kubelet", set()):
        found += [f"directory {d}" for d in HOST_DIRS
                  if d not in snapshot.get("existing_dirs", []) and Path(d).exists()]
    return found


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RealNodeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def start(multicall: Path, keys: pki.Pki, server: str, nodes: list[RealNode],
          launch: Callable[[str, list[str], dict[str, str] | None], ProcessRecord], log: Log) -> None:
    """Set up each node and start its containerd, import the images, then start the kubelets."""
    archives = images.archives()
    current = _read_sysctl(INOTIFY_INSTANCES)
    if current is not None and int(current) < MIN_INOTIFY_INSTANCES:
        Path("/proc/sys", INOTIFY_INSTANCES).write_text(str(MIN_INOTIFY_INSTANCES))
    for node in nodes:
        prepare(node, keys, server)
        record = launch(f"containerd-{node.name}", containerd_argv(node), containerd_env())
        deadline = time.monotonic() + 30
        while not containerd_ready(node):
            if not record.alive():
                raise RealNodeError(f"containerd of {node.name} exited: {record.log_tail()}")
            if time.monotonic() > deadline:
                raise RealNodeError(f"containerd of {node.name} did not open {node.socket}: {record.log_tail()}")
            time.sleep(0.1)
        import_images(node, archives)
    for node in nodes:
        before = _socket_identity(DEVICE_PLUGIN_SOCKET)
        record = launch(f"kubelet-{node.name}", kubelet_argv(multicall, node), None)
        if node is not nodes[-1]:  # the next kubelet starts once this one listens (see DEVICE_PLUGIN_SOCKET)
            deadline = time.monotonic() + 30
            while _socket_identity(DEVICE_PLUGIN_SOCKET) in (before, None) and record.alive() \
                    and time.monotonic() < deadline:
                time.sleep(0.05)


def _socket_identity(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_ctime_ns
