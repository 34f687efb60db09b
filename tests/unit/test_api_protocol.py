"""`ecs-operator api`'s protocol, without Kubernetes: AWS JSON 1.1 answers and error bodies that
botocore turns into the right exception classes, request validation against botocore's ECS model,
answers cut to the model's output shapes, and no 500 for anything a caller sends."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import botocore.session
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from ecs_operator.api.account import Account
from ecs_operator.api.auth import AccessKey
from ecs_operator.api.command import run, tls_context
from ecs_operator.api.errors import ApiError, cluster_not_found
from ecs_operator.api.operations import Handler
from ecs_operator.api.server import OPERATIONS, make_app
from ecs_operator.api.shapes import check_input, operation_model, shape_output
from ecs_operator.sandbox.pki import create as create_pki
from ecs_operator.settings import Settings

KEY = AccessKey("AKIDUNIT", "unit-secret", "team-a")
TARGET = "AmazonEC2ContainerServiceV20141113."
seen: list[tuple[str, dict[str, Any]]] = []


class Keys:
    async def lookup(self, access_key_id: str) -> AccessKey | None:
        return KEY if access_key_id == KEY.access_key_id else None


async def list_clusters(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    seen.append((account.namespace, request))
    return {"clusterArns": ["arn:aws:ecs:us-east-1:000000000000:cluster/default"], "kubernetesOnly": "dropped"}


async def describe_clusters(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    raise cluster_not_found("no such cluster")


async def delete_cluster(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    raise ApiError("ClusterContainsServicesException", "The Cluster cannot be deleted while Services are active.")


async def list_services(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("a bug")


@contextmanager
def serving(context: ssl.SSLContext | None = None) -> Iterator[str]:
    """The API app on a free loopback port, in a thread of its own (its operations replaced by fakes)."""
    # no Kubernetes: the fake operations never reach it
    app = make_app(None, Keys(), Settings())  # type: ignore[arg-type]
    fakes: dict[str, Handler] = {"ListClusters": list_clusters, "DescribeClusters": describe_clusters,
                                 "DeleteCluster": delete_cluster, "ListServices": list_services}
    app[OPERATIONS] = fakes
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if context else 'http'}://127.0.0.1:{port}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with serving() as url:
        yield url


def client(endpoint: str, key: AccessKey = KEY) -> Any:
    return botocore.session.get_session().create_client(
        "ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key, config=Config(retries={"max_attempts": 1}))


def post(endpoint: str, target: str, body: bytes, sign: bool = True) -> tuple[int, dict[str, Any]]:
    request = AWSRequest("POST", endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    if sign:
        SigV4Auth(Credentials(KEY.access_key_id, KEY.secret_access_key), "ecs", "us-east-1").add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(endpoint + "/", data=cast(bytes, prepared.body), headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(raw) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        assert e.headers["Content-Type"] == "application/x-amz-json-1.1"
        return e.code, json.loads(e.read())


def test_an_answer_is_cut_to_the_output_shape_and_the_key_names_the_namespace(endpoint: str) -> None:
    seen.clear()
    answer = client(endpoint).list_clusters(maxResults=5)
    assert answer["clusterArns"] == ["arn:aws:ecs:us-east-1:000000000000:cluster/default"]
    assert "kubernetesOnly" not in answer
    assert seen == [("team-a", {"maxResults": 5})]


def test_errors_are_botocores_exception_classes(endpoint: str) -> None:
    ecs = client(endpoint)
    with pytest.raises(ecs.exceptions.ClusterNotFoundException, match="no such cluster"):
        ecs.describe_clusters(clusters=["nope"])
    with pytest.raises(ecs.exceptions.ClusterContainsServicesException) as raised:
        ecs.delete_cluster(cluster="default")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_an_unknown_access_key_is_an_unrecognized_client(endpoint: str) -> None:
    ecs = client(endpoint, AccessKey("AKIDNOBODY", "x", ""))
    with pytest.raises(ecs.exceptions.ClientError) as raised:
        ecs.list_clusters()
    error = raised.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("UnrecognizedClientException", 403)


def test_a_wrong_secret_is_an_invalid_signature(endpoint: str) -> None:
    ecs = client(endpoint, AccessKey(KEY.access_key_id, "wrong", ""))
    with pytest.raises(ecs.exceptions.ClientError) as raised:
        ecs.list_clusters()
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_healthz_answers_without_a_signature_or_kubernetes(endpoint: str) -> None:
    with urllib.request.urlopen(endpoint + "/healthz") as response:
        assert (response.status, response.read()) == (200, b"ok")


def test_an_unsigned_request_is_refused(endpoint: str) -> None:
    assert post(endpoint, TARGET + "ListClusters", b"{}", sign=False) == (
        403, {"__type": "MissingAuthenticationTokenException", "message": "Missing Authentication Token"})


@pytest.mark.parametrize(("target", "body", "code"), [
    (TARGET + "Frobnicate", b"{}", "UnknownOperationException"),
    ("SomethingElse_20200101.ListClusters", b"{}", "UnknownOperationException"),
    ("", b"{}", "UnknownOperationException"),
    (TARGET + "ListClusters", b"{not json", "SerializationException"),
    (TARGET + "ListClusters", b"\xff\xfe", "SerializationException"),
    (TARGET + "ListClusters", b"[1, 2]", "InvalidParameterException"),
    (TARGET + "ListClusters", b'{"maxResults": "ten"}', "InvalidParameterException"),
    (TARGET + "ListClusters", b'{"unknownMember": 1}', "InvalidParameterException"),
    (TARGET + "DeleteCluster", b"{}", "InvalidParameterException"),
    (TARGET + "DeleteAttributes", b'{"attributes": [{"name": "x"}]}', "UnsupportedFeatureException"),
])
def test_bad_requests_are_400s_with_ecs_error_bodies(endpoint: str, target: str, body: bytes, code: str) -> None:
    status, answer = post(endpoint, target, body)
    assert (status, answer["__type"]) == (400, code), answer
    assert set(answer) == {"__type", "message"} and answer["message"]


def test_a_bug_is_a_server_exception_without_a_traceback(endpoint: str) -> None:
    status, answer = post(endpoint, TARGET + "ListServices", b"{}")
    assert (status, answer) == (500, {"__type": "ServerException", "message": "internal error (see the API's log)"})


def test_input_is_checked_against_the_model_enums_included() -> None:
    run_task = operation_model("RunTask")
    assert run_task is not None and operation_model("Frobnicate") is None
    with pytest.raises(ApiError, match="Missing required parameter.*taskDefinition"):
        check_input(run_task, {"count": 1})
    with pytest.raises(ApiError, match=r"Invalid value 'SPACESHIP' for parameter launchType"):
        check_input(run_task, {"taskDefinition": "web", "launchType": "SPACESHIP"})
    with pytest.raises(ApiError, match=r"overrides.containerOverrides\[0\].environment"):
        check_input(run_task, {"taskDefinition": "web", "overrides": {"containerOverrides": [{"environment": "x"}]}})
    assert check_input(run_task, {"taskDefinition": "web", "launchType": "EC2"}) == {"taskDefinition": "web", "launchType": "EC2"}


def test_output_timestamps_are_epoch_seconds_and_unknown_members_go() -> None:
    describe = operation_model("DescribeServices")
    assert describe is not None
    shaped = shape_output(describe, {"services": [{
        "serviceName": "web", "createdAt": "2026-01-02T03:04:05Z", "fidelity": {"summary": "exact"},
        "deployments": [{"id": "ecs-svc/1", "configKey": "abc", "updatedAt": "2026-01-02T03:04:06Z"}]}], "failures": []})
    assert shaped == {"services": [{"serviceName": "web", "createdAt": 1767323045.0,
                                    "deployments": [{"id": "ecs-svc/1", "updatedAt": 1767323046.0}]}], "failures": []}


def test_a_body_over_one_mib_is_a_client_error(endpoint: str) -> None:
    status, answer = post(endpoint, TARGET + "ListClusters", b'{"nextToken": "' + b"x" * (1024 * 1024) + b'"}')
    assert (status, answer["__type"]) == (400, "ClientException")


def test_https_with_a_certificate_and_key(tmp_path: Path) -> None:
    """`--tls-cert`/`--tls-key`: boto3 verifies the server against the CA and gets its answer."""
    pki = create_pki(tmp_path)  # the sandbox's: a CA and a serving certificate for 127.0.0.1
    with serving(tls_context(str(pki.cert("apiserver")), str(pki.key("apiserver")))) as url:
        ecs = botocore.session.get_session().create_client(
            "ecs", endpoint_url=url, region_name="us-east-1", verify=str(pki.ca_cert), aws_access_key_id=KEY.access_key_id,
            aws_secret_access_key=KEY.secret_access_key, config=Config(retries={"max_attempts": 1}))
        clusters = ecs.list_clusters()  # type: ignore[attr-defined]  # botocore makes the operations at run time
        assert clusters["clusterArns"] == ["arn:aws:ecs:us-east-1:000000000000:cluster/default"]
        with pytest.raises(urllib.error.URLError):  # a client that does not know the CA
            urllib.request.urlopen(url + "/healthz", timeout=5)


def test_the_command_refuses_half_a_tls_configuration(tmp_path: Path) -> None:
    args = argparse.Namespace(tls_cert=str(tmp_path / "api.crt"), tls_key=None)
    assert run(args) == 2
    assert run(argparse.Namespace(tls_cert=str(tmp_path / "missing.crt"), tls_key=str(tmp_path / "missing.key"))) == 2
