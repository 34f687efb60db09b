"""The control plane a benchmark measures on: the given one, or a sandbox of its own for the run; the benchmarks'
own client to it (the operator's transport) and its watches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ecs_operator.adapters.transport import Transport, kubeconfig_config

CLIENT_POOL = 5 * (os.cpu_count() or 1)
"""Connections the benchmarks' own client keeps: 5 per CPU, the pool of the Kubernetes client they used before."""


def transport(kubeconfig: str) -> Transport:
    """The operator's HTTP transport (ecs_operator.adapters.transport) on `kubeconfig`, for the benchmark's own
    requests (its adapter: ecs_operator.adapters.kube.Kube(transport(...)))."""
    return Transport(kubeconfig_config(kubeconfig), maxsize=CLIENT_POOL)


def watch(client: Transport, path: str, query: Iterable[tuple[str, str]] = (), version: str | None = None,
          timeout_seconds: int = 5) -> Iterator[tuple[str, dict[str, Any]]]:
    """One watch request on the collection `path` (from `version`, else from now with the existing objects ADDED
    first): (type, object) of each event until the API server ends it after `timeout_seconds`. An ERROR event
    (410 Gone: `version` too old) raises RuntimeError, as the Kubernetes client's watch raised ApiException."""
    params = [*query, ("watch", "true"), ("timeoutSeconds", str(timeout_seconds)),
              *([("resourceVersion", version)] if version else [])]
    response = client.request("GET", path, query=params, timeout=timeout_seconds + 30, stream=True)
    try:
        if response.status != 200:
            raise RuntimeError(f"watch {path}: {response.status} {response.read()[:300]!r}")
        for line in response:
            event = json.loads(line)
            if event["type"] == "ERROR":
                raise RuntimeError(f"watch {path}: {event['object'].get('code')} {event['object'].get('message')}")
            yield event["type"], event["object"]
    finally:
        response.release_conn()


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
