"""The operator's HTTP transport to the Kubernetes API: a urllib3 connection pool and the credentials of an
in-cluster ServiceAccount or a kubeconfig. The operator sends and reads raw JSON (adapters/kube.py), so the
`kubernetes` client package is not needed, and not installed: importing it cost 57 MB of RSS, and kopf
imports it whenever it is there.

What a kubeconfig may use: its current context's server, certificate-authority(-data),
insecure-skip-tls-verify, proxy-url, client-certificate(-data) and client-key(-data), token or tokenFile,
username and password. Credential plugins (`exec`, `auth-provider`) are refused with a ConfigError naming them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import ssl
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3
import yaml

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"
POOL_MAXSIZE = 64
"""kopf runs up to 32 sync handlers at once (settings.execution.max_workers), plus delayed reconciles: with a
smaller pool a burst discards connections and pays a TLS handshake for most requests."""


class ConfigError(Exception):
    """No usable in-cluster configuration or kubeconfig; the message says which file and field."""


@dataclass(frozen=True)
class Config:
    """Where the API server is and how to authenticate to it. Certificates are PEM bytes (read at load time);
    a token file is read again whenever it changes (a projected ServiceAccount token is rotated in place)."""

    server: str
    ca: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    insecure: bool = False
    proxy_url: str | None = None
    namespace: str | None = None
    source: str = ""
    """The file (or `in-cluster`) it came from, for messages."""


def load_config(kubeconfig: str | None = None) -> Config:
    """In-cluster when running in a Pod (as the Kubernetes client's load_incluster_config, then
    load_kube_config), else the kubeconfig: `kubeconfig`, or $KUBECONFIG, or ~/.kube/config."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT_DIR / "token").exists():
        return incluster_config()
    return kubeconfig_config(kubeconfig)


def incluster_config(environ: Mapping[str, str] = os.environ, directory: Path = SERVICE_ACCOUNT_DIR) -> Config:
    """The Pod's ServiceAccount: the `kubernetes` Service's address from the environment (an IP: no DNS), the
    token and CA the kubelet mounts."""
    host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError("in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set")
    token = directory / "token"
    if not token.is_file():
        raise ConfigError(f"in-cluster: no ServiceAccount token at {token}")
    ca = directory / "ca.crt"
    namespace = directory / "namespace"
    return Config(
        server=f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}",
        ca=_read(ca, "in-cluster CA") if ca.exists() else None,
        token_file=str(token),
        namespace=namespace.read_text().strip() if namespace.exists() else None,
        source="in-cluster",
    )


def kubeconfig_config(path: str | None = None, context: str | None = None) -> Config:
    """The current context (or `context`) of a kubeconfig; $KUBECONFIG may list several files, merged as
    kubectl does (the first file naming a context, cluster or user wins). Relative file names in a kubeconfig
    are relative to its directory."""
    given = path or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    files = [Path(p).expanduser() for p in given.split(os.pathsep) if p]
    merged: dict[str, dict[str, tuple[Path, dict[str, Any]]]] = {"contexts": {}, "clusters": {}, "users": {}}
    current: str | None = context
    found = False
    for file in files:
        if not file.exists():
            continue
        found = True
        try:
            document = yaml.safe_load(file.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"kubeconfig {file}: cannot read it: {e}") from None
        if not isinstance(document, dict):
            raise ConfigError(f"kubeconfig {file}: not a kubeconfig (a YAML mapping)")
        current = current or document.get("current-context") or None
        for section, entries in merged.items():
            for item in document.get(section) or []:
                if isinstance(item, dict) and item.get("name") and item["name"] not in entries:
                    entries[item["name"]] = (file, item.get(section[:-1]) or {})
    where = os.pathsep.join(str(f) for f in files)
    if not found:
        raise ConfigError(f"no kubeconfig at {where} and not in a Pod (no in-cluster configuration)")
    if not current:
        raise ConfigError(f"kubeconfig {where}: current-context is not set")
    if current not in merged["contexts"]:
        raise ConfigError(f"kubeconfig {where}: context {current!r} is not defined")
    _, ctx = merged["contexts"][current]
    cluster_file, cluster = merged["clusters"].get(ctx.get("cluster") or "", (None, None))
    if cluster is None or cluster_file is None:
        raise ConfigError(f"kubeconfig {where}: context {current!r} names cluster {ctx.get('cluster')!r}, which is not defined")
    user_file, user = merged["users"].get(ctx.get("user") or "", (cluster_file, {}))
    for plugin in ("exec", "auth-provider"):
        if user.get(plugin):
            command = (user[plugin].get("command") or user[plugin].get("name") or "") if isinstance(user[plugin], dict) else ""
            raise ConfigError(f"kubeconfig {user_file}: user {ctx.get('user')!r} uses the credential plugin "
                              f"users[].user.{plugin} ({command}), which ecs-operator does not run: give it a token, "
                              "tokenFile or client certificate (e.g. a ServiceAccount's token)")
    if not cluster.get("server"):
        raise ConfigError(f"kubeconfig {cluster_file}: cluster {ctx.get('cluster')!r} has no server")
    token_file = user.get("tokenFile")
    return Config(
        server=str(cluster["server"]).rstrip("/"),
        ca=_pem(cluster_file, cluster, "certificate-authority"),
        client_cert=_pem(user_file, user, "client-certificate"),
        client_key=_pem(user_file, user, "client-key"),
        token=user.get("token") or None,
        token_file=str(_relative(user_file, token_file)) if token_file and not user.get("token") else None,
        username=user.get("username") or None,
        password=user.get("password") or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        proxy_url=cluster.get("proxy-url") or None,
        namespace=ctx.get("namespace") or None,
        source=str(cluster_file),
    )


def _relative(kubeconfig: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else kubeconfig.parent / path


def _read(path: Path, what: str) -> bytes:
    try:
        return _from_begin(path.read_bytes())
    except OSError as e:
        raise ConfigError(f"{what}: cannot read {path}: {e.strerror or e}") from None


def _from_begin(pem: bytes) -> bytes:
    """PEM without any text before its first block (openssl's `subject=` lines): kopf reads only that form."""
    begin = pem.find(b"-----BEGIN")
    return pem[begin:] if begin > 0 else pem


def _pem(kubeconfig: Path, entry: dict[str, Any], key: str) -> bytes | None:
    """`key`-data (base64 PEM) or the file `key` names."""
    data = entry.get(f"{key}-data")
    if data:
        try:
            return _from_begin(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise ConfigError(f"kubeconfig {kubeconfig}: {key}-data is not base64") from None
    if entry.get(key):
        return _read(_relative(kubeconfig, str(entry[key])), f"kubeconfig {kubeconfig}: {key}")
    return None


class Transport:
    """Thread-safe; one connection pool per API server."""

    def __init__(self, config: Config, maxsize: int = POOL_MAXSIZE) -> None:
        self.config = config
        self._token: tuple[tuple[int, int], str] | None = None
        self._lock = threading.Lock()
        options: dict[str, Any] = {"maxsize": maxsize, "block": False}
        if config.server.startswith("https:"):
            options["ssl_context"] = ssl_context(config)  # urllib3 takes its verify_mode (insecure: CERT_NONE)
        self.pool: urllib3.PoolManager = (urllib3.ProxyManager(config.proxy_url, **options) if config.proxy_url
                                          else urllib3.PoolManager(**options))

    def request(
        self, method: str, path: str, query: Iterable[tuple[str, str]] = (), body: bytes | None = None,
        headers: Mapping[str, str] | None = None, timeout: float | None = None, stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Any answer the API server gives (its status unchecked); urllib3's HTTPError when there is none
        (refused, reset, timed out). `stream`: the body is read by the caller (a watch), then release_conn()."""
        url = self.config.server + path + (f"?{urlencode(list(query))}" if query else "")
        return self.pool.request(
            method, url, body=body, headers={**self.auth_headers(), **(headers or {})},
            timeout=urllib3.Timeout(total=timeout) if timeout else urllib3.Timeout(),
            preload_content=not stream, redirect=False,
        )

    def auth_headers(self) -> dict[str, str]:
        token = self.bearer_token()
        if token:
            return {"Authorization": f"Bearer {token}"}
        if self.config.username is not None:
            return dict(urllib3.make_headers(basic_auth=f"{self.config.username}:{self.config.password or ''}"))
        return {}

    def bearer_token(self) -> str | None:
        """The token, or the token file's content, read again when the file changed (rotated)."""
        if self.config.token_file is None:
            return self.config.token
        try:
            stat = os.stat(self.config.token_file)
        except OSError:
            return self._token[1] if self._token else None  # mid-rotation: the last one read
        key = (stat.st_ino, stat.st_mtime_ns)
        with self._lock:
            if self._token is None or self._token[0] != key:
                with contextlib.suppress(OSError):
                    self._token = (key, read_token(self.config) or "")
            return (self._token[1] or None) if self._token else None


def read_token(config: Config) -> str | None:
    """The bearer token now: the config's, or its token file's content."""
    if config.token_file is None:
        return config.token
    return Path(config.token_file).read_text().strip() or None


def ssl_context(config: Config) -> ssl.SSLContext:
    """Verifying the server with the config's CA (the system's when it names none); the client certificate
    loaded from a private temporary directory, removed at once (Python's ssl reads certificates from files only)."""
    try:
        context = ssl.create_default_context(cadata=config.ca.decode("ascii", "replace") if config.ca else None)
    except ssl.SSLError as e:
        raise ConfigError(f"{config.source}: certificate-authority cannot be loaded: {e}") from None
    if config.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.client_cert and config.client_key:
        with tempfile.TemporaryDirectory(prefix="ecs-operator-tls-") as directory:  # mode 0700
            cert, key = Path(directory) / "client.crt", Path(directory) / "client.key"
            for file, data in ((cert, config.client_cert), (key, config.client_key)):
                file.touch(mode=0o600)
                file.write_bytes(data)
            try:
                context.load_cert_chain(cert, key)
            except ssl.SSLError as e:
                raise ConfigError(f"{config.source}: client-certificate/client-key cannot be loaded: {e}") from None
    elif config.client_cert or config.client_key:
        raise ConfigError(f"{config.source}: client-certificate and client-key must be given together")
    return context
