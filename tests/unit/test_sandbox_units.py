"""Pure parts of the sandbox: node manifests, the build cache key, the PKI, stage files."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from ecs_operator.nodepool.instance_types import (
    INSTANCE_TYPES, KWOK_ANNOTATION, ZONES, build_node, instance_type, private_ip_for, zone_for,
)
from ecs_operator.sandbox import build, components, ecs, pki
from ecs_operator.sandbox.launcher import STATE_ENTRIES


def test_node_has_kwok_annotation_and_well_known_labels() -> None:
    node = build_node("n1", instance_type("m5.xlarge"), "us-east-1b", labels={"ecs.operator.dev/cluster": "default"})
    assert node["metadata"]["annotations"] == {KWOK_ANNOTATION: "fake"}
    assert node["metadata"]["labels"] == {
        "type": "kwok",
        "kubernetes.io/hostname": "n1",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": "m5.xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": "us-east-1b",
        "ecs.operator.dev/cluster": "default",
    }
    assert node["spec"]["taints"] == []
    assert node["status"]["capacity"] == {"cpu": "4", "memory": "16384Mi", "pods": "58", "ephemeral-storage": "20Gi"}
    assert node["status"]["allocatable"] == node["status"]["capacity"]


def test_gpu_and_arm_types() -> None:
    gpu = build_node("g", instance_type("g4dn.xlarge"), ZONES[0])
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "1"
    arm = build_node("a", instance_type("m6g.large"), ZONES[0])
    assert arm["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
    assert arm["status"]["nodeInfo"]["architecture"] == "arm64"
    assert "nvidia.com/gpu" not in arm["status"]["capacity"]


def test_taints_are_passed_through() -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    assert build_node("t", instance_type("t3.medium"), ZONES[0], taints=[taint])["spec"]["taints"] == [taint]


def test_zones_round_robin_with_addresses_in_their_subnets() -> None:
    assert [zone_for(i) for i in range(4)] == ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a"]
    assert [private_ip_for(i) for i in range(4)] == ["10.0.0.10", "10.0.16.10", "10.0.32.10", "10.0.0.11"]
    assert len({private_ip_for(i) for i in range(3000)}) == 3000
    node = build_node("n", instance_type("m5.large"), zone_for(1), internal_ip=private_ip_for(1))
    assert node["status"]["addresses"] == [{"type": "InternalIP", "address": "10.0.16.10"},
                                           {"type": "Hostname", "address": "n"}]
    assert "addresses" not in build_node("n", instance_type("m5.large"), zone_for(1))["status"]


def test_unknown_instance_type_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="m5.large"):
        instance_type("m9.huge")
    assert "m5.xlarge" in INSTANCE_TYPES


@pytest.fixture
def controlplane(tmp_path: Path) -> Path:
    """A copy of the repository's wrapper modules, free to edit."""
    copy = tmp_path / "controlplane"
    shutil.copytree(build.controlplane_dir(), copy, ignore=shutil.ignore_patterns("bin"))
    return copy


def test_build_key_is_stable_and_follows_sources_and_toolchain(controlplane: Path) -> None:
    source = build.source_hash(controlplane)
    assert build.source_hash(controlplane) == source
    key = build.build_key(source, "go1.26.8 linux/amd64")
    assert len(key) == 16
    assert build.build_key(source, "go1.26.9 linux/amd64") != key
    assert build.build_key(source, "go1.26.8 linux/arm64") != key
    with (controlplane / "kwok" / "go.sum").open("a") as go_sum:
        go_sum.write("example.com/m v1.0.0 h1:AAAA=\n")
    assert build.source_hash(controlplane) != source


def test_stamped_versions_come_from_go_mod(controlplane: Path) -> None:
    assert build.versions(controlplane) == {"k8s-cp": "v1.37.2", "kwok": "v0.8.0", "helm": "v3.22.0"}
    assert build.module_version("module x\n\nrequire k8s.io/kubernetes v1.36.3\n", "k8s.io/kubernetes") == "v1.36.3"
    ldflags = build.TARGETS[0].ldflags("v1.37.2")
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in ldflags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=37" in ldflags


def test_cache_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_root() == tmp_path / "ecs-operator" / "controlplane"


def test_pki_certificates(tmp_path: Path) -> None:
    keys = pki.create(tmp_path / "pki")
    serving = x509.load_pem_x509_certificate(keys.cert("apiserver").read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "kubernetes.default.svc"} <= set(sans.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "10.96.0.1"} <= {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    admin = x509.load_pem_x509_certificate(keys.cert("admin").read_bytes())
    assert "O=system:masters" in admin.subject.rfc4514_string()
    scheduler = x509.load_pem_x509_certificate(keys.cert("scheduler").read_bytes())
    assert scheduler.subject.rfc4514_string() == "CN=system:kube-scheduler"
    kubeconfig = yaml.safe_load(pki.write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", keys, "admin").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:1"
    assert (tmp_path / "kc").stat().st_mode & 0o077 == 0


def test_stage_files_are_stages() -> None:
    names = set()
    for path in components.stage_files():
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] == "Stage"
            names.add(document["metadata"]["name"])
    assert names == {"node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-fail-start", "pod-exit",
                     "pod-complete", "pod-delete"}


def test_ports_are_distinct() -> None:
    ports = components.Ports.pick()
    assert len(set(ports.to_json().values())) == 5


def test_the_api_access_file_is_private_and_holds_what_env_exports(tmp_path: Path) -> None:
    access = ecs.ApiAccess("http://127.0.0.1:8085", ecs.new_access_key_id(), "s3cret", "us-east-1")
    path = tmp_path / "ecs-api.json"
    access.write(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ecs.ApiAccess.read(path) == access and ecs.ApiAccess.read(tmp_path / "none") is None
    assert access.env() == {"AWS_ENDPOINT_URL_ECS": "http://127.0.0.1:8085", "AWS_ACCESS_KEY_ID": access.access_key_id,
                            "AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_DEFAULT_REGION": "us-east-1"}


def test_access_key_ids_have_aws_shape_and_differ() -> None:
    ids = {ecs.new_access_key_id() for _ in range(20)}
    assert len(ids) == 20 and all(re.fullmatch(r"AKIA[A-Z2-7]{16}", i) for i in ids)


def test_the_access_file_is_a_state_directory_entry() -> None:
    assert components.Layout(Path("/s")).ecs_api.name in STATE_ENTRIES
