"""FireLens: the log router's configuration as the ECS agent generates it, as a ConfigMap, and the router
container's mounts and environment (docs/ecs-semantics.md §FireLens).

The ECS agent writes one configuration file per task and bind-mounts it where the router image reads it
(/fluent-bit/etc/fluent-bit.conf, /fluentd/etc/fluent.conf): a forward input on the unix socket
/var/run/fluent.sock (its directory shared with the router), a forward input on TCP 24224 (the task's
localhost), a TCP health-check input, the ECS metadata fields added to every record, the user's
configuration file included, then one output per container whose logDriver is awsfirelens: the output
plugin named by its `Name` (fluentbit) or `@type` (fluentd) option, matching the tag
`<container>-firelens*`, with its other options; `include-pattern`/`exclude-pattern` become grep filters and
each secretOption becomes `${<name>_<container index>}` (fluentd: `"#{ENV['<name>_<index>']}"`), a variable
of the router's environment that holds the secret.

Here the configuration is a ConfigMap of the task's owner (one per Task or Service, all its Pods read
it). What differs per Pod (the task ARN's ID, the instance) is read from the router's environment,
filled by the downward API. Kubernetes has no per-container log driver: a container's stdout and stderr
go to the node's log files. Where the workload policy allows hostPath, the router tails each awsfirelens
container's own files (/var/log/pods/<namespace>_<pod>_<uid>/<container>/, read-only) with the container's
tag, so its outputs receive them; elsewhere only what an application sends with the Fluent forward
protocol (the socket or localhost:24224) reaches the router. Pure: the callers create the ConfigMap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ecs_operator import labels as L
from ecs_operator.models import ContainerDefinition, RegisterTaskDefinition

from .names import dns_label, dns_subdomain, secret_ref

RouterType = Literal["fluentbit", "fluentd"]

SOCKET_DIR = "/var/run"
SOCKET_PATH = f"{SOCKET_DIR}/fluent.sock"
FORWARD_PORT = 24224
HEALTH_CHECK_PORT = 8877
HEALTH_CHECK_TAG = "firelens-healthcheck"
POD_LOGS = "/var/log/pods"
CONFIG_PATH: dict[RouterType, str] = {"fluentbit": "/fluent-bit/etc/fluent-bit.conf", "fluentd": "/fluentd/etc/fluent.conf"}
"""Where the agent mounts the generated file in the router, by router type."""
S3_CONFIG_PATH: dict[RouterType, str] = {"fluentbit": "/fluent-bit/etc/external.conf",
                                         "fluentd": "/fluentd/etc/external.conf"}
"""Where the agent puts a `config-file-type: s3` file it downloaded (and includes it from)."""
CONFIG_KEY: dict[RouterType, str] = {"fluentbit": "fluent-bit.conf", "fluentd": "fluent.conf"}
OUTPUT_KEY: dict[RouterType, str] = {"fluentbit": "Name", "fluentd": "@type"}
INCLUDE_PATTERN, EXCLUDE_PATTERN = "include-pattern", "exclude-pattern"
DRIVER_ONLY_OPTIONS = frozenset({"log-driver-buffer-limit"})
"""awsfirelens options that configure Docker's log driver, never the output."""
CONFIG_VOLUME, SOCKET_VOLUME = "firelens-config", "firelens-socket"
LOGS_VOLUME, S3_VOLUME = "firelens-pod-logs", "firelens-s3-config"

POD_ENV = (("FIRELENS_POD_NAMESPACE", "metadata.namespace"), ("FIRELENS_POD_NAME", "metadata.name"),
           ("FIRELENS_POD_UID", "metadata.uid"), ("FIRELENS_NODE_NAME", "spec.nodeName"))
"""The router's environment from the downward API: the per-Pod parts of the configuration."""


@dataclass(frozen=True)
class Output:
    """One awsfirelens container's route: its tag pattern, output plugin and options (secrets as variables)."""

    container: str
    """The ECS container name (the agent's tag is built from it)."""
    kubernetes_name: str
    match: str
    plugin: str | None
    """None: no `Name`/`@type` option, so no output section (the included configuration must route the tag)."""
    options: tuple[tuple[str, str], ...]
    include: str | None = None
    exclude: str | None = None


@dataclass(frozen=True)
class Router:
    """A task definition's log router: the container with firelensConfiguration and what routes through it."""

    index: int
    type: RouterType
    metadata: bool
    """enable-ecs-log-metadata (default true): ecs_cluster, ecs_task_arn, ecs_task_definition, ec2_instance_id."""
    config_file_type: str | None
    config_file_value: str | None
    outputs: tuple[Output, ...]
    secrets: tuple[tuple[str, str, str], ...]
    """(router env variable, Secret name, key) for every awsfirelens secretOption."""


def router_of(td: RegisterTaskDefinition) -> Router | None:
    """The task definition's FireLens router (the first container with firelensConfiguration), if any."""
    index = next((i for i, c in enumerate(td.containerDefinitions) if c.firelensConfiguration is not None), None)
    if index is None:
        return None
    fc = td.containerDefinitions[index].firelensConfiguration
    assert fc is not None
    options = fc.options or {}
    router_type: RouterType = fc.type
    outputs, secrets = [], []
    for i, c in enumerate(td.containerDefinitions):
        if c.logConfiguration is None or c.logConfiguration.logDriver != "awsfirelens":
            continue
        output, found = _output(router_type, i, c)
        outputs.append(output)
        secrets += found
    return Router(index=index, type=router_type, metadata=_flag(options.get("enable-ecs-log-metadata"), True),
                  config_file_type=options.get("config-file-type"), config_file_value=options.get("config-file-value"),
                  outputs=tuple(outputs), secrets=tuple(secrets))


def _flag(value: str | None, default: bool) -> bool:
    """Go's strconv.ParseBool, as the agent reads the option (an invalid value is ignored)."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return default


def _output(router_type: RouterType, index: int, c: ContainerDefinition) -> tuple[Output, list[tuple[str, str, str]]]:
    log = c.logConfiguration
    assert log is not None
    options = dict(log.options or {})
    secrets = []
    for s in log.secretOptions or []:
        variable = f"{s.name}_{index}"  # the agent's firelensConfigVarFmt: the option name and the container's index
        secrets.append((variable, *secret_ref(s.valueFrom)))
        options[s.name] = f"${{{variable}}}" if router_type == "fluentbit" else f"\"#{{ENV['{variable}']}}\""
    plugin = options.pop(OUTPUT_KEY[router_type], None)
    include, exclude = options.pop(INCLUDE_PATTERN, None), options.pop(EXCLUDE_PATTERN, None)
    kept = tuple(sorted((k, v) for k, v in options.items() if k not in DRIVER_ONLY_OPTIONS))
    return Output(c.name, dns_label(c.name), f"{c.name}-firelens*", plugin, kept, include, exclude), secrets


@dataclass(frozen=True)
class Metadata:
    """The ECS values the agent adds to every record (the Pod's part is filled from the router's environment)."""

    cluster: str
    task_definition: str
    """family:revision."""
    task_arn_prefix: str
    """arn:aws:ecs:<region>:<account>:task/<cluster>/ -- the Pod's UID follows."""


def config_text(router: Router, metadata: Metadata, *, tail_pod_logs: bool) -> str:
    """The configuration file the ECS agent would generate for `router`, for one task owner's Pods."""
    write = _fluent_bit if router.type == "fluentbit" else _fluentd
    return write(router, metadata, tail_pod_logs)


def config_map(name: str, namespace: str, router: Router, metadata: Metadata, *, tail_pod_logs: bool,
               labels: dict[str, str], owner: dict[str, Any] | None) -> dict[str, Any]:
    """The ConfigMap the router's configuration file is mounted from, controlled by the task's owner."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if owner is not None:
        meta["ownerReferences"] = [{**owner, "controller": True}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
            "data": {CONFIG_KEY[router.type]: config_text(router, metadata, tail_pod_logs=tail_pod_logs)}}


def config_map_name(owner_name: str) -> str:
    return dns_subdomain(f"{owner_name}-firelens")


def s3_config_map(value: str) -> tuple[str, str]:
    """The ConfigMap that holds a `config-file-type: s3` file (the operator does not read S3), as for
    environmentFiles: `arn:aws:s3:::bucket/a/extra.conf` -> ConfigMap `bucket-a-extra-conf`, key `extra.conf`."""
    resource = value.split(":::", 1)[-1]
    key = resource.rsplit("/", 1)[-1] or "external.conf"
    return dns_subdomain(resource.replace("/", "-").replace(".", "-")), key


def _include(router: Router) -> str | None:
    if router.config_file_type == "file":
        return router.config_file_value
    if router.config_file_type == "s3":
        return S3_CONFIG_PATH[router.type]
    return None


def _pod_log_path(output: Output) -> str:
    return f"{POD_LOGS}/${{FIRELENS_POD_NAMESPACE}}_${{FIRELENS_POD_NAME}}_${{FIRELENS_POD_UID}}/{output.kubernetes_name}/*.log"


def _fields(metadata: Metadata, env: Callable[[str], str]) -> list[tuple[str, str]]:
    """ECS's metadata fields; `env` formats a variable of the router's environment."""
    return [("ec2_instance_id", env("FIRELENS_NODE_NAME")), ("ecs_cluster", metadata.cluster),
            ("ecs_task_arn", f"{metadata.task_arn_prefix}{env('FIRELENS_POD_UID')}"),
            ("ecs_task_definition", metadata.task_definition)]


def _section(header: str, entries: list[tuple[str, str]]) -> str:
    return "\n".join([header, *(f"    {k} {v}" for k, v in entries)]) + "\n"


def _fluent_bit(router: Router, metadata: Metadata, tail: bool) -> str:
    parts = [
        _section("[INPUT]", [("Name", "forward"), ("unix_path", SOCKET_PATH)]),
        _section("[INPUT]", [("Name", "forward"), ("Listen", "0.0.0.0"), ("Port", str(FORWARD_PORT))]),
        _section("[INPUT]", [("Name", "tcp"), ("Tag", HEALTH_CHECK_TAG), ("Listen", "127.0.0.1"),
                             ("Port", str(HEALTH_CHECK_PORT))]),
    ]
    if tail:
        for o in router.outputs:  # the container's stdout/stderr, from the node's CRI log files
            parts.append(_section("[INPUT]", [("Name", "tail"), ("Tag", f"{o.container}-firelens-stdout"),
                                              ("Path", _pod_log_path(o)), ("multiline.parser", "cri"),
                                              ("Refresh_Interval", "5")]))
    for o in router.outputs:
        if o.include is not None:
            parts.append(_section("[FILTER]", [("Name", "grep"), ("Match", o.match), ("Regex", f"log {o.include}")]))
        if o.exclude is not None:
            parts.append(_section("[FILTER]", [("Name", "grep"), ("Match", o.match), ("Exclude", f"log {o.exclude}")]))
    if router.metadata:
        parts.append(_section("[FILTER]", [("Name", "record_modifier"), ("Match", "*"),
                                           *(("Record", f"{k} {v}") for k, v in _fields(metadata, lambda n: f"${{{n}}}"))]))
    include = _include(router)
    if include:
        parts.append(f"@INCLUDE {include}\n")
    parts.append(_section("[OUTPUT]", [("Name", "null"), ("Match", HEALTH_CHECK_TAG)]))
    for o in router.outputs:
        if o.plugin is not None:
            parts.append(_section("[OUTPUT]", [("Name", o.plugin), ("Match", o.match), *o.options]))
    return "\n".join(parts)


def _fluentd_block(open_tag: str, entries: list[tuple[str, str]], inner: str = "") -> str:
    name = open_tag.split()[0]
    lines = [f"<{open_tag}>", *(f"    {k} {v}" for k, v in entries)]
    if inner:
        lines += ["    " + line for line in inner.rstrip("\n").split("\n")]
    return "\n".join([*lines, f"</{name}>"]) + "\n"


def _fluentd(router: Router, metadata: Metadata, tail: bool) -> str:
    parts = [
        _fluentd_block("source", [("@type", "unix"), ("path", SOCKET_PATH)]),
        _fluentd_block("source", [("@type", "forward"), ("bind", "0.0.0.0"), ("port", str(FORWARD_PORT))]),
    ]
    if tail:
        for o in router.outputs:
            path = _pod_log_path(o).replace("${", "#{ENV['").replace("}", "']}")
            parse = _fluentd_block("parse", [("@type", "regexp"), (
                "expression", "/^(?<time>[^ ]+) (?<stream>stdout|stderr) (?<logtag>[^ ]*) (?<log>.*)$/")])
            parts.append(_fluentd_block("source", [("@type", "tail"), ("tag", f"{o.container}-firelens-stdout"),
                                                   ("path", f'"{path}"'), ("read_from_head", "true")], parse))
    for o in router.outputs:
        for kind, pattern in (("regexp", o.include), ("exclude", o.exclude)):
            if pattern is not None:
                parts.append(_fluentd_block(f"filter {o.match}", [("@type", "grep")],
                                            _fluentd_block(kind, [("key", "log"), ("pattern", pattern)])))
    if router.metadata:
        fields = _fields(metadata, lambda n: f"#{{ENV['{n}']}}")
        record = _fluentd_block("record", [(k, f'"{v}"' if "#{" in v else v) for k, v in fields])
        parts.append(_fluentd_block("filter **", [("@type", "record_transformer")], record))
    include = _include(router)
    if include:
        parts.append(f"@include {include}\n")
    for o in router.outputs:
        if o.plugin is not None:
            parts.append(_fluentd_block(f"match {o.match}", [("@type", o.plugin), *o.options]))
    return "\n".join(parts)


def router_container(container: dict[str, Any], router: Router, config_map: str, *, tail_pod_logs: bool) -> list[dict[str, Any]]:
    """Mounts the configuration (and socket directory, S3 file, Pod logs) into the router `container`, adds
    the environment the configuration reads; returns the Pod volumes they need."""
    mounts = container.setdefault("volumeMounts", [])
    mounts += [{"name": CONFIG_VOLUME, "mountPath": CONFIG_PATH[router.type], "subPath": CONFIG_KEY[router.type],
                "readOnly": True},
               {"name": SOCKET_VOLUME, "mountPath": SOCKET_DIR}]
    volumes: list[dict[str, Any]] = [{"name": CONFIG_VOLUME, "configMap": {"name": config_map}},
                                     {"name": SOCKET_VOLUME, "emptyDir": {}}]
    if router.config_file_type == "s3" and router.config_file_value:
        name, key = s3_config_map(router.config_file_value)
        mounts.append({"name": S3_VOLUME, "mountPath": S3_CONFIG_PATH[router.type], "subPath": key, "readOnly": True})
        volumes.append({"name": S3_VOLUME, "configMap": {"name": name}})
    if tail_pod_logs and router.outputs:
        mounts.append({"name": LOGS_VOLUME, "mountPath": POD_LOGS, "readOnly": True})
        volumes.append({"name": LOGS_VOLUME, "hostPath": {"path": POD_LOGS, "type": "Directory"}})
    env = container.setdefault("env", [])
    env += [{"name": n, "valueFrom": {"fieldRef": {"fieldPath": f}}} for n, f in POD_ENV]
    env += [{"name": variable, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}
            for variable, name, key in router.secrets]
    return volumes


def owned_config_map(router: Router, *, owner_name: str, namespace: str, cluster: str, task_definition: str,
                     task_arn_prefix: str, tail_pod_logs: bool, owner: dict[str, Any] | None) -> dict[str, Any]:
    """The ConfigMap a Task's or Service's Pods mount (named by config_map_name, as pod_template mounts it)."""
    return config_map(config_map_name(owner_name), namespace, router,
                      Metadata(cluster=cluster, task_definition=task_definition, task_arn_prefix=task_arn_prefix),
                      tail_pod_logs=tail_pod_logs, labels={L.MANAGED_BY: L.MANAGED_BY_VALUE}, owner=owner)
