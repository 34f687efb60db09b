"""`ecs-operator run`: the kopf operator, with explicit settings and the ECS translation settings."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from prometheus_client import start_http_server
from urllib3.exceptions import HTTPError

from ecs_operator import metrics
from ecs_operator.adapters.kube import ApiError, Kube
from ecs_operator.adapters.transport import ConfigError
from ecs_operator.kube_version import version_problem
from ecs_operator.models.service import TASKS_PER_SERVICE
from ecs_operator.settings import Settings

if TYPE_CHECKING:
    from ecs_operator.runtime.leader import Timing

REQUEST_TIMEOUT_SECONDS = 30.0
"""Any one request of the operator's own (kopf's are bounded by its settings): a request the API server accepted
and never answers (it stopped or restarted mid-request) fails as a temporary ApiError and is retried, instead of
holding a worker forever."""


def _selector(text: str) -> dict[str, str]:
    """`k=v,k2=v2` -> {k: v, k2: v2} ('' is the empty selector: any node)."""
    return dict(part.split("=", 1) for part in text.split(",") if part)


def _flag(selector: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in selector.items())


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _driver_class(text: str) -> str:
    """DRIVER=CLASS (CLASS may be empty: the cluster's default StorageClass)."""
    if "=" not in text or not text.split("=", 1)[0]:
        raise argparse.ArgumentTypeError(f"{text!r}: expected DRIVER=CLASS")
    return text


def _env_driver_classes() -> list[str]:
    """ECS_OPERATOR_DOCKER_VOLUME_STORAGE_CLASSES, DRIVER=CLASS[,...]: argparse checks no list default, so
    a malformed entry ends the command here with one line, never dropped in silence."""
    entries = [p for p in os.environ.get("ECS_OPERATOR_DOCKER_VOLUME_STORAGE_CLASSES", "").split(",") if p]
    for entry in entries:
        try:
            _driver_class(entry)
        except argparse.ArgumentTypeError as e:
            sys.exit(f"ecs-operator run: ECS_OPERATOR_DOCKER_VOLUME_STORAGE_CLASSES: {e}")
    return entries


def _task_limit(text: str) -> int:
    """0 to ECS's quota of tasks per service (the CRD refuses more anyway)."""
    value = int(text)
    if not 0 <= value <= TASKS_PER_SERVICE:
        raise argparse.ArgumentTypeError(f"must be 0 to {TASKS_PER_SERVICE} (ECS's quota of tasks per service)")
    return value


def _http_url(text: str) -> str:
    """"" (none) or an http(s) URL."""
    if text and not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"{text!r}: expected an http:// or https:// URL")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable; default: all)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces (the default)")
    parser.add_argument("--peering", metavar="NAME",
                        help="coordinate replicas through kopf's peering objects (needs kopf's peering CRDs); "
                             "without it (and without --leader-elect) the operator runs standalone: run exactly one replica")
    parser.add_argument("--leader-elect", action="store_true", default=env("ECS_OPERATOR_LEADER_ELECT", "") == "true",
                        help="run as one of several replicas: act only while holding a coordination.k8s.io Lease "
                             "(standby until then; exits if the Lease cannot be renewed in time)")
    parser.add_argument("--leader-election-namespace", default=env("POD_NAMESPACE", "default"),
                        help="namespace of the Lease (default: $POD_NAMESPACE or %(default)s)")
    parser.add_argument("--lease-name", default=env("ECS_OPERATOR_LEASE_NAME", "ecs-operator"),
                        help="name of the Lease (default: %(default)s)")
    parser.add_argument("--lease-duration", type=float, default=env("ECS_OPERATOR_LEASE_DURATION", "15"),
                        help="seconds a standby waits for an unrenewed Lease before taking it (default: %(default)s)")
    parser.add_argument("--renew-deadline", type=float, default=env("ECS_OPERATOR_RENEW_DEADLINE", "10"),
                        help="seconds the leader may go without renewing before it exits (default: %(default)s)")
    parser.add_argument("--retry-period", type=float, default=env("ECS_OPERATOR_RETRY_PERIOD", "2"),
                        help="seconds between renewals and between a standby's tries (default: %(default)s)")
    parser.add_argument("--liveness", default=env("ECS_OPERATOR_LIVENESS", "http://0.0.0.0:8080/healthz"),
                        help="liveness endpoint (default: %(default)s)")
    parser.add_argument("--metrics", metavar="ADDRESS", default=env("ECS_OPERATOR_METRICS", "0.0.0.0:8081"),
                        help="serve Prometheus metrics at http://ADDRESS/metrics, HOST:PORT (default: %(default)s; "
                             "'' for none)")
    parser.add_argument("--log-format", choices=("plain", "full", "json"), default=env("ECS_OPERATOR_LOG_FORMAT", "full"))
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        default=env("ECS_OPERATOR_LOG_LEVEL", "INFO"))
    parser.add_argument("--region", default=env("ECS_OPERATOR_REGION", Settings.region), help="region in ARNs")
    parser.add_argument("--account-id", default=env("ECS_OPERATOR_ACCOUNT_ID", Settings.account_id), help="account in ARNs")
    parser.add_argument("--fargate-node-selector",
                        default=env("ECS_OPERATOR_FARGATE_NODE_SELECTOR", _flag(Settings().fargate_node_selector)),
                        help="nodes FARGATE tasks run on, k=v,... (default: %(default)s; '' is any node)")
    parser.add_argument("--fargate-spot-node-selector",
                        default=env("ECS_OPERATOR_FARGATE_SPOT_NODE_SELECTOR", "karpenter.sh/capacity-type=spot"),
                        help="nodes FARGATE_SPOT tasks run on (default: %(default)s)")
    parser.add_argument("--load-balancer-service-type", choices=("ClusterIP", "NodePort", "LoadBalancer"),
                        default=env("ECS_OPERATOR_LOAD_BALANCER_SERVICE_TYPE", "ClusterIP"))
    parser.add_argument("--service-task-ready-seconds", type=int,
                        default=env("ECS_OPERATOR_SERVICE_TASK_READY_SECONDS", "40"),
                        help="ECS counts a task without health checks as healthy after this long (default: 40)")
    parser.add_argument("--stopped-task-ttl", type=int, default=env("ECS_OPERATOR_STOPPED_TASK_TTL", "3600"),
                        help="seconds STOPPED tasks stay visible (default: 3600)")
    parser.add_argument("--capacity-evaluation-seconds", type=float,
                        default=env("ECS_OPERATOR_CAPACITY_EVALUATION_SECONDS", "15"),
                        help="managed scaling evaluation period (ECS: 60; tasks waiting for capacity also trigger it)")
    parser.add_argument("--deployment-minute-seconds", type=_positive_seconds,
                        default=env("ECS_OPERATOR_DEPLOYMENT_MINUTE_SECONDS", "60"),
                        help="seconds one minute of a BLUE_GREEN/LINEAR/CANARY bake time lasts (default: 60, "
                             "as in ECS; only tests shorten it)")
    parser.add_argument("--max-service-tasks", type=_task_limit, metavar="N",
                        default=env("ECS_OPERATOR_MAX_SERVICE_TASKS", str(TASKS_PER_SERVICE)),
                        help="the most tasks one Service may ask for (default and ECS's quota: %(default)s)")
    parser.add_argument("--connect-timeout", type=float, default=env("ECS_OPERATOR_CONNECT_TIMEOUT", "60"),
                        help="seconds to wait for the API server at start-up (default: 60)")
    parser.add_argument("--binpack-scheduler-profiles", action="store_true",
                        default=env("ECS_OPERATOR_BINPACK_SCHEDULER_PROFILES", "") == "true",
                        help="the cluster's kube-scheduler has the ecs-binpack-cpu/-memory profiles "
                             "(README: binpack placement): binpack tasks use them")
    parser.add_argument("--docker-volume-storage-class", action="append", metavar="DRIVER=CLASS", type=_driver_class,
                        default=_env_driver_classes(),
                        help="StorageClass of the claims of a Docker volume driver (repeatable; CLASS '' is the "
                             "cluster's default; docs/volumes.md)")
    parser.add_argument("--ebs-storage-class", default=env("ECS_OPERATOR_EBS_STORAGE_CLASS", ""),
                        help="StorageClass of configuredAtLaunch (managedEBSVolume) claims (default: the cluster's)")
    parser.add_argument("--alertmanager-url", type=_http_url, default=env("ECS_OPERATOR_ALERTMANAGER_URL", ""),
                        help="Alertmanager whose alerts are the services' deployment alarms (alarm name = alertname, "
                             "for the alerts labelled with the service's namespace; docs/ecs-semantics.md)")
    parser.add_argument("--allow-workload-feature", action="append",
                        default=[f for f in env("ECS_OPERATOR_ALLOWED_WORKLOAD_FEATURES", "").split(",") if f],
                        help="workload policy: allow this host-level feature in every namespace (repeatable)")


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        region=args.region,
        account_id=args.account_id,
        fargate_node_selector=_selector(args.fargate_node_selector),
        fargate_spot_node_selector=_selector(args.fargate_spot_node_selector),
        load_balancer_service_type=args.load_balancer_service_type,
        service_task_ready_seconds=args.service_task_ready_seconds,
        stopped_task_ttl_seconds=args.stopped_task_ttl,
        capacity_evaluation_seconds=args.capacity_evaluation_seconds,
        deployment_minute_seconds=args.deployment_minute_seconds,
        max_service_tasks=args.max_service_tasks,
        binpack_scheduler_profiles=args.binpack_scheduler_profiles,
        allowed_workload_features=frozenset(args.allow_workload_feature),
        docker_volume_storage_classes=dict(p.split("=", 1) for p in args.docker_volume_storage_class),
        ebs_storage_class=args.ebs_storage_class,
        alertmanager_url=args.alertmanager_url,
    )


def liveness_problem(endpoint: str) -> str | None:
    """Why the liveness endpoint cannot be served (a taken port, a bad URL), checked before kopf starts:
    kopf would fail later with a traceback."""
    parts = urlsplit(endpoint)
    try:
        host, port = parts.hostname or "0.0.0.0", parts.port or 80
    except ValueError as e:
        return f"--liveness {endpoint}: {e}"
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            return (f"--liveness {endpoint}: cannot listen on {host}:{port}: {e.strerror or e} "
                    "(choose another port, or --liveness '' for none)")
    return None


def metrics_address(address: str) -> tuple[str, int]:
    """HOST:PORT ([v6]:PORT; :PORT is every IPv4 address) as (host, port); ValueError names what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8081")
    return host.strip("[]") or "0.0.0.0", int(port)


def serve_metrics(address: str) -> str | None:
    """Start the /metrics endpoint (prometheus_client's HTTP server, in a thread of its own: it answers while the
    event loop is busy, and binds now, so a taken port is refused before kopf starts); why not, if it cannot."""
    try:
        host, port = metrics_address(address)
        start_http_server(port, addr=host)
    except ValueError as e:
        return f"--metrics {address}: {e}"
    except OSError as e:
        return (f"--metrics {address}: cannot listen on {address}: {e.strerror or e} "
                "(choose another port, or --metrics '' for none)")
    return None


def _connect(wait_seconds: float) -> tuple[Kube | None, str | None]:
    """The API client, and why the operator cannot serve that API server (unreachable for `wait_seconds`,
    or older than the Kubernetes its objects need: kube_version), checked before kopf starts. An API
    server that is not up yet (the operator's Pod started first) is waited for, not a crash loop."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            kube = Kube(request_timeout=REQUEST_TIMEOUT_SECONDS)
            return kube, version_problem(kube.server_version())
        except ConfigError as e:
            return None, f"no usable kubeconfig or in-cluster configuration: {e}"
        except (ApiError, HTTPError, OSError) as e:
            if time.monotonic() >= deadline or (isinstance(e, ApiError) and not e.temporary):
                return None, f"cannot read the API server's version (GET /version): {e}"
            logging.getLogger("ecs_operator").warning("waiting for the API server (GET /version): %s", e)
            time.sleep(2)


def run(args: argparse.Namespace) -> int:
    if args.liveness and (problem := liveness_problem(args.liveness)):
        print(f"ecs-operator run: {problem}", file=sys.stderr)
        return 2
    if args.leader_elect and args.peering:
        print("ecs-operator run: --leader-elect and --peering exclude each other", file=sys.stderr)
        return 2
    if args.leader_elect and (problem := _timing(args).problem()):
        print(f"ecs-operator run: {problem}", file=sys.stderr)
        return 2
    if args.metrics and (problem := serve_metrics(args.metrics)):
        print(f"ecs-operator run: {problem}", file=sys.stderr)
        return 2
    metrics.set_leader(not args.leader_elect)  # standalone: this replica is the active one
    kube, problem = _connect(args.connect_timeout)
    if kube is None or problem:
        print(f"ecs-operator run: {problem}", file=sys.stderr)
        return 2
    if not args.leader_elect:
        return _run_kopf(args, kube)
    from ecs_operator.runtime.leader import Elector, default_identity
    from ecs_operator.runtime.standby import standby_liveness

    _configure_logging(args)
    elector = Elector(Kube(kube.api, request_timeout=args.retry_period), args.leader_election_namespace, args.lease_name,
                      default_identity(), _timing(args))
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with standby_liveness(args.liveness):  # a standby is alive: the probe must not restart it
            if not elector.acquire(stop):
                return 0  # stopped while standby: it held nothing
    finally:
        signal.signal(signal.SIGTERM, previous)
    elector.keep()
    metrics.set_leader(True)  # it exits when it loses the Lease
    try:
        return _run_kopf(args, kube)
    finally:
        elector.release()


def _timing(args: argparse.Namespace) -> Timing:
    from ecs_operator.runtime.leader import Timing

    return Timing(lease_duration=args.lease_duration, renew_deadline=args.renew_deadline, retry_period=args.retry_period)


def _configure_logging(args: argparse.Namespace) -> None:
    import kopf

    kopf.configure(
        log_format={"plain": kopf.LogFormat.PLAIN, "full": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}[args.log_format],
        verbose=args.log_level == "DEBUG",
    )
    logging.getLogger().setLevel(args.log_level)


def _run_kopf(args: argparse.Namespace, kube: Kube) -> int:
    import kopf

    import ecs_operator.handlers  # noqa: F401  (registers the handlers)
    from ecs_operator.runtime.context import Context

    _configure_logging(args)
    memo = Context(kube=kube, settings=settings_from(args))
    kopf.run(
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness or None,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        memo=memo,
    )
    return 0
