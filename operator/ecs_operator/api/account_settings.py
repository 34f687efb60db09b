"""ListAccountSettings, PutAccountSetting, PutAccountSettingDefault, DeleteAccountSetting (Terraform and
Copilot set and read them).

The namespace is the account: its settings are the ConfigMap `ecs-account-settings` of the key's namespace
(one JSON entry: the account's defaults and each principal's own), over ECS's defaults. A key acts as the
account's root user, so a PutAccountSetting without `principalArn` sets the default. The settings are kept
and answered; the operator acts on none of them (its ARNs are always in the long format, so those cannot
be disabled).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .account import Account, paginate
from .errors import ApiError, invalid_parameter, server_error
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


def _settings(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The ConfigMap's settings: {"default": {name: value}, "principals": {arn: {name: value}}}."""
    text = ((obj or {}).get("data") or {}).get(KEY)
    try:
        settings = json.loads(text) if text else {}
    except ValueError:  # edited by hand into something else: ECS's defaults until it is put again
        settings = {}
    return {"default": dict(settings.get("default") or {}), "principals": dict(settings.get("principals") or {})}


def _own(account: Account, settings: dict[str, Any], principal: str) -> dict[str, str]:
    """The principal's own values (the root's are the account's), as a dict to change in place."""
    own: dict[str, str] = settings["default"] if principal == _root(account) else settings["principals"].setdefault(principal, {})
    return own


async def _change(account: Account, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the stored settings: read-change-write, again on a concurrent write."""
    def written(obj: dict[str, Any] | None) -> dict[str, Any]:
        settings = _settings(obj)
        change(settings)
        return {KEY: json.dumps(settings, sort_keys=True)}

    if await account.get("ConfigMap", CONFIG_MAP) is None:
        try:
            await account.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": CONFIG_MAP},
                                  "data": written(None)})
            return
        except ApiError:  # created by a concurrent call meanwhile: changed below
            pass
    await account.update("ConfigMap", CONFIG_MAP,
                         lambda current: {**current, "data": {**(current.get("data") or {}), **written(current)}},
                         server_error(f"the ConfigMap {CONFIG_MAP} was deleted while being changed"))


async def _put(account: Account, name: str, value: str, principal: str | None) -> dict[str, Any]:
    if name in ALWAYS and value != "enabled":
        raise invalid_parameter(f"{name} cannot be disabled: ecs-operator's ARNs are always in the long format.")
    principal = principal or _root(account)
    await _change(account, lambda settings: _own(account, settings, principal).update({name: value}))
    return {"setting": {"name": name, "value": value, "principalArn": principal, "type": "user"}}


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
    settings = _settings(await account.get("ConfigMap", CONFIG_MAP))
    principal = request.get("principalArn") or _root(account)
    own = _own(account, settings, principal)
    chosen = {**ECS_DEFAULTS, **settings["default"], **own} if request.get("effectiveSettings") else dict(own)
    found = [{"name": n, "value": v, "principalArn": principal if n in own else _root(account),
              "type": "user" if n in own or n in settings["default"] else "aws_managed"}
             for n, v in sorted(chosen.items())
             if request.get("name") in (None, n) and request.get("value") in (None, v)]
    page, token = paginate(found, request.get("maxResults"), request.get("nextToken"), limit=10)
    return {"settings": page, "nextToken": token}


@operation("DeleteAccountSetting")
async def delete_account_setting(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """The principal's (or the account's) own value goes: ECS's default applies again. Answers the value
    removed, or the default when there was none (deleting twice is no error)."""
    name, principal = request["name"], request.get("principalArn") or _root(account)
    unset = {"setting": {"name": name, "value": ECS_DEFAULTS.get(name, ""), "principalArn": principal, "type": "aws_managed"}}
    if name not in _own(account, _settings(await account.get("ConfigMap", CONFIG_MAP)), principal):
        return unset
    removed: list[str] = []

    def remove(settings: dict[str, Any]) -> None:
        value = _own(account, settings, principal).pop(name, None)
        if value is not None:
            removed.append(value)

    await _change(account, remove)
    # nothing removed: a concurrent call deleted it meanwhile
    return {"setting": {"name": name, "value": removed[-1], "principalArn": principal, "type": "user"}} if removed else unset
