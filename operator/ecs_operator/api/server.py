"""The HTTP side: AWS JSON 1.1 on `POST /`, SigV4 checked first, every failure an ECS error body.

Order as AWS's: authentication, then the operation (X-Amz-Target), then the JSON body and its
validation against botocore's model, then the operation itself.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from aiohttp import web

from ecs_operator.adapters.kube import Kube
from ecs_operator.settings import Settings

from .account import Account
from .auth import parse_authorization, verify
from .errors import ApiError, client_error, serialization, server_error, unknown_operation, unrecognized_client, unsupported
from .keys import KeyLookup
from .operations import Handler, load
from .shapes import check_input, ecs_model, operation_model, output_problems, shape_output

CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_BODY = 1024 * 1024
"""ECS's largest requests (a task definition of 10 containers) are far below 1 MiB."""
log = logging.getLogger(__name__)
KUBE = web.AppKey("kube", Kube)
KEYS = web.AppKey("keys", KeyLookup)
SETTINGS = web.AppKey("settings", Settings)
OPERATIONS = web.AppKey("operations", dict[str, Handler])
"""The operations served (tests serve fakes)."""


def make_app(kube: Kube, keys: KeyLookup, settings: Settings) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[KUBE], app[KEYS], app[SETTINGS], app[OPERATIONS] = kube, keys, settings, load()
    app.router.add_post("/", handle)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(_: web.Request) -> web.Response:
    """Unauthenticated liveness for probes and `sandbox up`: the server answers (Kubernetes is not asked)."""
    return web.Response(text="ok")


async def handle(request: web.Request) -> web.Response:
    request_id = str(uuid.uuid4())
    try:
        answer = await _answer(request)
    except ApiError as e:
        if e.status >= 500:
            log.error("request %s: %s", request_id, e)
        return _respond(e.body(), e.status, request_id)
    except Exception:  # a bug: logged with its traceback here, an ECS error to the caller
        log.exception("request %s failed", request_id)
        error = server_error("internal error (see the API's log)")
        return _respond(error.body(), error.status, request_id)
    return _respond(answer, 200, request_id)


async def _answer(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise client_error(f"The request body is larger than {MAX_BODY} bytes.") from None
    headers = request.headers
    signed = parse_authorization(headers)
    key = await request.app[KEYS].lookup(signed.access_key_id)
    if key is None:
        raise unrecognized_client()
    verify(signed, key, request.method, request.path_qs, headers, body)

    target = headers.get("X-Amz-Target", "")
    prefix, _, name = target.partition(".")
    operation = operation_model(name) if prefix == ecs_model().metadata["targetPrefix"] else None
    if operation is None:
        raise unknown_operation(target)
    handler: Handler | None = request.app[OPERATIONS].get(name)
    if handler is None:
        raise unsupported(f"{name} is not implemented by ecs-operator api.")
    try:
        params = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError) as e:
        raise serialization(f"The request body is not valid JSON: {e}") from None
    account = Account(key.namespace, request.app[KUBE], request.app[SETTINGS], key.capacity_providers)
    answer = shape_output(operation, await handler(account, check_input(operation, params)))
    if operation.output_shape is not None and (problems := output_problems(answer, operation.output_shape)):
        log.warning("%s answered outside botocore's model (a bug of ecs-operator api): %s", name, "; ".join(problems))
    return answer


def _respond(body: dict[str, Any], status: int, request_id: str) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=CONTENT_TYPE,
                        headers={"x-amzn-RequestId": request_id})
