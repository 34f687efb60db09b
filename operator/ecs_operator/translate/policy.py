"""Workload policy: host-level or security-weakening settings an ECS object could obtain through the operator.

Whoever may create a TaskDefinition or Service must not get more through the operator than Pods
in their namespace would give: each setting Pod Security "baseline" forbids (or an administrator
would gate) is refused unless the namespace opted in (label) or the operator's settings allow the
feature everywhere. A namespace may also ask for non-root containers. Pure: the handlers pass
the namespace's policy in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ecs_operator import API_GROUP
from ecs_operator.models import Problem, RegisterTaskDefinition, ServiceSpec
from ecs_operator.models.task_definition import TaskDefinitionKubernetes

OPT_IN_LABEL = f"{API_GROUP}/allow-privileged-workloads"
"""Namespace label "true": every feature below is allowed there."""
NON_ROOT_LABEL = f"{API_GROUP}/run-as-non-root"
"""Namespace label "true": containers whose `user` is root (0) are refused there."""
SETTINGS_HINT = "the operator's settings (chart value workloadPolicy.allowedFeatures)"

FEATURES = (
    "privileged", "hostNetwork", "hostPID", "hostIPC", "hostPath", "capabilities", "devices",
    "securityProfiles", "sysctls", "hostPorts", "externalServices", "reservedMetadata",
)

# Capabilities the Pod Security "baseline" level allows: adding these is not host-level.
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})

# Kubernetes' safe sysctls (namespaced, isolated per Pod; also Pod Security baseline's list):
# https://kubernetes.io/docs/tasks/administer-cluster/sysctl-cluster/
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
})

# Annotations that choose a container's AppArmor or seccomp profile, and their runtime-default values.
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_ANNOTATIONS = ("seccomp.security.alpha.kubernetes.io/pod", "container.seccomp.security.alpha.kubernetes.io/")
RUNTIME_DEFAULT_PROFILES = frozenset({"runtime/default", "docker/default"})
RUNTIME_DEFAULT_APPARMOR = frozenset({"runtime/default", "docker-default"})
"""`dockerSecurityOptions` `apparmor:` values that name the container runtime's default profile."""

# Label and annotation prefixes (the part before "/") reserved for the operator and for Kubernetes;
# app.kubernetes.io is Kubernetes' prefix for the recommended labels applications set themselves.
RESERVED_DOMAINS = (API_GROUP, "kubernetes.io", "k8s.io")
"""These domains and their subdomains (the operator's `memberof.ecs.operator.dev/` node labels among them)."""
OPEN_DOMAINS = ("app.kubernetes.io", f"sim.{API_GROUP}")
"""Subdomains anyone may use: Kubernetes' recommended application labels, the sandbox's simulation annotations."""

PRIVILEGED_PORT_BELOW = 1024


@dataclass(frozen=True)
class WorkloadPolicy:
    """What one namespace allows: the features, and whether it asks for non-root containers."""

    allowed: frozenset[str] = frozenset()
    non_root: bool = False


ALLOW_ALL = WorkloadPolicy(frozenset(FEATURES))


def policy_violations(td: RegisterTaskDefinition, kubernetes: TaskDefinitionKubernetes | None,
                      policy: WorkloadPolicy) -> list[Problem]:
    """Each use of a feature `policy` does not allow, named by its JSON path in the TaskDefinition."""
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
        found += _linux_parameters(td, i)
        for j, option in enumerate(c.dockerSecurityOptions or []):
            what = _security_option(option)
            if what:
                found.append(("securityProfiles", f"{here}.dockerSecurityOptions[{j}]", what))
        for j, sc in enumerate(c.systemControls or []):
            if sc.namespace and sc.namespace.replace("/", ".") not in SAFE_SYSCTLS:
                found.append(("sysctls", f"{here}.systemControls[{j}].namespace",
                              f"sysctl {sc.namespace} (not in Kubernetes' safe set)"))
        if td.effective_network_mode == "bridge":
            for j, p in enumerate(c.portMappings or []):
                if p.hostPort:
                    low = " (a privileged port, below 1024)" if p.hostPort < PRIVILEGED_PORT_BELOW else ""
                    found.append(("hostPorts", f"{here}.portMappings[{j}].hostPort", f"host port {p.hostPort}{low}"))
    found += _metadata(kubernetes)
    problems = [_refusal(feature, path, what) for feature, path, what in found if feature not in policy.allowed]
    if policy.non_root:
        problems += [
            Problem(f"containerDefinitions[{i}].user",
                    f"running as root (user {c.user!r}) is refused: the namespace is labelled {NON_ROOT_LABEL}=true; "
                    "set a non-zero numeric user, or remove the label")
            for i, c in enumerate(td.containerDefinitions) if c.user and _is_root(c.user)
        ]
    return problems


def service_policy_violations(svc: ServiceSpec, policy: WorkloadPolicy, default_service_type: str) -> list[Problem]:
    """A Service that asks for a Kubernetes Service reachable from outside the cluster (NodePort,
    LoadBalancer) other than the type the operator's settings give every Service."""
    kind = svc.kubernetes.loadBalancerServiceType if svc.kubernetes else None
    if kind in (None, "ClusterIP", default_service_type) or "externalServices" in policy.allowed:
        return []
    return [_refusal("externalServices", "kubernetes.loadBalancerServiceType",
                     f"a Kubernetes Service of type {kind} (reachable from outside the cluster)",
                     settings=f"{SETTINGS_HINT}, or make {kind} the default type (chart value ecs.loadBalancerServiceType)")]


def _refusal(feature: str, path: str, what: str, settings: str = SETTINGS_HINT) -> Problem:
    return Problem(path, f"{what} is refused by the workload policy (feature {feature}); "
                         f"label the namespace {OPT_IN_LABEL}=true or allow {feature} in {settings}")


def _linux_parameters(td: RegisterTaskDefinition, i: int) -> list[tuple[str, str, str]]:
    here = f"containerDefinitions[{i}].linuxParameters"
    lp = td.containerDefinitions[i].linuxParameters
    if lp is None:
        return []
    found = []
    added = (lp.capabilities.add or []) if lp.capabilities else []
    extra = sorted({cap.upper().removeprefix("CAP_") for cap in added} - BASELINE_CAPABILITIES)
    if extra:
        found.append(("capabilities", f"{here}.capabilities.add", f"added capabilities {', '.join(extra)}"))
    for j, d in enumerate(lp.devices or []):
        found.append(("devices", f"{here}.devices[{j}]", f"host device {d.hostPath}"))
    return found


def _security_option(option: str) -> str:
    """What a dockerSecurityOptions entry weakens ('' for none): any SELinux label, any AppArmor
    profile but the runtime's default."""
    kind, _, value = option.partition(":")
    if kind == "label":
        return f"the SELinux option {option!r}"
    if kind == "apparmor" and value not in RUNTIME_DEFAULT_APPARMOR:
        return f"the AppArmor profile {value!r}"
    return ""


def _metadata(kubernetes: TaskDefinitionKubernetes | None) -> list[tuple[str, str, str]]:
    """podAnnotations that choose a security profile; labels and annotations in reserved prefixes."""
    if kubernetes is None:
        return []
    found = []
    for field, entries in (("podLabels", kubernetes.podLabels), ("podAnnotations", kubernetes.podAnnotations)):
        for key, value in (entries or {}).items():
            path = f'kubernetes.{field}["{key}"]'
            profile = field == "podAnnotations" and _profile_annotation(key)
            if profile:
                if value not in RUNTIME_DEFAULT_PROFILES:
                    found.append(("securityProfiles", path, f"the {profile} profile {value!r}"))
            elif _reserved(key):
                found.append(("reservedMetadata", path, f"the key {key!r} in a prefix reserved for the operator or Kubernetes"))
    return found


def _profile_annotation(key: str) -> str:
    if key.startswith(APPARMOR_ANNOTATION):
        return "AppArmor"
    return "seccomp" if key.startswith(SECCOMP_ANNOTATIONS) else ""


def _reserved(key: str) -> bool:
    domain = key.partition("/")[0] if "/" in key else ""
    if domain in OPEN_DOMAINS:
        return False
    return any(domain == d or domain.endswith(f".{d}") for d in RESERVED_DOMAINS)


def _is_root(user: str) -> bool:
    return user.partition(":")[0] in ("0", "root")
