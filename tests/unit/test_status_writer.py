"""The runtime's status writer: a round that starts before the watch shows its previous write plans
from that write, never from the older object; the object is the truth again once it shows the write,
or after the consistency horizon."""

from __future__ import annotations

from typing import Any

from ecs_operator.runtime.status import StatusWriter


class Statuses:
    """Records status patches; each returns a new resourceVersion."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    def patch_status(self, kind: str, namespace: str | None, name: str, status: dict[str, Any]) -> dict[str, Any] | None:
        self.patches.append(status)
        return {"metadata": {"resourceVersion": str(100 + len(self.patches))}}


def obj(version: str, status: dict[str, Any], uid: str = "u1") -> dict[str, Any]:
    return {"metadata": {"name": "cp", "uid": uid, "resourceVersion": version}, "status": {**status, "kopf": {"x": 1}}}


def test_a_round_before_the_watch_shows_the_write_sees_the_write() -> None:
    kube, now = Statuses(), [0.0]
    writer = StatusWriter(kube, "CapacityProvider", clock=lambda: now[0])  # type: ignore[arg-type]
    old = obj("7", {"lastScalingActivity": "scale-out to 2"})
    assert writer.current(old) == {"lastScalingActivity": "scale-out to 2"}  # kopf's own field left out
    assert writer.write(old, {"lastScalingActivity": "scale-out to 3", "draining": None})
    assert kube.patches == [{"lastScalingActivity": "scale-out to 3"}]
    # the next round still sees the old object: it plans from what was written, and writes nothing
    assert writer.current(old) == {"lastScalingActivity": "scale-out to 3"}
    assert not writer.write(old, {"lastScalingActivity": "scale-out to 3"})
    # the watch shows the write: the object is the truth again
    shown = obj("101", {"lastScalingActivity": "scale-out to 3"})
    assert writer.current(shown) == {"lastScalingActivity": "scale-out to 3"} and writer._written == {}


def test_after_the_horizon_the_object_is_the_truth_whatever_it_says() -> None:
    kube, now = Statuses(), [0.0]
    writer = StatusWriter(kube, "CapacityProvider", clock=lambda: now[0], horizon=5)  # type: ignore[arg-type]
    writer.write(obj("7", {}), {"a": 1})
    now[0] = 5.1
    assert writer.current(obj("7", {"a": 0})) == {"a": 0}


def test_a_new_object_of_the_same_name_never_gets_its_predecessors_status() -> None:
    kube = Statuses()
    writer = StatusWriter(kube, "CapacityProvider")  # type: ignore[arg-type]
    writer.write(obj("7", {}), {"a": 1})
    assert writer.current(obj("3", {}, uid="u2")) == {}


def test_fields_dropped_from_the_status_are_removed_and_a_gone_object_is_forgotten() -> None:
    kube = Statuses()
    writer = StatusWriter(kube, "CapacityProvider")  # type: ignore[arg-type]
    writer.write(obj("7", {"a": 1, "b": 2}), {"a": 1})
    assert kube.patches == [{"b": None}]  # only what changed: "a" is as it was
    kube.patch_status = lambda *args: None  # type: ignore[method-assign]
    assert not writer.write(obj("7", {}), {"c": 3}) and writer._written == {}


def test_writes_the_watch_never_confirms_expire_at_the_next_write() -> None:
    kube, now = Statuses(), [0.0]
    writer = StatusWriter(kube, "CapacityProvider", clock=lambda: now[0], horizon=5)  # type: ignore[arg-type]
    writer.write(obj("7", {}), {"a": 1})  # the object is deleted right after: no event shows the write
    now[0] = 6.0
    other = {"metadata": {"name": "other", "uid": "u9", "resourceVersion": "1"}, "status": {}}
    writer.write(other, {"b": 1})
    assert list(writer._written) == [(None, "other")]


def test_a_status_nobody_waits_for_is_held_for_the_window_then_written_once() -> None:
    kube, now = Statuses(), [0.0]
    writer = StatusWriter(kube, "Task", clock=lambda: now[0], window=2)  # type: ignore[arg-type]
    task = obj("7", {})
    assert not writer.write(task, {"lastStatus": "PROVISIONING"}, urgent=False)
    assert kube.patches == [] and writer.current(task) == {"lastStatus": "PROVISIONING"}  # the next round plans from it
    assert writer.due(task) == 2
    now[0] = 1.0
    assert not writer.write(task, {"lastStatus": "PENDING"}, urgent=False)  # a step within the window: still held
    assert writer.due(task) == 1 and not writer.flush(task)
    now[0] = 2.0
    assert writer.flush(task) and kube.patches == [{"lastStatus": "PENDING"}]  # both steps, one write
    assert writer.due(task) is None and not writer.flush(task)


def test_an_urgent_write_includes_the_held_one() -> None:
    kube, now = Statuses(), [0.0]
    writer = StatusWriter(kube, "Task", clock=lambda: now[0], window=2)  # type: ignore[arg-type]
    task = obj("7", {"old": 1})
    writer.write(task, {"old": 1, "taskArn": "arn", "lastStatus": "PENDING"}, urgent=False)
    now[0] = 0.5
    assert writer.write(task, {"old": 1, "taskArn": "arn", "lastStatus": "RUNNING"}, urgent=True)
    assert kube.patches == [{"taskArn": "arn", "lastStatus": "RUNNING"}]  # only what changed
    assert writer.due(task) is None  # nothing held any more
    # an unchanged status asks for nothing, urgent or not
    assert not writer.write(task, {"old": 1, "taskArn": "arn", "lastStatus": "RUNNING"}, urgent=True)


def test_a_held_status_is_forgotten_with_its_object_and_never_given_to_a_new_one() -> None:
    kube = Statuses()
    writer = StatusWriter(kube, "Task")  # type: ignore[arg-type]
    writer.write(obj("7", {}), {"a": 1}, urgent=False)
    assert writer.current(obj("9", {}, uid="u2")) == {}
    writer.forget(obj("7", {}))
    assert writer.current(obj("7", {})) == {} and writer.due(obj("7", {})) is None and kube.patches == []


def test_a_held_status_is_written_even_when_shown_an_object_carrying_it() -> None:
    """The plans see the object with the writer's current status in it; the writer is often given that."""
    kube, now = Statuses(), [0.0]
    writer = StatusWriter(kube, "Task", clock=lambda: now[0], window=2)  # type: ignore[arg-type]
    task = obj("7", {"lastStatus": "RUNNING"})
    writer.write(task, {"lastStatus": "RUNNING", "containers": 1}, urgent=False)
    shown = {**task, "status": writer.current(task)}
    now[0] = 2.0
    assert writer.flush(shown) and kube.patches == [{"containers": 1}]
