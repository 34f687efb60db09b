"""docs/conversion.md: the conversion matrix, rendered from the mapping table (translate/mapping.py's TABLES).

`python -m ecs_operator.crdgen.matrix`, run in the repository, writes it; `--check` exits 1 when it is out of
date (tests/unit/test_conversion_doc.py runs the same check). A generator of the repository's files, like
`ecs-operator crds`: the translation itself (translate/) writes no files.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

from ecs_operator.translate import firelens, gateway, log_drivers, names
from ecs_operator.translate.fidelity import VERDICTS, Verdict
from ecs_operator.translate.mapping import TABLES

DOC = Path("docs", "conversion.md")
"""Where it goes, relative to the repository (the working directory), as `ecs-operator crds` writes crds/."""

REQUESTS = {
    "TaskDefinition": "RegisterTaskDefinition",
    "Service": "CreateService",
    "Task": "RunTask",
    "Cluster": "CreateCluster",
    "CapacityProvider": "CreateCapacityProvider",
}

LEGEND: dict[Verdict, str] = {
    "exact": "Kubernetes does what ECS does.",
    "approximated": "close, with a documented difference (the note says what differs).",
    "unsupported": "no Kubernetes counterpart: the field is kept in the custom resource and reported, never "
                   "silently dropped.",
}


LOGS = [
    "## Logs and FireLens",
    "",
    "Kubernetes has no per-container log driver: the container runtime writes each container's stdout and stderr",
    "to the node's log files (`/var/log/pods/<namespace>_<pod>_<uid>/<container>/`), `kubectl logs` reads them and a",
    "cluster's node-level log agent ships them. Each `logConfiguration` is kept on the Pod as the JSON annotation",
    "`ecs.operator.dev/log-configuration.<container>`. Per driver:",
    "",
    *[f"- `{driver}`: {target}; {note}." for driver, (target, note) in log_drivers.DRIVER_VERDICTS.items()],
    "- `awsfirelens`: routed by the task's FireLens log router, below.",
    "",
    "**awslogs annotations.** Each awslogs option of a container is also a Pod annotation",
    f"`{log_drivers.AWSLOGS_PREFIX}<container>.<option>`, the option without its `awslogs-` prefix: `awslogs-group`",
    "-> `<container>.group`, `awslogs-stream-prefix` -> `<container>.stream-prefix`, `awslogs-region` -> `<container>.region`",
    "(`<container>` is the Kubernetes container name; an annotation name longer than 63 characters is left out). A",
    "log agent that reads Pod annotations (Fluent Bit's kubernetes filter with `Annotations On`, Vector, the",
    "OpenTelemetry Collector's k8sattributes) can send each container's files to that group and stream prefix.",
    "",
    "**FireLens.** The container with `firelensConfiguration` is the log router. Its configuration is what the ECS",
    "agent generates (amazon-ecs-agent, agent/taskresource/firelens): a forward input on the unix socket",
    f"`{firelens.SOCKET_PATH}` (an emptyDir at `{firelens.SOCKET_DIR}` of the router), a forward input on TCP",
    f"{firelens.FORWARD_PORT} (the Pod's localhost), a TCP input on 127.0.0.1:{firelens.HEALTH_CHECK_PORT} tagged",
    f"`{firelens.HEALTH_CHECK_TAG}` (sent to a null output), the metadata fields `ecs_cluster`, `ecs_task_arn`,",
    "`ecs_task_definition` and `ec2_instance_id` added to every record unless `enable-ecs-log-metadata` is false, the",
    "`config-file-value` included (`file`: the path in the router; `s3`: a ConfigMap named after the object, mounted",
    "where the agent puts the downloaded file), then for each container whose `logDriver` is `awsfirelens` an output",
    "matching the tag `<container>-firelens*`: the plugin its `Name` (fluentbit) or `@type` (fluentd) option names,",
    "its `include-pattern`/`exclude-pattern` as grep filters, its other options as the plugin's options, and each",
    "`secretOptions` entry as the variable `${<name>_<container index>}` of the router's environment, filled from the",
    "Secret of the secrets convention. It is the ConfigMap `<Task or Service name>-firelens`, controlled by the Task or",
    "Service, mounted at `/fluent-bit/etc/fluent-bit.conf` (fluentd: `/fluentd/etc/fluent.conf`) as the agent mounts",
    "its file. The router starts before the containers that log to it (an implicit START dependency, as the agent's).",
    "Differences: `ecs_task_arn` ends with the Pod's UID (the task ID with its dashes), `ec2_instance_id` is the",
    "node's name (both read from the router's environment, which the downward API fills); a Service's tasks share",
    "one ConfigMap, so during a deployment a router restarted in a task of the old revision reads the new revision's",
    "outputs (ECS writes one file per task). A Task and a Service of the same name in one namespace would need the",
    "same ConfigMap: the second is refused with a ResourceConflict condition naming it.",
    "",
    "How application logs reach the router: an application that sends with the Fluent forward protocol (the Fluent",
    "logger libraries) reaches it on `localhost:24224`, as in ECS. A container's stdout and stderr reach it only where",
    "the namespace's workload policy allows `hostPath` (opt-in label or the operator's settings): then the router",
    "mounts the node's `/var/log/pods` read-only and tails exactly its own Pod's files of each awsfirelens container",
    "(tag `<container>-firelens-stdout`, CRI format). Without that opt-in (the default for tenants) no host path is",
    "mounted and stdout/stderr stay in the node's log files: the outputs are configured but receive only what is",
    "forwarded; a node-level agent ships the rest. Kubernetes gives no other way for one container to read another's",
    "stdout without changing its command.",
]

GATEWAY = [
    "## Blue/green load balancers",
    "",
    "A `loadBalancers` entry with an `advancedConfiguration` (ECS's blue/green load balancer: an alternate target",
    "group, a production and a test listener rule) on a cluster that serves the Gateway API (`HTTPRoute`,",
    f"`{gateway.API_VERSION}`: its standard CRDs installed; the operator looks every 30 s until they are) becomes:",
    "",
    f"- two ClusterIP Services, `<lb>-{gateway.PRIMARY}` for `targetGroupArn` and `<lb>-{gateway.ALTERNATE}` for",
    "  `alternateTargetGroupArn` (`<lb>` is the entry's own Kubernetes Service: the Service's name, `-<index>` after",
    "  the first), whose EndpointSlices the operator writes: the tasks of the first and of the second of the",
    "  service's two Deployments (slots). The first green goes to the alternate target group and the next one back",
    "  to the primary, as ECS alternates them; between deployments the other one lists no task;",
    "- the HTTPRoute `<lb>` (production listener rule): both Services as backendRefs on the entry's containerPort,",
    f"  weights adding up to {gateway.WEIGHT_TOTAL} that follow the strategy's step exactly (CANARY 10%: 9000 and",
    "  1000 whatever the task counts; LINEAR: one step each `stepBakeTimeInMinutes`; BLUE_GREEN: 0 to all at once;",
    "  all on the production revision outside a deployment and after a rollback);",
    "- the HTTPRoute `<lb>-test` (test listener rule, only when given): all weight on green during a deployment",
    "  (ECS's test traffic), on production otherwise.",
    "",
    "The parentRef of each route: a listener rule ARN (`arn:aws:elasticloadbalancing:<region>:<account>:",
    "listener-rule/app/<name>/<id>/<listener id>/<rule id>`, or for a Network Load Balancer a listener ARN",
    "`listener/net/<name>/...`) names its load balancer: the Gateway of that name, lowercased, in the service's",
    "namespace. A value that is not an ARN is a Gateway name, optionally `/<listener name>` (the Gateway",
    "listener's `sectionName`). The routes match every request: the listener rule's conditions stay in AWS (give",
    "the Gateway listener a hostname to narrow them). `roleArn` has no use (the operator's RBAC writes the",
    "routes). The routes and Services are the ECS Service's children (controller ownerReference, its namespace); a",
    "route of that name it does not control refuses the service with a ResourceConflict condition, never taken",
    "over. The loadBalancers entry's own Service `<lb>` stays for clients inside the cluster, shifted by the ratio",
    "of tasks it lists. Without the CRDs (or without a productionListenerRule) no route is written and production",
    "traffic shifts only by that ratio (approximated: the verdicts in `status.fidelity` say which applies). A",
    "Gateway implementation (an ingress controller that serves Gateways) carries the traffic; the operator only",
    "writes the routes. `ecs-operator sandbox up --gateway-api` installs the standard CRDs of the Go module",
    "`sigs.k8s.io/gateway-api` (v1.6.3, fetched through the Go module proxy) so that the API server admits and validates them.",
    "",
    "Service Connect: a client alias with `testTrafficRules`, a service with `timeout.perRequestTimeoutSeconds` or a",
    "shifting strategy gets the GAMMA HTTPRoute `<alias Service>-mesh` (parentRef: the alias's Kubernetes Service and",
    "port): the test header to green's target Service (`<discovery>-primary`/`-alternate`), the rest weighted by the",
    "step, `timeouts.request` from the timeout. Only a service mesh that implements GAMMA applies it (approximated).",
]


def render() -> str:
    lines = [
        "# ECS to Kubernetes conversion matrix",
        "",
        "<!-- Generated by `python -m ecs_operator.crdgen.matrix` from operator/ecs_operator/translate/mapping.py."
        " Do not edit. -->",
        "",
        "Every field of ECS's input shapes, the Kubernetes object or field it becomes, and how faithful that is.",
        "These are the defaults of the fidelity report; for a concrete document the translation refines them",
        "(a static `hostPort` is exact, a dynamic one approximated). See the verdicts of your own files with",
        "`ecs-operator convert FILE --report text` (or `--report json`); the TaskDefinition resource shows",
        "them in `status.fidelity`. Paths write list items as `[]`.",
        "",
        "ECS's read-only output fields (`taskDefinitionArn`, `revision`, `status`, `compatibilities`, ... of",
        "describe-* output) are no input: `convert` drops them and the specs accept and ignore them, listed in",
        "`status.fidelity.ignoredReadOnlyFields` of a TaskDefinition or Service (docs/ecs-semantics.md).",
        "",
        "A migration set (describe-task-definition output with the source account's `revision: 42`, and",
        "create-service or run-task input naming `orders-api:42` or its ARN) converts with `--to crs` to custom",
        "resources that run once applied: the operator numbers the revisions it registers itself (a new",
        "TaskDefinition registers `orders-api:1`), so a Service or Task naming a revision of a task definition of",
        "the same run that carries such a number names its family instead (`taskDefinition: orders-api`, the",
        "latest ACTIVE revision: the one that TaskDefinition registers), and the report gives `taskDefinition`",
        "the verdict approximated, saying so. Apply them to a namespace where the family is new (or holds the",
        "same content): where it already has other content, a Service or Task reconciled before the new revision",
        "registers starts on the family's previous latest revision. Other references are kept as they are.",
        "",
        "Verdicts:",
        "",
        *[f"- **{verdict}**: {LEGEND[verdict]}" for verdict in VERDICTS],
        "",
        "## Naming conventions",
        "",
        "ECS refers to AWS resources that Kubernetes does not have; the translation expects Kubernetes objects named",
        "after them, in the namespace of the task:",
        "",
        *_convention("Secrets (`secrets[].valueFrom`, `repositoryCredentials.credentialsParameter`)", names.secret_ref),
        *_convention("ConfigMaps (`environmentFiles[].value`)", names.environment_file_configmap),
        *_convention("ConfigMaps (`firelensConfiguration.options` `config-file-type: s3`)", firelens.s3_config_map),
        *_convention("Container and volume names", names.dns_label),
        "",
        *LOGS,
        "",
        *GATEWAY,
        "",
        "## Summary",
        "",
        "| kind | ECS request | fields | exact | approximated | unsupported |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for kind, rows in TABLES.items():
        counts = [sum(1 for row in rows if row[1] == verdict) for verdict in VERDICTS]
        lines.append(f"| {kind} | {REQUESTS[kind]} | {len(rows)} | " + " | ".join(map(str, counts)) + " |")
    for kind, rows in TABLES.items():
        lines += ["", f"## {kind} ({REQUESTS[kind]})", "", "| ECS field | Kubernetes target | verdict | note |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| `{path}` | {_cell(target)} | {verdict} | {_cell(note)} |" for path, verdict, target, note in rows]
    return "\n".join(lines) + "\n"


def _convention(title: str, function: object) -> list[str]:
    doc = inspect.getdoc(function) or ""
    return [f"- {title}: " + " ".join(doc.split())]


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecs_operator.crdgen.matrix", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    parser.add_argument("--out", type=Path, default=DOC, help=f"file to write or check (default {DOC})")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not args.out.exists() or args.out.read_text() != text:
            print(f"{args.out} is out of date: run `python -m ecs_operator.crdgen.matrix`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
