"""The control plane a benchmark measures on: the given one, or a sandbox of its own for the run."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def control_plane(kubeconfig: str | None, nodes: int, prefix: str) -> Iterator[str]:
    """`kubeconfig` as it is, else a new sandbox with `nodes` kwok nodes (stopped afterwards): its kubeconfig."""
    if kubeconfig:
        yield kubeconfig
        return
    state = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    cli = [sys.executable, "-m", "ecs_operator.cli", "sandbox"]
    started = subprocess.run([*cli, "up", "--no-build", "--nodes", str(nodes), "--state-dir", str(state)],
                             capture_output=True, text=True)
    try:
        if started.returncode != 0:
            raise SystemExit(f"the sandbox did not start:\n{started.stderr}")
        yield str(state / "kubeconfig")
    finally:
        subprocess.run([*cli, "down", "--state-dir", str(state)], capture_output=True)
