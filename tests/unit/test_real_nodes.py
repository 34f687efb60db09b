"""Pure parts of the sandbox's real nodes: names and addresses, the kubelet/containerd/CNI settings that keep
the network rule, the locally written OCI images, and the API server's flags for kubelets."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import tarfile
import tomllib
from pathlib import Path

import pytest
from cryptography import x509

from ecs_operator.sandbox import components, images, pki, realnodes
from ecs_operator.sandbox.launcher import STATE_ENTRIES, State


@pytest.fixture(autouse=True)
def prefixes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Reservations in a directory of the test's own, never the machine's /run."""
    directory = tmp_path / "prefixes"
    monkeypatch.setattr(realnodes, "PREFIXES", directory)
    return directory


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[realnodes.RealNode]:
    monkeypatch.setattr(realnodes, "_used_prefixes", lambda: "inet 10.150.1.1/24 \n10.151.0.0/16 dev x\n")
    (tmp_path / "state").mkdir()
    return realnodes.plan(tmp_path / "state", 2)


def test_plan_skips_prefixes_in_use_and_names_fit_the_kernel(nodes: list[realnodes.RealNode], tmp_path: Path) -> None:
    first, second = nodes
    assert (first.name, first.node_ip, first.pod_subnet) == ("sandbox-real-1", "10.152.1.1", "10.152.1.0/24")
    assert (second.node_ip, second.pod_subnet) == ("10.152.2.1", "10.152.2.0/24")
    assert first.bridge != second.bridge and all(len(n.bridge) <= 15 for n in nodes)  # IFNAMSIZ
    assert first.cgroup_root != second.cgroup_root and first.cgroup_root.startswith("/ecs-sandbox-")
    assert Path(first.dir).parent == tmp_path / "state" / "real-nodes"
    assert len(str(first.socket) + ".ttrpc") <= 107  # a unix socket path's limit
    with pytest.raises(realnodes.RealNodeError, match="too long"):
        realnodes.plan(tmp_path / ("x" * 80), 1)


def test_containerd_never_reaches_a_registry(nodes: list[realnodes.RealNode]) -> None:
    config = tomllib.loads(realnodes._containerd_config(nodes[0]))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == images.PAUSE_IMAGE and cri["restrict_oom_score_adj"] is True
    assert cri["registry"]["config_path"].startswith(nodes[0].dir)  # no mirrors, no hosts.toml
    assert config["grpc"]["address"] == str(nodes[0].socket)
    assert all(v.startswith(nodes[0].dir) for v in (config["root"], config["state"]))
    env = realnodes.containerd_env()
    assert env["HTTPS_PROXY"] == env["HTTP_PROXY"] == "http://127.0.0.1:9" and env["NO_PROXY"] == ""


def test_pods_get_no_default_route_and_no_masquerade_only_a_route_to_the_other_nodes(
        nodes: list[realnodes.RealNode]) -> None:
    (bridge,) = realnodes._cni_config(nodes[0])["plugins"]
    assert bridge["bridge"] == nodes[0].bridge and bridge["isDefaultGateway"] is False and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": nodes[0].pod_subnet}]]
    # through the gateway (the node's bridge): the sandbox's other nodes' Pods and the kubernetes Service's ClusterIP
    # (the first of the service range)
    assert bridge["ipam"]["routes"] == [{"dst": "10.152.0.0/16"}, {"dst": "10.96.0.1/32"}]
    assert realnodes.KUBERNETES_SERVICE_IP == "10.96.0.1"
    assert all(realnodes.sandbox_network(n) == "10.152.0.0/16" for n in nodes)


def _reserve(args: tuple[str, str, str]) -> int:
    root, used, directory = args
    return realnodes.reserve_prefix(Path(root), used, Path(directory))


def test_sandboxes_starting_at_the_same_instant_reserve_different_prefixes(prefixes: Path, tmp_path: Path) -> None:
    roots = [tmp_path / f"sandbox-{i}" for i in range(8)]
    for root in roots:
        root.mkdir()
    used = "inet 10.150.1.1/24 scope global eth0\n"
    with multiprocessing.get_context("fork").Pool(8) as pool:  # eight processes choosing at once
        chosen = pool.map(_reserve, [(str(r), used, str(prefixes)) for r in roots])
    assert sorted(chosen) == list(range(151, 159))
    assert {(prefixes / f"10.{k}").read_text() for k in chosen} == {str(r) for r in roots}
    later = tmp_path / "later"
    later.mkdir()
    assert realnodes.reserve_prefix(later, used) == 159  # a later one sees them all
    assert realnodes.reserve_prefix(roots[0], used) == chosen[0]  # `up` again after a crash: its own again
    assert realnodes.reservations(roots[0]) == [prefixes / f"10.{chosen[0]}"]


def test_a_reservation_is_released_by_down_and_taken_over_when_its_sandbox_is_gone(
        prefixes: Path, tmp_path: Path) -> None:
    alive, gone = tmp_path / "alive", tmp_path / "gone"
    alive.mkdir()
    assert realnodes.reserve_prefix(alive, "") == 150
    assert realnodes.reserve_prefix(gone, "") == 151  # its directory does not exist (removed without `down`)
    later = tmp_path / "later"
    later.mkdir()
    assert realnodes.reserve_prefix(later, "") == 151  # the stale one is taken over, the live one kept
    realnodes.release_prefix(alive)
    assert realnodes.reservations(alive) == [] and sorted(p.name for p in prefixes.iterdir()) == [
        "10.151", realnodes.ORIGINALS]
    realnodes.release_prefix(later)
    assert not prefixes.exists()  # the last one out removes the directory: `down` leaves nothing
    realnodes.release_prefix(later)  # again: nothing to do
    with pytest.raises(realnodes.RealNodeError, match="no free"):
        realnodes.reserve_prefix(alive, "".join(f"10.{k}.0.0/16 dev x\n" for k in range(150, 200)))


def test_the_kubernetes_service_reaches_the_apiserver_and_nothing_else_leaves_but_to_the_other_nodes(
        nodes: list[realnodes.RealNode]) -> None:
    dnat, drop = realnodes.service_rules(nodes[0], 41234)
    bridge = nodes[0].bridge
    assert dnat[:2] == ["nat", "PREROUTING"] and dnat[dnat.index("-i") + 1] == bridge
    assert dnat[dnat.index("-d") + 1] == "10.96.0.1/32" and dnat[dnat.index("--dport") + 1] == "443"
    assert dnat[-3:] == ["DNAT", "--to-destination", "127.0.0.1:41234"]
    assert drop[:2] == ["filter", "FORWARD"] and drop[-2:] == ["-j", "DROP"]
    assert drop[drop.index("-i") + 1] == bridge and drop[drop.index("-d") - 1:drop.index("-d") + 2] == [
        "!", "-d", "10.152.0.0/16"]  # a Pod's packets to the other real nodes' Pods pass
    assert all(f"ecs-operator sandbox {bridge}" in rule for rule in (dnat, drop))  # how teardown finds them


def test_kubelet_settings_for_this_machine(nodes: list[realnodes.RealNode], tmp_path: Path) -> None:
    keys = pki.create(tmp_path / "pki")
    config = realnodes._kubelet_config(nodes[0], keys, (Path("c"), Path("k")))
    assert (config["failCgroupV1"], config["failSwapOn"], config["cgroupDriver"]) == (False, False, "cgroupfs")
    assert config["address"] == nodes[0].node_ip and config["healthzPort"] == 0 and config["readOnlyPort"] == 0
    assert config["registerWithTaints"] == [realnodes.REAL_NODE_TAINT]
    assert config["authentication"]["anonymous"]["enabled"] is False
    argv = realnodes.kubelet_argv(Path("/bin/k8s-cp"), nodes[0])
    assert argv[:2] == ["/bin/k8s-cp", "kubelet"] and f"--node-ip={nodes[0].node_ip}" in argv
    labels = next(a for a in argv if a.startswith("--node-labels=")).split("=", 1)[1].split(",")
    assert "ecs.operator.dev/real-node=true" in labels and "ecs.operator.dev/cluster=real" in labels


def test_node_certificates_name_the_node(nodes: list[realnodes.RealNode], tmp_path: Path) -> None:
    keys = pki.create(tmp_path / "pki")
    cert, _ = realnodes._issue(keys, "kubelet-n", "system:node:n", "system:nodes", x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
    subject = x509.load_pem_x509_certificate(cert.read_bytes()).subject.rfc4514_string()
    assert subject == "CN=system:node:n,O=system:nodes"
    cert, _ = realnodes._issue(keys, "serving-n", "n", None, x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, ip="10.150.1.1")
    sans = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.150.1.1"]


def test_the_apiserver_dials_kubelets_by_internal_ip_with_a_client_certificate(tmp_path: Path) -> None:
    layout = components.Layout(tmp_path)
    argv = components.kube_apiserver(Path("k8s-cp"), layout, components.Ports(1, 2, 3, 4, 5))
    assert "--kubelet-preferred-address-types=InternalIP" in argv
    assert f"--kubelet-client-certificate={layout.pki.cert('apiserver-kubelet-client')}" in argv
    assert "apiserver-kubelet-client" in pki.CLIENTS and "real-nodes" in STATE_ENTRIES


def test_a_namespace_can_place_its_pods_on_the_real_nodes(tmp_path: Path) -> None:
    """The chart's defaults reach the tainted real nodes through its namespace's annotations (PodNodeSelector,
    PodTolerationRestriction); the API server's certificate names the kubernetes Service's ClusterIP."""
    argv = components.kube_apiserver(Path("k8s-cp"), components.Layout(tmp_path), components.Ports(1, 2, 3, 4, 5))
    assert "--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction" in argv
    assert realnodes.KUBERNETES_SERVICE_IP in pki.APISERVER_SANS_IP


def test_the_oci_archives_carry_the_full_reference_and_valid_digests(tmp_path: Path) -> None:
    fake = tmp_path / "busybox"
    fake.write_text("#!/bin/sh\necho sh sleep cat\n")
    fake.chmod(0o755)
    archives = images.archives(fake)
    assert set(archives) == {images.BUSYBOX_IMAGE, images.PAUSE_IMAGE}
    with tarfile.open(fileobj=io.BytesIO(archives[images.PAUSE_IMAGE])) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == images.PAUSE_IMAGE  # not a bare tag
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'].split(':')[1]}"])
    config = json.loads(files[f"blobs/sha256/{manifest['config']['digest'].split(':')[1]}"])
    assert config["config"]["Entrypoint"] == images.PAUSE_ENTRYPOINT and "wait" in images.PAUSE_ENTRYPOINT[2]
    layer = files[f"blobs/sha256/{manifest['layers'][0]['digest'].split(':')[1]}"]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        links = {m.name: m.linkname for m in tar.getmembers() if m.issym()}
    assert links == {"bin/sh": "busybox", "bin/sleep": "busybox", "bin/cat": "busybox"}


def test_state_keeps_real_nodes_and_the_host_snapshot(nodes: list[realnodes.RealNode]) -> None:
    state = State(bin_dir="/b", ports=components.Ports(1, 2, 3, 4, 5), real_nodes=nodes,
                  host={"sysctls": {"net/ipv4/ip_forward": "0"}, "existing_dirs": []})
    again = State.from_json(json.loads(json.dumps(state.to_json())))
    assert again.real_nodes == nodes and again.host == state.host
    old = state.to_json()
    for key in ("real_nodes", "host", "real_nodes_ready_seconds"):
        del old[key]
    assert State.from_json(old).real_nodes == []  # a state.json written before real nodes existed


class _Client:
    """The API calls `delete_pods` makes, answered as an API server with one Pod on the node would."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.pods = [{"metadata": {"namespace": "ns", "name": "agent-x"}}]

    def request(self, method: str, path: str, body: object = None, content_type: str = "") -> dict[str, object]:
        self.calls.append((method, path, body))
        if method == "DELETE":
            self.pods = []
        return {}

    def get(self, path: str) -> dict[str, object]:
        return {"items": self.pods}


def test_down_taints_the_nodes_so_no_daemon_set_puts_its_pods_back(nodes: list[realnodes.RealNode]) -> None:
    client = _Client()
    realnodes.delete_pods(client, nodes[:1], timeout=5, log=lambda _: None)  # type: ignore[arg-type]
    (patch, delete) = client.calls
    assert patch[:2] == ("PATCH", f"/api/v1/nodes/{nodes[0].name}")
    assert patch[2] == {"spec": {"unschedulable": True, "taints": [realnodes.REAL_NODE_TAINT, realnodes.DOWN_TAINT]}}
    assert realnodes.DOWN_TAINT["effect"] == "NoExecute" and realnodes.DOWN_TAINT["key"] != realnodes.REAL_NODE_TAINT["key"]
    assert delete == ("DELETE", "/api/v1/namespaces/ns/pods/agent-x", {"gracePeriodSeconds": 1})


def test_the_settings_as_the_first_running_sandbox_found_them_are_what_the_last_one_restores(
        prefixes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = {"net/ipv4/ip_forward": "0", realnodes.INOTIFY_INSTANCES: "128"}
    monkeypatch.setattr(realnodes, "_read_sysctl", lambda name: machine.get(name))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    realnodes.reserve_prefix(first, "")
    machine.update({"net/ipv4/ip_forward": "1", realnodes.INOTIFY_INSTANCES: "1024"})  # the first one's kubelet ran
    realnodes.reserve_prefix(second, "")  # starts meanwhile: its own snapshot would see the changed values
    assert realnodes.original_sysctls() == {"net/ipv4/ip_forward": "0", realnodes.INOTIFY_INSTANCES: "128"}
    realnodes.release_prefix(first)  # the first goes down first: the record stays for the second
    assert realnodes.original_sysctls()["net/ipv4/ip_forward"] == "0"
    realnodes.release_prefix(second)
    assert realnodes.original_sysctls() == {} and not prefixes.exists()
