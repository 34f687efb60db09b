"""ecs_operator.quantity (the pure core's quantity parser) agrees with the Kubernetes client's
`kubernetes.utils.quantity.parse_quantity` (36.0.3): its results for these inputs, recorded from it (the project no
longer installs that client)."""

from decimal import Decimal

import pytest

from ecs_operator.quantity import parse_quantity

CLIENT_VALUES: list[tuple[str | int | float | Decimal, str]] = [
    ('0', '0'),
    ('1', '1'),
    ('2', '2'),
    ('500m', '0.500'),
    ('250m', '0.250'),
    ('1.5', '1.5'),
    ('.5', '0.5'),
    ('1e3', '1E+3'),
    ('1E3', '1E+3'),
    ('2.5e-3', '0.0025'),
    ('100n', '1.00E-7'),
    ('3u', '0.000003'),
    ('1k', '1000'),
    ('1K', '1000'),
    ('1M', '1000000'),
    ('1G', '1000000000'),
    ('1T', '1000000000000'),
    ('1P', '1000000000000000'),
    ('1E', '1000000000000000000'),
    ('1Ki', '1024'),
    ('512Mi', '536870912'),
    ('1.5Gi', '1610612736.0'),
    ('2Ti', '2199023255552'),
    ('1Pi', '1125899906842624'),
    ('1Ei', '1152921504606846976'),
    ('1000k', '1000000'),
    ('1e9', '1E+9'),
    ('128974848', '128974848'),
    ('129e6', '1.29E+8'),
    ('123Mi', '128974848'),
    ('-1', '-1'),
    ('+2', '2'),
    ('1mi', '0.0009765625'),
    ('1 Gi', '1073741824'),
    (7, '7'),
    (1.25, '1.25'),
    (Decimal('0.1'), '0.1'),
]
INVALID = ["", "x", "1ki", "1Xi", "Mi", "1.2.3", "m"]
"""All refused by the client with ValueError."""


def test_same_values_as_the_kubernetes_client() -> None:
    for quantity, value in CLIENT_VALUES:
        parsed = parse_quantity(quantity)
        assert parsed == Decimal(value) and str(parsed) == value, quantity


def test_same_refusals_as_the_kubernetes_client() -> None:
    for quantity in INVALID:
        with pytest.raises(ValueError, match="Invalid number format|unknown suffix"):
            parse_quantity(quantity)
