"""`ecs-operator sandbox up --operator --api` on a sandbox of the test's own (own state directory and
ports, beside the session's): with nothing but what `sandbox env` exports, boto3 and aws-cli reach
the ECS API; `status` lists the operator and the API; `restart operator|api` starts them again with the same
flags (the same endpoint and key); `down` leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from ecs_operator.sandbox.processes import ProcessRecord
from test_sandbox_lifecycle import cli, wait_dead

ECS_ENV = ("AWS_ENDPOINT_URL_ECS", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")


def exported(env_output: str) -> dict[str, str]:
    """The variables of `export NAME=VALUE` lines, as the shell would set them."""
    pairs = (shlex.split(line.removeprefix("export "))[0] for line in env_output.splitlines() if line.startswith("export "))
    return dict(pair.split("=", 1) for pair in pairs)


def every_process(state_dir: Path) -> list[ProcessRecord]:
    """The control plane's processes and the attached ones (the operator, the API)."""
    state = json.loads((state_dir / "state.json").read_text())
    return [ProcessRecord.from_json(p) for p in state["processes"] + state["attached"]]


def test_up_with_operator_and_api_then_clients_status_and_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "ecs-sandbox"
    flags = ("--state-dir", str(state_dir))
    up = cli("up", "--no-build", "--nodes", "1", "--operator", "--api", *flags)
    try:
        assert up.returncode == 0, up.stderr
        variables = exported(cli("env", *flags).stdout)
        assert set(ECS_ENV) <= set(variables), variables
        # only the exported variables: no config file, no other credentials
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env = {**clean, **{k: variables[k] for k in ECS_ENV},
               "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

        listed = subprocess.run([str(Path(sys.executable).parent / "aws"), "ecs", "list-clusters", "--output", "json"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and json.loads(listed.stdout) == {"clusterArns": []}, listed.stderr

        # boto3 in a process of its own, configured by nothing but that environment
        script = ("import boto3, json; ecs = boto3.client('ecs'); made = ecs.create_cluster(clusterName='demo')['cluster'];"
                  " print(json.dumps([made['clusterArn'], made['status'], ecs.list_clusters()['clusterArns']]))")
        made = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert made.returncode == 0, made.stderr
        arn, cluster_status, listed_arns = json.loads(made.stdout)
        assert arn == "arn:aws:ecs:us-east-1:000000000000:cluster/demo" and listed_arns == [arn]
        assert cluster_status == "ACTIVE"  # the sandbox's operator reconciled it
        kubeconfig = {**env, "KUBECONFIG": variables["KUBECONFIG"]}
        stored = subprocess.run([str(Path(sys.executable).parent / "kubectl"), "get", "clusters.ecs.operator.dev", "-n", "default",
                                 "-o", "jsonpath={.items[*].metadata.name}"], env=kubeconfig, capture_output=True, text=True, timeout=60)
        assert stored.stdout == "demo", stored.stderr
        # the operator's metrics, on the loopback port `up` printed: its requests to the API server counted
        (metrics_url,) = re.findall(r"metrics (http://127\.0\.0\.1:\d+/metrics)", up.stderr)
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            scraped = response.read().decode()
        samples = [(x.name, x.labels, x.value) for family in text_string_to_metric_families(scraped) for x in family.samples]
        assert ("ecs_operator_leader", {}, 1.0) in samples
        assert any(name == "ecs_operator_kube_requests_total" and labels.get("code") == "200" and value >= 1
                   for name, labels, value in samples), scraped[:2000]

        status = cli("status", "--json", *flags)
        assert status.returncode == 0, status.stdout
        report = json.loads(status.stdout)
        attached = report["attached"]
        assert sorted(attached) == ["api", "operator"] and all(p["alive"] for p in attached.values()), attached
        assert report["ecs_api"] == {"endpoint": env["AWS_ENDPOINT_URL_ECS"], "access_key_id": env["AWS_ACCESS_KEY_ID"]}
        assert f"ECS API: {env['AWS_ENDPOINT_URL_ECS']}" in cli("status", *flags).stdout

        again = cli("up", "--no-build", "--nodes", "1", "--operator", "--api", *flags)  # starts nothing twice
        assert again.returncode == 0 and "already running" in again.stdout and "operator already running" in again.stderr, again.stderr
        assert exported(cli("env", *flags).stdout) == variables and json.loads(cli("status", "--json", *flags).stdout)["attached"] == attached

        # `sandbox restart` of the attached processes: new processes with the same flags, the same endpoint and key
        for name in ("operator", "api"):
            restarted = cli("restart", name, *flags)
            assert restarted.returncode == 0 and f"{name} restarted" in restarted.stdout, restarted.stderr
        now = json.loads(cli("status", "--json", *flags).stdout)["attached"]
        assert all(now[n]["alive"] and now[n]["pid"] != attached[n]["pid"] for n in ("operator", "api")), now
        assert exported(cli("env", *flags).stdout) == variables
        listed = subprocess.run([str(Path(sys.executable).parent / "aws"), "ecs", "list-clusters", "--output", "json"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0 and json.loads(listed.stdout) == {"clusterArns": [arn]}, listed.stderr
    finally:
        started = every_process(state_dir) if (state_dir / "state.json").exists() else []
        down = cli("down", *flags)
    assert down.returncode == 0, down.stderr
    assert {"api", "operator"} <= {r.name for r in started}
    for record in started:
        wait_dead(record, timeout=1)  # `down` waits for each process: none may be left
    assert not state_dir.exists()
