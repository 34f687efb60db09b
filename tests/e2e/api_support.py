"""`ecs-operator api` as a process of the test: an API on a free loopback port, with an `ecs-api-keys`
Secret binding its access keys to the test's namespace (shared by the modules that drive real ECS clients).
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from operator_fixtures import wait_for

from ecs_operator.api.shapes import output_problems

if TYPE_CHECKING:
    from conftest import Cluster


@dataclass
class Api:
    endpoint: str
    key_id: str
    secret: str
    other_key_id: str
    """A key bound to another (empty) namespace."""

    def client(self, key_id: str | None = None, secret: str | None = None) -> Any:
        return boto3.client("ecs", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key_id or self.key_id, aws_secret_access_key=secret or self.secret,
                            config=Config(retries={"max_attempts": 1}))

    def post(self, target: str, body: bytes, secret: str | None = None) -> tuple[int, dict[str, Any]]:
        """A request signed as botocore signs it, sent as it is (for bodies botocore would never send)."""
        request = AWSRequest("POST", self.endpoint + "/", data=body,
                             headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
        SigV4Auth(Credentials(self.key_id, secret or self.secret), "ecs", "us-east-1").add_auth(request)
        prepared = request.prepare()
        raw = urllib.request.Request(self.endpoint + "/", data=prepared.body, headers=dict(prepared.headers), method="POST")
        try:
            with urllib.request.urlopen(raw, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(sandbox: Cluster, namespace: str, tmp_path: Any) -> Iterator[Api]:
    key_id, secret, other = f"AKID{uuid.uuid4().hex[:12].upper()}", uuid.uuid4().hex, f"AKID{uuid.uuid4().hex[:12].upper()}"
    empty = f"{namespace[:50]}-empty"
    sandbox.kubectl("create", "namespace", empty)
    entries = {key_id: {"secretAccessKey": secret, "namespace": namespace, "capacityProviders": True},
               other: {"secretAccessKey": "other", "namespace": empty}}
    sandbox.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ecs-api-keys", "namespace": namespace},
        "data": {k: base64.b64encode(json.dumps(v).encode()).decode() for k, v in entries.items()}}))
    port = free_port()
    log = open(tmp_path / "api.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "ecs_operator.cli", "api", "--port", str(port), "--namespace", namespace],
                               env=sandbox.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: listening(port), timeout=120, what="the API to listen")  # its imports take 45 s at load 37
        yield Api(f"http://127.0.0.1:{port}", key_id, secret, other)
    finally:
        process.terminate()
        process.wait(timeout=20)
        sandbox.kubectl("delete", "namespace", empty, "--wait=false", check=False)
        api_log = (tmp_path / "api.log").read_text(errors="replace")
        assert "Traceback" not in api_log, api_log


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


ECS_MODEL = botocore.session.get_session().get_service_model("ecs")


class Recorder:
    """Every successful answer a client got, as sent (JSON, before botocore parses it)."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, http_response: Any, model: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            self.answers.append((model.name, json.loads(http_response.content)))

    def problems(self) -> list[str]:
        return [f"{name}: {p}" for name, answer in self.answers
                for p in output_problems(answer, ECS_MODEL.operation_model(name).output_shape)]
