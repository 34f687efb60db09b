"""`ecs-operator run`'s settings: a bad value, given as a flag or as its environment variable, ends the
command with one line naming it (argparse's exit 2), never a traceback or a silent default."""

from __future__ import annotations

import argparse

import pytest

from ecs_operator.runner import add_arguments, settings_from


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ecs-operator run")
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize(("variable", "value", "flag"), [
    ("ECS_OPERATOR_SERVICE_TASK_READY_SECONDS", "forty", "--service-task-ready-seconds"),
    ("ECS_OPERATOR_DEPLOYMENT_MINUTE_SECONDS", "0", "--deployment-minute-seconds"),
    ("ECS_OPERATOR_MAX_SERVICE_TASKS", "9999999", "--max-service-tasks"),
    ("ECS_OPERATOR_LEASE_DURATION", "soon", "--lease-duration"),
])
def test_a_bad_environment_value_is_refused_like_the_flag(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, flag: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as exited:
        parse([])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err and "Traceback" not in err


def test_environment_values_are_taken_when_good(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_OPERATOR_SERVICE_TASK_READY_SECONDS", "3")
    monkeypatch.setenv("ECS_OPERATOR_DEPLOYMENT_MINUTE_SECONDS", "0.5")
    monkeypatch.setenv("ECS_OPERATOR_DOCKER_VOLUME_STORAGE_CLASSES", "rexray/ebs=gp3,local=")
    settings = settings_from(parse([]))
    assert (settings.service_task_ready_seconds, settings.deployment_minute_seconds) == (3, 0.5)
    assert settings.docker_volume_storage_classes == {"rexray/ebs": "gp3", "local": ""}


def test_a_malformed_storage_class_entry_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECS_OPERATOR_DOCKER_VOLUME_STORAGE_CLASSES", "rexray/ebs=gp3,gp2")
    with pytest.raises(SystemExit) as exited:
        parse([])
    assert exited.value.code == "ecs-operator run: ECS_OPERATOR_DOCKER_VOLUME_STORAGE_CLASSES: 'gp2': expected DRIVER=CLASS"
