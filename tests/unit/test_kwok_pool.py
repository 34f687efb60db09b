"""The kwok node pool backend: Nodes it created count as joining until the Node index shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ecs_operator.adapters.nodepools import KwokPool, LaunchedNodes
from ecs_operator.models.capacity_provider import NodePool

OWNER = {"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "CapacityProvider", "name": "cp", "uid": "u-cp"}


class Nodes:
    """The API server's Nodes: what `create` made (a test passes the index's view of them apart)."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    def create(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        self.created.append(obj)
        return obj, True


def test_a_round_before_the_index_shows_the_new_nodes_launches_nothing_again() -> None:
    kube = Nodes()
    spec = NodePool(backend="kwok", instanceType="m5.large", minSize=0, maxSize=10)
    pool = KwokPool(kube, "cp", spec, OWNER, LaunchedNodes())  # type: ignore[arg-type]
    first = pool.grow([], 1, datetime.now(UTC), 0, None)
    seen = list(kube.created)
    added = pool.grow(seen, 4, datetime.now(UTC), 5, None)
    assert len(added) == 3 and len(kube.created) == 4
    # the next round: the index still shows only the first Node
    assert (pool.size(seen), pool.joining(seen)) == (4, 3)
    assert pool.grow(seen, 4, datetime.now(UTC), 5, None) == [] and len(kube.created) == 4
    # once the index shows them, they are nodes like the others
    assert (pool.size(kube.created), pool.joining(kube.created)) == (4, 0)
    assert first == [kube.created[0]["metadata"]["name"]]
