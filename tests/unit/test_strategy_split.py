"""capacityProviderStrategy distribution: the reference's worked examples, invariants, and scale-in."""

from __future__ import annotations


import pytest
from ecs_operator.models.common import CapacityProviderStrategyItem
from ecs_operator.scaling.strategy_split import choose_provider, split


def item(name: str, weight: int | None = None, base: int | None = None) -> CapacityProviderStrategyItem:
    return CapacityProviderStrategyItem(capacityProvider=name, weight=weight, base=base)


FARGATE_MIX = [item("FARGATE", weight=1, base=2), item("FARGATE_SPOT", weight=3)]


@pytest.mark.parametrize(
    ("desired", "fargate", "spot"),
    [(10, 4, 6), (1, 1, 0), (3, 2, 1), (0, 0, 0), (2, 2, 0), (6, 3, 3)],
)
def test_reference_worked_examples(desired: int, fargate: int, spot: int) -> None:
    assert split(FARGATE_MIX, desired) == {"FARGATE": fargate, "FARGATE_SPOT": spot}


STRATEGIES = [
    FARGATE_MIX,
    [item("a", weight=1), item("b", weight=1)],
    [item("a", weight=2), item("b", weight=1), item("c", weight=1)],
    [item("a", weight=0, base=5), item("b", weight=1), item("c", weight=4)],
    [item("a", weight=3, base=1), item("b", weight=0), item("c", weight=7)],
    [item("only")],
    [item("only", base=3)],
]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_split_sums_to_desired_and_respects_base_and_weights(strategy: list[CapacityProviderStrategyItem]) -> None:
    base_item = next((i for i in strategy if i.base), None)
    for desired in range(60):
        counts = split(strategy, desired)
        assert sum(counts.values()) == desired
        assert list(counts) == [i.capacityProvider for i in strategy]
        if base_item is not None:
            assert counts[base_item.capacityProvider] >= min(desired, base_item.base or 0)
        extra = {
            i.capacityProvider: counts[i.capacityProvider] - (i.base or 0 if i is base_item else 0) for i in strategy
        }
        weighted = [i for i in strategy if i.weight]
        for i in strategy:
            if not i.weight and len(strategy) > 1:
                assert extra[i.capacityProvider] <= 0, "weight-0 providers get nothing beyond base"
        # Proportional: every provider's share of the tasks beyond base is within one task of its weight share.
        beyond = sum(max(0, e) for e in extra.values())
        total_weight = sum(i.weight or 0 for i in weighted)
        for i in weighted:
            assert abs(max(0, extra[i.capacityProvider]) - beyond * (i.weight or 0) / total_weight) <= 1


def test_ties_go_to_the_heavier_then_the_earlier_provider() -> None:
    assert split([item("a", weight=1), item("b", weight=1)], 1) == {"a": 1, "b": 0}
    assert split([item("a", weight=1), item("b", weight=1)], 3) == {"a": 2, "b": 1}
    assert split([item("a", weight=1), item("b", weight=2)], 2) == {"a": 0, "b": 2}  # 1/2 < 1/1, then 2/2 ties 1/1: b
    assert split([item("a", weight=1), item("b", weight=2)], 3) == {"a": 1, "b": 2}


def test_run_task_count_uses_the_same_rule_one_task_at_a_time() -> None:
    counts = {"FARGATE": 0, "FARGATE_SPOT": 0}
    placed = []
    for _ in range(5):
        provider = choose_provider(FARGATE_MIX, counts)
        counts[provider] += 1
        placed.append(provider)
    assert placed == ["FARGATE", "FARGATE", "FARGATE_SPOT", "FARGATE_SPOT", "FARGATE_SPOT"]


def test_choose_provider_continues_from_existing_counts() -> None:
    # A service already skewed toward FARGATE: new tasks go to the provider below its share.
    assert choose_provider(FARGATE_MIX, {"FARGATE": 6, "FARGATE_SPOT": 0}) == "FARGATE_SPOT"
    assert choose_provider(FARGATE_MIX, {}) == "FARGATE"


def test_all_zero_weights_are_refused_unless_one_provider() -> None:
    with pytest.raises(ValueError, match="at least one capacity provider needs a weight"):
        split([item("a"), item("b")], 1)
    assert split([item("a")], 3) == {"a": 3}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_scale_in_retraces_scale_out(strategy: list[CapacityProviderStrategyItem]) -> None:
    """split(n - 1) is split(n) less one task: a scale-in by one stops one task and moves none."""
    for desired in range(1, 40):
        more, fewer = split(strategy, desired), split(strategy, desired - 1)
        assert all(more[p] >= fewer[p] for p in more) and sum(more.values()) - sum(fewer.values()) == 1


def test_scale_in_removes_base_last() -> None:
    removed = [next(p for p, n in split(FARGATE_MIX, k).items() if n > split(FARGATE_MIX, k - 1)[p]) for k in range(10, 0, -1)]
    assert removed[-2:] == ["FARGATE", "FARGATE"]
    assert removed.count("FARGATE_SPOT") == 6
