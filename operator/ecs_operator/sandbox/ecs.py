"""The sandbox's ECS side (`sandbox up --operator --api`): the CRDs, then `ecs-operator run` and
`ecs-operator api` as attached processes of the sandbox (`status` lists them, `down` stops them).

The API gets one access key bound to namespace `default`, kept in the Secret the API reads and in
the state directory (Layout.ecs_api), from which `sandbox env` exports the AWS_* variables.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import string
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from ecs_operator.sandbox.apiclient import ApiClient, ApiError
from ecs_operator.sandbox.launcher import SandboxError
from ecs_operator.sandbox.processes import ProcessRecord
from ecs_operator.settings import Settings

API_NAMESPACE = "default"
"""The namespace of the API's key Secret, and the one its key is bound to."""
OPERATOR, API = "operator", "api"
POLL = 0.2
Log = Callable[[str], None]
Attach = Callable[[str, list[str]], tuple[ProcessRecord, bool]]


@dataclass(frozen=True)
class ApiAccess:
    """How to reach the sandbox's ECS API: what `sandbox env` exports."""

    endpoint: str
    access_key_id: str
    secret_access_key: str
    region: str

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_ECS": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key, "AWS_DEFAULT_REGION": self.region}

    def write(self, path: Path) -> None:
        path.touch(mode=0o600)  # the secret key: readable by the user only, as the kubeconfig's key is
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> ApiAccess | None:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_access_key_id() -> str:
    """AWS's shape (AKIA + 16 of A-Z2-7), so tools that check the format accept it."""
    return "AKIA" + "".join(secrets.choice(string.ascii_uppercase + "234567") for _ in range(16))


def install_crds(client: ApiClient, timeout: float, log: Log) -> None:
    """Apply the generated CRDs (server-side: an older sandbox's copies are updated) and wait until served."""
    from ecs_operator.crdgen.crd import render_all  # pydantic models: imported only when CRDs are installed

    names = []
    for text in render_all().values():
        crd = yaml.safe_load(text)
        names.append(crd["metadata"]["name"])
        client.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}", crd)
    _until(f"the {len(names)} CRDs to be established", lambda: all(_established(client, n) for n in names), timeout)
    log(f"  {len(names)} CustomResourceDefinitions established")


def install_gateway_api(client: ApiClient, timeout: float, log: Log, offline: bool = False) -> None:
    """The Gateway API's standard CRDs from the Go module cache (gateway_api.py), applied like ours.
    `offline`: only from the cache, as --no-build takes only built binaries."""
    from ecs_operator.sandbox import gateway_api

    crds = gateway_api.standard_crds(gateway_api.module_dir(offline=offline))
    for crd in crds:
        client.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}", crd)
    names = [c["metadata"]["name"] for c in crds]
    _until(f"the {len(names)} Gateway API CRDs to be established", lambda: all(_established(client, n) for n in names),
           timeout)
    log(f"  {len(names)} Gateway API CustomResourceDefinitions ({gateway_api.GATEWAY_API_VERSION}) established")


def start_operator(attach: Attach, timeout: float, log: Log) -> ProcessRecord:
    """`ecs-operator run` with a liveness endpoint, which answers once kopf is serving, and its metrics on
    another free loopback port."""
    port, metrics = free_port(), free_port()
    record, already = attach(OPERATOR, [*_cli(), "run", "--liveness", f"http://127.0.0.1:{port}/healthz",
                                        "--metrics", f"127.0.0.1:{metrics}"])
    if not already:
        _until_healthy(record, f"http://127.0.0.1:{port}/healthz", timeout)
    shown = "" if already else f", metrics http://127.0.0.1:{metrics}/metrics"
    log(f"  operator {'already running' if already else 'running'} (pid {record.pid}, log {record.log}{shown})")
    return record


def start_api(attach: Attach, client: ApiClient, access_file: Path, timeout: float, log: Log) -> ApiAccess:
    """`ecs-operator api` on a free port, with the key of `access_file` (a new random one the first time)."""
    from ecs_operator.api.keys import DEFAULT_SECRET  # the Kubernetes client: imported only when the API starts

    previous = ApiAccess.read(access_file)
    key_id = previous.access_key_id if previous else new_access_key_id()
    secret = previous.secret_access_key if previous else secrets.token_urlsafe(30)
    # the sandbox's user is its administrator: the key may write capacity providers too
    entry = json.dumps({"secretAccessKey": secret, "namespace": API_NAMESPACE, "capacityProviders": True}).encode()
    client.apply(f"/api/v1/namespaces/{API_NAMESPACE}/secrets/{DEFAULT_SECRET}", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": DEFAULT_SECRET, "namespace": API_NAMESPACE},
        "data": {key_id: base64.b64encode(entry).decode()}})
    port = free_port()
    record, already = attach(API, [*_cli(), "api", "--port", str(port), "--namespace", API_NAMESPACE,
                                   "--keys-secret", DEFAULT_SECRET])
    if already and previous:
        access = previous
    else:
        access = ApiAccess(f"http://127.0.0.1:{port}", key_id, secret, Settings.region)
        access.write(access_file)
    _until_healthy(record, f"{access.endpoint}/healthz", timeout)
    log(f"  ECS API on {access.endpoint} (pid {record.pid}, log {record.log}; key {key_id} for namespace {API_NAMESPACE})")
    return access


def _cli() -> list[str]:
    """This installation's ecs-operator (the one running `sandbox up`)."""
    return [sys.executable, "-m", "ecs_operator.cli"]


def _established(client: ApiClient, name: str) -> bool:
    crd: dict[str, Any] = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c["type"] == "Established" and c["status"] == "True" for c in crd.get("status", {}).get("conditions", []))


def _until_healthy(record: ProcessRecord, url: str, timeout: float) -> None:
    def healthy() -> bool:
        if not record.alive():
            raise SandboxError(f"{record.name} exited; end of {record.log}:\n{record.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    _until(f"{record.name} to answer {url} (log {record.log})", healthy, timeout)


def _until(what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except ApiError:
            pass
        if time.monotonic() > deadline:
            raise SandboxError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL)
