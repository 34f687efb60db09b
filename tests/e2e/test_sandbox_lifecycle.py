"""`ecs-operator sandbox` life cycle, on a second sandbox of the test's own (own state directory,
own ports; the session's sandbox keeps running alongside): `up` twice is safe, `status` reports,
after a crash the next `up` restarts what is dead and keeps the rest (etcd's data above all), and `down`
leaves no process and no file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ecs_operator.sandbox.processes import ProcessRecord


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", *args],
                          capture_output=True, text=True, timeout=300)


def records(state_dir: Path) -> list[ProcessRecord]:
    state = json.loads((state_dir / "state.json").read_text())
    return [ProcessRecord.from_json(p) for p in state["processes"]]


def wait_dead(record: ProcessRecord, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while record.alive():
        assert time.monotonic() < deadline, f"{record.name} (pid {record.pid}) still alive"
        time.sleep(0.1)


def kubectl(kubeconfig: str, *args: str) -> str:
    result = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "--kubeconfig", kubeconfig, *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_up_twice_status_crash_recovery_and_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "second-sandbox"
    flags = ("--state-dir", str(state_dir))

    first = cli("up", "--no-build", "--nodes", "1", *flags)
    assert first.returncode == 0, first.stderr
    assert f"export KUBECONFIG={state_dir / 'kubeconfig'}" in first.stdout
    started = records(state_dir)
    assert [r.name for r in started] == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
    assert all(r.alive() for r in started)

    again = cli("up", "--no-build", "--nodes", "1", *flags)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert records(state_dir) == started

    status = cli("status", "--json", *flags)
    assert status.returncode == 0, status.stdout
    report = json.loads(status.stdout)
    assert report["running"] and report["version"] == "v1.37.2" and report["nodes_ready"] == "1/1"

    kubeconfig = str(state_dir / "kubeconfig")
    kept = kubectl(kubeconfig, "create", "configmap", "kept", "--from-literal=k=v", "-o", "jsonpath={.metadata.uid}")

    scheduler = next(r for r in started if r.name == "kube-scheduler")
    os.killpg(scheduler.pid, signal.SIGKILL)  # a crash: one component gone, the others still running
    wait_dead(scheduler)
    assert cli("status", *flags).returncode == 1

    recovered = cli("up", "--no-build", "--nodes", "1", *flags)
    assert recovered.returncode == 0, recovered.stderr
    assert "restarting kube-scheduler" in recovered.stderr and "running again (state kept)" in recovered.stdout
    restarted = records(state_dir)
    assert all(r.alive() for r in restarted)
    changed = [(old.name, old.pid != new.pid) for old, new in zip(started, restarted, strict=True)]
    assert [name for name, moved in changed if moved] == ["kube-scheduler"]  # the survivors kept running
    assert [r.argv for r in restarted] == [r.argv for r in started]  # with the same flags
    assert kubectl(kubeconfig, "get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}") == kept

    etcd = next(r for r in restarted if r.name == "etcd")
    os.killpg(etcd.pid, signal.SIGKILL)  # the store itself
    wait_dead(etcd)
    again = cli("up", "--no-build", "--nodes", "1", *flags)
    assert again.returncode == 0 and "restarting etcd" in again.stderr, again.stderr
    assert kubectl(kubeconfig, "get", "configmap", "kept", "-o", "jsonpath={.metadata.uid}") == kept
    restarted = records(state_dir)

    down = cli("down", *flags)
    assert down.returncode == 0, down.stderr
    for record in restarted:
        assert not record.alive(), f"{record.name} survived down"
    assert not state_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # not even the lock file
    assert cli("status", *flags).returncode == 1
