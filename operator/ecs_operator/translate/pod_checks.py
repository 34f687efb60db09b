"""The checks Kubernetes applies to the Pod a task definition translates into, named by the ECS field.

A TaskDefinition whose Pod the API server would refuse can never start a task: it is refused at
registration (operator, `convert`, ECS API alike) instead of registering Ready=True and failing each
Task later with a Kubernetes path. `ecs_field` maps a Pod path (ours, or one from the API server's
answer to the operator's server-side dry-run) back to the ECS field it came from.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from typing import Any

from ecs_operator import labels as L
from ecs_operator.models import Problem, RegisterTaskDefinition, TaskDefinitionSpec, validate

from .containers import container_name
from .pod import PodTranslation, Revision, pod_template
from .volumes import mount_sources

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SYSCTL = re.compile(r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")
_ANNOTATIONS_MAX = 256 * 1024  # bytes of all keys and values (apimachinery's TotalAnnotationSizeLimitB)
_SEARCHES_MAX, _SEARCHES_CHARS = 32, 2048  # the kubelet's and the API server's dnsConfig limits
_ID_MAX = 2**31 - 1  # runAsUser / runAsGroup


def pod_problems(rev: Revision) -> list[Problem]:
    """What the API server would refuse in this revision's Pod, each named by its ECS field."""
    return translation_problems(rev.definition, pod_template(rev, for_service=False))


def translation_problems(td: RegisterTaskDefinition, translation: PodTranslation) -> list[Problem]:
    """pod_problems of a translation already made (`convert` translates each definition once)."""
    return [Problem(ecs_field(td, translation.template, path), message) for path, message in kubernetes_findings(translation)]


def kubernetes_findings(translation: PodTranslation) -> Iterator[tuple[str, str]]:
    """(Pod path, message) for each Kubernetes validation rule the template breaks (core/v1 ValidatePod)."""
    spec = translation.template["spec"]
    for i, alias in enumerate(spec.get("hostAliases") or []):
        if not _ip(alias["ip"]):
            yield f"spec.hostAliases[{i}].ip", f"{_short(alias['ip'])} is not a valid IP address"
        for j, name in enumerate(alias["hostnames"]):
            if why := _subdomain(name):
                yield f"spec.hostAliases[{i}].hostnames[{j}]", f"{_short(name)} {why} (a hosts entry)"
    if "hostname" in spec and not _label(spec["hostname"]):
        yield "spec.hostname", f"{_short(spec['hostname'])} must be a DNS label (a-z, 0-9, '-', at most 63 characters)"
    dns = spec.get("dnsConfig") or {}
    for j, server in enumerate(dns.get("nameservers") or []):
        if not _ip(server):
            yield f"spec.dnsConfig.nameservers[{j}]", f"{_short(server)} is not a valid IP address"
    searches = dns.get("searches") or []
    if len(searches) > _SEARCHES_MAX:
        yield "spec.dnsConfig.searches", f"at most {_SEARCHES_MAX} search domains; got {len(searches)}"
    elif sum(len(s) for s in searches) + len(searches) - 1 > _SEARCHES_CHARS:
        yield "spec.dnsConfig.searches", f"the search domains may be at most {_SEARCHES_CHARS} characters together"
    for j, domain in enumerate(searches):
        if why := _subdomain(domain.removesuffix(".")):
            yield f"spec.dnsConfig.searches[{j}]", f"{_short(domain)} {why} (a search domain)"
    for j, sysctl in enumerate((spec.get("securityContext") or {}).get("sysctls") or []):
        if len(sysctl["name"]) > 253 or not _SYSCTL.match(sysctl["name"]):
            yield f"spec.securityContext.sysctls[{j}].name", f"{_short(sysctl['name'])} is not a sysctl name"
    host_ports: set[tuple[int, str]] = set()
    names: set[str] = set()
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            if container["name"] in names:
                yield f"spec.{group}[{i}].name", (
                    f"another container is named {container['name']!r} too in Kubernetes (a DNS label)")
            names.add(container["name"])
            yield from _container(f"spec.{group}[{i}]", container)
            for j, port in enumerate(container.get("ports") or []):
                key = (port.get("hostPort") or 0, port.get("protocol") or "TCP")
                if key[0] and key in host_ports:
                    yield f"spec.{group}[{i}].ports[{j}].hostPort", f"host port {key[0]}/{key[1]} is taken twice in the task"
                host_ports.add(key)
    volumes: set[str] = set()
    for j, volume in enumerate(spec.get("volumes") or []):
        if volume["name"] in volumes:
            yield f"spec.volumes[{j}].name", f"two volumes are named {volume['name']!r} in Kubernetes (a DNS label)"
        volumes.add(volume["name"])
    annotations = translation.template["metadata"].get("annotations") or {}
    size = sum(len(k) + len(v) for k, v in annotations.items())
    if size > _ANNOTATIONS_MAX:
        largest = max(annotations, key=lambda k: len(annotations[k]))
        yield f"metadata.annotations[{largest}]", (
            f"the task's Pod annotations would be {size} bytes; Kubernetes allows {_ANNOTATIONS_MAX}")


def _container(path: str, container: dict[str, Any]) -> Iterator[tuple[str, str]]:
    image = container.get("image") or ""
    if not image.strip() or image != image.strip():
        yield f"{path}.image", "must not be empty or begin or end with whitespace"
    for j, env in enumerate(container.get("env") or []):
        name = env["name"]
        if not name or "=" in name or any(not 32 <= ord(ch) <= 126 for ch in name):
            yield f"{path}.env[{j}].name", f"{_short(name)} must be printable ASCII characters other than '='"
    names: set[str] = set()
    for j, port in enumerate(container.get("ports") or []):
        if name := port.get("name"):
            if name in names:
                yield f"{path}.ports[{j}].name", f"port name {name!r} is used twice in the container"
            names.add(name)
    seen: set[str] = set()
    for j, mount in enumerate(container.get("volumeMounts") or []):
        where = mount["mountPath"]
        if not where:
            yield f"{path}.volumeMounts[{j}].mountPath", "a container path is required"
        elif where in seen:
            yield f"{path}.volumeMounts[{j}].mountPath", f"{_short(where)} is mounted twice in the container"
        seen.add(where)
    security = container.get("securityContext") or {}
    for field in ("runAsUser", "runAsGroup"):
        if field in security and not 0 <= security[field] <= _ID_MAX:
            yield f"{path}.securityContext.{field}", f"must be 0-{_ID_MAX}; got {security[field]}"


def ecs_field(td: RegisterTaskDefinition, template: dict[str, Any], path: str) -> str:
    """The ECS field a path of the translated Pod (or PodTemplate: `template.` is dropped) came from;
    the nearest enclosing ECS field where the mapping is not one to one, "" for the task definition."""
    path = path.removeprefix("template.")
    spec, meta = template["spec"], template["metadata"]
    containers = td.containerDefinitions
    if m := re.match(r"spec\.hostAliases\[(\d+)\](?:\.(ip|hostnames\[(\d+)\]))?", path):
        alias = _at(spec.get("hostAliases"), int(m[1])) or {}
        name = _at(alias.get("hostnames"), int(m[3])) if m[3] else None
        for i, c in enumerate(containers):
            for k, h in enumerate(c.extraHosts or []):
                if h.ipAddress == alias.get("ip") and (name is None or h.hostname == name):
                    return f"containerDefinitions[{i}].extraHosts[{k}].{'hostname' if name else 'ipAddress'}"
            for k, link in enumerate(c.links or []):
                if name in link.split(":"):
                    return f"containerDefinitions[{i}].links[{k}]"
        return "containerDefinitions"
    if path.startswith("spec.hostname"):
        return next((f"containerDefinitions[{i}].hostname" for i, c in enumerate(containers) if c.hostname), "")
    for pod_field, ecs, attr in (("spec.dnsConfig.nameservers", "dnsServers", "dnsServers"),
                                 ("spec.dnsConfig.searches", "dnsSearchDomains", "dnsSearchDomains")):
        if path.startswith(pod_field):
            m = re.match(re.escape(pod_field) + r"\[(\d+)\]", path)
            value = _at((spec.get("dnsConfig") or {}).get(pod_field.rsplit(".", 1)[1]), int(m[1])) if m else None
            for i, c in enumerate(containers):
                values = getattr(c, attr) or []
                if value in values:
                    return f"containerDefinitions[{i}].{ecs}[{values.index(value)}]"
                if values and value is None:
                    return f"containerDefinitions[{i}].{ecs}"
            return "containerDefinitions"
    if m := re.match(r"spec\.securityContext\.sysctls\[(\d+)\]", path):
        name = (_at((spec.get("securityContext") or {}).get("sysctls"), int(m[1])) or {}).get("name")
        for i, c in enumerate(containers):
            for k, sc in enumerate(c.systemControls or []):
                if sc.namespace == name:
                    return f"containerDefinitions[{i}].systemControls[{k}]"
        return "containerDefinitions"
    if m := re.match(r"spec\.(initContainers|containers)\[(\d+)\]\.?(.*)", path):
        container = _at(spec.get(m[1]), int(m[2])) or {}
        names = json.loads(meta.get("annotations", {}).get(L.CONTAINER_NAMES, "{}"))
        index = next((i for i, c in enumerate(containers) if c.name == names.get(container.get("name"))), None)
        return "containerDefinitions" if index is None else _container_field(td, index, container, m[3])
    if m := re.match(r"metadata\.annotations\[?([^\]]*)", path):
        key = m[1]
        for prefix, field in ((f"{L.API_GROUP}/docker-labels.", "dockerLabels"),
                              (f"{L.API_GROUP}/log-configuration.", "logConfiguration"),
                              (f"awslogs.{L.API_GROUP}/", "logConfiguration")):  # <container>.<option>
            if key.startswith(prefix):
                named = key[len(prefix):].split(".", 1)[0] if prefix.startswith("awslogs.") else key[len(prefix):]
                return next((f"containerDefinitions[{i}].{field}" for i, c in enumerate(containers)
                             if getattr(c, field) and _container_named(c.name, named)), "containerDefinitions")
        return {f"{L.API_GROUP}/tags": "tags", f"{L.API_GROUP}/task-role-arn": "taskRoleArn"}.get(key, "")
    return next((ecs for pod_field, ecs in _POD_WIDE if path.startswith(pod_field)), "")


# Pod-wide fields several ECS fields feed: the nearest ECS field that names them all.
_POD_WIDE = (("spec.resources", "cpu"), ("spec.volumes", "volumes"), ("spec.imagePullSecrets", "containerDefinitions"),
             ("spec.terminationGracePeriodSeconds", "containerDefinitions"))


def _container_field(td: RegisterTaskDefinition, index: int, container: dict[str, Any], rest: str) -> str:
    c, here = td.containerDefinitions[index], f"containerDefinitions[{index}]"
    if m := re.match(r"env\[(\d+)\]", rest):
        env = _at(container.get("env"), int(m[1])) or {}
        source = "secrets" if "valueFrom" in env else "environment"
        items = [e.name for e in (c.secrets if source == "secrets" else c.environment) or []]
        return f"{here}.{source}[{items.index(env.get('name'))}].name" if env.get("name") in items else f"{here}.{source}"
    if m := re.match(r"ports\[(\d+)\]\.?(\w*)", rest):
        port = _at(container.get("ports"), int(m[1])) or {}
        k = next((k for k, p in enumerate(c.portMappings or []) if p.containerPort == port.get("containerPort")
                  and (not port.get("name") or (p.name or "").startswith(port["name"][:10]))), None)
        return f"{here}.portMappings" if k is None else f"{here}.portMappings[{k}]" + (f".{m[2]}" if m[2] else "")
    if m := re.match(r"volumeMounts\[(\d+)\]", rest):
        sources = mount_sources(td, index)
        j = int(m[1])
        return sources[j] if j < len(sources) else f"{here}.mountPoints"
    for prefix, field in (("image", "image"), ("name", "name"), ("workingDir", "workingDirectory"),
                          ("command", "entryPoint"), ("args", "command"), ("ports", "portMappings"),
                          ("envFrom", "environmentFiles"), ("resources", "memory"),
                          ("readinessProbe", "healthCheck"), ("startupProbe", "healthCheck"),
                          ("lifecycle", "healthCheck"), ("securityContext.runAs", "user"),
                          ("securityContext.capabilities", "linuxParameters.capabilities"),
                          ("securityContext", "dockerSecurityOptions")):
        if rest.startswith(prefix):
            return f"{here}.{field}"
    return here


def _container_named(ecs_name: str, pod_name: str) -> bool:
    return container_name(ecs_name) == pod_name


def _at(items: list[Any] | None, index: int) -> Any:
    return items[index] if items is not None and 0 <= index < len(items) else None


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS_LABEL.match(value))


def _subdomain(value: str) -> str:
    """Why `value` is no DNS-1123 subdomain ("" when it is one)."""
    if len(value) > 253:
        return f"is {len(value)} characters; a DNS name has at most 253"
    if not all(_DNS_LABEL.match(part) for part in value.split(".")):
        return "must be a lowercase DNS name (a-z, 0-9, '-' and '.')"
    return ""


def _short(value: str) -> str:
    return repr(value if len(value) <= 64 else value[:61] + "...")


def registration_problems(spec: TaskDefinitionSpec) -> list[Problem]:
    """Why RegisterTaskDefinition refuses `spec`: ECS's rules, then (only when they hold, so a Pod can be
    built) what the API server would refuse in its Pod. The operator, `convert` and the ECS API share it."""
    found = validate(spec)
    if found:
        return found
    return pod_problems(Revision(spec.family or "family", 1, spec.ecs_part(), spec.kubernetes))
