"""`sandbox restart|stop` and `up` after a crash, on real processes (no control plane): what is recorded to
start a component again with the same flags, which dead components `up` restarts, and that a sandbox that had
started never loses its state (etcd's data) to `up`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from ecs_operator.sandbox.components import Ports
from ecs_operator.sandbox.launcher import Sandbox, SandboxError, State, restart_plan
from ecs_operator.sandbox.processes import ProcessRecord, respawn, spawn, stop

SLEEPER = [sys.executable, "-c", "import os, time; print(os.environ['MARK'], os.getcwd(), flush=True); time.sleep(60)"]


def dead(name: str, argv: list[str] | None = None) -> ProcessRecord:
    """A record of a process that is not running (pid 0 never names one)."""
    return ProcessRecord(name=name, pid=0, start_time=0, log="/dev/null", argv=argv if argv is not None else ["x"])


def started_sandbox(root: Path, processes: list[ProcessRecord], attached: list[ProcessRecord] | None = None) -> Sandbox:
    """A state directory as `up` leaves it (state.json, etcd's data), with these process records."""
    (root / "etcd").mkdir(parents=True)
    (root / "etcd" / "member").write_text("data")
    (root / "logs").mkdir()
    state = State(bin_dir="/nonexistent", ports=Ports(1, 2, 3, 4, 5), processes=processes, attached=attached or [],
                  ready_seconds=9.0)
    (root / "state.json").write_text(json.dumps(state.to_json()))
    return Sandbox(root)


def test_a_record_keeps_the_command_line_variables_and_directory(tmp_path: Path) -> None:
    record = spawn("sleeper", SLEEPER, tmp_path / "sleeper.log", env={"MARK": "first"}, cwd=tmp_path)
    try:
        assert record.alive() and record.argv == SLEEPER and record.env == {"MARK": "first"}
        assert record.cwd == str(tmp_path)  # only the variables set on top are recorded, not the whole environment
        assert ProcessRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    finally:
        stop([record])


def lines_of(log: Path, count: int) -> list[str]:
    """The log's lines once it has `count` of them (at most 10 s)."""
    deadline = time.monotonic() + 10
    while len(lines := log.read_text().splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines


def test_respawn_starts_the_same_command_again(tmp_path: Path) -> None:
    log = tmp_path / "sleeper.log"
    first = spawn("sleeper", SLEEPER, log, env={"MARK": "again"}, cwd=tmp_path)
    assert lines_of(log, 1) == [f"again {tmp_path}"]
    stop([first])
    second = respawn(first)
    try:
        assert second.alive() and not first.alive() and second.pid != first.pid
        assert (second.argv, second.env, second.cwd, second.log) == (first.argv, first.env, first.cwd, first.log)
        assert lines_of(log, 2) == [f"again {tmp_path}"] * 2  # the same variables and directory, one log
    finally:
        stop([second])


def test_records_of_older_versions_load_but_cannot_be_respawned() -> None:
    old = ProcessRecord.from_json({"name": "etcd", "pid": 1, "start_time": 2, "log": "/l"})
    assert (old.argv, old.env, old.cwd) == ([], {}, None)
    with pytest.raises(ValueError, match="older ecs-operator"):
        respawn(old)


def test_up_restarts_dead_control_plane_components_in_start_order() -> None:
    state = State(bin_dir="", ports=Ports(1, 2, 3, 4, 5),
                  processes=[dead("etcd"), dead("kube-apiserver"), dead("kube-scheduler")])
    restart, problem = restart_plan(state)
    assert problem is None and [p.name for p in restart] == ["etcd", "kube-apiserver", "kube-scheduler"]


def test_up_cannot_restart_what_it_did_not_record_or_real_nodes() -> None:
    old = State(bin_dir="", ports=Ports(1, 2, 3, 4, 5), processes=[dead("etcd", argv=[])])
    assert "etcd were started by an older ecs-operator" in str(restart_plan(old)[1])
    real = State(bin_dir="", ports=Ports(1, 2, 3, 4, 5), processes=[dead("kubelet-sandbox-real-1")])
    assert "kubelet-sandbox-real-1 belong to the real nodes" in str(restart_plan(real)[1])


def test_up_after_a_crash_it_cannot_repair_keeps_etcd_and_names_restart_and_down(tmp_path: Path) -> None:
    sandbox = started_sandbox(tmp_path / "sb", [dead("etcd", argv=[]), dead("kube-apiserver", argv=[])])
    with pytest.raises(SandboxError) as refused:
        sandbox.up(Path("/nonexistent"), log=lambda _: None)
    message = str(refused.value)
    assert "etcd, kube-apiserver not running" in message and "state (etcd's data) is kept" in message
    assert "sandbox restart COMPONENT" in message and "sandbox down" in message
    assert (tmp_path / "sb" / "etcd" / "member").read_text() == "data"


def test_restart_names_the_components_it_knows(tmp_path: Path) -> None:
    sandbox = started_sandbox(tmp_path / "sb", [dead("etcd")])
    with pytest.raises(SandboxError, match="no component 'etc'.*it has: etcd, kube-apiserver, kube-controller-manager, "
                                           "kube-scheduler, kwok$"):
        sandbox.restart("etc")
    with pytest.raises(SandboxError, match="no sandbox at"):
        Sandbox(tmp_path / "none").restart("etcd")


def test_restart_and_stop_of_an_attached_process_keep_the_state(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    first = spawn("worker", SLEEPER, tmp_path / "worker.log", env={"MARK": "w"})
    sandbox = started_sandbox(root, [dead("etcd")], attached=[first])
    try:
        second = sandbox.restart("worker", timeout=30, log=lambda _: None)
        assert second.alive() and not first.alive() and second.argv == SLEEPER and second.env == {"MARK": "w"}
        state = sandbox.read_state()
        assert state is not None and state.attached == [second] and [p.name for p in state.processes] == ["etcd"]
        assert sandbox.stop_component("worker", log=lambda _: None) == second and not second.alive()
        assert (root / "etcd" / "member").read_text() == "data"
    finally:
        stop([first, *(sandbox.read_state() or State("", Ports(1, 2, 3, 4, 5))).attached])
