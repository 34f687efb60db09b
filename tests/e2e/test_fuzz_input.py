"""Bad input, fuzzed (issue 18 item 4): the corpus's task definitions and services, and a RunTask, mutated
field by field and applied.

Each mutation (deterministic seed) is applied to the sandbox as a user would (`kubectl apply`'s strict
field validation) and given to `ecs-operator convert --to k8s`. Pass: every one is refused at
admission naming the field, or gets Ready=False naming the ECS field (never a Pod path), or registers
(a revision and its ARN) with a Pod the API server accepts; convert exits 0 only when the API server
accepts its output (server-side dry-run), else 2 naming the path; each object is handled within a
bound, its Events are bounded, and the operator logs no traceback and keeps running.
"""

from __future__ import annotations

import copy
import io
import json
import os
import random
import re
import sys
import time
from collections import Counter
from contextlib import redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from ecs_objects import apply_all, cluster, condition, container, status, task, task_definition
from operator_fixtures import wait_for
from service_support import api_client

from ecs_operator import API_GROUP, API_VERSION
from ecs_operator.adapters.kube import RESOURCES, ApiError, Kube
from ecs_operator.cli import main
from ecs_operator.translate.policy import OPT_IN_LABEL

if TYPE_CHECKING:
    from operator_fixtures import Operator

    from conftest import Cluster

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
# CI's run is fixed; ECS_FUZZ_SEED / ECS_FUZZ_PER_KIND explore further (a failure prints its mutation).
SEED = int(os.environ.get("ECS_FUZZ_SEED", "18"))
PER_KIND = int(os.environ.get("ECS_FUZZ_PER_KIND", "14"))  # mutations of each kind: 11 kinds x 14 + the fixed cases
# Seconds from apply to a status, all applied at once (so each also waits for those before it): generous on a
# busy 2-CPU machine (96 objects took 26-64 s there, with other test runs beside it).
HANDLING_BASE, HANDLING_PER_OBJECT = 30.0, 0.4
EVENTS_BOUND = 3  # Events per refused or registered TaskDefinition
KINDS = ("wrong type", "empty", "null", "huge", "negative", "unknown enum", "unknown key", "10 kB string",
         "deep nesting", "unicode", "duplicate")
# The defects issue 18 lists, always among the mutations of a bridge-mode EC2 definition the namespace's
# workload policy allows: (name, path, value, the field the refusal must name)
FIXED_BASE = "volumesfrom-empty-host-volume-links"
FIXED: list[tuple[str, tuple[Any, ...], Any, str]] = [
    ("memory float", ("memory",), "999999999999999999999999999999", "memory: task memory must be 1-2147483647 MiB"),
    ("memory above 2^63", ("containerDefinitions", 0, "memory"), 2**63 + 7, "spec.containerDefinitions[0].memory"),
    ("extraHosts BOGUS_ENUM", ("containerDefinitions", 0, "extraHosts"), [{"hostname": "BOGUS_ENUM", "ipAddress": "10.0.0.1"}],
     "containerDefinitions[0].extraHosts[0].hostname: 'BOGUS_ENUM'"),
    ("10 kB links alias", ("containerDefinitions", 0, "links"), ["db:" + "a" * 10240], "containerDefinitions[0].links[0]: "),
    ("duplicate tmpfs", ("containerDefinitions", 0, "linuxParameters"),
     {"tmpfs": [{"containerPath": "/t", "size": 1}, {"containerPath": "/t", "size": 1}]},
     "containerDefinitions[0].linuxParameters.tmpfs[1].containerPath: '/t' is mounted twice"),
    ("dockerSecurityOptions BOGUS", ("containerDefinitions", 0, "dockerSecurityOptions"), ["BOGUS"],
     "containerDefinitions[0].dockerSecurityOptions[0]: must be no-new-privileges"),
]


@dataclass
class Mutation:
    name: str
    base: str
    kind: str
    path: tuple[Any, ...]
    spec: dict[str, Any]
    outcome: str = ""
    detail: str = ""
    seconds: float = 0.0
    convert_code: int = -1
    convert_err: str = ""
    expected: str = ""
    """For the fixed cases: what the refusal (admission or condition) must say."""

    @property
    def ecs_path(self) -> str:
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path).lstrip(".")


def corpus_task_definitions(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """The corpus's task definitions as `convert --to crs` makes them (wrappers and read-only fields handled)."""
    found: dict[str, dict[str, Any]] = {}
    for file in sorted(CORPUS.glob("*.json")):
        out = tmp_path / f"{file.stem}.yaml"
        with redirect_stderr(io.StringIO()):
            code = main(["convert", "--to", "crs", "--report", "none", "-o", str(out), str(file)])
        if code != 0:
            continue
        for doc in yaml.safe_load_all(out.read_text()):
            if doc and doc.get("kind") == "TaskDefinition":
                found[file.stem] = doc["spec"]
    return found


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths(value, (*prefix, i))
    return out


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def put(spec: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = spec
    for part in path[:-1]:
        node = node.setdefault(part, {}) if isinstance(node, dict) else node[part]
    node[path[-1]] = value


def mutated(kind: str, old: Any, rng: random.Random) -> tuple[Any, bool]:
    """(new value, whether `old` is replaced; False: the mutation changes `old` in place)."""
    if kind == "wrong type":
        return ({} if isinstance(old, (str, int, bool, list)) else "a string"), True
    if kind == "empty":
        return (type(old)() if isinstance(old, (str, list, dict)) else ""), True
    if kind == "null":
        return None, True
    if kind == "huge":
        return rng.choice([10**30, 2**63 + 1, 2**31, "9" * 30]), True
    if kind == "negative":
        return rng.choice([-1, -(2**31) - 1, -(10**20)]), True
    if kind == "unknown enum":
        return "BOGUS_ENUM", True
    if kind == "unknown key":
        if isinstance(old, dict):
            old["bogusKey"] = "x"
            return old, False
        return {"bogusKey": old}, True
    if kind == "10 kB string":
        return "x" * 10240, True
    if kind == "deep nesting":
        value: Any = old
        for _ in range(60):
            value = [value] if rng.random() < 0.5 else {"n": value}
        return value, True
    if kind == "unicode":
        return "ünïcødé ☃ 名前 \u202e\u0000"[: rng.randint(4, 16)], True
    if kind == "duplicate":
        if isinstance(old, list) and old:
            return [*old, copy.deepcopy(old[-1])], True
        return [old, copy.deepcopy(old)], True
    raise ValueError(kind)


def mutations(bases: dict[str, dict[str, Any]]) -> list[Mutation]:
    rng = random.Random(SEED)
    out: list[Mutation] = []
    names = sorted(bases)
    for kind in KINDS:
        for n in range(PER_KIND):
            base = names[rng.randrange(len(names))]
            spec = copy.deepcopy(bases[base])
            candidates = [p for p in paths(spec) if p[0] != "family"]
            path = rng.choice(candidates)
            value, replace = mutated(kind, get(spec, path), rng)
            if replace:
                put(spec, path, value)
            out.append(Mutation(f"fz-{KINDS.index(kind)}-{n}", base, kind, path, spec))
    for n, (what, path, value, expected) in enumerate(FIXED):
        spec = copy.deepcopy(bases[FIXED_BASE])
        put(spec, path, value)
        out.append(Mutation(f"fz-fixed-{n}", FIXED_BASE, what, path, spec, expected=expected))
    return out


def run_convert(tmp_path: Path, m: Mutation) -> list[dict[str, Any]]:
    """Exit code, stderr and output of `convert --to k8s` for the mutation (as a RegisterTaskDefinition file)."""
    source, out = tmp_path / f"{m.name}.json", tmp_path / f"{m.name}.yaml"
    source.write_text(json.dumps({**m.spec, "family": m.spec.get("family") or m.name}))
    err = io.StringIO()
    with redirect_stderr(err):
        m.convert_code = main(["convert", "--to", "k8s", "--report", "none", "-o", str(out), str(source)])
    m.convert_err = err.getvalue()
    return [d for d in yaml.safe_load_all(out.read_text()) if d] if m.convert_code == 0 else []


def create(kube: Kube, path: str, obj: dict[str, Any], *query: tuple[str, str]) -> None:
    """POST as kubectl apply creates: strict field validation (an unknown field is refused, not dropped)."""
    kube._call("POST", path, body=obj, query=[("fieldValidation", "Strict"), *query])


def dry_run(kube: Kube, namespace: str, obj: dict[str, Any]) -> str:
    """'' when the API server accepts `obj` (server-side dry-run), else its refusal."""
    try:
        if obj["kind"] == "PodTemplate":
            create(kube, f"/api/v1/namespaces/{namespace}/podtemplates", obj, ("dryRun", "All"))
        else:
            raise AssertionError(f"convert wrote a {obj['kind']} for a task definition")
    except ApiError as e:
        return str(e)
    return ""


def test_fuzzed_corpus_is_refused_reported_or_registered(sandbox: Cluster, namespace: str, tmp_path: Path,
                                                         running_operator: Operator) -> None:
    started = time.monotonic()
    log_before = len(running_operator.log())
    # the corpus has host-network, hostPID and SYS_ADMIN definitions: opted in, the namespace's workload policy
    # (tests/e2e/test_workload_policy.py) refuses none of them, so every mutation meets the Pod checks
    sandbox.kubectl("label", "namespace", namespace, f"{OPT_IN_LABEL}=true")
    bases = corpus_task_definitions(tmp_path)
    assert len(bases) >= 15, f"the corpus gave {len(bases)} task definitions"
    cases = mutations(bases)
    kube = Kube(api_client(sandbox))
    applied_at: dict[str, float] = {}
    for m in cases:  # applied as kubectl apply does: strict field validation
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "TaskDefinition",
                "metadata": {"name": m.name, "namespace": namespace}, "spec": m.spec}
        try:
            create(kube, RESOURCES["TaskDefinition"].path(namespace), body)
        except ApiError as e:
            assert e.status in (400, 422), f"{m.name}: {e}"
            m.outcome, m.detail = "admission", e.message
            assert "spec." in m.detail, f"{m.name} ({m.kind} at {m.ecs_path}): refused without a field: {m.detail}"
        else:
            applied_at[m.name] = time.monotonic()

    for m in cases:  # convert meanwhile: its verdict does not depend on the operator
        objects = run_convert(tmp_path, m)
        assert m.convert_code in (0, 2), f"{m.name}: convert exit {m.convert_code}: {m.convert_err}"
        assert "Traceback" not in m.convert_err
        if m.convert_code == 0:
            refusals = [r for obj in objects if (r := dry_run(kube, namespace, obj))]
            assert not refusals, f"{m.name} ({m.kind} at {m.ecs_path}): convert exited 0 but {refusals[0][:400]}"
        else:
            assert re.search(rf"{m.name}\.json: [A-Za-z]", m.convert_err), f"{m.name}: no path named: {m.convert_err}"

    pending = {m.name: m for m in cases if m.name in applied_at}
    bound = HANDLING_BASE + HANDLING_PER_OBJECT * len(pending)
    deadline = time.monotonic() + bound
    while pending and time.monotonic() < deadline:
        items = kube.list("TaskDefinition", namespace)
        now = time.monotonic()
        for item in items:
            m = pending.get(item["metadata"]["name"])
            status = item.get("status") or {}
            ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
            if m is None or ready is None or status.get("observedGeneration") != item["metadata"]["generation"]:
                continue
            m.seconds = now - applied_at[m.name]
            if ready["status"] == "True":
                m.outcome, m.detail = "registered", status.get("taskDefinitionArn", "")
                assert status.get("revision", 0) >= 1 and m.detail.endswith(f":{status['revision']}"), (m.name, status)
            else:
                m.outcome, m.detail = "condition", f"{ready['reason']}: {ready['message']}"
                assert not re.search(r"\bspec\.(containers|initContainers|hostAliases|volumes|dnsConfig)", m.detail), (
                    f"{m.name}: the condition names a Pod field, not the ECS one: {m.detail}")
                assert re.search(r"[A-Za-z]+(\[\d+\])?(\.[A-Za-z]+(\[\d+\])?)*: ", ready["message"]), (
                    f"{m.name}: the condition names no field: {m.detail}")
            del pending[m.name]
        if pending:
            time.sleep(0.5)
    assert not pending, f"{len(pending)} TaskDefinitions got no status within the bound: {sorted(pending)[:10]}"

    for m in cases:  # convert and the operator agree: the same checks, the same translation
        assert (m.outcome == "registered") == (m.convert_code == 0), (
            f"{m.name} ({m.kind} at {m.ecs_path}): {m.outcome} ({m.detail[:300]}) but convert exit {m.convert_code}")
        if m.expected:
            assert m.expected in m.detail and (m.convert_code == 2) and m.ecs_path.split(".")[0] in m.convert_err, (
                f"{m.name} ({m.kind}): expected {m.expected!r}; got {m.outcome}: {m.detail[:300]}; "
                f"convert: {m.convert_err[:300]}")
    slowest = max((m.seconds for m in cases), default=0.0)
    slow = sorted(cases, key=lambda m: -m.seconds)[:5]
    assert slowest < bound, f"slowest handling {slowest:.1f}s (bound {bound:.0f}s): " + "; ".join(
        f"{m.name} {m.kind} at {m.ecs_path} {m.seconds:.1f}s {m.outcome}" for m in slow)

    events = kube.list("Event", namespace)
    per_object = Counter(e["involvedObject"]["name"] for e in events)
    assert max(per_object.values(), default=0) <= EVENTS_BOUND, per_object.most_common(3)
    log = running_operator.log()[log_before:]
    assert "Traceback" not in log, log[log.index("Traceback") - 200:][:3000]
    assert running_operator.process is not None and running_operator.process.poll() is None, "the operator exited"

    counts = Counter(m.outcome for m in cases)
    converted = Counter("exit 0" if m.convert_code == 0 else "exit 2" for m in cases)
    sys.stderr.write(
        f"\nfuzz: {len(cases)} mutations of {len(bases)} corpus task definitions (seed {SEED}): "
        f"{counts['admission']} refused at admission, {counts['condition']} Ready=False naming the field, "
        f"{counts['registered']} registered; convert {converted['exit 0']} exit 0 (dry-run accepted), "
        f"{converted['exit 2']} exit 2; slowest {slowest:.1f}s; {time.monotonic() - started:.0f}s in all\n")
    for m in cases:
        if m.outcome == "condition" or m.expected:
            sys.stderr.write(f"  {m.name} {m.kind} at {m.ecs_path}: {m.outcome} ({m.detail[:160]}); convert exit "
                             f"{m.convert_code}\n")
    by_kind = Counter((m.kind, m.outcome) for m in cases)
    sys.stderr.write("fuzz by kind: " + "; ".join(f"{k}/{o}={n}" for (k, o), n in sorted(by_kind.items())) + "\n")


def test_what_the_api_server_refuses_in_a_pod_is_named_by_the_ecs_field(sandbox: Cluster, namespace: str,
                                                                         running_operator: Operator) -> None:
    """The operator's server-side dry-run (through the adapter) names a refused Pod field by its ECS field;
    RunTask's overrides.cpu "" is named as written; a spread strategy on a field ECS has not is refused."""
    from ecs_operator.adapters.kube import Kube
    from ecs_operator.handlers.task_definitions import pod_refusals
    from ecs_operator.models import TaskDefinitionSpec

    spec = {"family": "ports", "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 64, "portMappings": [
        {"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]}]}
    refused = pod_refusals(Kube(api_client(sandbox)), TaskDefinitionSpec.model_validate(spec), "ports", namespace)
    assert [p.path for p in refused] == ["containerDefinitions[0].portMappings[1].name"], refused
    assert "Duplicate value" in refused[0].message

    apply_all(sandbox, namespace, cluster(), {**task_definition("ports", *spec["containerDefinitions"])},
              task_definition("web", container("app", memory=64)),
              task("empty-cpu", "web", overrides={"cpu": ""}))
    ports = wait_for(lambda: (s := status(sandbox, "taskdefinition", "ports", namespace)).get("conditions") and s,
                     what="ports refused")
    assert condition(ports)["status"] == "False" and "containerDefinitions[0].portMappings[1].name" in condition(ports)["message"]
    assert "spec.containers" not in condition(ports)["message"]
    empty = wait_for(lambda: (s := status(sandbox, "task", "empty-cpu", namespace)).get("conditions") and s,
                     what="empty-cpu refused")
    assert condition(empty)["status"] == "False" and condition(empty)["message"].startswith("overrides.cpu: "), empty
    refused_at_admission = sandbox.kubectl("apply", "-n", namespace, "-f", "-", check=False, input=yaml.safe_dump(
        task("bogus-spread", "web", placementStrategy=[{"type": "spread", "field": "BOGUS"}])))
    assert refused_at_admission.returncode != 0 and "placementStrategy[0].field" in refused_at_admission.stderr


# RunTask as the defects used it: overrides (task and container), placement, count; run with the first
# registered corpus definition that has one container named as below.
RUN_TASK: dict[str, Any] = {
    "taskDefinition": "fz-task", "count": 1, "launchType": "EC2", "startedBy": "fuzz", "group": "fuzz",
    "overrides": {"cpu": "256", "memory": "512", "containerOverrides": [
        {"name": "app", "command": ["sleep", "60"], "environment": [{"name": "MODE", "value": "fuzz"}], "memory": 128,
         "cpu": 64}]},
    "placementConstraints": [{"type": "distinctInstance"}],
    "placementStrategy": [{"type": "spread", "field": "instanceId"}, {"type": "binpack", "field": "memory"}],
    "tags": [{"key": "team", "value": "fuzz"}],
}
TASK_DEFINITION: dict[str, Any] = {"family": "fz-task", "containerDefinitions": [
    {"name": "app", "image": "busybox", "memory": 256, "essential": True}]}
TASKS_PER_KIND = int(os.environ.get("ECS_FUZZ_TASKS_PER_KIND", "4"))


def test_fuzzed_run_tasks_are_refused_reported_or_run(sandbox: Cluster, namespace: str, tmp_path: Path,
                                                      running_operator: Operator) -> None:
    """RunTask mutated field by field: refused at admission, Ready=False naming the RunTask's own field (an
    override is named as overrides..., never as the task definition's field), or a task with a lastStatus;
    convert exits 0 only when the API server accepts its Pods."""
    log_before = len(running_operator.log())
    apply_all(sandbox, namespace, cluster(), {**task_definition("fz-task", *TASK_DEFINITION["containerDefinitions"])})
    wait_for(lambda: condition(status(sandbox, "taskdefinition", "fz-task", namespace)).get("status") == "True",
             what="fz-task registered")
    (tmp_path / "taskdef.json").write_text(json.dumps(TASK_DEFINITION))
    rng = random.Random(SEED)
    cases: list[Mutation] = []
    for kind in KINDS:
        for n in range(TASKS_PER_KIND):
            spec = copy.deepcopy(RUN_TASK)
            path = rng.choice([p for p in paths(spec) if p[0] != "taskDefinition"])
            value, replace = mutated(kind, get(spec, path), rng)
            if replace:
                put(spec, path, value)
            cases.append(Mutation(f"rt-{KINDS.index(kind)}-{n}", "RUN_TASK", kind, path, spec))
    for n, (path, value) in enumerate([(("overrides", "cpu"), ""), (("placementStrategy", 0, "field"), "BOGUS")]):
        spec = copy.deepcopy(RUN_TASK)
        put(spec, path, value)
        cases.append(Mutation(f"rt-fixed-{n}", "RUN_TASK", "issue 18", path, spec))

    kube = Kube(api_client(sandbox))
    applied_at: dict[str, float] = {}
    for m in cases:
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Task",
                "metadata": {"name": m.name, "namespace": namespace}, "spec": m.spec}
        try:
            create(kube, RESOURCES["Task"].path(namespace), body)
        except ApiError as e:
            assert e.status in (400, 422), f"{m.name}: {e}"
            m.outcome, m.detail = "admission", e.message
            assert "spec." in m.detail, f"{m.name} ({m.kind} at {m.ecs_path}): refused without a field: {m.detail}"
        else:
            applied_at[m.name] = time.monotonic()

    for m in cases:  # convert: the task with its task definition, as a user converts them together
        source, out = tmp_path / f"{m.name}.json", tmp_path / f"{m.name}.yaml"
        source.write_text(json.dumps(m.spec))
        err = io.StringIO()
        with redirect_stderr(err):
            m.convert_code = main(["convert", "--to", "k8s", "--report", "none", "-o", str(out), str(source),
                                   str(tmp_path / "taskdef.json")])
        m.convert_err = err.getvalue()
        assert m.convert_code in (0, 2) and "Traceback" not in m.convert_err, (m.name, m.convert_code, m.convert_err)
        if m.convert_code == 0:
            objects = [d for d in yaml.safe_load_all(out.read_text()) if d]
            for obj in objects:  # the operator created the task's Pods by these names already
                obj["metadata"]["name"] = f"dry-{obj['metadata']['name']}"
            dry = sandbox.kubectl("create", "-n", namespace, "--dry-run=server", "-f", "-", check=False,
                                  input=yaml.safe_dump_all(objects))
            assert dry.returncode == 0, f"{m.name} ({m.kind} at {m.ecs_path}): convert exited 0 but {dry.stderr[:400]}"
        else:
            assert re.search(rf"{m.name}\.json: [A-Za-z]", m.convert_err), f"{m.name}: no path named: {m.convert_err}"

    pending = {m.name: m for m in cases if m.name in applied_at}
    bound = HANDLING_BASE + HANDLING_PER_OBJECT * len(pending)
    deadline = time.monotonic() + bound
    while pending and time.monotonic() < deadline:
        for item in kube.list("Task", namespace):
            m = pending.get(item["metadata"]["name"])
            task_status = item.get("status") or {}
            ready = condition(task_status)
            if m is None or not ready:  # (a Task's spec never changes after RunTask: no observedGeneration)
                continue
            m.seconds = time.monotonic() - applied_at[m.name]
            if ready["status"] == "False" and not task_status.get("lastStatus"):
                m.outcome, m.detail = "condition", f"{ready['reason']}: {ready['message']}"
                if m.path[0] == "overrides":
                    assert not ready["message"].startswith("taskDefinition."), (
                        f"{m.name}: an override named as the task definition's field: {m.detail}")
                assert not re.search(r"\bspec\.(containers|initContainers|hostAliases)", m.detail), m.detail
            else:
                m.outcome, m.detail = "started", str(task_status.get("lastStatus"))
                assert task_status.get("lastStatus") in ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "STOPPED"), (
                    m.name, task_status)
            del pending[m.name]
        if pending:
            time.sleep(0.5)
    assert not pending, f"{len(pending)} Tasks got no status within {bound:.0f}s: {sorted(pending)[:10]}"
    fixed = {m.name: m for m in cases if m.name.startswith("rt-fixed")}
    assert fixed["rt-fixed-0"].detail.startswith("InvalidTask") or "overrides.cpu: " in fixed["rt-fixed-0"].detail, (
        fixed["rt-fixed-0"].detail)
    assert "overrides.cpu: " in fixed["rt-fixed-0"].detail and "overrides.cpu" in fixed["rt-fixed-0"].convert_err
    assert fixed["rt-fixed-1"].outcome == "admission" and "placementStrategy[0].field" in fixed["rt-fixed-1"].detail
    per_object = Counter(e["involvedObject"]["name"] for e in kube.list("Event", namespace)
                         if e["involvedObject"]["kind"] == "Task")
    assert max(per_object.values(), default=0) <= EVENTS_BOUND + 3, per_object.most_common(3)  # + its life cycle's
    log = running_operator.log()[log_before:]
    assert "Traceback" not in log, log[log.index("Traceback") - 200:][:3000]
    assert running_operator.process is not None and running_operator.process.poll() is None, "the operator exited"
    counts = Counter(m.outcome for m in cases)
    sys.stderr.write(f"\nfuzz RunTask: {len(cases)} mutations (seed {SEED}): {counts['admission']} refused at "
                     f"admission, {counts['condition']} Ready=False naming the field, {counts['started']} started; "
                     f"convert {sum(m.convert_code == 0 for m in cases)} exit 0 (dry-run accepted)\n")


# The corpus's services as CreateService inputs (the ecspresso one given the taskDefinition and desiredCount its
# deployment tool adds), each with a task definition registered beside it.
SERVICE_BASES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "awscli-create-service-classic-elb-input": ("ecs-demo", {}, {"family": "ecs-demo", "containerDefinitions": [
        {"name": "simple-demo", "image": "httpd:2.4", "memory": 300, "portMappings": [{"containerPort": 80, "hostPort": 80}]}]}),
    "service-ecspresso-capacityprovider-spot-circuitbreaker": ("fz-fargate", {"desiredCount": 1}, {
        "family": "fz-fargate", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"], "cpu": "256",
        "memory": "512", "containerDefinitions": [{"name": "app", "image": "nginx", "essential": True}]}),
}
SERVICES_PER_KIND = int(os.environ.get("ECS_FUZZ_SERVICES_PER_KIND", "3"))


def test_fuzzed_services_are_refused_reported_or_deployed(sandbox: Cluster, namespace: str, tmp_path: Path,
                                                          running_operator: Operator) -> None:
    """CreateService mutated field by field: refused at admission, Ready=False naming the field, or a service
    with a status for its generation; convert exits 0 only when the API server accepts what it writes."""
    log_before = len(running_operator.log())
    sandbox.kubectl("label", "namespace", namespace, f"{OPT_IN_LABEL}=true")  # the ELB example's host port 80
    bases: dict[str, dict[str, Any]] = {}
    for file, (family, extra, definition) in SERVICE_BASES.items():
        raw = json.loads((CORPUS / f"{file}.json").read_text())
        bases[file] = {**raw, "taskDefinition": family, **extra, "desiredCount": 1}
        (tmp_path / f"{family}.json").write_text(json.dumps(definition))
        apply_all(sandbox, namespace, {**task_definition(family, *definition["containerDefinitions"]),
                                       "spec": definition})
    apply_all(sandbox, namespace, cluster())
    rng = random.Random(SEED)
    cases: list[Mutation] = []
    for kind in KINDS:
        for n in range(SERVICES_PER_KIND):
            base = sorted(bases)[rng.randrange(len(bases))]
            spec = copy.deepcopy(bases[base])
            path = rng.choice([p for p in paths(spec) if p[0] not in ("taskDefinition", "serviceName")])
            value, replace = mutated(kind, get(spec, path), rng)
            if replace:
                put(spec, path, value)
            spec["serviceName"] = f"sv-{KINDS.index(kind)}-{n}"
            cases.append(Mutation(spec["serviceName"], base, kind, path, spec))

    kube = Kube(api_client(sandbox))
    applied_at: dict[str, float] = {}
    for m in cases:
        body = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": "Service",
                "metadata": {"name": m.name, "namespace": namespace}, "spec": m.spec}
        try:
            create(kube, RESOURCES["Service.ecs"].path(namespace), body)
        except ApiError as e:
            assert e.status in (400, 422), f"{m.name}: {e}"
            m.outcome, m.detail = "admission", e.message
            assert "spec." in m.detail, f"{m.name} ({m.kind} at {m.ecs_path}): refused without a field: {m.detail}"
        else:
            applied_at[m.name] = time.monotonic()

    for m in cases:
        source, out = tmp_path / f"{m.name}.json", tmp_path / f"{m.name}.yaml"
        source.write_text(json.dumps(m.spec))
        err = io.StringIO()
        with redirect_stderr(err):
            m.convert_code = main(["convert", "--to", "k8s", "--report", "none", "-o", str(out), str(source),
                                   str(tmp_path / f"{SERVICE_BASES[m.base][0]}.json")])
        m.convert_err = err.getvalue()
        assert m.convert_code in (0, 2) and "Traceback" not in m.convert_err, (m.name, m.convert_code, m.convert_err)
        if m.convert_code == 0:
            objects = [d for d in yaml.safe_load_all(out.read_text()) if d]
            for obj in objects:  # the operator creates the service's objects by these names
                obj["metadata"]["name"] = f"dry-{obj['metadata']['name']}"
            dry = sandbox.kubectl("create", "-n", namespace, "--dry-run=server", "-f", "-", check=False,
                                  input=yaml.safe_dump_all(objects))
            assert dry.returncode == 0, f"{m.name} ({m.kind} at {m.ecs_path}): convert exited 0 but {dry.stderr[:400]}"
        else:
            assert re.search(rf"{m.name}\.json: [A-Za-z]", m.convert_err), f"{m.name}: no path named: {m.convert_err}"

    pending = {m.name: m for m in cases if m.name in applied_at}
    bound = HANDLING_BASE + HANDLING_PER_OBJECT * len(pending)
    deadline = time.monotonic() + bound
    while pending and time.monotonic() < deadline:
        for item in kube.list("Service.ecs", namespace):
            m = pending.get(item["metadata"]["name"])
            service_status = item.get("status") or {}
            ready = condition(service_status)
            if m is None or not ready or service_status.get("observedGeneration") != item["metadata"]["generation"]:
                continue
            m.seconds = time.monotonic() - applied_at[m.name]
            m.outcome = "deployed" if ready["status"] == "True" else "condition"
            m.detail = f"{ready['reason']}: {ready['message']}"
            assert not re.search(r"\bspec\.(template|containers|selector)", m.detail), m.detail
            del pending[m.name]
        if pending:
            time.sleep(0.5)
    assert not pending, f"{len(pending)} Services got no status within {bound:.0f}s: {sorted(pending)[:10]}"
    per_object = Counter(e["involvedObject"]["name"] for e in kube.list("Event", namespace)
                         if e["involvedObject"]["kind"] == "Service")
    assert max(per_object.values(), default=0) <= EVENTS_BOUND + 3, per_object.most_common(3)  # + its deployment's
    log = running_operator.log()[log_before:]
    assert "Traceback" not in log, log[log.index("Traceback") - 200:][:3000]
    assert running_operator.process is not None and running_operator.process.poll() is None, "the operator exited"
    counts = Counter(m.outcome for m in cases)
    sys.stderr.write(f"\nfuzz CreateService: {len(cases)} mutations (seed {SEED}): {counts['admission']} refused at "
                     f"admission, {counts['condition']} Ready=False, {counts['deployed']} Ready; convert "
                     f"{sum(m.convert_code == 0 for m in cases)} exit 0 (dry-run accepted)\n")
    for m in cases:
        if m.outcome == "condition":
            sys.stderr.write(f"  {m.name} {m.kind} at {m.ecs_path}: {m.detail[:200]}; convert exit {m.convert_code}\n")
