"""The operator under test: `ecs-operator run` as a separate process against the session's sandbox.

A real process (not a thread) so tests can kill it mid-flight and restart it, as a crash would.
Settings are shortened for tests (ECS's 40 s "healthy" wait, capacity evaluation every 3 s, a deployment bake
minute of 5 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from ecs_operator.sandbox import gateway_api

REPO = Path(__file__).resolve().parents[2]
TEST_SETTINGS = ("--service-task-ready-seconds", "3", "--capacity-evaluation-seconds", "3", "--stopped-task-ttl", "600",
                 "--deployment-minute-seconds", "5",  # a bake time of minutes runs in seconds
                 "--binpack-scheduler-profiles")  # the sandbox's scheduler has them
T = TypeVar("T")


def wait_for(check: Callable[[], T], timeout: float = 60, interval: float = 0.5, what: str = "condition") -> T:
    """Poll until `check()` returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


def kubectl_wait(sandbox: Any, *args: str, timeout: float = 90) -> None:
    """`kubectl wait --for=condition=...`, retried: it fails at once (instead of waiting) while the object
    has no status.conditions yet, as a CRD or a Job just created has not."""
    wait_for(lambda: sandbox.kubectl("wait", *args, "--timeout=30s", check=False).returncode == 0,
             timeout=timeout, what=f"kubectl wait {' '.join(args)}")


@dataclass
class Operator:
    env: dict[str, str]
    log_path: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *extra: str, env: dict[str, str] | None = None) -> None:
        self.extra_args = extra or self.extra_args
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--metrics", "", *TEST_SETTINGS,
             *self.extra_args],  # several operators run on one machine: no fixed port (extra_args may name one)
            env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
        )

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def crds(sandbox: Any) -> None:
    """The generated CRDs, installed once, with the chart's admission policy on what ECS objects name."""
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl_wait(sandbox, "--for=condition=Established", "-f", str(REPO / "crds"))
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=reference_policy(sandbox))
    # the Gateway API's CRDs (from the Go module cache, as `sandbox up --gateway-api`): blue/green HTTPRoutes
    gateway = yaml.safe_dump_all(gateway_api.standard_crds(gateway_api.module_dir(offline=True)))
    sandbox.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=gateway)
    kubectl_wait(sandbox, "--for=condition=Established", "crd/httproutes.gateway.networking.k8s.io",
                 "crd/gateways.gateway.networking.k8s.io")


def reference_policy(sandbox: Any) -> str:
    """The chart's reference policy and its binding, rendered from the chart itself (one source)."""
    return sandbox.helm("template", "ecs-operator", str(REPO / "charts" / "ecs-operator"), "--namespace", "ecs-system",
                        "--show-only", "templates/reference-policy.yaml").stdout


@pytest.fixture(scope="session")
def running_operator(sandbox: Any, crds: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """One operator for the whole run; a test that kills it must start it again (`restart`)."""
    handle = Operator(env=sandbox.env, log_path=tmp_path_factory.mktemp("operator") / "operator.log")
    handle.start()
    try:
        yield handle
    finally:
        handle.stop()
        failures = [line for line in handle.log().splitlines() if "Traceback" in line]
        if failures:
            sys.stderr.write(f"operator log ({handle.log_path}) had {len(failures)} traceback(s)\n")


def get(sandbox: Any, kind: str, name: str, namespace: str) -> dict[str, Any]:
    result = sandbox.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def apply(sandbox: Any, namespace: str, manifest: str) -> None:
    sandbox.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
