"""The API's Kubernetes access: read-change-write retried on a concurrent write, API server failures
as ECS errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ecs_operator.adapters.kube import ApiError as KubeError
from ecs_operator.api.account import Account
from ecs_operator.api.errors import ApiError, service_not_found
from ecs_operator.settings import Settings


class FakeKube:
    """Refuses the first `conflicts` writes with 409, as the API server does when the object changed since it was read."""

    def __init__(self, conflicts: int, fail: KubeError | None = None) -> None:
        self.obj: dict[str, Any] = {"metadata": {"name": "web", "resourceVersion": "1"}, "spec": {"desiredCount": 1}}
        self.conflicts, self.fail, self.reads = conflicts, fail, 0

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        return {**self.obj, "metadata": {**self.obj["metadata"], "resourceVersion": str(self.reads)}}

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        if self.conflicts:
            self.conflicts -= 1
            raise KubeError(409, "Conflict", "the object has been modified")
        self.obj = obj
        return obj


def account(kube: FakeKube) -> Account:
    return Account("team-a", kube, Settings())  # type: ignore[arg-type]


def scale(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "spec": {**obj["spec"], "desiredCount": obj["spec"]["desiredCount"] + 1}}


def test_a_concurrent_write_is_read_again_and_changed_again() -> None:
    kube = FakeKube(conflicts=2)
    written = asyncio.run(account(kube).update("Service.ecs", "web", scale, service_not_found()))
    assert written["spec"]["desiredCount"] == 2 and kube.reads == 3  # changed once, from the latest read


def test_endless_conflicts_are_a_server_exception() -> None:
    with pytest.raises(ApiError) as raised:
        asyncio.run(account(FakeKube(conflicts=99)).update("Service.ecs", "web", scale, service_not_found()))
    assert (raised.value.code, raised.value.status) == ("ServerException", 500)


@pytest.mark.parametrize(("status", "code"), [(422, "InvalidParameterException"), (503, "ServerException"), (403, "ServerException")])
def test_api_server_answers_become_ecs_errors(status: int, code: str) -> None:
    with pytest.raises(ApiError) as raised:
        asyncio.run(account(FakeKube(0, KubeError(status, "x", "refused"))).update("Service.ecs", "web", scale, service_not_found()))
    assert raised.value.code == code
