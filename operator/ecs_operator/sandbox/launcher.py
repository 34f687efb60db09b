"""Start, inspect and stop one sandbox: a real control plane as local processes plus kwok nodes.

Start-up order, chosen for speed on two cores: etcd and kube-apiserver start together (the
apiserver retries etcd); as soon as /readyz passes (bootstrap RBAC roles exist by then), the
controller-manager, scheduler and kwok start in parallel and the Node objects are created.
Ready means: /readyz, scheduler and controller-manager /healthz, the `default` ServiceAccount
in `default` (the token and SA controllers work) and every node Ready (kwok works).

All state lives in one directory (`state.json`, PKI, kubeconfigs, etcd data, logs). `state.json`
is rewritten after every process start, so a crash at any point leaves enough to clean up. It records
each process's command line too: `restart COMPONENT` starts one component again with the same flags and
keeps everything else (etcd's data above all), and `up` after a crash restarts what is dead the same way
instead of starting afresh.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import socket
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ecs_operator import labels as L
from ecs_operator.nodepool.instance_types import DEFAULT_INSTANCE_TYPE, build_node, instance_type, private_ip_for, zone_for
from ecs_operator.sandbox import components, pki, realnodes
from ecs_operator.sandbox.apiclient import ApiClient, ApiError
from ecs_operator.sandbox.build import MULTICALL
from ecs_operator.sandbox.components import Layout, Ports
from ecs_operator.sandbox.processes import ProcessRecord, respawn, spawn, stop

# What a state directory may contain: anything else means --state-dir names some other directory,
# which is then never deleted.
STATE_ENTRIES = frozenset({"state.json", "state.tmp", "kubeconfig", "pki", "logs", "etcd", "scheduler.yaml",
                           "apiserver", "controller-manager", "scheduler", "flexvolume", "ecs-api.json", "real-nodes",
                           *(f"{c}.kubeconfig" for c in ("controller-manager", "scheduler", "kwok"))})
NODE_LABELS = {L.CLUSTER: "default", L.SHARED_INSTANCE: "true", L.FARGATE: "true"}
"""The sandbox's nodes are shared container instances of the ECS cluster "default" of every namespace (each
end-to-end test has a namespace of its own with a cluster "default"), and FARGATE tasks may run there."""
POLL = 0.1
Log = Callable[[str], None]
ALIASES = {"apiserver": "kube-apiserver", "controller-manager": "kube-controller-manager", "scheduler": "kube-scheduler"}
"""Short names `restart` accepts for the control-plane components."""
Outcome = Literal["started", "running", "restarted"]
"""What `up` did: started a new sandbox, found it running, or restarted its dead components."""


def default_state_dir() -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "ecs-operator" / "sandbox"


class SandboxError(Exception):
    """A failure the user can act on: which component, and the end of its log."""


@dataclass
class State:
    """The content of `state.json`."""

    bin_dir: str
    ports: Ports
    processes: list[ProcessRecord] = field(default_factory=list)
    attached: list[ProcessRecord] = field(default_factory=list)
    """Processes started with `attach` (the operator in `make demo`): stopped by `down`, not part of readiness."""
    nodes: list[str] = field(default_factory=list)
    instance_type: str = DEFAULT_INSTANCE_TYPE
    ready_seconds: float | None = None
    real_nodes: list[realnodes.RealNode] = field(default_factory=list)
    """`up --real-nodes N`: kubelets with containerd (their processes are in `processes`)."""
    host: dict[str, Any] = field(default_factory=dict)
    """The host's settings before the real nodes started (realnodes.host_snapshot): what `down` restores."""
    real_nodes_ready_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"bin_dir": self.bin_dir, "ports": self.ports.to_json(),
                "processes": [p.to_json() for p in self.processes],
                "attached": [p.to_json() for p in self.attached], "nodes": self.nodes,
                "instance_type": self.instance_type, "ready_seconds": self.ready_seconds,
                "real_nodes": [n.to_json() for n in self.real_nodes], "host": self.host,
                "real_nodes_ready_seconds": self.real_nodes_ready_seconds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        return cls(bin_dir=data["bin_dir"], ports=Ports(**data["ports"]),
                   processes=[ProcessRecord.from_json(p) for p in data["processes"]],
                   attached=[ProcessRecord.from_json(p) for p in data.get("attached", [])], nodes=list(data["nodes"]),
                   instance_type=data["instance_type"], ready_seconds=data.get("ready_seconds"),
                   real_nodes=[realnodes.RealNode.from_json(n) for n in data.get("real_nodes", [])],
                   host=data.get("host", {}), real_nodes_ready_seconds=data.get("real_nodes_ready_seconds"))

    def process(self, name: str) -> ProcessRecord | None:
        return next((p for p in self.processes if p.name == name), None)

    def replace(self, record: ProcessRecord) -> None:
        """Put a restarted process in place of the record of the same name (keeping the start order)."""
        self.processes = [record if p.name == record.name else p for p in self.processes]
        self.attached = [record if p.name == record.name else p for p in self.attached]


def restart_plan(state: State) -> tuple[list[ProcessRecord], str | None]:
    """The dead processes `up` restarts after a crash, in start order, or why it cannot (None when it can).
    Pure, for the unit tests: the caller checks liveness once and passes the state."""
    dead = [p for p in state.processes if not p.alive()]
    unknown = [p.name for p in dead if not p.argv]
    if unknown:
        return dead, f"{', '.join(unknown)} were started by an older ecs-operator that did not record their flags"
    real = [p.name for p in dead if p.name not in components.COMPONENTS]
    if real:
        return dead, f"{', '.join(real)} belong to the real nodes, which `up` does not restart"
    return dead, None


class Sandbox:
    """One sandbox, identified by its state directory."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.layout = Layout((state_dir or default_state_dir()).absolute())

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    def read_state(self) -> State | None:
        try:
            return State.from_json(json.loads(self.layout.state_file.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as error:
            raise SandboxError(f"unreadable {self.layout.state_file} ({error}); remove {self.layout.root}") from None

    def _write_state(self, state: State) -> None:
        tmp = self.layout.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=2) + "\n")
        tmp.rename(self.layout.state_file)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise up/down of this sandbox. The lock file sits beside the state directory and is
        removed by `down`, so waiters re-open it if the path no longer names the file they locked."""
        path = self.layout.root.parent / f".{self.layout.root.name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            lock = path.open("a")
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if os.stat(path).st_ino == os.fstat(lock.fileno()).st_ino:
                    break
            except FileNotFoundError:
                pass
            lock.close()
        try:
            yield
        finally:
            lock.close()

    def running(self, state: State | None) -> bool:
        """Every recorded component is alive and the apiserver answers."""
        if state is None or state.ready_seconds is None or not state.processes:
            return False
        if not all(p.alive() for p in state.processes):
            return False
        try:
            return bool(self.client(state).get("/readyz") == "ok")
        except ApiError:
            return False

    def client(self, state: State) -> ApiClient:
        return ApiClient(state.ports.apiserver, self.layout.pki)

    def up(self, bin_dir: Path, nodes: int = 3, instance_type_name: str = DEFAULT_INSTANCE_TYPE,
           timeout: float = 120.0, log: Log = print, real_nodes: int = 0) -> tuple[State, Outcome]:
        """Start the sandbox, or find it running, or restart its dead components (a sandbox that had
        started keeps its state: etcd's data is never deleted here, only by `down`). Returns its state and
        what was done."""
        node_type = instance_type(instance_type_name)
        if real_nodes:
            problems = realnodes.missing_requirements()
            if problems:
                raise SandboxError("--real-nodes: " + "; ".join(problems))
        with self._locked():
            state = self.read_state()
            if self.running(state):
                assert state is not None
                return state, "running"
            if state is not None and state.ready_seconds is not None:
                return self._recover(state, timeout, log), "restarted"
            if state is not None or self.layout.root.exists():
                self._clean_up_crashed(state, log)
            return self._start(bin_dir, nodes, node_type.name, timeout, log, real_nodes), "started"

    def _recover(self, state: State, timeout: float, log: Log) -> State:
        """`up` on a sandbox that had started and is not running: restart its dead components with
        their recorded flags, or refuse naming what to do, but never delete its state."""
        dead, problem = restart_plan(state)
        names = ", ".join(p.name for p in dead)
        if problem:
            raise SandboxError(f"the sandbox at {self.layout.root} is not running ({names} not running) and its state "
                               f"(etcd's data) is kept: {problem}; `ecs-operator sandbox restart COMPONENT` restarts "
                               "one, `ecs-operator sandbox down` deletes the state to start afresh")
        if not dead:
            raise SandboxError(f"the sandbox at {self.layout.root} has every process running but kube-apiserver is "
                               "not ready; its state (etcd's data) is kept: `ecs-operator sandbox restart etcd` or "
                               "`ecs-operator sandbox restart kube-apiserver`, or `ecs-operator sandbox down` to "
                               "delete it")
        log(f"restarting {names} of the sandbox at {self.layout.root} (not running; its state is kept)")
        for record in dead:
            self._restart_one(state, record, time.monotonic() + timeout, log)
        return state

    def _clean_up_crashed(self, state: State | None, log: Log) -> None:
        self._check_state_dir()
        dead = [p.name for p in state.processes if not p.alive()] if state else []
        log(f"cleaning up an earlier sandbox that is not running ({', '.join(dead)} not running)" if dead
            else "cleaning up an earlier, incomplete start")
        if state:
            stop(state.attached)
            self._tear_down_real_nodes(state, log)
            stop(state.processes + state.attached)
        shutil.rmtree(self.layout.root)

    def _start(self, bin_dir: Path, nodes: int, node_type: str, timeout: float, log: Log,
               real_nodes: int = 0) -> State:
        started = time.monotonic()
        deadline = started + timeout
        layout = self.layout
        for binary in (MULTICALL, "kwok"):
            if not (bin_dir / binary).is_file():
                raise SandboxError(f"{bin_dir / binary} is missing: run `ecs-operator sandbox build`")
        layout.logs.mkdir(parents=True)
        layout.etcd_data.mkdir(mode=0o700)
        ports = Ports.pick()
        server = f"https://127.0.0.1:{ports.apiserver}"
        keys = pki.create(layout.pki.dir)
        pki.write_kubeconfig(layout.kubeconfig, server, keys, "admin")
        for client in ("controller-manager", "scheduler", "kwok"):
            pki.write_kubeconfig(layout.component_kubeconfig(client), server, keys, client)
        state = State(bin_dir=str(bin_dir), ports=ports, instance_type=node_type)

        try:
            self._launch_all(state, nodes, started, deadline, log)
            if real_nodes:
                self._launch_real_nodes(state, real_nodes, started, deadline + timeout, log)
        except BaseException:
            if state.real_nodes:
                self._tear_down_real_nodes(state, log)
            stop(state.processes)  # keep the logs for the error message; the next up or down removes them
            raise
        state.ready_seconds = round(time.monotonic() - started, 1)
        self._write_state(state)
        return state

    def _launch_all(self, state: State, nodes: int, started: float, deadline: float, log: Log) -> None:
        layout, ports = self.layout, state.ports
        multicall, kwok = Path(state.bin_dir) / MULTICALL, Path(state.bin_dir) / "kwok"

        def launch(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
            state.processes.append(spawn(name, argv, layout.log(name), env=env, cwd=layout.root))
            self._write_state(state)

        log(f"starting etcd and kube-apiserver on 127.0.0.1:{ports.apiserver} (state: {layout.root})")
        launch("etcd", components.etcd(multicall, layout, ports))
        launch("kube-apiserver", components.kube_apiserver(multicall, layout, ports))
        client = self.client(state)
        waiter = _Waiter(state, deadline, started, log)
        waiter.until("etcd", "etcd to answer /health", lambda: _etcd_healthy(ports.etcd_client))
        waiter.until("kube-apiserver", "kube-apiserver /readyz", lambda: _readyz(client))

        log("starting kube-controller-manager, kube-scheduler and kwok")
        launch("kube-controller-manager", components.kube_controller_manager(multicall, layout, ports))
        launch("kube-scheduler", components.kube_scheduler(multicall, layout, ports))
        launch("kwok", components.kwok(kwok, layout), env={"HOME": str(layout.root)})
        node_type_spec = instance_type(state.instance_type)
        for index in range(nodes):
            name = f"sandbox-node-{index + 1}"
            manifest = build_node(name, node_type_spec, zone_for(index), labels=NODE_LABELS,
                                  internal_ip=private_ip_for(index))
            try:
                client.create("/api/v1/nodes", manifest)
            except ApiError as error:
                if error.status != 409:
                    raise SandboxError(f"creating node {name} failed: {error}") from None
            state.nodes.append(name)
        self._write_state(state)

        waiter.until("kube-scheduler", "kube-scheduler /healthz", lambda: _healthz(ports.scheduler))
        waiter.until("kube-controller-manager", "kube-controller-manager /healthz",
                     lambda: _healthz(ports.controller_manager))
        waiter.until("kube-controller-manager", "the default ServiceAccount",
                     lambda: _exists(client, "/api/v1/namespaces/default/serviceaccounts/default"))
        waiter.until("kwok", f"{nodes} nodes Ready", lambda: _nodes_ready(client, state.nodes))

    def _launch_real_nodes(self, state: State, count: int, started: float, deadline: float, log: Log) -> None:
        """Real nodes beside the kwok ones (realnodes.py): network, containerd, images, then the kubelets."""
        layout = self.layout
        state.host = realnodes.host_snapshot()
        try:
            state.real_nodes = realnodes.plan(layout.root, count)
        except realnodes.RealNodeError as error:
            raise SandboxError(f"real nodes: {error}") from None
        state.host["sysctls"] = realnodes.original_sysctls() or state.host["sysctls"]  # what `down` restores
        self._write_state(state)  # before any side effect: a crash from here on is cleaned up by `down`
        names = ", ".join(f"{n.name} ({n.node_ip})" for n in state.real_nodes)
        log(f"starting {count} real node(s): {names}")
        step = time.monotonic()

        def launch(name: str, argv: list[str], env: dict[str, str] | None) -> ProcessRecord:
            record = spawn(name, argv, layout.log(name), env=env, cwd=layout.root)
            state.processes.append(record)
            self._write_state(state)
            return record

        try:
            realnodes.start(Path(state.bin_dir) / MULTICALL, layout.pki, f"https://127.0.0.1:{state.ports.apiserver}",
                            state.real_nodes, launch, log)
        except realnodes.RealNodeError as error:
            raise SandboxError(f"real nodes: {error}") from None
        waiter = _Waiter(state, deadline, started, log)
        real_names = [n.name for n in state.real_nodes]
        waiter.until(f"kubelet-{real_names[0]}", f"{count} real node(s) Ready",
                     lambda: _nodes_ready(self.client(state), real_names))
        state.real_nodes_ready_seconds = round(time.monotonic() - step, 1)
        self._write_state(state)

    def _tear_down_real_nodes(self, state: State, log: Log) -> None:
        if not state.real_nodes:
            return
        apiserver = state.process("kube-apiserver")
        client = self.client(state) if apiserver and apiserver.alive() else None
        log("stopping the real nodes (Pods, kubelets, containerd) and removing their links, mounts, chains, cgroups")
        left = realnodes.teardown(client, state.real_nodes, state.processes, state.host, log)
        left += realnodes.leftovers(state.real_nodes, state.host)
        if left:
            log(f"  left behind (remove by hand): {'; '.join(sorted(set(left)))}")

    def down(self, log: Log = print) -> bool:
        """Stop exactly the recorded processes and remove all state. False if there was nothing."""
        with self._locked():
            state = self.read_state()
            existed = self.layout.root.exists()
            self._check_state_dir()
            if state:
                everything = state.processes + state.attached  # stop() goes last-first: attached ones first
                names = ", ".join(p.name for p in reversed(everything) if p.alive()) or "no live processes"
                log(f"stopping {names}")
                stop(state.attached)  # the operator first: it would recreate the Pods the real nodes' teardown deletes
                self._tear_down_real_nodes(state, log)
                stop(everything)
            shutil.rmtree(self.layout.root, ignore_errors=True)
            (self.layout.root.parent / f".{self.layout.root.name}.lock").unlink(missing_ok=True)
            return existed

    def _check_state_dir(self) -> None:
        """Refuse to touch a directory that is not a sandbox's (a mistyped --state-dir)."""
        root = self.layout.root
        unexpected = sorted(p.name for p in root.iterdir() if p.name not in STATE_ENTRIES) if root.exists() else []
        if unexpected:
            raise SandboxError(f"{root} is not a sandbox state directory (it holds {', '.join(unexpected[:5])}): "
                               "refusing to delete it; choose another --state-dir")

    def status(self) -> dict[str, Any]:
        """Each component's process and endpoint, and the cluster's view of readiness."""
        state = self.read_state()
        if state is None:
            return {"state_dir": str(self.layout.root), "running": False, "components": {}, "attached": {}}
        urls = components.describe(state.ports)
        report: dict[str, Any] = {
            "state_dir": str(self.layout.root),
            "kubeconfig": str(self.kubeconfig),
            "bin_dir": state.bin_dir,
            "components": {p.name: {"pid": p.pid, "alive": p.alive(), "url": urls.get(p.name, ""), "log": p.log}
                           for p in state.processes},
            "attached": {p.name: {"pid": p.pid, "alive": p.alive(), "log": p.log} for p in state.attached},
            "ready_seconds": state.ready_seconds,
            "real_nodes": {n.name: {"node_ip": n.node_ip, "pod_subnet": n.pod_subnet, "bridge": n.bridge,
                                    "cgroup_root": n.cgroup_root, "dir": n.dir} for n in state.real_nodes},
            "real_nodes_ready_seconds": state.real_nodes_ready_seconds,
        }
        client = self.client(state)
        try:
            report["readyz"] = client.get("/readyz")
            report["version"] = client.get("/version").get("gitVersion")
            report["nodes_ready"] = f"{_ready_count(client, state.nodes)}/{len(state.nodes)}"
            if state.real_nodes:
                names = [n.name for n in state.real_nodes]
                report["real_nodes_ready"] = f"{_ready_count(client, names)}/{len(names)}"
        except ApiError as error:
            report["readyz"] = f"unreachable ({error})"
        report["running"] = self.running(state)
        return report

    def attach(self, name: str, argv: list[str]) -> tuple[ProcessRecord, bool]:
        """Run `argv` in the background against this sandbox (KUBECONFIG set), to be stopped by `down`.
        Returns the record and whether a live process of that name was already attached."""
        with self._locked():
            state = self.read_state()
            if not self.running(state):
                raise SandboxError(f"no running sandbox at {self.layout.root}: run `ecs-operator sandbox up` first")
            assert state is not None
            current = next((p for p in state.attached if p.name == name), None)
            if current and current.alive():
                return current, True
            record = spawn(name, argv, self.layout.log(name), env={"KUBECONFIG": str(self.kubeconfig)})
            state.attached = [p for p in state.attached if p.name != name] + [record]
            self._write_state(state)
            return record, False

    def stop_component(self, name: str, log: Log = print) -> ProcessRecord:
        """Stop one component (SIGTERM, then SIGKILL) and keep its record and all state: `restart` or `up`
        starts it again. For fault tests and for trying what the operator does without it."""
        with self._locked():
            state, record = self._component(name)
            if record.alive():
                log(f"stopping {record.name} (pid {record.pid})")
                stop([record])
            return record

    def restart(self, name: str, timeout: float = 120.0, log: Log = print) -> ProcessRecord:
        """Stop one component if it runs and start it again with the same flags, keeping all state; returns
        when it is healthy again (and, after etcd, when kube-apiserver is ready again)."""
        with self._locked():
            state, record = self._component(name)
            if not record.argv:
                raise SandboxError(f"{record.name} was started by an older ecs-operator that did not record its "
                                   "flags: `ecs-operator sandbox down` then `up` to start afresh")
            if record.alive():
                log(f"stopping {record.name} (pid {record.pid})")
                stop([record])
            return self._restart_one(state, record, time.monotonic() + timeout, log)

    def _component(self, name: str) -> tuple[State, ProcessRecord]:
        state = self.read_state()
        if state is None or state.ready_seconds is None:
            raise SandboxError(f"no sandbox at {self.layout.root}: run `ecs-operator sandbox up` first")
        wanted = ALIASES.get(name, name)
        record = next((p for p in state.processes + state.attached if p.name == wanted), None)
        restartable = [*components.COMPONENTS, *(p.name for p in state.attached)]
        if record is None or record.name not in restartable:
            raise SandboxError(f"no component {name!r} in the sandbox at {self.layout.root}; it has: "
                               f"{', '.join(restartable)}")
        return state, record

    def _restart_one(self, state: State, record: ProcessRecord, deadline: float, log: Log) -> ProcessRecord:
        started = time.monotonic()
        ports = state.ports
        listens = {"etcd": [ports.etcd_client, ports.etcd_peer], "kube-apiserver": [ports.apiserver],
                   "kube-controller-manager": [ports.controller_manager], "kube-scheduler": [ports.scheduler]}
        url = _health_url(record.argv)
        busy = listens.get(record.name) or ([urllib.parse.urlsplit(url).port or 80] if url else [])
        # a process that has just exited can hold its listening sockets a moment longer (its threads exiting)
        _Waiter(state, deadline, started, log, quiet=True).until(
            record.name, f"127.0.0.1:{busy} to be free", lambda: all(_bindable(p) for p in busy), check_alive=False)
        log(f"starting {record.name} again with its flags ({record.log})")
        new = respawn(record)
        state.replace(new)
        self._write_state(state)
        waiter = _Waiter(State(bin_dir=state.bin_dir, ports=state.ports, processes=[new]), deadline, started, log)
        if new.name == "etcd":
            waiter.until("etcd", "etcd to answer /health", lambda: _etcd_healthy(ports.etcd_client))
            apiserver = state.process("kube-apiserver")
            if apiserver is not None and apiserver.alive():
                waiter.until("etcd", "kube-apiserver /readyz", lambda: _readyz(self.client(state)))
        elif new.name == "kube-apiserver":
            waiter.until("kube-apiserver", "kube-apiserver /readyz", lambda: _readyz(self.client(state)))
        elif new.name in ("kube-controller-manager", "kube-scheduler"):
            port = ports.controller_manager if new.name == "kube-controller-manager" else ports.scheduler
            waiter.until(new.name, f"{new.name} /healthz", lambda: _healthz(port))
        elif new.name == "kwok":
            waiter.until("kwok", f"{len(state.nodes)} nodes Ready", lambda: _nodes_ready(self.client(state), state.nodes))
        else:
            url = _health_url(new.argv)
            waiter.until(new.name, f"{new.name} to answer {url}" if url else f"{new.name} to keep running",
                         (lambda: _http_ok(url)) if url else _alive_for(new, 1.0))
        return new


def _health_url(argv: list[str]) -> str | None:
    """Where an attached `ecs-operator run` (--liveness URL) or `ecs-operator api` (--port N) answers."""
    for flag, url in (("--liveness", "{}"), ("--port", "http://127.0.0.1:{}/healthz")):
        if flag in argv[:-1] and argv[argv.index(flag) + 1]:
            return url.format(argv[argv.index(flag) + 1])
    return None


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _alive_for(record: ProcessRecord, seconds: float) -> Callable[[], bool]:
    """A condition true once the process has run `seconds` (a command with no health endpoint)."""
    since = time.monotonic()
    return lambda: record.alive() and time.monotonic() - since >= seconds


class _Waiter:
    """Polls conditions against one deadline, failing early and clearly when a component dies."""

    def __init__(self, state: State, deadline: float, started: float, log: Log, quiet: bool = False) -> None:
        self.state, self.deadline, self.started, self.log, self.quiet = state, deadline, started, log, quiet

    def until(self, component: str, what: str, condition: Callable[[], bool], check_alive: bool = True) -> None:
        while True:
            for process in self.state.processes if check_alive else []:
                if not process.alive():
                    raise SandboxError(f"{process.name} exited while waiting for {what}; "
                                       f"end of {process.log}:\n{_indent(process.log_tail())}")
            try:
                if condition():
                    if not self.quiet:
                        self.log(f"  {what}: ok ({time.monotonic() - self.started:.1f}s)")
                    return
            except ApiError:
                pass
            if time.monotonic() > self.deadline:
                culprit = self.state.process(component)
                tail = f"; end of {culprit.log}:\n{_indent(culprit.log_tail())}" if culprit else ""
                raise SandboxError(f"{component}: timed out waiting for {what} (raise --timeout){tail}")
            time.sleep(POLL)


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE  # only for /healthz of self-signed loopback servers


def _healthz(port: int) -> bool:
    """Anonymous /healthz of the controller-manager or scheduler (allowed without credentials)."""
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=_INSECURE, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _bindable(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:port now (Go servers set SO_REUSEADDR too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _etcd_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


def _readyz(client: ApiClient) -> bool:
    return bool(client.get("/readyz") == "ok")


def _exists(client: ApiClient, path: str) -> bool:
    try:
        client.get(path)
        return True
    except ApiError as error:
        if error.status == 404:
            return False
        raise


def _ready_count(client: ApiClient, names: list[str]) -> int:
    items = client.get("/api/v1/nodes").get("items", [])
    ready = {n["metadata"]["name"] for n in items
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", []))}
    return len(ready & set(names))


def _nodes_ready(client: ApiClient, names: list[str]) -> bool:
    return _ready_count(client, names) == len(names)
