"""Kubernetes resource quantities (`500m`, `512Mi`, `1e3`, `1.5G`) as exact decimals (pure).

The rules of the Kubernetes client's `kubernetes.utils.quantity.parse_quantity` (Apache-2.0), here so the pure
core needs no Kubernetes client: tests/unit/test_quantity.py checks that both agree.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_EXPONENTS = {"n": -3, "u": -2, "m": -1, "K": 1, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5, "E": 6}


def parse_quantity(quantity: str | int | float | Decimal) -> Decimal:
    """A quantity with a binary (Ki, Mi, Gi, Ti, Pi, Ei) or decimal (n, u, m, k, M, G, T, P, E) suffix, or
    none, as a Decimal; ValueError for an invalid number or an unknown suffix."""
    if isinstance(quantity, (int, float, Decimal)):
        return Decimal(quantity)
    text = str(quantity)
    number_text, suffix = text, None
    if len(text) >= 2 and text[-1] == "i":
        if text[-2] in _EXPONENTS:
            number_text, suffix = text[:-2], text[-2:]
    elif len(text) >= 1 and text[-1] in _EXPONENTS:
        number_text, suffix = text[:-1], text[-1:]
    try:
        number = Decimal(number_text)
    except InvalidOperation:
        raise ValueError(f"Invalid number format: {number_text}") from None
    if suffix is None:
        return number
    if suffix.endswith("i"):
        base = 1024
    elif len(suffix) == 1:
        base = 1000
    else:
        raise ValueError(f"{text} has unknown suffix")
    if suffix == "ki" or suffix[0] not in _EXPONENTS:  # binary suffixes are upper case: Ki, not ki
        raise ValueError(f"{text} has unknown suffix")
    return number * (base ** Decimal(_EXPONENTS[suffix[0]]))
