"""The sandbox's certificates and keys, and the kubeconfigs that carry them.

Client certificates (not static tokens) authenticate every component, so the apiserver runs with
real authentication and RBAC: the well-known user names below are bound by Kubernetes's bootstrap
RBAC policy. EC P-256 keys keep generation to milliseconds.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
APISERVER_SANS_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                      "kubernetes.default.svc.cluster.local")
APISERVER_SANS_IP = ("127.0.0.1", "10.96.0.1")
VALIDITY = datetime.timedelta(days=365)

# file stem -> (common name, organisation): the users the bootstrap RBAC policy knows.
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("sandbox-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
    "kwok": ("kwok-controller", "system:masters"),
    "front-proxy-client": ("front-proxy-client", None),  # the apiserver's identity towards aggregated APIs
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", "system:masters"),  # logs/exec on real nodes
}


@dataclass(frozen=True)
class Pki:
    """Paths of the files `create` writes."""

    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    return x509.Name(attributes)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))  # tolerate small clock skew
            .not_valid_after(now + VALIDITY))


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def create(directory: Path) -> Pki:
    """A CA, the apiserver's serving certificate, one client certificate per component, SA keys."""
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_name = _name("ecs-operator-sandbox-ca")
    ca = (_builder(ca_name, ca_name, ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(pki.ca_cert, ca.public_bytes(serialization.Encoding.PEM))
    _write(pki.ca_key, _key_pem(ca_key), private=True)

    def issue(stem: str, subject: x509.Name, usage: x509.ObjectIdentifier,
              sans: x509.SubjectAlternativeName | None = None) -> None:
        key = _new_key()
        builder = (_builder(subject, ca_name, key.public_key())
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans is not None:
            builder = builder.add_extension(sans, critical=False)
        _write(pki.cert(stem), builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
        _write(pki.key(stem), _key_pem(key), private=True)

    issue("apiserver", _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
          x509.SubjectAlternativeName([*(x509.DNSName(n) for n in APISERVER_SANS_DNS),
                                       *(x509.IPAddress(ipaddress.ip_address(i)) for i in APISERVER_SANS_IP)]))
    for stem, (common_name, organisation) in CLIENTS.items():
        issue(stem, _name(common_name, organisation), ExtendedKeyUsageOID.CLIENT_AUTH)

    sa_key = _new_key()
    _write(pki.sa_key, _key_pem(sa_key), private=True)
    _write(pki.sa_pub, sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki


def write_kubeconfig(path: Path, server: str, pki: Pki, client: str, name: str = "ecs-sandbox") -> Path:
    """A self-contained kubeconfig (certificates embedded) for one of the `CLIENTS`."""

    def b64(file: Path) -> str:
        return base64.b64encode(file.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": f"{name}-{client}", "user": {"client-certificate-data": b64(pki.cert(client)),
                                                         "client-key-data": b64(pki.key(client))}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-{client}"}}],
        "current-context": name,
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
