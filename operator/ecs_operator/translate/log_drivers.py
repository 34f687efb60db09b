"""Log drivers: what becomes of each container's logConfiguration, and the awslogs annotations
(docs/conversion.md §Logs and FireLens). Kubernetes has no per-container log driver: the container runtime writes
stdout and stderr to the node's log files (kubectl logs reads them), and a node-level agent ships them.
"""

from __future__ import annotations

import re

from ecs_operator import labels as L
from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.models.common import LogConfiguration

from .fidelity import FidelityReport
from .firelens import CONFIG_PATH, Router, config_map_name, s3_config_map

AWSLOGS_PREFIX = f"awslogs.{L.API_GROUP}/"
"""Pod annotations `awslogs.ecs.operator.dev/<container>.<option>`: one per awslogs option, `awslogs-` dropped
(`awslogs-group` -> `<container>.group`), for a cluster's log agent to pick the group, stream prefix and region."""
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
NODE_AGENT = "a cluster's node-level log agent"

DRIVER_VERDICTS: dict[str, tuple[str, str]] = {
    "json-file": ("containers' stdout/stderr (node log files)",
                  "the container runtime writes stdout and stderr to the node's files as json-file does (kubectl logs "
                  "reads them, like docker logs); CRI format, rotated by the kubelet's containerLogMaxSize/"
                  "containerLogMaxFiles, not per container: the options are kept as an annotation"),
    "awslogs": ("annotations awslogs.ecs.operator.dev/<container>.<option>",
                "nothing is sent to CloudWatch Logs by the operator: stdout/stderr stay in the node's log files and "
                f"{NODE_AGENT} (e.g. Fluent Bit or the CloudWatch agent) ships them, reading the group, stream prefix and region "
                "from these annotations (docs/conversion.md §Logs and FireLens)"),
    "splunk": ("annotation ecs.operator.dev/log-configuration.<container>",
               f"nothing is sent to Splunk by the operator: {NODE_AGENT} (e.g. the Splunk OpenTelemetry Collector) "
               "ships the node's log files; the options are kept as an annotation"),
    "gelf": ("annotation ecs.operator.dev/log-configuration.<container>",
             f"no GELF sender: {NODE_AGENT} ships the node's log files; the options are kept as an annotation"),
    "fluentd": ("annotation ecs.operator.dev/log-configuration.<container>",
                f"no fluentd driver: {NODE_AGENT} (a Fluentd or Fluent Bit DaemonSet) ships the node's log files; "
                "the options (fluentd-address, tag) are kept as an annotation"),
    "syslog": ("annotation ecs.operator.dev/log-configuration.<container>",
               f"no syslog driver: {NODE_AGENT} ships the node's log files; the options are kept as an annotation"),
    "journald": ("annotation ecs.operator.dev/log-configuration.<container>",
                 f"containers' logs are not in the node's journal: {NODE_AGENT} ships the node's log files"),
}


def log_annotations(container: str, log: LogConfiguration) -> dict[str, str]:
    """The awslogs options of one container as Pod annotations (others: only the JSON annotation)."""
    if log.logDriver != "awslogs":
        return {}
    out = {}
    for option, value in sorted((log.options or {}).items()):
        name = f"{container}.{option.removeprefix('awslogs-')}"
        if len(name) <= 63 and _NAME.match(name):
            out[f"{AWSLOGS_PREFIX}{name}"] = value
    return out


def report_log_configuration(td: RegisterTaskDefinition, router: Router | None, report: FidelityReport, *,
                             tail_pod_logs: bool) -> None:
    """A verdict for each container's log driver, its options and secretOptions, and the FireLens router."""
    if router is not None:
        _report_router(td, router, report)
    for i, c in enumerate(td.containerDefinitions):
        log, here = c.logConfiguration, f"containerDefinitions[{i}].logConfiguration"
        if log is None:
            continue
        if log.logDriver == "awsfirelens":
            _report_routed(router, here, log, report, tail_pod_logs=tail_pod_logs)
            continue
        target, note = DRIVER_VERDICTS[log.logDriver]
        report.approximated(here, target, note)
        report.approximated(f"{here}.logDriver", target, note)
        if log.options:
            report.approximated(f"{here}.options", target, "kept for a node-level log agent; nothing reads them in the Pod")
        for j, _ in enumerate(log.secretOptions or []):
            for leaf in ("name", "valueFrom"):
                report.unsupported(f"{here}.secretOptions[{j}].{leaf}", f"no {log.logDriver} log driver to pass them to")


def _report_router(td: RegisterTaskDefinition, router: Router, report: FidelityReport) -> None:
    here = f"containerDefinitions[{router.index}].firelensConfiguration"
    report.approximated(here, f"ConfigMap <Task or Service>-firelens mounted at {CONFIG_PATH[router.type]}",
                        "the configuration the ECS agent generates (inputs, ECS metadata, included file, one output per "
                        "awsfirelens container); ecs_task_arn ends with the Pod's UID (with dashes), ec2_instance_id is "
                        "the node's name; application stdout reaches the router only where the workload policy allows "
                        "hostPath (docs/conversion.md §Logs and FireLens)")
    report.exact(f"{here}.type", f"{router.type} configuration syntax", "")
    if router.config_file_type == "s3" and router.config_file_value:
        name, key = s3_config_map(router.config_file_value)
        report.approximated(f"{here}.options", f"ConfigMap {name} key {key}",
                            "the operator does not read S3: a ConfigMap named after the object must hold the file")
    elif (fc := td.containerDefinitions[router.index].firelensConfiguration) is not None and fc.options:
        report.exact(f"{here}.options", "the generated configuration",
                     "enable-ecs-log-metadata: the record_modifier filter; config-file-type file: @INCLUDE of the path")


def _report_routed(router: Router | None, here: str, log: LogConfiguration, report: FidelityReport, *,
                   tail_pod_logs: bool) -> None:
    if router is None:
        report.unsupported(here, "awsfirelens needs a container with firelensConfiguration in the task definition")
        return
    stdout = ("the router tails the container's log files on the node (hostPath /var/log/pods, read-only)" if tail_pod_logs
              else "stdout/stderr stay in the node's log files (kubectl logs): without hostPath (refused by the "
                   "workload policy) only what the application sends with the Fluent forward protocol (localhost:24224 "
                   "or the socket) reaches the router")
    report.approximated(here, "the FireLens router's configuration", stdout)
    report.exact(f"{here}.logDriver", "output section of the router's configuration", "")
    if log.options:
        report.exact(f"{here}.options", f"[OUTPUT]/<match> of ConfigMap {config_map_name('<owner>')}",
                     "Name/@type is the plugin; include-pattern/exclude-pattern grep filters; the rest the plugin's options")
    for j, _ in enumerate(log.secretOptions or []):
        for leaf in ("name", "valueFrom"):
            report.exact(f"{here}.secretOptions[{j}].{leaf}", "router env from the Secret (secrets convention)",
                         "the option is the variable the agent names <name>_<container index>")
