"""ecs_operator.quantity (the pure core's quantity parser) agrees with the Kubernetes client's."""

from decimal import Decimal

import pytest
from kubernetes.utils.quantity import parse_quantity as client_parse_quantity

from ecs_operator.quantity import parse_quantity

QUANTITIES: list[str | int | float | Decimal] = ["0", "1", "2", "500m", "250m", "1.5", ".5", "1e3", "1E3", "2.5e-3", "100n", "3u", "1k", "1K", "1M", "1G",
              "1T", "1P", "1E", "1Ki", "512Mi", "1.5Gi", "2Ti", "1Pi", "1Ei", "1000k", "1e9", "128974848", "129e6",
              "123Mi", "-1", "+2", "1mi", "1 Gi", 7, 1.25, Decimal("0.1")]
INVALID = ["", "x", "1ki", "1Xi", "Mi", "1.2.3", "m"]


def test_same_values_as_the_kubernetes_client() -> None:
    for quantity in QUANTITIES:
        assert parse_quantity(quantity) == client_parse_quantity(quantity), quantity


def test_same_refusals_as_the_kubernetes_client() -> None:
    for quantity in INVALID:
        with pytest.raises(ValueError):
            client_parse_quantity(quantity)
        with pytest.raises(ValueError, match="Invalid number format|unknown suffix"):
            parse_quantity(quantity)
