"""Command lines of the five control-plane processes, and the state directory they share.

Everything listens on 127.0.0.1 only, on ports chosen per sandbox so several can run side by side.
Flags that matter (see docs/sandbox.md):
- etcd: `--watch-progress-notify-interval=5s` (the apiserver's consistent reads from its watch
  cache need progress notifications); `--unsafe-no-fsync` (a throw-away store; much faster).
- kube-apiserver: `--endpoint-reconciler-type=none` (the `kubernetes` Service would need a
  non-loopback endpoint); authorization Node,RBAC (never AlwaysAllow); service-account issuer and
  keys, so TokenRequest (`kubectl create token`) works.
  PodNodeSelector and PodTolerationRestriction: a namespace annotated for it puts its Pods on the real nodes.
- kube-controller-manager: the SA private key (token controller) and root CA (the
  kube-root-ca.crt ConfigMap), no leader election.
- kwok: manages only nodes annotated `kwok.x-k8s.io/node=fake`, with this package's stages.
"""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ecs_operator.nodepool.instance_types import KWOK_ANNOTATION
from ecs_operator.placement import scheduler_profiles
from ecs_operator.sandbox.pki import SERVICE_CLUSTER_IP_RANGE, Pki

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
POD_CIDR = "10.244.0.0/16"  # kwok's fake pod IPs (its default /24 runs out after 254 pods)
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass(frozen=True)
class Ports:
    """The TCP ports of one sandbox, all on 127.0.0.1."""

    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def pick(cls) -> Ports:
        """Ports free right now (held open together, so they are distinct)."""
        sockets = [socket.socket() for _ in range(5)]
        try:
            for s in sockets:
                s.bind(("127.0.0.1", 0))
            return cls(*(s.getsockname()[1] for s in sockets))
        finally:
            for s in sockets:
                s.close()

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Layout:
    """Where a sandbox keeps its files; `down` removes all of it."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig users and tests get."""
        return self.root / "kubeconfig"

    @property
    def pki(self) -> Pki:
        return Pki(self.root / "pki")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def ecs_api(self) -> Path:
        """How to reach the ECS API of `sandbox up --api` (endpoint and key: see ecs.py)."""
        return self.root / "ecs-api.json"

    def component_kubeconfig(self, client: str) -> Path:
        return self.root / f"{client}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"


def stage_files() -> list[Path]:
    """kwok's stage configuration shipped in this package (documented in docs/sandbox.md)."""
    directory = resources.files("ecs_operator.sandbox") / "stages"
    return sorted(Path(str(f)) for f in directory.iterdir() if f.name.endswith(".yaml"))


def etcd(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    client, peer = f"http://127.0.0.1:{ports.etcd_client}", f"http://127.0.0.1:{ports.etcd_peer}"
    return [str(binary), "etcd", "--name=sandbox", f"--data-dir={layout.etcd_data}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sandbox={peer}", "--watch-progress-notify-interval=5s",
            "--unsafe-no-fsync", "--quota-backend-bytes=2147483648", "--log-level=warn"]


def kube_apiserver(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    pki = layout.pki
    return [str(binary), "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={ports.apiserver}",
            "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki.cert('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}", f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true", "--profiling=false",
            # a namespace's annotations may pin its Pods to nodes and add tolerations (an administrator's
            # placement policy): how the chart's defaults land on the tainted real nodes; inert elsewhere
            "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction",
            # front-proxy (aggregation) settings: without them every delegating component logs a missing CA bundle
            f"--requestheader-client-ca-file={pki.ca_cert}", "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki.cert('front-proxy-client')}",
            f"--proxy-client-key-file={pki.key('front-proxy-client')}",
            # real nodes' kubelets (`kubectl logs/exec`): by InternalIP (a Hostname would mean a DNS lookup),
            # the sandbox CA verifies their serving certificates, and the apiserver presents its own client one
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={pki.cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.key('apiserver-kubelet-client')}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            f"--cert-dir={layout.root / 'apiserver'}"]


def kube_controller_manager(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    pki, kubeconfig = layout.pki, layout.component_kubeconfig("controller-manager")
    return [str(binary), "kube-controller-manager",
            f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={ports.controller_manager}", "--leader-elect=false",
            f"--service-account-private-key-file={pki.sa_key}", f"--root-ca-file={pki.ca_cert}",
            f"--cluster-signing-cert-file={pki.ca_cert}", f"--cluster-signing-key-file={pki.ca_key}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            f"--flex-volume-plugin-dir={layout.root / 'flexvolume'}",  # else it creates /usr/libexec/kubernetes/...
            f"--cert-dir={layout.root / 'controller-manager'}"]


def kube_scheduler(binary: Path, layout: Layout, ports: Ports) -> list[str]:
    kubeconfig = layout.component_kubeconfig("scheduler")
    config = layout.root / "scheduler.yaml"
    config.write_text(yaml.safe_dump({
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "leaderElection": {"leaderElect": False},
        "profiles": [{"schedulerName": "default-scheduler"}, *scheduler_profiles.profiles()],
    }))
    return [str(binary), "kube-scheduler", f"--config={config}",
            f"--authentication-kubeconfig={kubeconfig}", f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={ports.scheduler}",
            f"--cert-dir={layout.root / 'scheduler'}"]


def kwok(binary: Path, layout: Layout) -> list[str]:
    """No --server-address: kwok serves nothing, so `kubectl logs/exec` to fake pods is not simulated."""
    return [str(binary), f"--kubeconfig={layout.component_kubeconfig('kwok')}",
            "--manage-all-nodes=false", f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}", "--node-lease-duration-seconds=40",
            *(f"--config={f}" for f in stage_files())]


def describe(ports: Ports) -> dict[str, Any]:
    """Where each component listens (for `sandbox status`)."""
    return {"etcd": f"http://127.0.0.1:{ports.etcd_client}",
            "kube-apiserver": f"https://127.0.0.1:{ports.apiserver}",
            "kube-controller-manager": f"https://127.0.0.1:{ports.controller_manager}",
            "kube-scheduler": f"https://127.0.0.1:{ports.scheduler}",
            "kwok": "(no port)"}
