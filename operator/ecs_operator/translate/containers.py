"""One ECS container definition as a Kubernetes container."""

from __future__ import annotations

from typing import Any, Literal

from ecs_operator.models import ContainerDefinition, RegisterTaskDefinition

from .fidelity import FidelityReport
from .health import readiness_probe, startup_probe, wait_until_healthy
from .names import dns_label, environment_file_configmap, port_name, secret_ref
from .policy import RUNTIME_DEFAULT_APPARMOR
from .resources import container_resources
from .volumes import container_mounts


def container_name(ecs_name: str) -> str:
    return dns_label(ecs_name)


def literal(value: str) -> str:
    """`value` escaped so the kubelet passes it as written. Kubernetes expands `$(NAME)` (a variable of the
    container's env) and turns `$$` into `$` in command, args and env values; ECS does neither (a shell in the
    command may expand `$$` or `$(cmd)` itself, later). `$$` is Kubernetes' escape for `$`."""
    return value.replace("$", "$$")


def build_container(
    td: RegisterTaskDefinition,
    index: int,
    report: FidelityReport,
    *,
    for_service: bool,
    healthy_target: Literal["sidecar", "container"] | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(container, extra Pod volumes it needs). `healthy_target`: others wait until it is HEALTHY,
    and it starts as a native sidecar (a startupProbe holds the next ones) or as a regular
    container (a postStart hook holds them)."""
    c = td.containerDefinitions[index]
    path = f"containerDefinitions[{index}]"
    out: dict[str, Any] = {"name": container_name(c.name), "image": c.image}
    if out["name"] != c.name:
        report.approximated(f"{path}.name", "containers[].name", f"renamed to {out['name']!r} (DNS label)")
    if c.entryPoint:
        out["command"] = [literal(a) for a in c.entryPoint]
    if c.command:
        out["args"] = [literal(a) for a in c.command]
    if c.workingDirectory:
        out["workingDir"] = c.workingDirectory
    if c.interactive:
        out["stdin"] = True
    if c.pseudoTerminal:
        out["tty"] = True

    env: list[dict[str, Any]] = [{"name": e.name, "value": literal(e.value or "")} for e in c.environment or [] if e.name]
    for s in c.secrets or []:
        name, key = secret_ref(s.valueFrom)
        env.append({"name": s.name, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
    if env:
        out["env"] = env
    if c.environmentFiles:
        out["envFrom"] = [{"configMapRef": {"name": environment_file_configmap(f.value)}} for f in c.environmentFiles]

    ports = _ports(td, c, path, report)
    if ports:
        out["ports"] = ports
    resources = container_resources(c)
    if resources:
        out["resources"] = resources
    for j, r in enumerate(c.resourceRequirements or []):
        if r.type == "InferenceAccelerator":
            report.unsupported(f"{path}.resourceRequirements[{j}]", "Elastic Inference is retired")

    if c.healthCheck is not None:
        out["readinessProbe"] = readiness_probe(c.healthCheck)
        if healthy_target == "sidecar":
            out["startupProbe"] = startup_probe(c.healthCheck, c.startTimeout)
        elif healthy_target == "container":
            out["lifecycle"] = wait_until_healthy(c.healthCheck, c.startTimeout)
        if healthy_target and c.startTimeout is not None:
            report.approximated(f"{path}.startTimeout", "startupProbe failureThreshold" if healthy_target == "sidecar"
                                else "lifecycle.postStart", "dependents give up waiting after about startTimeout")
    elif c.startTimeout is not None:
        report.unsupported(f"{path}.startTimeout", "enforced only for HEALTHY dependencies")

    security = _security_context(c, path, report)
    if security:
        out["securityContext"] = security

    restart = _restart_policy(c, for_service)
    out.update(restart)

    mounts, extra_volumes = container_mounts(td, c, index, report)
    if mounts:
        out["volumeMounts"] = mounts
    return out, extra_volumes


def _ports(td: RegisterTaskDefinition, c: ContainerDefinition, path: str, report: FidelityReport) -> list[dict[str, Any]]:
    mode = td.effective_network_mode
    ports: list[dict[str, Any]] = []
    for j, p in enumerate(c.portMappings or []):
        here = f"{path}.portMappings[{j}]"
        if p.containerPort is None:
            continue  # a containerPortRange: every port of the Pod IP is reachable anyway
        port: dict[str, Any] = {"containerPort": p.containerPort, "protocol": (p.protocol or "tcp").upper()}
        if p.name:
            name = port_name(p.name)
            if name:
                port["name"] = name
            else:
                report.approximated(f"{here}.name", "containers[].ports[].name",
                                    f"{p.name!r} is not a valid Kubernetes port name (15 chars, a-z0-9-); dropped")
        if mode == "bridge":
            if p.hostPort:
                port["hostPort"] = p.hostPort
                report.exact(f"{here}.hostPort", "containers[].ports[].hostPort", "static host port")
            else:
                report.approximated(f"{here}.hostPort", "(Pod IP)",
                                    "dynamic host port: reachable at the Pod IP on containerPort; no host port is taken")
        elif mode == "host":
            report.exact(f"{here}.hostPort", "hostNetwork", "host network: the container port is the host port")
        ports.append(port)
    return ports


def _security_context(c: ContainerDefinition, path: str, report: FidelityReport) -> dict[str, Any]:
    sc: dict[str, Any] = {}
    if c.privileged:
        sc["privileged"] = True
    if c.readonlyRootFilesystem:
        sc["readOnlyRootFilesystem"] = True
    caps = c.linuxParameters.capabilities if c.linuxParameters else None
    if caps is not None and (caps.add or caps.drop):
        sc["capabilities"] = {k: list(v) for k, v in (("add", caps.add), ("drop", caps.drop)) if v}
    if c.user:
        user, _, group = c.user.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            sc["runAsUser"] = int(user)
            if group:
                sc["runAsGroup"] = int(group)
        else:
            report.approximated(f"{path}.user", "securityContext.runAsUser",
                                f"{c.user!r}: Kubernetes needs numeric ids; the image's user is kept")
    for option in c.dockerSecurityOptions or []:
        if option == "no-new-privileges":
            sc["allowPrivilegeEscalation"] = False
        elif option.startswith("apparmor:"):
            sc["appArmorProfile"] = _apparmor_profile(option.split(":", 1)[1])
        elif option.startswith("label:"):
            key, _, value = option[len("label:"):].partition(":")
            field = {"user": "user", "role": "role", "type": "type", "level": "level"}.get(key)
            if field:
                sc.setdefault("seLinuxOptions", {})[field] = value
    return sc


def _apparmor_profile(profile: str) -> dict[str, str]:
    """Docker's `apparmor:` names: `unconfined`, the runtime's default, or a profile loaded on the node
    (docs/ecs-semantics.md §Container security options)."""
    if profile == "unconfined":
        return {"type": "Unconfined"}
    if profile in RUNTIME_DEFAULT_APPARMOR:
        return {"type": "RuntimeDefault"}
    return {"type": "Localhost", "localhostProfile": profile}


def _restart_policy(c: ContainerDefinition, for_service: bool) -> dict[str, Any]:
    """ECS never restarts a container in place unless its restartPolicy says so.

    A service's Pod must say restartPolicy Always (Deployments require it), so each container
    says Never itself: when an essential container exits the operator stops the task and the
    ReplicaSet starts a new one, as the ECS service scheduler does.
    """
    rp = c.restartPolicy
    if rp is not None and rp.enabled:
        if not rp.ignoredExitCodes:
            return {"restartPolicy": "Always"}
        rules = [{"action": "Restart", "exitCodes": {"operator": "NotIn", "values": sorted(rp.ignoredExitCodes)}}]
        return {"restartPolicy": "Never", "restartPolicyRules": rules}
    return {"restartPolicy": "Never"} if for_service else {}
