"""High availability: two `ecs-operator run --leader-elect` processes against the sandbox share one Lease.

Exactly one acts (the holder; the other's log shows no handling), and when the leader is SIGKILLed (no
release: the standby waits out the lease duration) or SIGTERMed (it releases the Lease on the way out), the
other takes the Lease and a new Task gets its Pod; a leader cut off from the API server exits before the
standby takes over; a leader that finds the Lease taken exits; the chart's rollout, replayed with processes,
pauses reconciliation less than a failover. The measured times are printed and bounded.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from ecs_objects import apply_all, cluster, container, pods, task, task_definition, wait_task
from operator_fixtures import Operator, wait_for

if TYPE_CHECKING:
    from conftest import Cluster

LEASE_DURATION, RETRY_PERIOD = 15, 2  # the defaults, which the processes run with
STARTUP_MARGIN = 8  # kopf's start-up (lists and watches every kind) and a loaded 2-CPU machine


def holder(sandbox: Cluster, namespace: str, name: str) -> str:
    result = sandbox.kubectl("get", "lease", name, "-n", namespace, "-o", "json", check=False)
    return str(json.loads(result.stdout)["spec"].get("holderIdentity") or "") if result.returncode == 0 else ""


def identity(op: Operator) -> str:
    assert op.process is not None
    return f"{socket.gethostname()}_{op.process.pid}"


def handled(op: Operator, name: str) -> bool:
    """Whether the operator's log shows it handling object `name` (each line names it `namespace/name`)."""
    return any(re.search(rf"/{re.escape(name)}\b", line) for line in op.log().splitlines() if "leader election" not in line)


@pytest.fixture
def replicas(sandbox: Cluster, crds: None, namespace: str, tmp_path: Path, running_operator: Operator) -> Any:
    """Four replicas with leader election. The session's operator (no election) is stopped meanwhile: it
    would act on the same objects beside the leader (it once deleted a Pod the leader had just made)."""
    lease = "ecs-operator-e2e"
    args = ("--leader-elect", "--leader-election-namespace", namespace, "--lease-name", lease)
    ops = [Operator(env=sandbox.env, log_path=tmp_path / f"replica-{i}.log", extra_args=args) for i in range(4)]
    running_operator.stop()
    try:
        yield lease, ops
    finally:
        for op in ops:
            op.stop(kill=True)
        running_operator.start()


def pod_of(sandbox: Cluster, namespace: str, name: str) -> bool:
    return bool(pods(sandbox, namespace, name))


def test_one_replica_acts_and_the_other_takes_over_when_it_is_killed_or_stopped(
    sandbox: Cluster, namespace: str, replicas: Any
) -> None:
    lease, (a, b, c, _) = replicas
    a.start()
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(a), timeout=60, what="replica a to take the Lease")
    b.start()
    wait_for(lambda: "standby" in b.log(), timeout=30, what="replica b to wait as standby")

    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web")), task("first", "web"))
    wait_task(sandbox, namespace, "first", "RUNNING", timeout=90)
    assert holder(sandbox, namespace, lease) == identity(a)
    assert handled(a, "first") and not handled(b, "first"), "only the leader handles objects"
    assert "Starting Kopf" not in b.log() and b.process is not None and b.process.poll() is None

    # SIGKILL: nothing released, the standby waits out the lease duration from the last renewal it saw
    killed = time.monotonic()
    a.stop(kill=True)
    apply_all(sandbox, namespace, task("after-kill", "web"))
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(b), timeout=60, interval=0.2, what="b to take the Lease")
    acquired_kill = time.monotonic() - killed
    wait_for(lambda: pod_of(sandbox, namespace, "after-kill"), timeout=60, interval=0.2, what="a Pod for the Task after the kill")
    acting_kill = time.monotonic() - killed

    # SIGTERM: the leader releases the Lease once kopf stopped; the standby takes it at its next try
    c.start()
    wait_for(lambda: "standby" in c.log(), timeout=30, what="replica c to wait as standby")
    stopping = time.monotonic()
    b.stop()
    stopped = time.monotonic() - stopping
    apply_all(sandbox, namespace, task("after-stop", "web"))
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(c), timeout=60, interval=0.2, what="c to take the Lease")
    acquired_stop = time.monotonic() - stopping
    wait_for(lambda: pod_of(sandbox, namespace, "after-stop"), timeout=60, interval=0.2, what="a Pod for the Task after the stop")
    acting_stop = time.monotonic() - stopping

    print(f"\nfailover after SIGKILL: Lease taken {acquired_kill:.1f}s, new Task's Pod {acting_kill:.1f}s after the kill"
          f"\nfailover after SIGTERM: old leader exited in {stopped:.1f}s, Lease taken {acquired_stop:.1f}s, "
          f"new Task's Pod {acting_stop:.1f}s after the signal")
    assert "released Lease" in b.log()
    assert not handled(c, "first") or handled(c, "after-stop")  # c acted only once it led
    assert acquired_kill < LEASE_DURATION + 2 * RETRY_PERIOD + 3, acquired_kill
    assert acting_kill < LEASE_DURATION + 2 * RETRY_PERIOD + STARTUP_MARGIN, acting_kill
    assert acquired_stop - stopped < RETRY_PERIOD + 2, (stopped, acquired_stop)
    assert acting_stop - stopped < RETRY_PERIOD + STARTUP_MARGIN, (stopped, acting_stop)
    wait_task(sandbox, namespace, "after-stop", "RUNNING", timeout=60)


def test_a_leader_that_finds_the_lease_taken_exits_at_once(sandbox: Cluster, namespace: str, replicas: Any) -> None:
    """The Lease taken by another holder (as a partitioned leader could find on its return) stops the
    process at its next renewal, with a non-zero status so that its container restarts."""
    lease, (a, _, _, _) = replicas
    a.start()
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(a), timeout=60, what="replica a to take the Lease")
    taken = time.monotonic()
    sandbox.kubectl("patch", "lease", lease, "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"holderIdentity": "someone-else"}}))
    assert a.process is not None
    code = a.process.wait(timeout=30)
    exited = time.monotonic() - taken
    print(f"\nleader exited {exited:.1f}s after losing the Lease (status {code})")
    assert code == 1 and exited < RETRY_PERIOD + 3
    assert "leader election lost" in a.log()


def created(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def test_a_rolling_update_pauses_reconciliation_less_than_a_failover(
    sandbox: Cluster, namespace: str, replicas: Any
) -> None:
    """The chart's rollout (maxSurge 1, maxUnavailable 0) with processes: old replicas a (leader) and b, then
    new c starts and a leader is stopped, new d starts and the last old one is stopped. A Task is created
    every second throughout; the longest wait from a Task's creation to its Pod's is the reconciliation gap."""
    lease, (a, b, c, d) = replicas
    a.start()
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(a), timeout=60, what="replica a to take the Lease")
    b.start()
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web")), task("warm", "web"))
    wait_task(sandbox, namespace, "warm", "RUNNING", timeout=90)

    stop, names = threading.Event(), []

    def probe() -> None:
        while not stop.is_set():
            names.append(f"probe-{len(names)}")
            apply_all(sandbox, namespace, task(names[-1], "web"))
            stop.wait(1)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for new, old_pair in ((c, (a, b)), (d, (a, b))):
            new.start()
            wait_for(lambda new=new: "standby" in new.log(), timeout=30, what="the new replica to wait as standby")
            # the rollout stops an old replica; the worst case is the leader, when it is still an old one
            running = [op for op in old_pair if op.process is not None]
            leader = next((op for op in running if holder(sandbox, namespace, lease) == identity(op)), running[0])
            leader.stop()
            time.sleep(3)
        wait_for(lambda: holder(sandbox, namespace, lease) in (identity(c), identity(d)), timeout=30,
                 what="a new replica to lead")
        time.sleep(3)
    finally:
        stop.set()
        prober.join()
    tasks = {t["metadata"]["name"]: t for t in sandbox.kubectl_json("get", "tasks.ecs.operator.dev", "-n", namespace)["items"]}
    wait_for(lambda: all(pods(sandbox, namespace, name) for name in names), timeout=60, what="every probe Task's Pod")
    gaps = {name: (created(pods(sandbox, namespace, name)[0]) - created(tasks[name])).total_seconds() for name in names}
    longest = max(gaps.values())
    print(f"\nrolling update: {len(names)} Tasks created 1 s apart; longest Task-to-Pod wait {longest:.0f}s "
          f"(timestamps have 1 s resolution); leader handovers: {sum('released Lease' in op.log() for op in (a, b))}")
    assert longest <= 2 * (RETRY_PERIOD + 3), gaps  # a clean handover or two, far below the SIGKILL failover (~16 s)


class Cuttable:
    """A loopback TCP relay to the API server that can be cut: the leader's only way to it."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.cut_off = target, threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.cut_off.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off.is_set():
                client.close()
                return
            upstream = socket.create_connection(self.target)
            self.connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def cut(self) -> None:
        self.cut_off.set()
        self.listener.close()
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


def test_a_leader_cut_off_from_the_api_server_exits_before_the_standby_takes_over(
    sandbox: Cluster, namespace: str, replicas: Any, tmp_path: Path
) -> None:
    """A network partition: the leader's connections to the API server are cut. It must stop acting (exit)
    within the renew deadline, before the standby, which still reaches the API server, takes the Lease."""
    lease, (a, b, _, _) = replicas
    config = json.loads(sandbox.kubectl("config", "view", "--raw", "--minify", "--flatten", "-o", "json").stdout)
    server = config["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    relay = Cuttable((host, int(port)))
    config["clusters"][0]["cluster"]["server"] = f"https://{host}:{relay.port}"
    kubeconfig = tmp_path / "through-relay.kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    a.start(env={**sandbox.env, "KUBECONFIG": str(kubeconfig)})
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(a), timeout=60, what="replica a to take the Lease")
    b.start()
    wait_for(lambda: "standby" in b.log(), timeout=30, what="replica b to wait as standby")
    assert a.process is not None
    process = a.process

    cut = time.monotonic()
    relay.cut()
    code = process.wait(timeout=30)
    exited = time.monotonic() - cut
    wait_for(lambda: holder(sandbox, namespace, lease) == identity(b), timeout=60, interval=0.2, what="b to take the Lease")
    acquired = time.monotonic() - cut
    apply_all(sandbox, namespace, cluster(), task_definition("web", container("web")), task("after-cut", "web"))
    wait_task(sandbox, namespace, "after-cut", "RUNNING", timeout=60)
    print(f"\nleader cut off: exited {exited:.1f}s after the cut (status {code}), "
          f"standby took the Lease {acquired:.1f}s after it")
    assert code == 1 and "leader election lost" in a.log()
    assert exited < 10 + 2, exited  # the renew deadline, checked every 0.5 s
    assert exited < acquired, "the old leader must have stopped before the new one starts"
    assert acquired < LEASE_DURATION + 2 * RETRY_PERIOD + 3, acquired
