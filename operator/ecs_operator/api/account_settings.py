"""ListAccountSettings, PutAccountSetting, PutAccountSettingDefault (Terraform and Copilot set and read them).

The namespace is the account: its settings are the ConfigMap `ecs-account-settings` of the key's namespace
(one JSON entry: the account's defaults and each principal's own), over ECS's defaults. A key acts as the
account's root user, so a PutAccountSetting without `principalArn` sets the default. The settings are kept
and answered; the operator acts on none of them (its ARNs are always in the long format, so those cannot
be disabled).
"""

from __future__ import annotations

import json
from typing import Any

from .account import Account, paginate
from .errors import invalid_parameter
from .operations import operation

CONFIG_MAP = "ecs-account-settings"
KEY = "settings.json"
ECS_DEFAULTS = {
    "serviceLongArnFormat": "enabled", "taskLongArnFormat": "enabled", "containerInstanceLongArnFormat": "enabled",
    "awsvpcTrunking": "disabled", "containerInsights": "disabled", "fargateFIPSMode": "disabled",
    "tagResourceAuthorization": "on", "fargateTaskRetirementWaitPeriod": "7", "guardDutyActivate": "off",
    "defaultLogDriverMode": "non-blocking", "fargateEventWindows": "disabled",
}
"""What ECS answers for an account that set nothing (its documented defaults)."""
ALWAYS = {"serviceLongArnFormat", "taskLongArnFormat", "containerInstanceLongArnFormat"}


def _root(account: Account) -> str:
    return f"arn:aws:iam::{account.settings.account_id}:root"


async def _stored(account: Account) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the ConfigMap or None, its settings: {"default": {name: value}, "principals": {arn: {name: value}}})."""
    found = await account.get("ConfigMap", CONFIG_MAP)
    text = ((found or {}).get("data") or {}).get(KEY)
    try:
        settings = json.loads(text) if text else {}
    except ValueError:  # edited by hand into something else: ECS's defaults until it is put again
        settings = {}
    return found, {"default": dict(settings.get("default") or {}), "principals": dict(settings.get("principals") or {})}


async def _put(account: Account, name: str, value: str, principal: str | None) -> dict[str, Any]:
    if name in ALWAYS and value != "enabled":
        raise invalid_parameter(f"{name} cannot be disabled: ecs-operator's ARNs are always in the long format.")
    found, settings = await _stored(account)
    if principal in (None, _root(account)):
        settings["default"][name] = value
    else:
        settings["principals"].setdefault(principal, {})[name] = value
    data = {KEY: json.dumps(settings, sort_keys=True)}
    if found is None:
        await account.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG_MAP}, "data": data})
    else:  # a concurrent put in between is a 409: ServerException, which SDKs retry
        await account.call(account.kube.replace, {**found, "data": {**(found.get("data") or {}), **data}})
    return {"setting": {"name": name, "value": value, "principalArn": principal or _root(account), "type": "user"}}


@operation("PutAccountSettingDefault")
async def put_account_setting_default(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    return await _put(account, request["name"], request["value"], None)


@operation("PutAccountSetting")
async def put_account_setting(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    return await _put(account, request["name"], request["value"], request.get("principalArn"))


@operation("ListAccountSettings")
async def list_account_settings(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """The principal's own settings (the root's: the account's); `effectiveSettings`: every setting, the
    principal's over the account's over ECS's defaults."""
    _, settings = await _stored(account)
    principal = request.get("principalArn") or _root(account)
    own = settings["default"] if principal == _root(account) else settings["principals"].get(principal, {})
    chosen = {**ECS_DEFAULTS, **settings["default"], **own} if request.get("effectiveSettings") else dict(own)
    found = [{"name": n, "value": v, "principalArn": principal if n in own else _root(account),
              "type": "user" if n in own or n in settings["default"] else "aws_managed"}
             for n, v in sorted(chosen.items())
             if request.get("name") in (None, n) and request.get("value") in (None, v)]
    page, token = paginate(found, request.get("maxResults"), request.get("nextToken"), limit=10)
    return {"settings": page, "nextToken": token}
