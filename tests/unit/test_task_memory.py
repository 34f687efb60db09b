"""Which Tasks a registration or a Cluster change wakes: only the namespace's unlaunched ones."""

from __future__ import annotations

from ecs_operator.handlers.task_memory import Unlaunched


def test_only_the_unlaunched_tasks_of_the_namespace_are_listed() -> None:
    waiting = Unlaunched()
    waiting.mark(("a", "t1"), True)
    waiting.mark(("a", "t2"), True)
    waiting.mark(("b", "t3"), True)
    waiting.mark(("a", "t1"), False)  # launched
    assert waiting.of("a") == [("a", "t2")] and waiting.of("b") == [("b", "t3")]
    waiting.mark(("b", "t3"), False)
    waiting.mark(("c", "never"), False)
    assert waiting.of("b") == [] and waiting.keys == {"a": {("a", "t2")}}  # nothing kept for empty namespaces
