"""Faults, each with a pass criterion that can fail (issue 18.3 (a), (d), (e) and the defects found with them):
the operator SIGKILLed at random moments during a rollout and RunTasks, a container instance's Node
deleted, the leader of two replicas killed during a rollout, draining in a namespace being deleted, and the
Events of tasks that wait for capacity while it comes up node by node.

Everything runs against the sandbox's real control plane; a fault is a real kill, deletion or refusal.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecs_objects import API, apply_all, container, events, kwok_nodes, status, task, task_definition, unique
from operator_fixtures import Operator, wait_for
from service_support import api_client, is_live, watch_pods

from ecs_operator import labels as L
from ecs_operator.adapters.kube import Kube
from ecs_operator.lifecycle.pods import unschedulable_message

if TYPE_CHECKING:
    from conftest import Cluster

SERVICES = "services.ecs.operator.dev"
KILLS = 20
"""SIGKILLs during the rollout (the issue's number)."""
PLACEMENT_EVENT = "TaskPlacementFailed"


def ids(message: str) -> list[str]:
    return re.findall(r"\(task ([0-9a-f]+)\)", message)


def service_manifest(name: str, cluster_name: str, revision: str, desired: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Service", "metadata": {"name": name},
            "spec": {"serviceName": name, "cluster": cluster_name, "taskDefinition": revision, "desiredCount": desired,
                     "launchType": "EC2", **spec}}


def task_pods(sandbox: Cluster, namespace: str) -> list[dict[str, Any]]:
    return list(sandbox.kubectl_json("get", "pods", "-n", namespace)["items"])


def rolled_out(sandbox: Cluster, namespace: str, names: list[str], revision: str, desired: int) -> bool:
    found = {s["metadata"]["name"]: s.get("status") or {}
             for s in sandbox.kubectl_json("get", SERVICES, "-n", namespace)["items"]}
    return all((st := found.get(n, {})).get("taskDefinition") == revision and st.get("rolloutState") == "COMPLETED"
               and st.get("runningCount") == desired and len(st.get("deployments") or []) == 1 for n in names)


# --- (a) the operator SIGKILLed 20 times during a rollout of 30 services and 50 RunTasks ---------------------------


def test_twenty_operator_kills_during_a_rollout_and_run_tasks_lose_and_repeat_nothing(
        sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    """30 services of 2 tasks roll out from web:1 to web:2 while 50 RunTasks (count 1-3) are made and the
    operator is SIGKILLed 20 times at random moments (restarted at once, as a Deployment's kubelet would).
    Afterwards: every rollout COMPLETED on web:2, every RunTask exactly its count of tasks and Pods (none
    twice, none lost), and every service task in exactly one "has started" event, every replaced one in
    exactly one "has stopped" event (ECS events are never lost or repeated)."""
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    name = unique("kills")
    names = [f"svc-{i:02d}" for i in range(30)]
    small = container("web", memory=8, cpu=2)
    bounds = {"minimumHealthyPercent": 100, "maximumPercent": 150}  # one task at a time: the rollout lasts
    with kwok_nodes(sandbox, [f"{name}-{i}" for i in range(5)], name, namespace, type_name="m5.2xlarge"):
        apply_all(sandbox, namespace, {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": {}},
                  task_definition("web", small),
                  *(service_manifest(n, name, "web:1", 2, deploymentConfiguration=bounds) for n in names))
        started = time.monotonic()
        wait_for(lambda: rolled_out(sandbox, namespace, names, "web:1", 2), timeout=300, interval=2,
                 what="30 services COMPLETED on web:1")
        settled = time.monotonic()
        first = {p["metadata"]["uid"].replace("-", ""): p["metadata"]["labels"][L.SERVICE] for p in task_pods(sandbox, namespace)}

        apply_all(sandbox, namespace, task_definition("web", {**small, "environment": [{"name": "V", "value": "2"}]}))
        wait_for(lambda: (status(sandbox, "taskdefinition", "web", namespace).get("revision") == 2), timeout=60,
                 what="web:2 registered")
        counts = {f"run-{i:02d}": rng.randint(1, 3) for i in range(50)}
        pending = list(counts)

        def run_tasks() -> None:  # RunTask calls spread over the kills
            while pending:
                task_name = pending.pop(0)
                apply_all(sandbox, namespace, task(task_name, "web", cluster=name, count=counts[task_name]))
                time.sleep(rng.uniform(0.2, 1.5))

        apply_all(sandbox, namespace, *(service_manifest(n, name, "web:2", 2, deploymentConfiguration=bounds) for n in names))
        runner = threading.Thread(target=run_tasks)
        runner.start()
        moments: list[float] = []
        try:
            for _ in range(KILLS):
                moments.append(round(rng.uniform(0.3, 6.0), 1))
                time.sleep(moments[-1])
                running_operator.restart(kill=True)
        finally:
            runner.join()
            if running_operator.process is None:
                running_operator.start()
        killed = time.monotonic()
        print(f"\n30 services COMPLETED on web:1 in {settled - started:.0f}s; kills (seed {seed}) after {moments} s")

        wait_for(lambda: rolled_out(sandbox, namespace, names, "web:2", 2), timeout=300, interval=2,
                 what="30 services COMPLETED on web:2")

        def tasks_done() -> dict[str, dict[str, Any]]:
            found = {t["metadata"]["name"]: t.get("status") or {}
                     for t in sandbox.kubectl_json("get", "tasks.ecs.operator.dev", "-n", namespace)["items"]}
            return found if len(found) == 50 and all(s.get("lastStatus") == "RUNNING" for s in found.values()) else {}

        tasks = wait_for(tasks_done, timeout=180, interval=2, what="50 RunTasks RUNNING")
        print(f"converged {time.monotonic() - killed:.0f}s after the last kill")
        pods = task_pods(sandbox, namespace)
        services = sandbox.kubectl_json("get", SERVICES, "-n", namespace)["items"]
    per_task = Counter(p["metadata"]["labels"][L.TASK] for p in pods if L.TASK in p["metadata"]["labels"])
    assert {n: len(s["tasks"]) for n, s in tasks.items()} == counts, "each RunTask has exactly its count of tasks"
    assert dict(per_task) == counts, "each RunTask has exactly its count of Pods: none duplicated, none lost"
    arns = [t["taskArn"] for s in tasks.values() for t in s["tasks"]]
    assert len(arns) == len(set(arns)) == sum(counts.values())

    problems = {}
    for svc in services:
        label = L.group_label_value(svc["metadata"]["name"])
        said = [e["message"] for e in svc["status"]["events"]]
        started_ids = Counter(t for m in said if ") has started " in m for t in ids(m))
        stopped_ids = Counter(t for m in said if ") has stopped " in m for t in ids(m))
        old = {t for t, s in first.items() if s == label}
        live = {p["metadata"]["uid"].replace("-", "") for p in pods
                if p["metadata"]["labels"].get(L.SERVICE) == label and is_live(p)}
        wrong = {"started twice": [t for t, n in started_ids.items() if n > 1],
                 "stopped twice": [t for t, n in stopped_ids.items() if n > 1],
                 "never reported started": sorted((old | live) - set(started_ids)),
                 "replaced, never reported stopped": sorted(old - set(stopped_ids)),
                 "web:1 tasks": [] if len(old) == 2 and not old & live else sorted(old)}
        if any(wrong.values()):
            problems[svc["metadata"]["name"]] = {k: v for k, v in wrong.items() if v}
    assert not problems, json.dumps(problems, indent=1)


# --- (d) a container instance's Node deleted ------------------------------------------------------------------------


def test_a_deleted_node_stops_its_tasks_at_once_as_a_terminated_host(
        sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    """A Node with a service's 2 tasks and a RunTask of 2 is deleted (its instance terminated). ECS: the
    standalone tasks STOPPED at once, every container STOPPED, stoppedReason naming the host; the service's
    tasks replaced on another instance with an event naming the host; the ContainerInstance gone. Without
    the operator acting, the Pod garbage collector removes the Pods only 40 s later."""
    name = unique("lost")
    victim, spare = f"{name}-a", f"{name}-b"
    with kwok_nodes(sandbox, [victim], name, namespace):
        apply_all(sandbox, namespace, {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": {}},
                  task_definition("web", container("web", memory=64)), service_manifest("svc", name, "web", 2),
                  task("solo", "web", cluster=name, count=2))
        wait_for(lambda: status(sandbox, "task", "solo", namespace).get("lastStatus") == "RUNNING"
                 and status(sandbox, SERVICES, "svc", namespace).get("runningCount") == 2, timeout=90,
                 what="the RunTask and the service's tasks RUNNING on the one instance")
        before = {p["metadata"]["uid"] for p in task_pods(sandbox, namespace)}
        with kwok_nodes(sandbox, [spare], name, namespace):
            deleted = time.monotonic()
            sandbox.kubectl("delete", "node", victim, "--wait=false")
            solo = wait_for(lambda: (s := status(sandbox, "task", "solo", namespace)).get("lastStatus") == "STOPPED" and s,
                            timeout=60, interval=0.2, what="the RunTask STOPPED")
            stopped_after = time.monotonic() - deleted
            replaced = wait_for(lambda: (s := status(sandbox, SERVICES, "svc", namespace)).get("runningCount") == 2
                                and {p["metadata"]["uid"] for p in task_pods(sandbox, namespace)
                                     if p["metadata"]["labels"].get("ecs.operator.dev/service") and is_live(p)
                                     and p["spec"].get("nodeName") == spare} and s,
                                timeout=60, interval=0.2, what="the service's tasks replaced on the spare instance")
            replaced_after = time.monotonic() - deleted
            wait_for(lambda: sandbox.kubectl("get", "containerinstance", victim, check=False).returncode != 0,
                     timeout=60, what="the ContainerInstance gone with its Node")
            print(f"\nRunTask STOPPED {stopped_after:.1f}s and service tasks replaced {replaced_after:.1f}s after the "
                  "Node's deletion")
            reason = f"Host EC2 (instance {victim}) stopped/terminated"
            assert (solo["stopCode"], solo["stoppedReason"]) == ("TerminationNotice", reason), solo
            for record in solo["tasks"]:
                assert (record["lastStatus"], record["stopCode"], record["stoppedReason"]) == (
                    "STOPPED", "TerminationNotice", reason)
                assert {c["lastStatus"] for c in record["containers"]} == {"STOPPED"}, record["containers"]
            # the round that stops the lost tasks writes their event after the deletions: the replacements can be
            # seen (and runningCount still 2 from before) a moment before that status write
            def stop_event() -> dict[str, Any] | None:
                s = status(sandbox, SERVICES, "svc", namespace)
                said = [e["message"] for e in s.get("events") or []]
                return s if any(m.startswith("(service svc) has stopped 2 running tasks: ") and m.endswith(f"Reason: {reason}")
                                for m in said) else None
            replaced = wait_for(stop_event, timeout=30, interval=0.2, what=f"the service's event of the 2 tasks stopped: {reason}")
            assert replaced["deployments"][0].get("failedTasks", 0) == 0  # the host failed, not the tasks
            assert stopped_after < 20, "the Pod garbage collector's 40 s must not be what stops the tasks"
            assert not before & {p["metadata"]["uid"] for p in task_pods(sandbox, namespace)}, "the lost Pods are gone"


# --- (e) the leader killed during a rollout: the other replica finishes it ------------------------------------------


def test_the_standby_finishes_a_rollout_when_the_leader_is_killed(
        sandbox: Cluster, namespace: str, running_operator: Operator, tmp_path: Path) -> None:
    """Two `--leader-elect` replicas (the session's operator stopped meanwhile: it would act too). A rollout of
    6 services starts; the leader is SIGKILLed before it completes; the standby takes the Lease and completes
    every rollout, and it alone acts afterwards."""
    running_operator.stop()
    lease = "ecs-operator-faults"
    args = ("--leader-elect", "--leader-election-namespace", namespace, "--lease-name", lease)
    a, b = (Operator(env=sandbox.env, log_path=tmp_path / f"replica-{x}.log", extra_args=args) for x in "ab")
    try:
        a.start()
        wait_for(lambda: _holder(sandbox, namespace, lease).endswith(f"_{a.process.pid}" if a.process else "-"),
                 timeout=60, what="replica a to lead")
        b.start()
        wait_for(lambda: "standby" in b.log(), timeout=30, what="replica b standing by")
        names = [f"svc-{i}" for i in range(6)]
        small = container("web", memory=8, cpu=2)
        name = unique("failover")
        bounds = {"minimumHealthyPercent": 100, "maximumPercent": 150}  # one task at a time: the rollout lasts
        with kwok_nodes(sandbox, [f"{name}-0"], name, namespace, type_name="m5.2xlarge"):
            apply_all(sandbox, namespace, {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": {}},
                      task_definition("web", small),
                      *(service_manifest(n, name, "web:1", 2, deploymentConfiguration=bounds) for n in names))
            wait_for(lambda: rolled_out(sandbox, namespace, names, "web:1", 2), timeout=120, interval=1,
                     what="6 services COMPLETED on web:1")
            apply_all(sandbox, namespace, task_definition("web", {**small, "environment": [{"name": "V", "value": "2"}]}))
            wait_for(lambda: status(sandbox, "taskdefinition", "web", namespace).get("revision") == 2, timeout=60,
                     what="web:2 registered")
            apply_all(sandbox, namespace, *(service_manifest(n, name, "web:2", 2, deploymentConfiguration=bounds) for n in names))
            wait_for(lambda: any((status(sandbox, SERVICES, n, namespace).get("deployments") or [{}])[0].get("taskDefinition")
                                 == "web:2" for n in names), timeout=30, interval=0.2, what="the rollout started")
            in_progress = sum(not rolled_out(sandbox, namespace, [n], "web:2", 2) for n in names)
            killed = time.monotonic()
            a.stop(kill=True)
            wait_for(lambda: rolled_out(sandbox, namespace, names, "web:2", 2), timeout=120, interval=1,
                     what="every rollout COMPLETED by the other replica")
            done = time.monotonic() - killed
        print(f"\n{in_progress} of 6 rollouts in progress at the kill; all COMPLETED {done:.1f}s after it")
        assert in_progress > 0, "the kill must come during the rollout"
        assert b.process is not None and b.process.poll() is None
        assert _holder(sandbox, namespace, lease).endswith(f"_{b.process.pid}"), "the other replica leads"
        assert "has reached a steady state" in b.log(), "the other replica finished the rollouts"
    finally:
        for op in (a, b):
            op.stop(kill=True)
        running_operator.start()


def _holder(sandbox: Cluster, namespace: str, name: str) -> str:
    result = sandbox.kubectl("get", "lease", name, "-n", namespace, "-o", "json", check=False)
    return str(json.loads(result.stdout)["spec"].get("holderIdentity") or "") if result.returncode == 0 else ""


# --- defect: an eviction in a namespace being deleted ---------------------------------------------------------------


def test_an_eviction_in_a_namespace_being_deleted_is_no_error(sandbox: Cluster) -> None:
    """The API server refuses an Eviction in a terminating namespace with 403 (NamespaceLifecycle); the Pod
    goes with its namespace, so draining counts it as going (it raised, and the drain retried with a
    traceback every 60 s)."""
    namespace = unique("e2e-terminating")
    sandbox.kubectl("create", "namespace", namespace)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "held", "namespace": namespace, "finalizers": ["e2e.test/hold"]},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    created = json.loads(sandbox.kubectl("create", "-f", "-", "-o", "json", input=json.dumps(pod)).stdout)
    try:
        sandbox.kubectl("delete", "namespace", namespace, "--wait=false")
        wait_for(lambda: sandbox.kubectl_json("get", "namespace", namespace)["status"].get("phase") == "Terminating",
                 timeout=30, what="the namespace Terminating")
        kube = Kube(api_client(sandbox))
        assert kube.evict(namespace, "held", uid=created["metadata"]["uid"]) is True
    finally:
        sandbox.kubectl("patch", "pod", "held", "-n", namespace, "--type=merge", "-p", '{"metadata": {"finalizers": null}}',
                        check=False)


# --- defect: TaskPlacementFailed re-posted as capacity comes up ------------------------------------------------------


def test_a_waiting_task_gets_one_placement_event_per_cause_while_nodes_come_up(
        sandbox: Cluster, namespace: str, running_operator: Operator) -> None:
    """5 RunTasks wait for memory no instance has; instances then come and go one by one (each changes the
    scheduler's message: "0/N nodes are available"). Each task gets one TaskPlacementFailed Event per cause,
    not one per change (22 Events per task were seen)."""
    name = unique("grow")
    waiting = [f"wait-{i}" for i in range(5)]
    apply_all(sandbox, namespace, {"apiVersion": API, "kind": "Cluster", "metadata": {"name": name}, "spec": {}},
              task_definition("big", container("big", memory=60000)), *(task(t, "big", cluster=name) for t in waiting))
    pods = watch_pods(sandbox, namespace)  # every change of the scheduler's message on the Pods
    with kwok_nodes(sandbox, [f"{name}-0"], name, namespace):
        wait_for(lambda: len({e["involvedObject"]["name"] for e in events(sandbox, namespace, reason=PLACEMENT_EVENT)}) == 5,
                 timeout=60, what="each task's first placement failure")
        for i in range(1, 6):  # one at a time: created, Ready, deleted
            with kwok_nodes(sandbox, [f"{name}-{i}"], name, namespace):
                time.sleep(1)
            time.sleep(1)
        time.sleep(3)  # the last changes reach the Tasks and their Events are posted
        posted = events(sandbox, namespace, reason=PLACEMENT_EVENT)
    pods.stop()
    messages = [m for c in pods.changes if c.object["metadata"]["labels"].get(L.TASK) == "wait-0"
                for m in [unschedulable_message(c.object)] if m]
    changes = sum(a != b for a, b in zip(messages, messages[1:], strict=False))
    per_task = Counter(e["involvedObject"]["name"] for e in posted)
    said = {t: [e["message"].split("waits in PROVISIONING: ")[1].split(" (")[0].split(", ")
                for e in posted if e["involvedObject"]["name"] == t] for t in waiting}
    print(f"\nwait-0's scheduler message changed {changes} times; TaskPlacementFailed Events per task: {dict(per_task)}; "
          f"wait-0's causes, Event by Event: {said['wait-0']}")
    assert changes >= 3, f"the scheduler's message must change for the test to mean something: {messages}"
    assert set(per_task) == set(waiting)
    for t, sequence in said.items():  # each Event announces a cause the task's earlier ones did not
        assert all(set(c) - {x for earlier in sequence[:i] for x in earlier} for i, c in enumerate(sequence)), (t, sequence)
