"""ListServiceDeployments and DescribeServiceDeployments from the Service status's deployments, and
ListServicesByNamespace (Service Connect namespaces, as the specs name them).

A service deployment is one of the status's `deployments` (or its `lastCompletedDeployment`); its ARN is
ECS's `service-deployment/CLUSTER/SERVICE/ID`, ID the number of the deployment's `ecs-svc/` id, and the
revision it deploys `service-revision/CLUSTER/SERVICE/ID`. Replaced deployments leave the status (as they
leave describe-services), so only the current ones and the last completed one are listed.
"""

from __future__ import annotations

from typing import Any

from ecs_operator import labels as L
from ecs_operator.arns import cluster_arn, parse_ref, service_arn
from ecs_operator.lifecycle.service_hooks import ACTIONS, HookRun
from ecs_operator.models.service import ThresholdConfiguration
from ecs_operator.scaling.rolling import circuit_breaker_threshold

from .account import Account, ecs_name, paginate
from .clusters import cluster_name
from .errors import ApiError, invalid_parameter
from .operations import operation
from .services import describe_service, find_service, services_of
from .shapes import epoch

PREFIX = "ecs-svc/"


def _arn(account: Account, kind: str, cluster: str, service: str, deployment_id: str) -> str:
    service_part = service_arn(account.settings, cluster, service).replace(":service/", f":{kind}/", 1)
    return service_part + "/" + deployment_id.removeprefix(PREFIX)


def _state(d: dict[str, Any], primary: dict[str, Any]) -> str:
    """ECS's ServiceDeploymentStatus for a deployment of the status (`primary`: the service's PRIMARY one)."""
    rollout = d.get("rolloutState")
    if d is primary:
        if rollout == "COMPLETED":
            return "SUCCESSFUL"
        if rollout == "FAILED":  # the circuit breaker stopped it and nothing rolls back
            return "STOPPED"
        return "ROLLBACK_IN_PROGRESS" if d.get("rollbackOf") else "IN_PROGRESS"
    if rollout == "FAILED":  # rolled back to the primary
        return "ROLLBACK_IN_PROGRESS" if primary.get("rolloutState") == "IN_PROGRESS" else "ROLLBACK_SUCCESSFUL"
    return "SUCCESSFUL" if rollout == "COMPLETED" else "STOPPED"  # replaced by the primary before it completed


def service_deployments(account: Account, service: dict[str, Any]) -> list[dict[str, Any]]:
    """The service's deployments as describe-service-deployments' ServiceDeployment, newest first."""
    status = service.get("status") or {}
    current = list(status.get("deployments") or [])
    last = status.get("lastCompletedDeployment")
    if last and all(d.get("id") != last.get("id") for d in current):
        current.append(last)
    if not current:
        return []
    primary, name, cluster = current[0], ecs_name(service), cluster_name(service["spec"].get("cluster"))

    shifting = primary.get("productionTrafficPercent")  # BLUE_GREEN, LINEAR, CANARY: the primary's share

    def revision(d: dict[str, Any]) -> dict[str, Any]:
        out = {"arn": _arn(account, "service-revision", cluster, name, d["id"]), "requestedTaskCount": d.get("desiredCount", 0),
               "runningTaskCount": d.get("runningCount", 0), "pendingTaskCount": d.get("pendingCount", 0)}
        if shifting is not None and primary.get("rolloutState") == "IN_PROGRESS":
            out["requestedProductionTrafficWeight"] = float(shifting if d is primary else 100 - shifting)
        return out

    out = []
    for d in current:
        state = _state(d, primary)
        done = state in ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
        out.append({
            "serviceDeploymentArn": _arn(account, "service-deployment", cluster, name, d["id"]),
            "serviceArn": service_arn(account.settings, cluster, name),
            "clusterArn": cluster_arn(account.settings, cluster),
            "createdAt": d.get("createdAt"), "startedAt": d.get("createdAt"), "updatedAt": d.get("updatedAt"),
            "finishedAt": d.get("updatedAt") if done else None,
            "targetServiceRevision": revision(d),
            "targetServiceRevisionArn": revision(d)["arn"],
            "sourceServiceRevisions": [revision(s) for s in current if s is not d and s is not last] if d is primary else [],
            "status": state,
            "statusReason": d.get("rolloutStateReason") or None,
            **({"lifecycleStage": d["lifecycleStage"]} if d.get("lifecycleStage") else {}),
            **({"lifecycleHookDetails": [HookRun.model_validate(r).detail() for r in d["hookRuns"]]}
               if d.get("hookRuns") else {}),
            **_monitors(account, cluster, name, service, d, primary),
            "deploymentConfiguration": service["spec"].get("deploymentConfiguration"),
        })
    return sorted(out, key=lambda s: epoch(s["createdAt"]) or 0.0, reverse=True)


def _monitors(account: Account, cluster: str, name: str, service: dict[str, Any], d: dict[str, Any],
              primary: dict[str, Any]) -> dict[str, Any]:
    """The circuit breaker's count and threshold for the deployment, its alarms (lifecycle/service_alarms.py: DISABLED
    when none were watched), and, for one that failed and rolled back, the rollback (the revision it returned to)."""
    out: dict[str, Any] = {}
    breaker = ((service["spec"].get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker")) or {}
    if breaker.get("enable"):
        threshold = ThresholdConfiguration.model_validate(breaker["thresholdConfiguration"]) \
            if breaker.get("thresholdConfiguration") else None
        rollout = d.get("rolloutState")
        alarmed = (d.get("alarms") or {}).get("status") == "TRIGGERED"  # its alarms failed it, not the breaker
        out["deploymentCircuitBreaker"] = {
            "status": "TRIGGERED" if rollout == "FAILED" and not alarmed
            else "MONITORING_COMPLETE" if rollout in ("COMPLETED", "FAILED") else "MONITORING",
            "failureCount": d.get("failedTasks", 0),
            "threshold": circuit_breaker_threshold(d.get("desiredCount", 0), threshold)}
    else:
        out["deploymentCircuitBreaker"] = {"status": "DISABLED"}
    out["alarms"] = d.get("alarms") or {"status": "DISABLED"}
    if d is not primary and d.get("rolloutState") == "FAILED" and primary.get("rollbackOf"):
        out["rollback"] = {"reason": primary.get("rolloutStateReason") or "", "startedAt": primary.get("updatedAt"),
                           "serviceRevisionArn": _arn(account, "service-revision", cluster, name, primary["id"])}
    return out


@operation("ListServiceDeployments")
async def list_service_deployments(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    service = await find_service(account, request.get("cluster"), request["service"])
    wanted, window = request.get("status"), request.get("createdAt") or {}
    after, before = epoch(window.get("after")), epoch(window.get("before"))
    found = [d for d in service_deployments(account, service)
             if (not wanted or d["status"] in wanted)
             and (after is None or (epoch(d["createdAt"]) or 0.0) >= after)
             and (before is None or (epoch(d["createdAt"]) or 0.0) <= before)]
    page, token = paginate(found, request.get("maxResults"), request.get("nextToken"), default=20)
    return {"serviceDeployments": page, "nextToken": token}


@operation("DescribeServiceDeployments")
async def describe_service_deployments(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    found, failures = [], []
    for arn in request["serviceDeploymentArns"]:
        try:
            cluster, service, _ = parse_ref(arn, "service-deployment")
        except ValueError:
            raise invalid_parameter(f"Invalid service deployment ARN: {arn}") from None
        try:
            deployments = service_deployments(account, await find_service(account, cluster, service))
        except ApiError:  # its cluster or service is gone
            deployments = []
        match = next((d for d in deployments if d["serviceDeploymentArn"] == arn), None)
        if match is None:
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(match)
    return {"serviceDeployments": found, "failures": failures}


@operation("ContinueServiceDeployment")
async def continue_service_deployment(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """Continues or rolls back a deployment waiting at a PAUSE hook: the Service's `continue.ecs.operator.dev/HOOK_ID`
    annotation, the same one a user can write (lifecycle/service_hooks.py)."""
    arn, hook, action = request["serviceDeploymentArn"], request["hookId"], request.get("action") or "CONTINUE"
    if action not in ACTIONS:
        raise invalid_parameter(f"action must be one of {', '.join(ACTIONS)}")
    try:
        cluster, name, _ = parse_ref(arn, "service-deployment")
        service = await find_service(account, cluster, name)
    except (ValueError, ApiError):
        raise ApiError("ServiceDeploymentNotFoundException", f"The service deployment {arn} was not found.") from None
    deployment = next((d for d in (service.get("status") or {}).get("deployments") or []
                       if _arn(account, "service-deployment", cluster_name(service["spec"].get("cluster")), ecs_name(service),
                               d["id"]) == arn), None)
    if deployment is None:
        raise ApiError("ServiceDeploymentNotFoundException", f"The service deployment {arn} was not found.")
    run = next((r for r in deployment.get("hookRuns") or [] if r.get("hookId") == hook), None)
    if run is None or run.get("targetType") != "PAUSE":
        raise invalid_parameter(f"The lifecycle hook {hook} is not a pause hook of service deployment {arn}.")
    if run.get("status") != "AWAITING_ACTION" or deployment.get("rolloutState") != "IN_PROGRESS":
        raise ApiError("ClientException", f"The lifecycle hook {hook} is not in AWAITING_ACTION status.")

    def annotated(current: dict[str, Any]) -> dict[str, Any]:
        meta = current["metadata"]
        return {**current, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}),
                                                                 f"{L.CONTINUE_PREFIX}{hook}": action}}}

    await account.update("Service.ecs", service["metadata"]["name"], annotated,
                         ApiError("ServiceDeploymentNotFoundException", f"The service deployment {arn} was not found."))
    return {"serviceDeploymentArn": arn}


@operation("ListServicesByNamespace")
async def list_services_by_namespace(account: Account, request: dict[str, Any]) -> dict[str, Any]:
    """The ACTIVE services using the Service Connect namespace (by name or ARN): their own
    serviceConnectConfiguration's, or their cluster's serviceConnectDefaults' when they name none. A
    namespace no cluster or service names is ECS's NamespaceNotFoundException."""
    namespace = request["namespace"].rsplit("/", 1)[-1]
    defaults = {ecs_name(c): ((c["spec"].get("serviceConnectDefaults") or {}).get("namespace") or "").rsplit("/", 1)[-1]
                for c in await account.items("Cluster")}
    named, arns = namespace in defaults.values(), []
    for cluster in defaults:
        for service in await services_of(account, cluster):
            connect = service["spec"].get("serviceConnectConfiguration") or {}
            used = (connect.get("namespace") or "").rsplit("/", 1)[-1]
            named = named or used == namespace
            described = describe_service(account, service)
            if connect.get("enabled") and (used or defaults[cluster]) == namespace and described["status"] == "ACTIVE":
                arns.append(described["serviceArn"])
    if not named:
        raise ApiError("NamespaceNotFoundException", f"The namespace {request['namespace']} was not found.")
    page, token = paginate(sorted(arns), request.get("maxResults"), request.get("nextToken"), default=10)
    return {"serviceArns": page, "nextToken": token}
