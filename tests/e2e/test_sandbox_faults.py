"""Control-plane faults (issue 18 item 3 b, c, f) on a sandbox of this module's own, with an operator of its own:
`ecs-operator sandbox stop|restart COMPONENT` takes kube-apiserver or etcd away and brings it back with the same
flags and all state, while an ECS Service rolls out. Pass criteria, each able to fail:
- the operator recovers without a restart of its own (the same process, never exited);
- the rollout completes: one PRIMARY deployment of the new revision, COMPLETED, ECS's steady state;
- no duplicate and no lost task: exactly `desired` live tasks, every task started and stopped exactly once in the
  service's events, each ECS event exactly once;
- a Task (RunTask count 2) created during the outage (its `kubectl apply` issued while the component is down,
  retried as a user or a pipeline would until the API server takes it) runs after it: exactly 2 RUNNING tasks;
- watch streams cut by the API server (its shutdown ends every stream; an etcd restart makes it end them too):
  a change made while the operator is still cut off is applied after it, with the time measured.

The module's sandbox is separate (module-scoped, 1 kwok node, about 10 s to start) because these tests stop
control-plane components under everything; the session's sandbox is not touched. The measured times go to stderr
(`pytest -s` shows them) and the README's "What is guaranteed" section quotes them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from ecs_objects import status as ecs_status
from ecs_objects import task as ecs_task
from ecs_operator.sandbox.launcher import Sandbox
from operator_fixtures import REPO, Operator, kubectl_wait, reference_policy, wait_for
from service_support import (
    ECS_SERVICE,
    apply_all,
    cluster,
    deployment_of,
    is_live,
    is_ready,
    merge_patch,
    messages,
    pods,
    register,
    service,
    status,
    steady,
    task_definition,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Cluster

OUTAGE = 5.0
"""Seconds a component stays down: longer than the operator's reconnect back-off, short for CI."""


def measured(what: str, seconds: float) -> None:
    sys.stderr.write(f"\n[faults] {what}: {seconds:.1f}s\n")


@pytest.fixture(scope="module")
def fault_operator(fault_sandbox: tuple[Cluster, Sandbox],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    sandbox, _ = fault_sandbox
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl_wait(sandbox, "--for=condition=Established", "-f", str(REPO / "crds"))
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=reference_policy(sandbox))
    handle = Operator(env=sandbox.env, log_path=tmp_path_factory.mktemp("fault-operator") / "operator.log")
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
        tracebacks = handle.log().count("Traceback")
        if tracebacks:
            sys.stderr.write(f"fault operator log ({handle.log_path}) had {tracebacks} traceback(s)\n")


@pytest.fixture
def ns(fault_sandbox: tuple[Cluster, Sandbox], request: pytest.FixtureRequest) -> Iterator[str]:
    sandbox, _ = fault_sandbox
    name = "fault-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()[5:]).strip("-")[:40].strip("-")
    sandbox.kubectl("create", "namespace", name)
    yield name
    sandbox.kubectl("delete", "namespace", name, "--wait=false", check=False)


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", *args],
                          capture_output=True, text=True, timeout=300)


def restart(state: Sandbox, component: str) -> float:
    """`ecs-operator sandbox restart COMPONENT` (the CLI, as a user runs it); seconds until it returned."""
    began = time.monotonic()
    result = sandbox_cli("restart", component, "--state-dir", str(state.layout.root))
    assert result.returncode == 0, f"sandbox restart {component}:\n{result.stderr}{result.stdout}"
    return time.monotonic() - began


def stop(state: Sandbox, component: str) -> None:
    result = sandbox_cli("stop", component, "--state-dir", str(state.layout.root))
    assert result.returncode == 0, f"sandbox stop {component}:\n{result.stderr}{result.stdout}"


def task_ids(text: str) -> list[str]:
    return re.findall(r"\(task ([0-9a-f]{32})\)", text)


def uid(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["uid"]).replace("-", "")


def live_ready(sandbox: Cluster, namespace: str) -> int:
    return sum(1 for p in pods(sandbox, namespace, "ecs.operator.dev/service=web") if is_live(p) and is_ready(p))


class Retrying:
    """A `kubectl apply` issued now and retried until the API server takes it, in the background: what a user's
    pipeline does when the control plane is away."""

    def __init__(self, sandbox: Cluster, namespace: str, manifest: dict[str, Any]) -> None:
        self.attempts = 0
        self.accepted_at: float | None = None
        self._thread = threading.Thread(target=self._run, args=(sandbox, namespace, yaml.safe_dump(manifest)),
                                        daemon=True)
        self._thread.start()

    def _run(self, sandbox: Cluster, namespace: str, text: str) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            self.attempts += 1
            result = sandbox.kubectl("apply", "-n", namespace, "--request-timeout=5s", "-f", "-", input=text,
                                     check=False, timeout=30)
            if result.returncode == 0:
                self.accepted_at = time.monotonic()
                return
            time.sleep(0.5)

    def join(self) -> float:
        self._thread.join(timeout=150)
        assert self.accepted_at is not None, f"the Task was never accepted ({self.attempts} attempts)"
        return self.accepted_at


def test_restart_keeps_the_state_and_the_flags(fault_sandbox: tuple[Cluster, Sandbox]) -> None:
    """Each component restarted alone with `sandbox restart`: a new process with the recorded command line, the
    objects stored before it still there (the same uid), the sandbox running again."""
    sandbox, state = fault_sandbox
    sandbox.kubectl("create", "namespace", "fault-kept")
    kept = sandbox.kubectl("create", "configmap", "kept", "-n", "fault-kept", "--from-literal=k=v",
                           "-o", "jsonpath={.metadata.uid}").stdout
    before = state.read_state()
    assert before is not None
    for component in ("etcd", "kube-apiserver", "controller-manager", "scheduler", "kwok"):
        measured(f"sandbox restart {component}", restart(state, component))
    after = state.read_state()
    assert after is not None and state.running(after)
    assert [p.argv for p in after.processes] == [p.argv for p in before.processes]
    assert all(a.pid != b.pid for a, b in zip(after.processes, before.processes, strict=True))
    assert sandbox.kubectl("get", "configmap", "kept", "-n", "fault-kept", "-o", "jsonpath={.metadata.uid}").stdout == kept
    unknown = sandbox_cli("restart", "etc", "--state-dir", str(state.layout.root))
    assert unknown.returncode == 1 and "no component 'etc'" in unknown.stderr and "kube-apiserver" in unknown.stderr
    sandbox.kubectl("delete", "namespace", "fault-kept", "--wait=false")


def rollout_through(sandbox: Cluster, state: Sandbox, operator: Operator, namespace: str, component: str) -> None:
    """Service web (6 tasks, minimumHealthyPercent 100, maximumPercent 150: three waves of three) rolls from
    web:1 to web:2; in the middle `component` is stopped for OUTAGE seconds, a RunTask of count 2 is issued
    while it is down, then it is restarted. Everything must come out as if nothing had happened."""
    desired = 6
    pid = operator.process.pid if operator.process else None
    apply_all(sandbox, namespace, cluster())
    register(sandbox, namespace, task_definition(), 1)
    apply_all(sandbox, namespace, service(desired=desired,
                                          deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 150}))
    steady(sandbox, namespace, "web:1", desired)
    initial = {uid(p) for p in pods(sandbox, namespace) if is_live(p)}
    register(sandbox, namespace, task_definition(image="nginx:2"), 2)

    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"taskDefinition": "web:2"}})
    rolling = wait_for(lambda: len((s := status(sandbox, namespace)).get("deployments") or []) == 2 and s, 60,
                       what="the new PRIMARY deployment")
    new_id = rolling["deployments"][0]["id"]
    wait_for(lambda: any(deployment_of(p) == new_id for p in pods(sandbox, namespace)), 60, interval=0.2,
             what="a web:2 task")
    old_left = [p for p in pods(sandbox, namespace) if deployment_of(p) != new_id and is_live(p)]
    stop(state, component)
    stopped_at = time.monotonic()
    run = Retrying(sandbox, namespace, ecs_task("during", "web", count=2))
    time.sleep(OUTAGE)  # the outage under test, not a wait for a condition
    assert run.accepted_at is None, "the API server took a write while the component was down"
    measured(f"{component} back (sandbox restart)", restart(state, component))
    back_at = time.monotonic()
    accepted_at = run.join()

    wait_for(lambda: len(pods(sandbox, namespace, "ecs.operator.dev/task=during")) == 2, 120, interval=0.2,
             what="the Pods of the Task of the outage")
    measured(f"{component}: Pods of the Task issued during the outage created after the restart",
             time.monotonic() - back_at)
    done = wait_for(lambda: (s := status_of_task(sandbox, namespace)).get("runningCount") == 2 and s, 120,
                    what="the Task of the outage RUNNING")
    measured(f"{component}: Task issued during the outage RUNNING after the restart", time.monotonic() - back_at)
    try:
        final = steady(sandbox, namespace, "web:2", desired, timeout=180)
    except AssertionError as error:
        raise AssertionError(f"{error}\nservice status: {json.dumps(status(sandbox, namespace), indent=1)}\n"
                             f"pods: {[(p['metadata']['name'], deployment_of(p), is_ready(p)) for p in pods(sandbox, namespace)]}\n"
                             f"operator log: {operator.log_path}") from None
    measured(f"{component}: rollout COMPLETED after the restart", time.monotonic() - back_at)
    measured(f"{component}: outage (stop to restarted)", back_at - stopped_at)
    measured(f"{component}: Task accepted after the restart", max(0.0, accepted_at - back_at))

    assert operator.process is not None and operator.process.poll() is None and operator.process.pid == pid, \
        "the operator exited or was restarted"
    assert old_left, "the rollout had finished before the outage"
    assert [d["id"] for d in final["deployments"]] == [new_id]
    now = [p for p in pods(sandbox, namespace, "ecs.operator.dev/service=web") if is_live(p)]
    assert len(now) == desired and {deployment_of(p) for p in now} == {new_id}
    said = messages(final)
    started = [t for m in said if " has started " in m for t in task_ids(m)]
    stopped = [t for m in said if " has stopped " in m for t in task_ids(m)]
    assert sorted(started) == sorted(initial | {uid(p) for p in now}), "a task started twice, or not reported"
    assert sorted(stopped) == sorted(initial), "an old task stopped twice, or not reported"
    once = [m for m in said if "has reached a steady state" not in m]
    assert len(once) == len(set(once)), f"an ECS event twice: {once}"
    assert said.count(f"(service web) (deployment {new_id}) deployment completed.") == 1
    assert final["runningCount"] == desired and final["pendingCount"] == 0

    during = [p for p in pods(sandbox, namespace, "ecs.operator.dev/task=during")]
    assert sorted(p["metadata"]["name"] for p in during) == ["during-0", "during-1"]
    assert {r["lastStatus"] for r in done["tasks"]} == {"RUNNING"} and len(done["tasks"]) == 2
    assert {r["taskArn"].rsplit("/", 1)[1] for r in done["tasks"]} == {uid(p) for p in during}


def status_of_task(sandbox: Cluster, namespace: str) -> dict[str, Any]:
    return ecs_status(sandbox, "task", "during", namespace)


def test_kube_apiserver_restarted_mid_rollout(fault_sandbox: tuple[Cluster, Sandbox], fault_operator: Operator,
                                              ns: str) -> None:
    sandbox, state = fault_sandbox
    rollout_through(sandbox, state, fault_operator, ns, "kube-apiserver")


def test_etcd_restarted_mid_rollout(fault_sandbox: tuple[Cluster, Sandbox], fault_operator: Operator, ns: str) -> None:
    sandbox, state = fault_sandbox
    rollout_through(sandbox, state, fault_operator, ns, "etcd")


def replicas(sandbox: Cluster, namespace: str) -> int:
    """What the operator asked of Kubernetes for service web: its Deployments' replicas."""
    items = sandbox.kubectl_json("get", "deployments", "-n", namespace, "-l", "ecs.operator.dev/service=web")["items"]
    return sum(d["spec"].get("replicas", 0) for d in items)


def scale_and_time(sandbox: Cluster, namespace: str, count: int,
                   before: Callable[[], None] | None = None) -> tuple[float, float]:
    """Seconds from a desiredCount change to the operator's Deployment asking for `count` (the operator's part),
    and to `count` live, ready tasks (the controller-manager, scheduler and kwok after it). `before`: the cut."""
    if before:
        before()
    began = time.monotonic()
    merge_patch(sandbox, namespace, ECS_SERVICE, "web", {"spec": {"desiredCount": count}})
    wait_for(lambda: replicas(sandbox, namespace) == count, 120, interval=0.2, what=f"the Deployment at {count}")
    written = time.monotonic() - began
    wait_for(lambda: live_ready(sandbox, namespace) == count, 120, interval=0.2, what=f"{count} tasks")
    return written, time.monotonic() - began


def test_a_change_made_while_watches_are_cut_is_applied(fault_sandbox: tuple[Cluster, Sandbox],
                                                        fault_operator: Operator, ns: str) -> None:
    """The API server ends every watch stream when it shuts down, and when etcd comes back (its watch cache
    starts again). The change is made the moment the API server answers again: the operator's watches are still
    broken then (it learns of the cut only when its streams end, and reconnects with back-off). It must be
    applied, and the time it takes is measured beside the same change with no cut."""
    sandbox, state = fault_sandbox
    pid = fault_operator.process.pid if fault_operator.process else None
    apply_all(sandbox, ns, cluster())
    register(sandbox, ns, task_definition(), 1)
    apply_all(sandbox, ns, service(desired=1))
    steady(sandbox, ns, "web:1", 1)

    def report(what: str, times: tuple[float, float]) -> None:
        measured(f"{what}: the operator's Deployment changed", times[0])
        measured(f"{what}: the tasks RUNNING", times[1])

    report("desiredCount change, no cut", scale_and_time(sandbox, ns, 2))

    def cut(component: str) -> Callable[[], None]:
        def run() -> None:
            stop(state, component)
            time.sleep(OUTAGE)  # every stream is broken now
            restart(state, component)
        return run

    report("desiredCount change made as kube-apiserver came back", scale_and_time(sandbox, ns, 3, cut("kube-apiserver")))
    report("desiredCount change made as etcd came back", scale_and_time(sandbox, ns, 4, cut("etcd")))
    final = steady(sandbox, ns, "web:1", 4)
    assert fault_operator.process is not None and fault_operator.process.poll() is None
    assert fault_operator.process.pid == pid
    said = messages(final)
    started = [t for m in said if " has started " in m for t in task_ids(m)]
    assert len(started) == len(set(started)) == 4
    assert len([p for p in pods(sandbox, ns) if is_live(p)]) == 4
