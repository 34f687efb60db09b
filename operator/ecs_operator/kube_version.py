"""The oldest Kubernetes the operator's objects work on, checked against the API server at start-up.

The floor is set by what the translation emits (README: Install with Helm): every service Pod sets
`restartPolicy` (and ECS's restartPolicy.ignoredExitCodes `restartPolicyRules`) on its regular
containers, which the API server refuses before container restart rules (ContainerRestartRules: alpha
in 1.34, beta and on by default from 1.35); task cpu/memory are Pod-level resources (PodLevelResources:
beta and on by default from 1.34).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MINIMUM = (1, 35)
NEEDED_FOR = "container restart rules on regular containers (1.35) and Pod-level resources (1.34)"


def server_version(info: Mapping[str, Any]) -> tuple[int, int] | None:
    """(major, minor) of a /version answer. Managed offerings write minor as "35+" and gitVersion as
    "v1.35.2-eks-...": the leading digits count. None when neither says."""
    major, minor = (re.match(r"\d+", str(info.get(k) or "")) for k in ("major", "minor"))
    if major and minor:
        return int(major.group()), int(minor.group())
    release = re.match(r"v?(\d+)\.(\d+)", str(info.get("gitVersion") or ""))
    return (int(release.group(1)), int(release.group(2))) if release else None


def version_problem(info: Mapping[str, Any]) -> str | None:
    """Why the operator cannot serve this API server (one line), or None when it can."""
    version = server_version(info)
    floor = f"{MINIMUM[0]}.{MINIMUM[1]}"
    if version is not None and version >= MINIMUM:
        return None
    shown = info.get("gitVersion") or f"{info.get('major')}.{info.get('minor')}"
    found = f"is Kubernetes {shown}" if version is not None else f"reports no Kubernetes release ({shown!r})"
    return f"the API server {found}; the operator needs Kubernetes {floor} or newer ({NEEDED_FOR})"
