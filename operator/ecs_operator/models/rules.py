"""ECS's validation rules, each once: a Python check and, where CEL can say it, the CRD rule.

A rule is attached to the model class it is about. `validate()` runs the Python checks over a
model tree (the convert CLI and the operator use it); `crdgen` puts the CEL form into the CRD
schema of that class, so `kubectl apply` refuses the same manifests with the same message.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .base import INTEGER_MAX, EcsModel, Problem
from .capacity_provider import CreateCapacityProvider, NodePool
from .cluster import CreateCluster
from .common import CapacityProviderStrategyItem, PlacementConstraint, PlacementStrategy
from .container import ContainerDefinition, HealthCheck, PortMapping, ResourceRequirement
from .service import CreateService, DeploymentLifecycleHook, LoadBalancer
from .task import RunTask
from .task_definition import RegisterTaskDefinition, TaskDefinitionPlacementConstraint, Volume
from .units import FARGATE_SIZES, cpu_units, memory_mib

Findings = Iterable[tuple[str, str]]  # (path relative to the checked object, message)


@dataclass(frozen=True)
class Cel:
    """An x-kubernetes-validations entry; `self` is the object of the rule's class."""

    rule: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        out = {"rule": self.rule, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        return out


@dataclass(frozen=True)
class Rule:
    on: type[EcsModel]
    check: Callable[[Any], Findings]
    cel: Cel | None

    @property
    def name(self) -> str:
        return self.check.__name__


RULES: list[Rule] = []


def rule(on: type[EcsModel], cel: Cel | None = None) -> Callable[[Callable[[Any], Findings]], Callable[[Any], Findings]]:
    def register(check: Callable[[Any], Findings]) -> Callable[[Any], Findings]:
        RULES.append(Rule(on, check, cel))
        return check

    return register


def validate(obj: EcsModel, prefix: str = "") -> list[Problem]:
    """Every ECS rule broken anywhere in `obj`, each named by its JSON path."""
    problems: list[Problem] = []
    for path, node in _walk(obj, prefix):
        for r in _rules_for(type(node)):
            for rel, message in r.check(node):
                problems.append(Problem(_join(path, rel), message))
    return problems


@functools.cache
def _rules_for(cls: type[EcsModel]) -> tuple[Rule, ...]:
    """The rules about `cls` (validate() runs per node: scanning every rule each time halved `convert`'s speed)."""
    return tuple(r for r in RULES if issubclass(cls, r.on))


def _walk(obj: EcsModel, path: str) -> Iterator[tuple[str, EcsModel]]:
    yield path, obj
    for name in type(obj).model_fields:
        value = getattr(obj, name)
        if isinstance(value, EcsModel):
            yield from _walk(value, _join(path, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, EcsModel):
                    yield from _walk(item, f"{_join(path, name)}[{i}]")


def _join(path: str, rel: str) -> str:
    if not rel:
        return path
    if not path or rel.startswith("["):
        return path + rel
    return f"{path}.{rel}"


# --- task definitions -----------------------------------------------------------------------

_FARGATE = "has(self.requiresCompatibilities) && 'FARGATE' in self.requiresCompatibilities"


@rule(
    RegisterTaskDefinition,
    Cel(
        "self.containerDefinitions.exists(c, !has(c.essential) || c.essential)",
        message="at least one container must be essential",
        field_path=".containerDefinitions",
    ),
)
def at_least_one_essential(td: RegisterTaskDefinition) -> Findings:
    if not any(c.is_essential for c in td.containerDefinitions):
        yield "containerDefinitions", "at least one container must be essential"


@rule(RegisterTaskDefinition)
def unique_container_names(td: RegisterTaskDefinition) -> Findings:
    seen: set[str] = set()
    for i, c in enumerate(td.containerDefinitions):
        if c.name in seen:
            yield f"containerDefinitions[{i}].name", f"duplicate container name {c.name!r}"
        seen.add(c.name)


@rule(RegisterTaskDefinition)
def firelens_router(td: RegisterTaskDefinition) -> Findings:
    """ECS: one log router per task; awsfirelens needs it; config-file-type is s3 or file, with a value
    (docs/ecs-semantics.md §FireLens)."""
    routers = [i for i, c in enumerate(td.containerDefinitions) if c.firelensConfiguration is not None]
    for i in routers[1:]:
        yield f"containerDefinitions[{i}].firelensConfiguration", "a task definition can have only one FireLens log router"
    for i, c in enumerate(td.containerDefinitions):
        if not routers and c.logConfiguration is not None and c.logConfiguration.logDriver == "awsfirelens":
            yield (f"containerDefinitions[{i}].logConfiguration.logDriver",
                   "awsfirelens needs a log router: a container with firelensConfiguration")
        options = (c.firelensConfiguration.options or {}) if c.firelensConfiguration is not None else {}
        kind = options.get("config-file-type")
        if kind is not None and kind not in ("s3", "file"):
            yield f"containerDefinitions[{i}].firelensConfiguration.options", f"config-file-type must be s3 or file; got {kind!r}"
        elif kind is not None and not options.get("config-file-value"):
            yield f"containerDefinitions[{i}].firelensConfiguration.options", "config-file-type needs config-file-value"


@rule(RegisterTaskDefinition)
def unique_volume_names(td: RegisterTaskDefinition) -> Findings:
    """(The CRD's list-map key refuses the same at admission.)"""
    seen: set[str] = set()
    for i, v in enumerate(td.volumes or []):
        if v.name in seen:
            yield f"volumes[{i}].name", f"duplicate volume name {v.name!r}"
        seen.add(v.name)


@rule(
    ContainerDefinition,
    Cel(
        "!has(self.memory) || !has(self.memoryReservation) || self.memory > self.memoryReservation",
        message="memory (the hard limit) must be greater than memoryReservation",
        field_path=".memoryReservation",
    ),
)
def memory_above_reservation(c: ContainerDefinition) -> Findings:
    if c.memory is not None and c.memoryReservation is not None and c.memory <= c.memoryReservation:
        yield "memoryReservation", "memory (the hard limit) must be greater than memoryReservation"


@rule(
    ContainerDefinition,
    Cel(
        "(!has(self.memory) || self.memory >= 6) && (!has(self.memoryReservation) || self.memoryReservation >= 6)",
        message="a container needs at least 6 MiB of memory (memory and memoryReservation)",
        field_path=".memory",
    ),
)
def memory_minimum(c: ContainerDefinition) -> Findings:
    for field in ("memory", "memoryReservation"):
        value = getattr(c, field)
        if value is not None and value < 6:
            yield field, f"a container needs at least 6 MiB of memory; got {value}"


@rule(RegisterTaskDefinition)
def task_size_parses_and_fits(td: RegisterTaskDefinition) -> Findings:
    cpu = mem = None
    if td.cpu is not None:
        try:
            cpu = cpu_units(td.cpu)
        except ValueError as e:
            yield "cpu", str(e)
        else:
            if not 128 <= cpu <= 196608:
                yield "cpu", f"task cpu must be 128-196608 units (0.125-192 vCPU); got {cpu}"
    if td.memory is not None:
        try:
            mem = memory_mib(td.memory)
        except ValueError as e:
            yield "memory", str(e)
        else:
            if not 0 < mem <= INTEGER_MAX:  # ECS registers the task memory as an Integer of MiB
                yield "memory", f"task memory must be 1-{INTEGER_MAX} MiB; got {mem}"
                mem = None
    if cpu is not None:
        used = sum(c.cpu or 0 for c in td.containerDefinitions)
        if used > cpu:
            yield "containerDefinitions", f"the containers' cpu ({used} units) exceeds the task cpu ({cpu} units)"
    if mem is not None:
        used = sum(c.memoryReservation or c.memory or 0 for c in td.containerDefinitions)
        if used > mem:
            yield "containerDefinitions", f"the containers' memory ({used} MiB) exceeds the task memory ({mem} MiB)"


def cel_only(on: type[EcsModel], cel: Cel) -> None:
    """A CEL form whose Python side is a broader check above (which also names the exact index)."""
    RULES.append(Rule(on, _no_findings, cel))


def _no_findings(_: Any) -> Findings:
    return ()


@rule(RegisterTaskDefinition)
def required_compatibilities(td: RegisterTaskDefinition) -> Findings:
    for launch_type in td.requiresCompatibilities or []:
        yield from compatibility_findings(td, launch_type)


for _rule, _message, _path in (
    ("has(self.networkMode) && self.networkMode == 'awsvpc'", "FARGATE requires networkMode awsvpc", ".networkMode"),
    ("has(self.cpu) && has(self.memory)", "FARGATE requires task-level cpu and memory", ".cpu"),
    (
        "!has(self.volumes) || self.volumes.all(v, !has(v.host) || !has(v.host.sourcePath))",
        "FARGATE does not allow host volumes with a sourcePath (volumes[].host.sourcePath)",
        ".volumes",
    ),
    (
        "self.containerDefinitions.all(c, !has(c.privileged) || !c.privileged)",
        "FARGATE does not allow privileged containers (containerDefinitions[].privileged)",
        ".containerDefinitions",
    ),
):
    cel_only(RegisterTaskDefinition, Cel(f"!({_FARGATE}) || ({_rule})", message=_message, field_path=_path))


def _fargate_size_cel() -> Cel:
    """FARGATE's cpu/memory pairs (units.FARGATE_SIZES) for sizes written as numbers ("256", 512); the
    "1 vCPU" / "2 GB" forms are left to the operator's check (_fargate_size): CEL has no unit parser.
    Each string is bounded ({1,9} digits) so the rule's cost estimate stays far below the API server's limit
    (docs/ecs-semantics.md §FARGATE task sizes)."""
    digits = "'^[0-9]{1,9}$'"
    pairs = []
    for cpu, sizes in FARGATE_SIZES.items():
        steps = {b - a for a, b in itertools.pairwise(sizes)}
        if len(steps) == 1:
            (step,) = steps
            memory = f"m >= {sizes[0]} && m <= {sizes[-1]} && (m - {sizes[0]}) % {step} == 0"
        else:
            memory = f"m in [{', '.join(map(str, sizes))}]"
        pairs.append(f"(c == {cpu} && {memory})")
    return Cel(
        f"!({_FARGATE} && has(self.cpu) && has(self.memory) && string(self.cpu).matches({digits}) "
        f"&& string(self.memory).matches({digits})) || [int(string(self.cpu))].all(c, [int(string(self.memory))].all(m, "
        f"{' || '.join(pairs)}))",
        message="FARGATE needs a supported cpu/memory pair: cpu 256 takes memory 512, 1024 or 2048; 512: 1024-4096; "
                "1024: 2048-8192; 2048: 4096-16384 (steps of 1024); 4096: 8192-30720 (1024); 8192: 16384-61440 (4096); "
                "16384: 32768-122880 (8192) MiB",
        field_path=".memory",
    )


cel_only(RegisterTaskDefinition, _fargate_size_cel())


def compatibilities(td: RegisterTaskDefinition) -> list[str]:
    """ECS's `compatibilities` of a registered definition: EC2, plus each launch type of
    requiresCompatibilities (validated at registration), never one inferred from the content
    (docs/ecs-semantics.md §Compatibilities)."""
    return sorted({"EC2", *(td.requiresCompatibilities or [])})


def compatibility_findings(td: RegisterTaskDefinition, launch_type: str) -> Findings:
    """Why `td` cannot run with `launch_type` (docs/ecs-semantics.md §Compatibilities), at registration or at launch."""
    mode = td.networkMode
    if launch_type == "FARGATE":
        if mode != "awsvpc":
            yield "networkMode", f"FARGATE requires networkMode awsvpc; got {mode or 'bridge (the default)'}"
        yield from _fargate_size(td)
        for i, v in enumerate(td.volumes or []):
            if v.host is not None and v.host.sourcePath:
                yield f"volumes[{i}].host.sourcePath", "FARGATE does not allow host paths"
            if v.dockerVolumeConfiguration is not None:
                yield f"volumes[{i}].dockerVolumeConfiguration", "FARGATE does not allow Docker volumes"
        if td.ipcMode is not None:
            yield "ipcMode", "FARGATE does not allow ipcMode"
        if td.pidMode == "host":
            yield "pidMode", "FARGATE allows only pidMode task"
        if td.placementConstraints:
            yield "placementConstraints", "FARGATE does not allow placement constraints"
        if td.ephemeralStorage is not None and not 21 <= td.ephemeralStorage.sizeInGiB <= 200:
            yield "ephemeralStorage.sizeInGiB", "must be 21-200 GiB on FARGATE"
        for i, c in enumerate(td.containerDefinitions):
            for path, message in _fargate_container(c):
                yield f"containerDefinitions[{i}].{path}", message
    elif launch_type == "EXTERNAL":
        if mode == "awsvpc":
            yield "networkMode", "EXTERNAL does not support networkMode awsvpc"
        for i, v in enumerate(td.volumes or []):
            if v.efsVolumeConfiguration is not None:
                yield f"volumes[{i}].efsVolumeConfiguration", "EXTERNAL does not support EFS volumes"
    elif launch_type == "MANAGED_INSTANCES":
        yield "requiresCompatibilities", "MANAGED_INSTANCES is not supported by ecs-operator"


def _fargate_size(td: RegisterTaskDefinition) -> Findings:
    if td.cpu is None or td.memory is None:
        yield "cpu" if td.cpu is None else "memory", "FARGATE requires task-level cpu and memory"
        return
    try:
        cpu, mem = cpu_units(td.cpu), memory_mib(td.memory)
    except ValueError:
        return  # task_size_parses_and_fits names the field
    if cpu not in FARGATE_SIZES:
        yield "cpu", f"FARGATE cpu must be one of {sorted(FARGATE_SIZES)} units; got {cpu}"
    elif mem not in FARGATE_SIZES[cpu]:
        low, high = FARGATE_SIZES[cpu][0], FARGATE_SIZES[cpu][-1]
        yield "memory", f"FARGATE with cpu {cpu} needs memory {low}-{high} MiB in the documented steps; got {mem}"


def _fargate_container(c: ContainerDefinition) -> Findings:
    forbidden = {
        "privileged": c.privileged,
        "links": c.links,
        "dnsServers": c.dnsServers,
        "dnsSearchDomains": c.dnsSearchDomains,
        "extraHosts": c.extraHosts,
        "disableNetworking": c.disableNetworking,
        "dockerSecurityOptions": c.dockerSecurityOptions,
    }
    for field, value in forbidden.items():
        if value:
            yield field, "not allowed on FARGATE"
    lp = c.linuxParameters
    if lp is not None:
        for field in ("devices", "sharedMemorySize", "maxSwap", "swappiness", "tmpfs"):
            if getattr(lp, field):
                yield f"linuxParameters.{field}", "not allowed on FARGATE"
        added = (lp.capabilities.add if lp.capabilities else None) or []
        if any(cap != "SYS_PTRACE" for cap in added):
            yield "linuxParameters.capabilities.add", "FARGATE allows adding only SYS_PTRACE"
    if any(r.type == "GPU" for r in c.resourceRequirements or []):
        yield "resourceRequirements", "GPUs are not available on FARGATE"
    for field in ("startTimeout", "stopTimeout"):
        value = getattr(c, field)
        if value is not None and not 2 <= value <= 120:
            yield field, "must be 2-120 seconds on FARGATE"
    if c.logConfiguration is not None and c.logConfiguration.logDriver not in ("awslogs", "splunk", "awsfirelens"):
        yield "logConfiguration.logDriver", "FARGATE supports only awslogs, splunk and awsfirelens"
    for i, p in enumerate(c.portMappings or []):
        if p.hostPort is not None and p.containerPort is not None and p.hostPort != p.containerPort:
            yield f"portMappings[{i}].hostPort", "must be omitted or equal to containerPort on FARGATE"


_BAD_HOST_PORT = (
    "has(c.portMappings) && c.portMappings.exists(p, has(p.hostPort) && has(p.containerPort) && p.hostPort != p.containerPort)"
)


@rule(
    RegisterTaskDefinition,
    Cel(
        "!has(self.networkMode) || !(self.networkMode in ['awsvpc', 'host']) || "
        f"!self.containerDefinitions.exists(c, {_BAD_HOST_PORT})",
        message="portMappings[].hostPort must be omitted or equal to containerPort in awsvpc and host network modes",
        field_path=".containerDefinitions",
    ),
)
def ports_for_network_mode(td: RegisterTaskDefinition) -> Findings:
    mode = td.effective_network_mode
    for i, c in enumerate(td.containerDefinitions):
        ports = c.portMappings or []
        if mode == "none" and ports:
            yield f"containerDefinitions[{i}].portMappings", "must be empty in network mode none"
        seen: dict[int, str] = {}
        for j, p in enumerate(ports):
            here = f"containerDefinitions[{i}].portMappings[{j}]"
            if (mode in ("awsvpc", "host") and p.hostPort is not None and p.containerPort is not None
                    and p.hostPort != p.containerPort):
                yield f"{here}.hostPort", f"must be omitted or equal to containerPort in {mode} network mode"
            if p.containerPortRange is not None:
                if mode not in ("bridge", "awsvpc"):
                    yield f"{here}.containerPortRange", "only bridge and awsvpc network modes support port ranges"
                if p.hostPort is not None:
                    yield f"{here}.hostPort", "must be omitted with containerPortRange"
            elif p.containerPort is None:
                yield f"{here}.containerPort", "required (or give containerPortRange)"
            if p.containerPort is not None:
                protocol = p.protocol or "tcp"
                if seen.get(p.containerPort, protocol) != protocol:
                    yield f"{here}.protocol", f"containerPort {p.containerPort} appears with two protocols"
                seen[p.containerPort] = protocol


cel_only(
    RegisterTaskDefinition,
    Cel(
        "!has(self.networkMode) || self.networkMode != 'none' || "
        "self.containerDefinitions.all(c, !has(c.portMappings) || size(c.portMappings) == 0)",
        message="portMappings must be empty in network mode none",
        field_path=".containerDefinitions",
    ),
)


@rule(RegisterTaskDefinition)
def network_mode_container_settings(td: RegisterTaskDefinition) -> Findings:
    mode = td.effective_network_mode
    for i, c in enumerate(td.containerDefinitions):
        if c.links and mode != "bridge":
            yield f"containerDefinitions[{i}].links", f"links need network mode bridge; this task uses {mode}"
        if mode == "awsvpc":
            for field in ("hostname", "extraHosts", "disableNetworking"):
                if getattr(c, field):
                    yield f"containerDefinitions[{i}].{field}", "not allowed in network mode awsvpc"


_DEPENDS_ON = "self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, {}))"


@rule(
    RegisterTaskDefinition,
    Cel(
        _DEPENDS_ON.format("self.containerDefinitions.exists(x, x.name == d.containerName)"),
        message="containerDefinitions[].dependsOn[].containerName must name a container of this task definition",
        field_path=".containerDefinitions",
    ),
)
def depends_on_targets(td: RegisterTaskDefinition) -> Findings:
    for i, c in enumerate(td.containerDefinitions):
        for j, d in enumerate(c.dependsOn or []):
            here = f"containerDefinitions[{i}].dependsOn[{j}]"
            target = td.container(d.containerName)
            if target is None:
                yield f"{here}.containerName", f"no container named {d.containerName!r} in this task definition"
            elif d.containerName == c.name:
                yield f"{here}.containerName", f"container {c.name!r} cannot depend on itself"
            elif d.condition in ("COMPLETE", "SUCCESS") and target.is_essential:
                yield f"{here}.condition", f"{d.condition} cannot target the essential container {target.name!r}"
            elif d.condition == "HEALTHY" and target.healthCheck is None:
                yield f"{here}.condition", f"HEALTHY needs a healthCheck on container {target.name!r}"


@rule(
    RegisterTaskDefinition,
    Cel(
        _DEPENDS_ON.format("d.containerName != c.name"),
        message="a container cannot depend on itself (containerDefinitions[].dependsOn[].containerName)",
        field_path=".containerDefinitions",
    ),
)
def depends_on_acyclic(td: RegisterTaskDefinition) -> Findings:
    graph = {c.name: [d.containerName for d in c.dependsOn or [] if d.containerName != c.name] for c in td.containerDefinitions}
    cycle = find_cycle(graph)
    if cycle:
        yield "containerDefinitions", "dependsOn forms a cycle: " + " -> ".join(cycle)


def find_cycle(graph: dict[str, list[str]]) -> list[str]:
    """A dependency cycle in `graph` as a path that returns to its start, or []."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt in graph and not state.get(nxt):
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return []

    for node in graph:
        if not state.get(node):
            found = visit(node)
            if found:
                return found
    return []


cel_only(
    RegisterTaskDefinition,
    Cel(
        _DEPENDS_ON.format(
            "!(d.condition in ['COMPLETE', 'SUCCESS']) || self.containerDefinitions.all(x, "
            "x.name != d.containerName || (has(x.essential) && !x.essential))"
        ),
        message="dependsOn conditions COMPLETE and SUCCESS cannot target an essential container",
        field_path=".containerDefinitions",
    ),
)
cel_only(
    RegisterTaskDefinition,
    Cel(
        _DEPENDS_ON.format(
            "d.condition != 'HEALTHY' || self.containerDefinitions.all(x, x.name != d.containerName || has(x.healthCheck))"
        ),
        message="dependsOn condition HEALTHY needs a healthCheck on the target container",
        field_path=".containerDefinitions",
    ),
)


@rule(
    RegisterTaskDefinition,
    Cel(
        "self.containerDefinitions.all(c, !has(c.mountPoints) || c.mountPoints.all(m, !has(m.sourceVolume) || "
        "(has(self.volumes) && self.volumes.exists(v, v.name == m.sourceVolume))))",
        message="mountPoints[].sourceVolume must name a volume of this task definition",
        field_path=".containerDefinitions",
    ),
)
def mount_points_reference_volumes(td: RegisterTaskDefinition) -> Findings:
    names = {v.name for v in td.volumes or []}
    for i, c in enumerate(td.containerDefinitions):
        for j, m in enumerate(c.mountPoints or []):
            here = f"containerDefinitions[{i}].mountPoints[{j}]"
            if not m.sourceVolume:
                yield f"{here}.sourceVolume", "required"
            elif m.sourceVolume not in names:
                yield f"{here}.sourceVolume", f"no volume named {m.sourceVolume!r} in this task definition"
            if not m.containerPath:
                yield f"{here}.containerPath", "required"
        for j, vf in enumerate(c.volumesFrom or []):
            here = f"containerDefinitions[{i}].volumesFrom[{j}].sourceContainer"
            if not vf.sourceContainer or td.container(vf.sourceContainer) is None:
                yield here, f"no container named {vf.sourceContainer!r} in this task definition"
            elif vf.sourceContainer == c.name:
                yield here, "a container cannot take volumes from itself"


@rule(Volume)
def volume_kind(v: Volume) -> Findings:
    kinds = [
        k
        for k in ("host", "dockerVolumeConfiguration", "efsVolumeConfiguration", "s3filesVolumeConfiguration",
                  "fsxWindowsFileServerVolumeConfiguration")
        if getattr(v, k) is not None
    ]
    if len(kinds) > 1:
        yield "", f"a volume has one kind; got {', '.join(kinds)}"
    dvc = v.dockerVolumeConfiguration
    if dvc is not None and dvc.autoprovision and dvc.scope != "shared":
        yield "dockerVolumeConfiguration.autoprovision", "only a shared-scope Docker volume can be autoprovisioned"
    efs = v.efsVolumeConfiguration
    if efs is not None:
        auth = efs.authorizationConfig
        needs_tls = auth is not None and (auth.accessPointId or auth.iam == "ENABLED")
        if needs_tls and efs.transitEncryption != "ENABLED":
            yield "efsVolumeConfiguration.transitEncryption", "must be ENABLED with an access point or IAM authorization"
        if auth is not None and auth.accessPointId and efs.rootDirectory not in (None, "/"):
            yield "efsVolumeConfiguration.rootDirectory", "must be omitted or / with an access point"


@rule(
    HealthCheck,
    Cel(
        "self.command[0] in ['CMD', 'CMD-SHELL']",
        message="healthCheck.command must start with CMD or CMD-SHELL",
        field_path=".command",
    ),
)
def health_check_command(h: HealthCheck) -> Findings:
    if h.command[0] not in ("CMD", "CMD-SHELL"):
        yield "command", f"must start with CMD or CMD-SHELL; got {h.command[0]!r}"
    elif len(h.command) < 2:
        yield "command", "needs a command after " + h.command[0]


_SECURITY_OPTION = re.compile(r"^(no-new-privileges|(apparmor|label|credentialspec):\S.*)$")


@rule(ContainerDefinition)
def docker_security_options(c: ContainerDefinition) -> Findings:
    """ECS takes no-new-privileges, apparmor:PROFILE, label:VALUE and credentialspec:PATH (its API reference)."""
    for i, option in enumerate(c.dockerSecurityOptions or []):
        if not _SECURITY_OPTION.match(option):
            yield f"dockerSecurityOptions[{i}]", (
                f"must be no-new-privileges, apparmor:PROFILE, label:VALUE or credentialspec:PATH; got {option[:64]!r}")


@rule(ResourceRequirement)
def resource_requirement_value(r: ResourceRequirement) -> Findings:
    """GPU and NeuronDevice take a count of devices (ECS's API reference); InferenceAccelerator a device name."""
    if r.type in ("GPU", "NeuronDevice") and r.value is not None and (
            not r.value.isascii() or not r.value.isdigit() or not 0 < int(r.value) <= INTEGER_MAX):
        yield "value", f"{r.type} takes a number of devices (e.g. \"1\"); got {r.value[:64]!r}"


@rule(PortMapping)
def port_range_order(p: PortMapping) -> Findings:
    if p.containerPortRange:
        first, last = (int(x) for x in p.containerPortRange.split("-"))
        if not 1 <= first < last <= 65535:
            yield "containerPortRange", "must be first-last with 1 <= first < last <= 65535"


@rule(TaskDefinitionPlacementConstraint)
def task_definition_constraint(pc: TaskDefinitionPlacementConstraint) -> Findings:
    if not pc.expression:
        yield "expression", "memberOf needs an expression"


@rule(ContainerDefinition)
def environment_files(c: ContainerDefinition) -> Findings:
    for i, f in enumerate(c.environmentFiles or []):
        if not f.value.endswith(".env"):
            yield f"environmentFiles[{i}].value", "must name an S3 object with the .env extension"


# --- services, tasks, clusters: launch type and capacity provider strategies -----------------

def _strategy_cel(field: str) -> list[Cel]:
    f = f"self.{field}"
    fargate = "i.capacityProvider in ['FARGATE', 'FARGATE_SPOT']"
    return [
        Cel(
            f"!has({f}) || {f}.filter(i, has(i.base) && i.base > 0).size() <= 1",
            message=f"{field}: only one capacity provider may have a base",
            field_path=f".{field}",
        ),
        Cel(
            f"!has({f}) || size({f}) <= 1 || {f}.exists(i, has(i.weight) && i.weight > 0)",
            message=f"{field}: at least one capacity provider needs a weight above 0",
            field_path=f".{field}",
        ),
        Cel(
            f"!has({f}) || {f}.all(i, {fargate}) || {f}.all(i, !({fargate}))",
            message=f"{field}: a strategy holds either FARGATE providers or Auto Scaling group providers, not both",
            field_path=f".{field}",
        ),
    ]


def strategy_findings(field: str, items: list[CapacityProviderStrategyItem] | None) -> Findings:
    items = items or []
    if sum(1 for i in items if i.base) > 1:
        yield field, "only one capacity provider may have a base"
    if len(items) > 1 and not any(i.weight for i in items):
        yield field, "at least one capacity provider needs a weight above 0"
    kinds = {i.capacityProvider in ("FARGATE", "FARGATE_SPOT") for i in items}
    if len(kinds) > 1:
        yield field, "a strategy holds either FARGATE providers or Auto Scaling group providers, not both"
    names = [i.capacityProvider for i in items]
    for name in {n for n in names if names.count(n) > 1}:
        yield field, f"capacity provider {name!r} appears twice"


_EXCLUSIVE = Cel(
    "!has(self.launchType) || !has(self.capacityProviderStrategy) || size(self.capacityProviderStrategy) == 0",
    message="launchType and capacityProviderStrategy are mutually exclusive",
    field_path=".capacityProviderStrategy",
)


def _exclusive_findings(obj: CreateService | RunTask) -> Findings:
    if obj.launchType and obj.capacityProviderStrategy:
        yield "capacityProviderStrategy", "launchType and capacityProviderStrategy are mutually exclusive"
    yield from strategy_findings("capacityProviderStrategy", obj.capacityProviderStrategy)


@rule(CreateService, _EXCLUSIVE)
def service_launch(s: CreateService) -> Findings:
    yield from _exclusive_findings(s)


@rule(RunTask, _EXCLUSIVE)
def run_task_launch(t: RunTask) -> Findings:
    yield from _exclusive_findings(t)


@rule(
    RunTask,
    Cel("!has(self.propagateTags) || self.propagateTags != 'SERVICE'", field_path=".propagateTags",
        message="propagateTags SERVICE is for a service's tasks: RunTask takes TASK_DEFINITION or NONE"),
)
def run_task_propagate_tags(t: RunTask) -> Findings:
    if t.propagateTags == "SERVICE":
        yield "propagateTags", "propagateTags SERVICE is for a service's tasks: RunTask takes TASK_DEFINITION or NONE"


for _cel in _strategy_cel("capacityProviderStrategy"):
    cel_only(CreateService, _cel)
    cel_only(RunTask, _cel)
for _cel in _strategy_cel("defaultCapacityProviderStrategy"):
    cel_only(CreateCluster, _cel)

_DAEMON = "has(self.schedulingStrategy) && self.schedulingStrategy == 'DAEMON'"


@rule(
    CreateService,
    Cel(f"({_DAEMON}) || has(self.desiredCount)", message="desiredCount is required for REPLICA services",
        field_path=".desiredCount"),
)
def service_desired_count(s: CreateService) -> Findings:
    if s.schedulingStrategy != "DAEMON" and s.desiredCount is None:
        yield "desiredCount", "desiredCount is required for REPLICA services"


@rule(
    CreateService,
    Cel(
        "has(self.taskDefinition) || (has(self.deploymentController) && self.deploymentController.type == 'EXTERNAL')",
        message="taskDefinition is required (family, family:revision or ARN)",
        field_path=".taskDefinition",
    ),
)
def service_task_definition(s: CreateService) -> Findings:
    if not s.taskDefinition and not (s.deploymentController and s.deploymentController.type == "EXTERNAL"):
        yield "taskDefinition", "taskDefinition is required (family, family:revision or ARN)"


@rule(
    CreateService,
    Cel(
        f"!({_DAEMON}) || !has(self.placementStrategy) || size(self.placementStrategy) == 0",
        message="DAEMON services do not take placementStrategy",
        field_path=".placementStrategy",
    ),
)
def daemon_service(s: CreateService) -> Findings:
    if s.schedulingStrategy != "DAEMON":
        return
    if s.placementStrategy:
        yield "placementStrategy", "DAEMON services do not take placementStrategy"
    if s.launchType == "FARGATE":
        yield "launchType", "FARGATE does not support the DAEMON scheduling strategy"
    if s.capacityProviderStrategy:
        yield "capacityProviderStrategy", "DAEMON services do not take a capacity provider strategy"
    if s.deploymentController and s.deploymentController.type != "ECS":
        yield "deploymentController.type", "DAEMON services need the ECS deployment controller"
    dc = s.deploymentConfiguration
    if dc is not None and dc.maximumPercent not in (None, 100):
        yield "deploymentConfiguration.maximumPercent", "must be 100 for DAEMON services"


@rule(CreateService)
def early_success_criteria(s: CreateService) -> Findings:
    """docs/ecs-semantics.md §Early success criteria."""
    dc = s.deploymentConfiguration
    early = dc.earlySuccessCriteria if dc is not None else None
    if early is None or not early.enable:
        return
    path = "deploymentConfiguration.earlySuccessCriteria"
    if dc is not None and dc.strategy not in (None, "ROLLING"):
        yield path, "early success criteria can only be used with the ROLLING deployment strategy"
    if early.healthyPercent is None:
        yield f"{path}.healthyPercent", "healthyPercent is required when early success criteria are enabled"
    elif dc is not None and dc.minimumHealthyPercent is not None and early.healthyPercent < dc.minimumHealthyPercent:
        yield f"{path}.healthyPercent", "healthyPercent must be greater than or equal to minimumHealthyPercent"
    if early.sourceServiceRevisionCleanup is None:
        yield (f"{path}.sourceServiceRevisionCleanup",
               "sourceServiceRevisionCleanup (BLOCKING or DEFERRED) is required when early success criteria are enabled")


@rule(
    LoadBalancer,
    Cel("has(self.containerName) && has(self.containerPort)", message="loadBalancers[] need containerName and containerPort"),
)
def load_balancer_target(lb: LoadBalancer) -> Findings:
    if not lb.containerName or not lb.containerPort:
        yield "", "loadBalancers[] need containerName and containerPort"


@rule(
    PlacementConstraint,
    Cel(
        "!has(self.type) || (self.type == 'memberOf') == has(self.expression)",
        message="memberOf needs an expression; distinctInstance takes none",
        field_path=".expression",
    ),
)
def placement_constraint(pc: PlacementConstraint) -> Findings:
    if pc.type == "memberOf" and not pc.expression:
        yield "expression", "memberOf needs an expression"
    if pc.type == "distinctInstance" and pc.expression:
        yield "expression", "distinctInstance takes no expression"


_SPREAD_FIELD = "^(instanceId|host|attribute:[^ ]+)$"  # no backslash: the CEL string holds it as written


@rule(
    PlacementStrategy,
    Cel(
        "!has(self.type) || (self.type == 'random' ? !has(self.field) : has(self.field)) && "
        "(self.type != 'binpack' || self.field in ['cpu', 'memory']) && "
        f"(self.type != 'spread' || self.field.matches('{_SPREAD_FIELD}'))",
        message="random takes no field; spread needs one (instanceId, host or attribute:<name>); binpack needs cpu or memory",
        field_path=".field",
    ),
)
def placement_strategy(ps: PlacementStrategy) -> Findings:
    if ps.type == "random" and ps.field:
        yield "field", "random takes no field"
    elif ps.type == "binpack" and ps.field not in ("cpu", "memory"):
        yield "field", f"binpack needs field cpu or memory; got {ps.field!r}"
    elif ps.type == "spread" and not re.match(_SPREAD_FIELD, ps.field or ""):
        yield "field", f"spread needs a field: instanceId, host or attribute:<name>; got {ps.field!r}"


@rule(
    CreateCluster,
    Cel(
        "!has(self.defaultCapacityProviderStrategy) || self.defaultCapacityProviderStrategy.all(i, "
        "has(self.capacityProviders) && i.capacityProvider in self.capacityProviders)",
        message="defaultCapacityProviderStrategy may only use providers listed in capacityProviders",
        field_path=".defaultCapacityProviderStrategy",
    ),
)
def cluster_default_strategy(c: CreateCluster) -> Findings:
    listed = set(c.capacityProviders or [])
    for i, item in enumerate(c.defaultCapacityProviderStrategy or []):
        if item.capacityProvider not in listed:
            yield f"defaultCapacityProviderStrategy[{i}].capacityProvider", (
                f"{item.capacityProvider!r} is not in capacityProviders"
            )
    yield from strategy_findings("defaultCapacityProviderStrategy", c.defaultCapacityProviderStrategy)


@rule(
    CreateCapacityProvider,
    Cel(
        "!has(self.name) || !self.name.lowerAscii().matches('^(aws|ecs|fargate)')",
        message="a capacity provider name must not start with aws, ecs or fargate",
        field_path=".name",
    ),
)
def capacity_provider_name(cp: CreateCapacityProvider) -> Findings:
    if cp.name and cp.name.lower().startswith(("aws", "ecs", "fargate")):
        yield "name", "a capacity provider name must not start with aws, ecs or fargate"


@rule(
    NodePool,
    Cel("self.backend != 'scale' || has(self.scaleTarget)", message="the scale backend needs scaleTarget",
        field_path=".scaleTarget"),
)
def node_pool_target(pool: NodePool) -> Findings:
    if pool.backend == "scale" and pool.scaleTarget is None:
        yield "scaleTarget", "the scale backend needs scaleTarget"


@rule(NodePool, Cel("self.minSize <= self.maxSize", message="minSize must not exceed maxSize", field_path=".minSize"))
def node_pool_bounds(pool: NodePool) -> Findings:
    if pool.minSize > pool.maxSize:
        yield "minSize", f"minSize ({pool.minSize}) must not exceed maxSize ({pool.maxSize})"


_LAMBDA_MESSAGE = ("a Lambda function cannot run here: name a task definition of the namespace (family, family:revision or "
                   "its ARN), which runs as the hook's task (docs/ecs-semantics.md §Deployment lifecycle hooks)")
_HOOK_TARGET_CEL = "(has(self.targetType) && self.targetType == 'PAUSE') || has(self.hookTargetArn)"


@rule(DeploymentLifecycleHook)
def hook_target_not_lambda(h: DeploymentLifecycleHook) -> Findings:
    """Not at admission: a CEL match on an unbounded string in an unbounded list exceeds the API server's cost
    budget; the Service is refused (Ready False, a Warning Event) instead."""
    if h.hookTargetArn and re.match(r"^arn:aws[a-z-]*:lambda:", h.hookTargetArn):
        yield "hookTargetArn", _LAMBDA_MESSAGE


@rule(DeploymentLifecycleHook, Cel(_HOOK_TARGET_CEL, message="an AWS_LAMBDA lifecycle hook needs a hookTargetArn",
                                   field_path=".hookTargetArn"))
def hook_target_present(h: DeploymentLifecycleHook) -> Findings:
    if (h.targetType or "AWS_LAMBDA") == "AWS_LAMBDA" and not h.hookTargetArn:
        yield "hookTargetArn", "an AWS_LAMBDA lifecycle hook needs a hookTargetArn"
