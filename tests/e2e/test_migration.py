"""A migration set converted with `ecs-operator convert --to crs` runs once applied: the revision numbers
of the source account (describe output `revision: 42`, `create-service` naming `family:42`) are mapped to
what the operator registers, and the fidelity report says so."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import VENV_BIN
from ecs_objects import wait_task
from service_support import steady

if TYPE_CHECKING:
    from conftest import Cluster

pytestmark = pytest.mark.usefixtures("running_operator")

CORPUS = Path("/work/shared/corpus")


def migration_set(directory: Path) -> list[Path]:
    """What an ECS user exports: describe-task-definition output (a real-world definition with the source
    account's revision 42), the create-service input naming `orders-api:42`, a run-task input naming the
    AWS CLI documentation's `sleep360:2` (its describe output as printed), and the cluster."""
    web = json.loads((CORPUS / "awsdocs-webserver-fargate-linux.json").read_text())
    described = {"taskDefinition": {
        **web, "family": "orders-api", "revision": 42, "status": "ACTIVE",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/orders-api:42",
        "compatibilities": ["EC2", "FARGATE"], "registeredAt": "2026-11-02T10:00:00.000Z",
        "registeredBy": "arn:aws:iam::123456789012:role/deployer"}}
    files = {
        "create-cluster.json": {"clusterName": "default"},
        "orders-api.json": described,
        "create-service.json": {
            "cluster": "default", "serviceName": "orders-api", "taskDefinition": "orders-api:42", "desiredCount": 2,
            "launchType": "FARGATE", "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-0a1b2c3d"], "securityGroups": ["sg-0a1b2c3d"], "assignPublicIp": "DISABLED"}}},
        "run-task.json": {"cluster": "default", "taskDefinition": "sleep360:2", "count": 1, "startedBy": "migration"},
    }
    paths = []
    for name, content in files.items():
        (directory / name).write_text(json.dumps(content, indent=2))
        paths.append(directory / name)
    sleep360 = directory / "sleep360.json"
    sleep360.write_text((CORPUS / "awscli-register-output-sleep360-describe.json").read_text())
    return [paths[0], paths[1], sleep360, *paths[2:]]


def test_a_converted_migration_set_runs_once_applied(sandbox: Cluster, namespace: str, tmp_path: Path) -> None:
    inputs = migration_set(tmp_path)
    out = tmp_path / "objects.yaml"
    converted = subprocess.run([str(VENV_BIN / "ecs-operator"), "convert", *map(str, inputs), "-o", str(out),
                                "--report", "json"], capture_output=True, text=True, timeout=60, check=True)
    report = {entry["name"]: entry for entry in json.loads(converted.stdout)}
    for name, family in (("orders-api", "orders-api"), ("run-task", "sleep360")):
        entry = next(e for e in report[name]["fields"] if e["path"] == "taskDefinition")
        assert entry["verdict"] == "approximated" and entry["target"] == f"taskDefinition {family}"
        assert "source account's revision" in entry["note"]

    sandbox.kubectl("apply", "-n", namespace, "-f", str(out))
    service = steady(sandbox, namespace, "orders-api:1", running=2, name="orders-api", timeout=180)
    assert service["taskDefinition"] == "orders-api:1"
    task = wait_task(sandbox, namespace, "run-task", "RUNNING")
    assert task["taskDefinition"] == "sleep360:1"
