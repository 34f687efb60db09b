"""`ecs-operator run` refuses settings it cannot honour with one line naming the flag, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path


def test_a_taken_liveness_port_is_one_line_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", f"http://127.0.0.1:{port}/healthz",
                                 "--metrics", ""],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"ecs-operator run: --liveness http://127.0.0.1:{port}/healthz: cannot listen on 127.0.0.1:{port}:"), line


def test_an_unreachable_api_server_is_one_line_and_kopf_never_starts(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    result = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--metrics", "",
                             "--connect-timeout", "0"],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("ecs-operator run: cannot read the API server's version (GET /version): "), line


def test_a_taken_metrics_port_is_one_line_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "",
                                 "--metrics", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"ecs-operator run: --metrics 127.0.0.1:{port}: cannot listen on 127.0.0.1:{port}:"), line
    assert line.endswith("(choose another port, or --metrics '' for none)"), line


def test_a_metrics_address_without_a_port_is_one_line() -> None:
    result = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--metrics", "localhost"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "ecs-operator run: --metrics localhost: expected HOST:PORT, e.g. 0.0.0.0:8081"


def test_leader_election_timings_that_would_let_two_leaders_overlap_are_refused() -> None:
    result = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--leader-elect",
                             "--lease-duration", "10", "--renew-deadline", "10"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line == ("ecs-operator run: leader election needs lease duration (10s) > renew deadline (10s) > "
                    "retry period (2s) > 0"), line
    both = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", "", "--leader-elect", "--peering", "p"],
                          capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and both.stderr.strip() == "ecs-operator run: --leader-elect and --peering exclude each other"
