"""SigV4 verification of `ecs-operator api`: requests signed by botocore itself pass; any change of
the request, a wrong secret, an old date or a missing header is refused with AWS's error codes."""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ecs_operator.adapters.kube import ApiError as KubeError
from ecs_operator.api.auth import AMZ_DATE, AccessKey, parse_authorization, verify
from ecs_operator.api.errors import ApiError
from ecs_operator.api.keys import KeyStore, parse_keys

KEY = AccessKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "team-a")
BODY = b'{"cluster": "default"}'


def signed(body: bytes = BODY, secret: str = KEY.secret_access_key, service: str = "ecs",
           target: str = "AmazonEC2ContainerServiceV20141113.ListServices") -> tuple[dict[str, str], datetime]:
    """Headers of a request botocore signed (as boto3 sends it), and when it was signed."""
    request = AWSRequest("POST", "http://127.0.0.1:8085/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    SigV4Auth(Credentials(KEY.access_key_id, secret), service, "us-east-1").add_auth(request)
    headers = dict(request.prepare().headers)
    headers["Host"] = "127.0.0.1:8085"
    return headers, datetime.strptime(headers["X-Amz-Date"], AMZ_DATE).replace(tzinfo=timezone.utc)


def check(headers: dict[str, str], body: bytes = BODY, now: datetime | None = None, path: str = "/") -> None:
    verify(parse_authorization(headers), KEY, "POST", path, headers, body, now)


def refused(headers: dict[str, str], body: bytes = BODY, now: datetime | None = None, path: str = "/") -> ApiError:
    with pytest.raises(ApiError) as raised:
        check(headers, body, now, path)
    return raised.value


def test_a_request_botocore_signed_is_accepted() -> None:
    headers, at = signed()
    check(headers, now=at + timedelta(minutes=4))
    assert parse_authorization(headers).access_key_id == KEY.access_key_id


def test_a_changed_body_is_refused() -> None:
    headers, at = signed()
    error = refused(headers, body=BODY.replace(b"default", b"defaulx"), now=at)
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert "does not match" in error.message


def test_a_changed_signed_header_or_path_is_refused() -> None:
    headers, at = signed()
    assert refused({**headers, "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DeleteCluster"}, now=at).code == "InvalidSignatureException"
    assert refused(headers, now=at, path="/other").code == "InvalidSignatureException"


def test_a_wrong_secret_is_refused() -> None:
    headers, at = signed(secret="not-the-secret")
    assert refused(headers, now=at).code == "InvalidSignatureException"


def test_a_signature_older_than_five_minutes_has_expired() -> None:
    headers, at = signed()
    error = refused(headers, now=at + timedelta(minutes=5, seconds=1))
    assert (error.code, error.status) == ("InvalidSignatureException", 403)
    assert error.message.startswith("Signature expired: ")
    assert refused(headers, now=at - timedelta(minutes=6)).message.startswith("Signature not yet current")


def test_a_signature_for_another_service_is_refused() -> None:
    headers, at = signed(service="s3")
    assert "scoped to correct service" in refused(headers, now=at).message


def test_a_claimed_payload_hash_must_be_the_bodys() -> None:
    headers, at = signed()
    error = refused({**headers, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, now=at)
    assert error.code == "InvalidSignatureException"


def test_no_authorization_header_is_a_missing_token() -> None:
    headers, _ = signed()
    del headers["Authorization"]
    with pytest.raises(ApiError) as raised:
        parse_authorization(headers)
    assert (raised.value.code, raised.value.status) == ("MissingAuthenticationTokenException", 403)


@pytest.mark.parametrize("header", ["AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ecs/aws4_request",
                                    "AWS AKID:signature", "AWS4-HMAC-SHA256 Credential=AKID, SignedHeaders=host, Signature=00"])
def test_a_malformed_authorization_header_is_an_incomplete_signature(header: str) -> None:
    with pytest.raises(ApiError) as raised:
        parse_authorization({"Authorization": header})
    assert raised.value.code == "IncompleteSignatureException"


def test_the_key_secret_format() -> None:
    entry = base64.b64encode(json.dumps({"secretAccessKey": "s", "namespace": "team-a"}).encode()).decode()
    keys = parse_keys({"AKID1": entry, "AKID2": base64.b64encode(b"not json").decode()})
    assert keys == {"AKID1": AccessKey("AKID1", "s", "team-a")}  # a malformed entry is skipped, not fatal
    assert keys["AKID1"].capacity_providers is False  # off unless the entry says so
    for said, right in ((True, True), ("true", False), (1, False)):
        granted = base64.b64encode(json.dumps({"secretAccessKey": "s", "namespace": "a", "capacityProviders": said}).encode())
        assert parse_keys({"K": granted.decode()})["K"].capacity_providers is right  # only JSON true grants it


class WatchedSecret:
    """The keys Secret behind a fake Kubernetes adapter: `events` feeds the watch, `reads` counts the GETs."""

    def __init__(self, data: dict[str, str]) -> None:
        self.data: dict[str, str] | None = data
        self.events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self.reads = 0

    def secret(self) -> dict[str, Any] | None:
        return None if self.data is None else {"metadata": {"name": "ecs-api-keys"}, "data": dict(self.data)}

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        return self.secret()

    def collection(self, kind: str, namespace: str, field_selector: str) -> tuple[list[dict[str, Any]], str]:
        assert field_selector == "metadata.name=ecs-api-keys"
        return [s for s in [self.secret()] if s], "1"

    def watch(self, kind: str, namespace: str, version: str, field_selector: str,
              timeout_seconds: int) -> Iterator[tuple[str, dict[str, Any]]]:
        while (event := self.events.get()) is not None:
            yield event

    def change(self, data: dict[str, str] | None) -> None:
        self.data = data
        self.events.put(("DELETED", {}) if data is None else ("MODIFIED", self.secret() or {}))


def entry(secret: str) -> str:
    return base64.b64encode(json.dumps({"secretAccessKey": secret, "namespace": "team-a"}).encode()).decode()


def test_keys_come_from_the_watch_and_a_removed_key_is_refused_once_it_delivers_the_change() -> None:
    kube = WatchedSecret({"AKID1": entry("s1"), "AKID2": entry("s2")})
    store = KeyStore(kube, "ecs-system")  # type: ignore[arg-type]
    lookup = lambda key_id: asyncio.run(store.lookup(key_id))  # noqa: E731
    assert lookup("AKID1") == AccessKey("AKID1", "s1", "team-a") and kube.reads == 1  # not watching: a GET each
    store.start()
    try:
        deadline = time.monotonic() + 5
        while store._keys is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lookup("AKID1") and lookup("AKID2") and kube.reads == 1  # from the watch's copy
        kube.change({"AKID2": entry("s2")})
        deadline = time.monotonic() + 5
        while lookup("AKID1") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lookup("AKID1") is None and lookup("AKID2") == AccessKey("AKID2", "s2", "team-a")
        kube.data = {"AKID2": entry("s2"), "AKID3": entry("s3")}  # added; the watch has not delivered it yet
        assert lookup("AKID3") == AccessKey("AKID3", "s3", "team-a")  # read at once for a key the copy lacks
        kube.change(None)  # the Secret deleted: no key works
        deadline = time.monotonic() + 5
        while lookup("AKID2") is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert lookup("AKID2") is None
    finally:
        store.stop()
        kube.events.put(None)


def test_a_failed_watch_falls_back_to_reading_the_secret_on_every_request() -> None:
    class Refused(WatchedSecret):
        def collection(self, kind: str, namespace: str, field_selector: str) -> tuple[list[dict[str, Any]], str]:
            raise KubeError(403, "Forbidden", "secrets is forbidden: cannot list")

    kube = Refused({"AKID1": entry("s1")})
    store = KeyStore(kube, "ecs-system")  # type: ignore[arg-type]
    store.start()
    try:
        time.sleep(0.1)
        assert asyncio.run(store.lookup("AKID1")) is not None
        kube.data = {}
        assert asyncio.run(store.lookup("AKID1")) is None  # no stale copy is ever used
    finally:
        store.stop()
