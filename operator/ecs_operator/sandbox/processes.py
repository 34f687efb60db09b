"""Detached component processes, identified by PID *and* start time.

Each component runs in its own session (so it outlives `sandbox up` and a Ctrl-C in the user's
shell) with its output in a log file. A PID alone is not an identity: after a crash or a reboot
the number can belong to an unrelated process, so every signal is preceded by a check that the
process still has the start time recorded when it was launched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ProcessRecord:
    """What `state.json` keeps about one started component."""

    name: str
    pid: int
    start_time: int
    """Field 22 of /proc/<pid>/stat: clock ticks since boot when the process started."""
    log: str
    argv: list[str] = field(default_factory=list)
    """The command line, so `sandbox restart` starts it again with the same flags (empty in older states)."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables set on top of the environment it was started from (e.g. KUBECONFIG), for the same reason."""
    cwd: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcessRecord:
        return cls(name=data["name"], pid=int(data["pid"]), start_time=int(data["start_time"]), log=data["log"],
                   argv=[str(a) for a in data.get("argv", [])], env={str(k): str(v) for k, v in data.get("env", {}).items()},
                   cwd=data.get("cwd"))

    def alive(self) -> bool:
        """Running (not a zombie) and still the process that was started."""
        stat = _stat(self.pid)
        return stat is not None and stat[0] != "Z" and stat[1] == self.start_time

    def log_tail(self, lines: int = 15) -> str:
        return tail(Path(self.log), lines)


def _stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a process, or None when it does not exist."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # the command name may contain spaces and parentheses
    return fields[0], int(fields[19])


def spawn(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> ProcessRecord:
    """Start `argv` in a new session with stdout and stderr appended to `log`. `env` is set on top of
    this process's environment; only those variables are recorded (not the whole environment)."""
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, env={**os.environ, **env} if env else None, cwd=cwd)
    stat = _stat(process.pid)
    return ProcessRecord(name=name, pid=process.pid, start_time=stat[1] if stat else 0, log=str(log), argv=list(argv),
                         env=dict(env or {}), cwd=str(cwd) if cwd else None)


def respawn(record: ProcessRecord) -> ProcessRecord:
    """Start a recorded process again: the same command line, variables, directory and log."""
    if not record.argv:
        raise ValueError(f"{record.name} was started by an older ecs-operator that did not record its command line")
    return spawn(record.name, record.argv, Path(record.log), env=record.env or None,
                 cwd=Path(record.cwd) if record.cwd else None)


def _reap(pid: int) -> None:
    """Collect an exited child of this process (when `up` and `down` run in one Python process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(records: list[ProcessRecord], grace: float = 5.0) -> None:
    """Stop the recorded processes that are still ours, last started first (clients before the
    apiserver, the apiserver before etcd: stopped in that order each exits within about a second,
    while an apiserver whose etcd is gone hangs in its shutdown). SIGTERM, then SIGKILL after `grace`."""
    for record in reversed(records):
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if not record.alive():
                break
            try:
                os.killpg(record.pid, sig)  # each component leads its own session and process group
            except ProcessLookupError:
                break
            if _wait_gone([record], wait):
                break


def _wait_gone(records: list[ProcessRecord], timeout: float) -> bool:
    """Wait until none of the records is alive; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        for record in records:
            _reap(record.pid)
        if not any(r.alive() for r in records):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file ("" if it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
    except FileNotFoundError:
        return ""
