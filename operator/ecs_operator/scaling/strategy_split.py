"""capacityProviderStrategy distribution: which capacity provider each task of a service or RunTask goes to.

ECS: the first `base` tasks go to the one provider with a base; the rest are split in proportion to
`weight`, and weight-0 providers get nothing beyond their base. ECS does not publish its
tie-breaking; this is a deterministic emulation (choose_provider). Adding tasks one at a time with it
hands out "slots" in a fixed global order, so `split(n - 1)` is `split(n)` less one task: scale-in
retraces scale-out, proportions stay and the base goes last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from ecs_operator.models.common import CapacityProviderStrategyItem


def choose_provider(items: Sequence[CapacityProviderStrategyItem], counts: Mapping[str, int]) -> str:
    """The provider for one more task, given the tasks each provider already has (of this service, or
    earlier in this RunTask call: RunTask with count > 1 uses the same rule)."""
    based = _base_item(items)
    if based is not None and counts.get(based.capacityProvider, 0) < (based.base or 0):
        return based.capacityProvider
    weighted = _weighted(items)
    return min(
        weighted,
        key=lambda i: (Fraction(_extra(items, counts, i) + 1, weighted[i]), -weighted[i], _index(items, i)),
    )


def split(items: Sequence[CapacityProviderStrategyItem], desired_count: int) -> dict[str, int]:
    """How many of `desired_count` tasks each provider runs (every provider of the strategy is listed).

    `[FARGATE base=2 weight=1, FARGATE_SPOT weight=3]`: 10 -> FARGATE 4, FARGATE_SPOT 6; 3 -> 2 and 1.
    """
    counts = {item.capacityProvider: 0 for item in items}
    for _ in range(desired_count):
        counts[choose_provider(items, counts)] += 1
    return counts


def _base_item(items: Sequence[CapacityProviderStrategyItem]) -> CapacityProviderStrategyItem | None:
    """The one item with a base (ECS allows only one)."""
    return next((i for i in items if i.base), None)


def _weighted(items: Sequence[CapacityProviderStrategyItem]) -> dict[str, int]:
    """Providers that receive tasks beyond the base, by weight. A lone provider needs no weight (ECS
    refuses all-zero weights only when several providers are listed)."""
    weighted = {i.capacityProvider: w for i in items if (w := i.weight or 0) > 0}
    if not weighted and len(items) == 1:
        return {items[0].capacityProvider: 1}
    if not weighted:
        raise ValueError("capacityProviderStrategy: at least one capacity provider needs a weight above 0")
    return weighted


def _extra(items: Sequence[CapacityProviderStrategyItem], counts: Mapping[str, int], provider: str) -> int:
    """Tasks of `provider` beyond its base."""
    based = _base_item(items)
    base = (based.base or 0) if based is not None and based.capacityProvider == provider else 0
    return counts.get(provider, 0) - base


def _index(items: Sequence[CapacityProviderStrategyItem], provider: str) -> int:
    return next(n for n, i in enumerate(items) if i.capacityProvider == provider)
