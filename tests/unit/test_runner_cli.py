"""`ecs-operator run` refuses settings it cannot honour with one line naming the flag, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys


def test_a_taken_liveness_port_is_one_line_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "ecs_operator.cli", "run", "--liveness", f"http://127.0.0.1:{port}/healthz"],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"ecs-operator run: --liveness http://127.0.0.1:{port}/healthz: cannot listen on 127.0.0.1:{port}:"), line
