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
    assert kube.patches == [{"a": 1, "b": None}]
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
