"""dependsOn as Kubernetes start order (docs/ecs-semantics.md §dependsOn).

The kubelet starts a Pod's init containers one after the other, then its regular containers one
after the other in spec order, waiting for each one's postStart hook. So:

- COMPLETE/SUCCESS targets (never essential in ECS) run to completion as init containers;
- START/HEALTHY targets are regular containers placed before their dependents (a HEALTHY one holds
  the containers after it in a postStart hook until its health check passes): like any ECS
  container they keep running, or stay exited, whatever the others do;
- only a START/HEALTHY target an init container waits for must itself start first: a native
  sidecar (init container with restartPolicy Always).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ecs_operator import labels as L
from ecs_operator.models import RegisterTaskDefinition
from ecs_operator.models.rules import find_cycle

from .fidelity import FidelityReport

InitKind = Literal["sidecar", "run-to-completion"]


@dataclass(frozen=True)
class StartOrder:
    init: tuple[tuple[str, InitKind], ...]
    """Init containers in start order: Kubernetes runs them one after the other."""
    main: tuple[str, ...]
    """Regular containers in start order: the kubelet starts them one after the other."""
    healthy_targets: frozenset[str]
    """Containers others wait on until HEALTHY."""
    ignore_exit_code: frozenset[str]
    """COMPLETE-only targets: their exit code must not hold their dependents back."""

    def kind(self, name: str) -> InitKind | None:
        return dict(self.init).get(name)


def start_order(td: RegisterTaskDefinition) -> StartOrder:
    names = [c.name for c in td.containerDefinitions]
    conditions: dict[str, set[str]] = {}
    deps: dict[str, list[str]] = {}
    for c in td.containerDefinitions:
        known = [d for d in c.dependsOn or [] if d.containerName in names]  # others are refused by validation
        deps[c.name] = [d.containerName for d in known]
        for d in known:
            conditions.setdefault(d.containerName, set()).add(d.condition)
    if find_cycle(deps):
        raise ValueError("dependsOn forms a cycle")
    _router_first(td, deps, conditions)
    to_completion = {t for t, conds in conditions.items() if conds & {"COMPLETE", "SUCCESS"}}
    init = set(to_completion)
    pending = list(to_completion)
    while pending:  # what an init container waits for must start before it: init containers too
        for target in deps[pending.pop()]:
            if target not in init:
                init.add(target)
                pending.append(target)
    healthy = frozenset(t for t, conds in conditions.items() if "HEALTHY" in conds)
    return StartOrder(
        init=tuple((n, "run-to-completion" if n in to_completion else "sidecar")
                   for n in _topological([n for n in names if n in init], deps, healthy)),
        main=tuple(_topological([n for n in names if n not in init], deps, healthy)),
        healthy_targets=healthy,
        ignore_exit_code=frozenset(t for t in to_completion if conditions[t] == {"COMPLETE"}),
    )


def _router_first(td: RegisterTaskDefinition, deps: dict[str, list[str]], conditions: dict[str, set[str]]) -> None:
    """The ECS agent starts the FireLens log router before the containers whose logDriver is awsfirelens
    (an implicit START dependency), unless that would close a cycle."""
    router = next((c.name for c in td.containerDefinitions if c.firelensConfiguration is not None), None)
    if router is None:
        return
    for c in td.containerDefinitions:
        if c.name == router or c.logConfiguration is None or c.logConfiguration.logDriver != "awsfirelens":
            continue
        if router not in deps[c.name] and not find_cycle({**deps, c.name: [*deps[c.name], router]}):
            deps[c.name] = [*deps[c.name], router]
            conditions.setdefault(router, set()).add("START")


def _topological(names: list[str], deps: dict[str, list[str]], late: frozenset[str]) -> list[str]:
    """Dependencies first; among the ready ones those in `late` (whose start holds the next ones)
    last, then definition order: stable output."""
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and all(d in ordered or d not in names for d in deps[n])]
        ordered.append(min(ready, key=lambda n: (n in late, names.index(n))))
    return ordered


def ignore_exit_code(container: dict[str, Any]) -> None:
    """A COMPLETE-only init container runs through a shell that ends with 0, so Kubernetes starts
    its dependents whatever its exit code, as ECS does; the shell writes the command's real exit code
    to the termination message, which the task's record reports (lifecycle/task_state.py)."""
    argv = [*container.pop("command"), *container.pop("args", [])]
    script = f'"$@"; echo {L.EXIT_CODE_MESSAGE}$? 2>/dev/null >/dev/termination-log; exit 0'
    container["command"] = ["/bin/sh", "-c", script, "complete", *argv]
    container["terminationMessagePath"] = "/dev/termination-log"


def report_dependencies(td: RegisterTaskDefinition, order: StartOrder, report: FidelityReport) -> None:
    """Each dependsOn entry's verdict for this task definition: what Kubernetes does differently."""
    for i, c in enumerate(td.containerDefinitions):
        for j, d in enumerate(c.dependsOn or []):
            target = td.container(d.containerName)
            if target is None:
                continue
            verdict, where, note = _verdict(c.name, d.condition, target.name, bool(target.entryPoint), order)
            for field in ("containerName", "condition"):
                path = f"containerDefinitions[{i}].dependsOn[{j}].{field}"
                if verdict == "exact":
                    report.exact(path, where, note)
                else:
                    report.approximated(path, where, note)


def _verdict(name: str, condition: str, target: str, has_entry_point: bool, order: StartOrder) -> tuple[str, str, str]:
    kind = order.kind(target)
    if kind == "sidecar":
        return ("approximated", f"initContainers[{target}] restartPolicy Always",
                f"{target} starts as a native sidecar because an init container waits for it: Kubernetes restarts it "
                "when it exits and stops it once the regular containers have ended"
                + (" (HEALTHY: a startupProbe holds the next containers)" if condition == "HEALTHY" else ""))
    if kind == "run-to-completion":
        note = (f"{target} runs to completion as an init container: every regular container starts after it, "
                "and init containers run one after another")
        if condition == "SUCCESS":
            return "approximated", f"initContainers[{target}]", note
        if target in order.ignore_exit_code and has_entry_point:
            note += ("; it runs through /bin/sh -c '\"$@\"; exit 0' so that any exit code lets the dependents "
                     "start; the task reports its real exit code (written to the termination message)")
        elif target in order.ignore_exit_code:
            note += ("; without an entryPoint the operator cannot wrap the image's own command, so a non-zero exit "
                     "code stops the task (TaskFailedToStart) instead of starting the dependents")
        else:
            note += "; another container waits for its SUCCESS, so a non-zero exit code stops the task (TaskFailedToStart)"
        return "approximated", f"initContainers[{target}]", note
    if condition == "HEALTHY":
        return ("approximated", f"containers[{target}].lifecycle.postStart",
                f"{target} starts before {name}; a postStart hook re-runs its health check through /bin/sh (the image "
                "needs one) until it passes, holding every container listed after it, not only its dependents")
    return "exact", "containers[] order", f"the kubelet starts {target} before {name}"
