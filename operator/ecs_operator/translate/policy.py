"""Workload policy: host-level features a TaskDefinition could obtain through the operator.

Whoever may create a TaskDefinition must not get privileged or host-level Pods through the
operator unless the namespace opted in (label) or the operator's settings allow the feature.
"""

from __future__ import annotations

from ecs_operator import API_GROUP
from ecs_operator.models import Problem, RegisterTaskDefinition

OPT_IN_LABEL = f"{API_GROUP}/allow-privileged-workloads"
"""Namespace label "true": every feature below is allowed there."""

FEATURES = ("privileged", "hostNetwork", "hostPID", "hostIPC", "hostPath", "capabilities", "devices")

# Capabilities the Pod Security "baseline" level allows: adding these is not host-level.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})


def policy_violations(td: RegisterTaskDefinition, allowed: frozenset[str]) -> list[Problem]:
    """Each use of a feature that is not in `allowed`, named by its JSON path."""
    found: list[tuple[str, str, str]] = []  # (feature, path, what)
    if td.networkMode == "host":
        found.append(("hostNetwork", "networkMode", "host network mode"))
    if td.pidMode == "host":
        found.append(("hostPID", "pidMode", "the host's PID namespace"))
    if td.ipcMode == "host":
        found.append(("hostIPC", "ipcMode", "the host's IPC namespace"))
    for i, v in enumerate(td.volumes or []):
        if v.host is not None and v.host.sourcePath:
            found.append(("hostPath", f"volumes[{i}].host.sourcePath", f"host path {v.host.sourcePath}"))
    for i, c in enumerate(td.containerDefinitions):
        here = f"containerDefinitions[{i}]"
        if c.privileged:
            found.append(("privileged", f"{here}.privileged", "a privileged container"))
        lp = c.linuxParameters
        if lp is None:
            continue
        added = set(lp.capabilities.add or []) if lp.capabilities else set()
        extra = sorted(cap.upper().removeprefix("CAP_") for cap in added) if added else []
        extra = [cap for cap in extra if cap not in BASELINE_CAPABILITIES]
        if extra:
            found.append(("capabilities", f"{here}.linuxParameters.capabilities.add", f"added capabilities {', '.join(extra)}"))
        for j, d in enumerate(lp.devices or []):
            found.append(("devices", f"{here}.linuxParameters.devices[{j}]", f"host device {d.hostPath}"))
    return [
        Problem(path, f"{what} is refused by the workload policy (feature {feature}); "
                      f"label the namespace {OPT_IN_LABEL}=true or allow {feature} in the operator's settings")
        for feature, path, what in found
        if feature not in allowed
    ]
