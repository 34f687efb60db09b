"""Pod-spec fragments that placement translations produce, their fidelity verdicts, and merging them."""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Literal

HOSTNAME = "kubernetes.io/hostname"
"""Node label holding the node name: the topology of one container instance."""

# Kubernetes label syntax (apimachinery's IsQualifiedName and IsValidLabelValue).
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")


def is_label_key(key: str) -> bool:
    """Whether Kubernetes accepts `key` as a label key (an ECS attribute name may not make one)."""
    return bool(_LABEL_KEY.fullmatch(key))


def is_label_value(value: str) -> bool:
    """Whether Kubernetes accepts `value` as a label value (ECS attribute values may hold spaces, '@', ':')."""
    return bool(_LABEL_VALUE.fullmatch(value))


Verdict = Literal["exact", "approximated", "unsupported"]
"""exact: same behaviour as ECS. approximated: close, the note says how it differs. unsupported: dropped."""


@dataclass(frozen=True)
class Fidelity:
    """How faithfully one ECS placement item (`spread(attribute:ecs.availability-zone)`, `distinctInstance`,
    `memberOf(...)`) is carried over, for the caller's fidelity report."""

    item: str
    verdict: Verdict
    note: str


@dataclass(frozen=True)
class PlacementFragment:
    """Pod spec fields (`affinity`, `topologySpreadConstraints`) as Kubernetes JSON, and their verdicts."""

    pod_spec: dict[str, Any]
    fidelity: tuple[Fidelity, ...]


def merge(*fragments: PlacementFragment) -> PlacementFragment:
    """All fragments' constraints together: dicts merge, lists concatenate (required pod affinity terms and
    spread constraints are ANDed by Kubernetes). Node selector terms are ORed, so concatenating two sets
    would loosen both: that is refused (member_of_affinity already ANDs every memberOf expression)."""
    pod_spec: dict[str, Any] = {}
    for fragment in fragments:
        _merge_into(pod_spec, fragment.pod_spec)
    return PlacementFragment(pod_spec, tuple(f for fragment in fragments for f in fragment.fidelity))


def _merge_into(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        if key not in target:
            target[key] = deepcopy(value)
        elif key == "nodeSelectorTerms":
            raise ValueError("two fragments both set node affinity; AND them into one memberOf translation")
        elif isinstance(value, dict):
            _merge_into(target[key], value)
        else:
            target[key] = target[key] + deepcopy(value)
