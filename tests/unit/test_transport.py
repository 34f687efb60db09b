"""The operator's Kubernetes transport (adapters/transport.py): its configuration from a kubeconfig (embedded
certificates as the sandbox writes them, files, tokens) and in-cluster (a ServiceAccount directory), each used
for real against a local HTTPS server that checks the client certificate; the API server's answers mapped to
ApiError as adapters/kube.py did with the Kubernetes client."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.adapters.transport import (
    Config, ConfigError, Transport, incluster_config, kubeconfig_config, load_config, read_token,
)
from ecs_operator.handlers.namespaces import login
from ecs_operator.sandbox import pki as sandbox_pki


class Handler(BaseHTTPRequestHandler):
    """Answers GET with who asked (client certificate CN, Authorization); /status/N with a Status of code N."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path.startswith("/status/"):
            code = int(self.path.split("/")[2])
            self.answer(code, {"kind": "Status", "code": code, "reason": "Invalid", "message": f"refused {code}",
                               "details": {"causes": [{"field": "spec.replicas", "message": "must be >= 0"}]}})
            return
        peer: Any = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        subject = {key: value for rdn in (peer or {}).get("subject", ()) for key, value in rdn}
        self.answer(200, {"cn": subject.get("commonName"), "authorization": self.headers.get("Authorization"),
                          "path": self.path})

    do_DELETE = do_GET  # noqa: N815

    def answer(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> sandbox_pki.Pki:
    return sandbox_pki.create(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(pki: sandbox_pki.Pki) -> Iterator[str]:
    """https://127.0.0.1:PORT with the sandbox API server's certificate; a client certificate is optional
    (a token is the other way in), and checked against the CA when given."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    context.load_cert_chain(pki.cert("apiserver"), pki.key("apiserver"))
    context.verify_mode = ssl.CERT_OPTIONAL
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(path: Path, cluster: dict[str, Any], user: dict[str, Any], **context: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": cluster}], "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u", **context}}],
    }))
    return path


def whoami(config: Config) -> dict[str, Any]:
    return Kube(Transport(config))._call("GET", "/version")


def test_the_sandboxs_kubeconfig_with_embedded_client_certificates(pki: sandbox_pki.Pki, server: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = sandbox_pki.write_kubeconfig(tmp_path / "kubeconfig", server, pki, "admin")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    config = load_config()
    assert config.server == server and config.ca == pki.ca_cert.read_bytes() and config.token is None
    assert config.client_cert == pki.cert("admin").read_bytes() and config.client_key == pki.key("admin").read_bytes()
    assert whoami(config) == {"cn": "sandbox-admin", "authorization": None, "path": "/version"}
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("ecs-operator-tls-*"))  # the key is not left behind


def test_a_kubeconfig_naming_files_relative_to_itself_and_a_token(pki: sandbox_pki.Pki, server: str, tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    for name in ("ca.crt", "admin.crt", "admin.key"):
        (tmp_path / "certs" / name).write_bytes((pki.dir / name).read_bytes())
    path = kubeconfig(tmp_path / "config", {"server": server + "/", "certificate-authority": "certs/ca.crt"},
                      {"client-certificate": "certs/admin.crt", "client-key": str(tmp_path / "certs" / "admin.key"),
                       "token": "abc"}, namespace="team")
    config = kubeconfig_config(str(path))
    assert config.server == server and config.namespace == "team"
    assert whoami(config) == {"cn": "sandbox-admin", "authorization": "Bearer abc", "path": "/version"}


def test_a_token_file_is_read_again_when_it_is_rotated(pki: sandbox_pki.Pki, server: str, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    path = kubeconfig(tmp_path / "config", {"server": server, "certificate-authority-data": b64(pki.ca_cert)},
                      {"tokenFile": "token"})
    transport = Transport(kubeconfig_config(str(path)))
    kube = Kube(transport)
    assert kube._call("GET", "/x") == {"cn": None, "authorization": "Bearer first", "path": "/x"}
    (tmp_path / "token.new").write_text("second")
    os.replace(tmp_path / "token.new", tmp_path / "token")  # as the kubelet swaps a projected token
    assert kube._call("GET", "/x")["authorization"] == "Bearer second"


def test_in_cluster_from_the_service_account_directory(pki: sandbox_pki.Pki, server: str, tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "namespace").write_text("ecs-system")
    (tmp_path / "ca.crt").write_bytes(pki.ca_cert.read_bytes())
    port = server.rsplit(":", 1)[1]
    config = incluster_config({"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": port}, tmp_path)
    assert config.server == server and config.namespace == "ecs-system" and config.token_file == str(tmp_path / "token")
    assert whoami(config) == {"cn": None, "authorization": "Bearer sa-token", "path": "/version"}
    ipv6 = incluster_config({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
    assert ipv6.server == "https://[fd00::1]:443"
    with pytest.raises(ConfigError, match="KUBERNETES_SERVICE_HOST"):
        incluster_config({}, tmp_path)
    with pytest.raises(ConfigError, match="no ServiceAccount token"):
        incluster_config({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path / "none")


def test_kopfs_login_uses_the_same_configuration(pki: sandbox_pki.Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = sandbox_pki.write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443", pki, "admin")
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    import kopf

    handler: Any = login  # kopf's decorator types it as an activity taking all of kopf's arguments
    info: kopf.ConnectionInfo = handler(settings=kopf.OperatorSettings())
    assert info.server == "https://127.0.0.1:6443" and info.default_namespace == "default" and info.token is None
    context = info.as_ssl_context()  # kopf builds it from the data: the certificates must load
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # as kubectl, it is asked for
def test_insecure_skip_tls_verify(server: str, tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"server": server, "insecure-skip-tls-verify": True}, {"token": "t"})
    assert whoami(kubeconfig_config(str(path)))["authorization"] == "Bearer t"
    verified = kubeconfig(tmp_path / "verified", {"server": server}, {"token": "t"})  # the system's CAs: not ours
    with pytest.raises(ApiError) as raised:
        whoami(kubeconfig_config(str(verified)))
    assert raised.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in raised.value.message


def test_credential_plugins_and_broken_kubeconfigs_are_refused_by_name(tmp_path: Path) -> None:
    plugin = kubeconfig(tmp_path / "exec", {"server": "https://x"},
                        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "aws"}})
    with pytest.raises(ConfigError, match=r"users\[\]\.user\.exec \(aws\)"):
        kubeconfig_config(str(plugin))
    provider = kubeconfig(tmp_path / "provider", {"server": "https://x"}, {"auth-provider": {"name": "oidc"}})
    with pytest.raises(ConfigError, match=r"auth-provider \(oidc\)"):
        kubeconfig_config(str(provider))
    with pytest.raises(ConfigError, match="no kubeconfig at"):
        kubeconfig_config(str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("apiVersion: v1\n")
    with pytest.raises(ConfigError, match="current-context is not set"):
        kubeconfig_config(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="certificate-authority-data is not base64"):
        kubeconfig_config(str(kubeconfig(tmp_path / "b64", {"server": "https://x", "certificate-authority-data": "%%"}, {})))
    with pytest.raises(ConfigError, match="cannot read"):
        kubeconfig_config(str(kubeconfig(tmp_path / "ca", {"server": "https://x", "certificate-authority": "nope.crt"}, {})))
    with pytest.raises(ConfigError, match="has no server"):
        kubeconfig_config(str(kubeconfig(tmp_path / "noserver", {}, {})))


def test_the_first_kubeconfig_of_a_list_wins(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "a", {"server": "https://a"}, {"token": "a"})
    second = kubeconfig(tmp_path / "b", {"server": "https://b"}, {"token": "b"})
    config = kubeconfig_config(os.pathsep.join([str(tmp_path / "missing"), str(first), str(second)]))
    assert (config.server, read_token(config)) == ("https://a", "a")


def test_refusals_map_to_api_error_with_the_status_message_and_causes(server: str, pki: sandbox_pki.Pki) -> None:
    kube = Kube(Transport(Config(server=server, ca=pki.ca_cert.read_bytes())))
    with pytest.raises(ApiError) as raised:
        kube._call("GET", "/status/422")
    error = raised.value
    assert (error.status, error.reason, error.message) == (422, "Unprocessable Entity", "refused 422")
    assert error.causes == [{"field": "spec.replicas", "message": "must be >= 0"}] and not error.temporary
    assert kube.get("Pod", "ns", "x") == {"cn": None, "authorization": None, "path": "/api/v1/namespaces/ns/pods/x"}
    with pytest.raises(ApiError) as raised:
        kube._call("GET", "/status/503")
    assert raised.value.status == 503 and raised.value.temporary


def test_no_answer_is_a_temporary_unreachable_api_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ApiError) as raised:
            Kube(Transport(Config(server=f"https://127.0.0.1:{port}")))._call("GET", "/version")
    assert (raised.value.status, raised.value.reason) == (0, "Unreachable") and raised.value.temporary
