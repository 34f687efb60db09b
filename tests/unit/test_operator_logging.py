"""The operator's log keeps what matters: kopf's line for every successful handler or timer run
goes to DEBUG (a ContainerInstance timer alone made one per node every few seconds)."""

from __future__ import annotations

import logging

import pytest
from ecs_operator.handlers.setup import RoutineRunsAtDebug


def record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


@pytest.mark.parametrize("message", [
    "Timer 'resync_instance' succeeded.",
    "Handler 'register' succeeded.",
    "Creation is processed: 1 succeeded; 0 failed.",
])
def test_routine_success_lines_are_debug(message: str) -> None:
    root = logging.getLogger()
    level = root.level
    try:
        root.setLevel(logging.INFO)
        line = record(message)
        assert RoutineRunsAtDebug().filter(line) is False and line.levelname == "DEBUG"
        root.setLevel(logging.DEBUG)
        assert RoutineRunsAtDebug().filter(record(message)) is True  # --log-level DEBUG shows them
    finally:
        root.setLevel(level)


@pytest.mark.parametrize(("message", "level"), [
    ("Handler 'delete_cluster' failed temporarily: The Cluster cannot be deleted while tasks web remain", logging.ERROR),
    ("Deletion is processed: 0 succeeded; 1 failed.", logging.INFO),
    ("Task ns/web Launched: 1 task(s) of web:1 launched", logging.INFO),
])
def test_failures_and_our_own_lines_stay(message: str, level: int) -> None:
    line = record(message, level)
    assert RoutineRunsAtDebug().filter(line) is True and line.levelno == level
