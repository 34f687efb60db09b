"""A blue/green load balancer (`loadBalancers[].advancedConfiguration`) as Gateway API HTTPRoutes.

ECS shifts a BLUE_GREEN, LINEAR or CANARY deployment's production traffic by the weights of the production
listener rule's two target groups: `targetGroupArn` (primary) and `alternateTargetGroupArn`; the test listener
rule sends test traffic to green only (docs/ecs-semantics.md §Blue/green load balancers). On a cluster that
serves HTTPRoute (gateway.networking.k8s.io/v1) the operator writes the same thing:

- the two target groups are two ClusterIP Services, `<lb>-primary` (targetGroupArn) and `<lb>-alternate`
  (alternateTargetGroupArn), `<lb>` being the loadBalancers entry's Kubernetes Service. Each lists the tasks of
  one of the service's two workload slots (lifecycle/service_strategy.py): the first slot's are the primary
  target group's, the second slot's the alternate's. The slots alternate as ECS's target groups do: the first
  green goes to the alternate, the next one back to the primary;
- the production HTTPRoute `<lb>` has both Services as backendRefs, weighted as the strategy's step says
  (WEIGHT_TOTAL in all: a percent to 1/100 exactly); outside a deployment all weight is on the production slot;
- the test HTTPRoute `<lb>-test` (only with a testListenerRule) sends everything to green during a deployment,
  to production otherwise.

A listener rule (or, for a Network Load Balancer, listener) ARN names its load balancer:
`arn:aws:elasticloadbalancing:<region>:<account>:listener-rule/app/<name>/<id>/<listener>/<rule>`; the route's
parentRef is the Gateway of that name (lowercased) in the service's namespace. A value that is not an ARN is a
short form: `<gateway>` or `<gateway>/<listener name>` (the Gateway listener's sectionName). The routes match
every request (the listener rule's conditions stay in AWS; a Gateway listener's hostname narrows them).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecs_operator.models import Problem, ServiceSpec

from .endpoints import endpoint_slices
from .fidelity import FidelityReport
from .names import dns_label
from .service import SECOND_SLOT, SLOT_LABEL, WORKLOAD

GROUP = "gateway.networking.k8s.io"
API_VERSION = f"{GROUP}/v1"
WEIGHT_TOTAL = 10000
"""The weights of a route's backends add up to this: a percent with two decimals is exact."""
PRIMARY, ALTERNATE = "primary", "alternate"
_ARN = re.compile(r"^arn:aws[a-z-]*:elasticloadbalancing:[^:]*:[^:]*:listener(?:-rule)?/(?:app|net|gwy)/([^/]+)/.+$")
_SHORT = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?)(?:/([a-z0-9]([-a-z0-9]*[a-z0-9])?))?$")
_ALB_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


def parent_ref(value: str) -> dict[str, Any] | str:
    """The HTTPRoute parentRef a listener rule (or listener) ARN or short form stands for, or why it names none."""
    arn = _ARN.match(value)
    if arn is not None:
        name = arn.group(1)
        if not _ALB_NAME.match(name):
            return f"{value!r}: load balancer name {name!r} is not an Elastic Load Balancing name"
        return {"group": GROUP, "kind": "Gateway", "name": name.lower()}
    short = _SHORT.match(value)
    if short is None or len(short.group(1)) > 253:
        return (f"{value!r} is neither a listener rule or listener ARN (arn:aws:elasticloadbalancing:...:"
                "listener-rule/app/<name>/...) nor a Gateway name with an optional '/<listener name>'")
    ref: dict[str, Any] = {"group": GROUP, "kind": "Gateway", "name": short.group(1)}
    if short.group(3):
        ref["sectionName"] = short.group(3)
    return ref


@dataclass(frozen=True)
class Traffic:
    """Where a service's load balancer traffic goes now."""

    production: str
    """The slot ("" or SECOND_SLOT) of the revision that has production traffic (blue during a deployment)."""
    green: str | None = None
    """The slot of the deployment taking traffic over (None: no deployment in progress)."""
    percent: float = 0.0
    """Production traffic on green."""


def weights(traffic: Traffic, second_slot: str) -> dict[str, int]:
    """PRIMARY's and ALTERNATE's weights (the first slot's and the second's), adding up to WEIGHT_TOTAL."""
    green = round(min(max(traffic.percent, 0.0), 100.0) * WEIGHT_TOTAL / 100) if traffic.green is not None else 0
    by_slot = {traffic.production: WEIGHT_TOTAL - green}
    if traffic.green is not None:
        by_slot[traffic.green] = by_slot.get(traffic.green, 0) + green
    return {PRIMARY: by_slot.get("", 0), ALTERNATE: by_slot.get(second_slot, 0)}


def weights_for_test(traffic: Traffic, second_slot: str) -> dict[str, int]:
    """The test route's: all on green during a deployment, else on production."""
    slot = traffic.green if traffic.green is not None else traffic.production
    return {PRIMARY: WEIGHT_TOTAL if slot == "" else 0, ALTERNATE: WEIGHT_TOTAL if slot == second_slot else 0}


@dataclass
class Routes:
    """The children a service's blue/green load balancers add."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def blue_green(svc: ServiceSpec) -> list[int]:
    """The indexes of the loadBalancers entries with an advancedConfiguration and a containerPort."""
    return [i for i, lb in enumerate(svc.loadBalancers or []) if lb.advancedConfiguration and lb.containerPort]


def routes(svc: ServiceSpec, owner_name: str, services: Sequence[dict[str, Any]],
           slot_pods: Mapping[str, Sequence[dict[str, Any]]], traffic: Traffic, *, second_slot: str, served: bool,
           report: FidelityReport) -> Routes:
    """The target-group Services with their EndpointSlices and the HTTPRoutes of each blue/green load balancer.
    `owner_name`: the Service resource's name; `services`: the plan's Kubernetes Services; `slot_pods`: the live tasks
    of each slot; `served`: the cluster serves HTTPRoute (else nothing is written and the shift stays the ratio
    of tasks the Service lists, reported approximated)."""
    out = Routes()
    balancers = svc.loadBalancers or []
    for i in blue_green(svc):
        path = f"loadBalancers[{i}].advancedConfiguration"
        config: Mapping[str, Any] = balancers[i].advancedConfiguration or {}
        name = dns_label(owner_name if i == 0 else f"{owner_name}-{i}")  # as translate/service.py names it
        base = next((s for s in services if s["metadata"]["name"] == name), None)
        if base is None:
            continue
        refs: dict[str, dict[str, Any]] = {}
        for key in ("productionListenerRule", "testListenerRule"):
            value = config.get(key)
            if value is None:
                continue
            ref = parent_ref(str(value))
            if isinstance(ref, str):
                out.problems.append(Problem(f"{path}.{key}", ref))
            else:
                refs[key] = ref
        if "productionListenerRule" not in config:
            _report(report, path, config, None, "no productionListenerRule: no route shifts production traffic by "
                                                "weight; the Service's task ratio does")
            continue
        if not served:
            _report(report, path, config, None, "the cluster serves no HTTPRoute (no Gateway API CRDs): production "
                                                "traffic shifts by the ratio of green and blue tasks the Service lists")
            continue
        if out.problems:
            continue
        _report(report, path, config, name, "")
        backends = {}
        for group, slot in ((PRIMARY, ""), (ALTERNATE, second_slot)):
            backend = target_group(base, f"{name}-{group}")
            backends[group] = backend
            origin = f"{path}.alternateTargetGroupArn" if group == ALTERNATE else f"loadBalancers[{i}].targetGroupArn"
            out.objects.append(backend)
            out.origins[("Service", backend["metadata"]["name"])] = origin
            for piece in endpoint_slices(backend, slot_pods.get(slot, [])):
                out.objects.append(piece)
                out.origins[("EndpointSlice", piece["metadata"]["name"])] = origin
        port = base["spec"]["ports"][0]["port"]
        out.objects.append(_route(base, name, refs["productionListenerRule"], backends, port,
                                  weights(traffic, second_slot)))
        out.origins[("HTTPRoute", name)] = f"{path}.productionListenerRule"
        if "testListenerRule" in refs:
            out.objects.append(_route(base, f"{name}-test", refs["testListenerRule"], backends, port,
                                      weights_for_test(traffic, second_slot)))
            out.origins[("HTTPRoute", f"{name}-test")] = f"{path}.testListenerRule"
    return out


def _report(report: FidelityReport, path: str, config: Mapping[str, Any], route: str | None, why: str) -> None:
    """Each member's verdict: exact with the routes (`route`: the production route's name), else approximated."""
    targets = {"alternateTargetGroupArn": f"Service {route}-{ALTERNATE}", "productionListenerRule": f"HTTPRoute {route}",
               "testListenerRule": f"HTTPRoute {route}-test"}
    for key in config:
        if key == "roleArn":
            report.approximated(f"{path}.{key}", "operator RBAC", "no IAM: the operator's own rights write the routes")
        elif route is not None and key in targets:
            report.exact(f"{path}.{key}", targets[key])
        else:
            report.approximated(f"{path}.{key}", "Service + EndpointSlice", why)


def target_group(base: dict[str, Any], name: str) -> dict[str, Any]:
    """A ClusterIP Service with the load balancer Service's ports, endpoints written by the operator."""
    meta = base["metadata"]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": dict(meta.get("labels") or {}),
                         **({"ownerReferences": copy.deepcopy(meta["ownerReferences"])}
                            if "ownerReferences" in meta else {})},
            "spec": {"type": "ClusterIP", "ports": copy.deepcopy(base["spec"]["ports"])}}


def _route(base: dict[str, Any], name: str, parent: dict[str, Any], backends: Mapping[str, dict[str, Any]], port: int,
           weight: Mapping[str, int]) -> dict[str, Any]:
    meta = base["metadata"]
    return {"apiVersion": API_VERSION, "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": meta["namespace"], "labels": dict(meta.get("labels") or {}),
                         **({"ownerReferences": copy.deepcopy(meta["ownerReferences"])}
                            if "ownerReferences" in meta else {})},
            "spec": {"parentRefs": [dict(parent)],
                     "rules": [{"backendRefs": [{"group": "", "kind": "Service", "name": b["metadata"]["name"],
                                                 "port": port, "weight": weight[group]}
                                                for group, b in backends.items()]}]}}


def pods_by_slot(pods: Sequence[dict[str, Any]], workloads: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The tasks of each slot ("" or SECOND_SLOT), by the workload whose selector their WORKLOAD label matches."""
    slot_of: dict[str, str] = {}
    for w in workloads:
        selected = (((w.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).get(WORKLOAD)
        if selected is not None:
            slot_of[selected] = SECOND_SLOT if (w["metadata"].get("labels") or {}).get(SLOT_LABEL) == "b" else ""
    out: dict[str, list[dict[str, Any]]] = {}
    for pod in pods:
        slot = slot_of.get((pod["metadata"].get("labels") or {}).get(WORKLOAD, ""))
        if slot is not None:
            out.setdefault(slot, []).append(pod)
    return out
