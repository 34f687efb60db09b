"""ECS's task-level cpu/memory strings ("1 vCPU", ".5 GB", "2048") as CPU units and MiB."""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_CPU = re.compile(rf"^\s*{_NUMBER}\s*(vcpu)?\s*$", re.IGNORECASE)
_MEMORY = re.compile(rf"^\s*{_NUMBER}\s*(gb|mb|mib|gib)?\s*$", re.IGNORECASE)


def cpu_units(value: int | str) -> int:
    """ECS task cpu: an integer of units, or vCPUs with the "vCPU" suffix (1 vCPU = 1024 units)."""
    if isinstance(value, int):
        return value
    match = _CPU.match(value)
    if not match:
        raise ValueError(f"{value!r} is neither CPU units (e.g. \"1024\") nor vCPUs (e.g. \"1 vCPU\")")
    number, vcpu = Fraction(match.group(1)), match.group(2)
    if vcpu:
        return _whole(number * 1024)
    if number.denominator != 1:
        raise ValueError(f"{value!r}: CPU units must be a whole number (or say \"{value} vCPU\")")
    return int(number)


def memory_mib(value: int | str) -> int:
    """ECS task memory: MiB as an integer, or GB with the "GB" suffix (1 GB = 1024 MiB)."""
    if isinstance(value, int):
        return value
    match = _MEMORY.match(value)
    if not match:
        raise ValueError(f"{value!r} is neither MiB (e.g. \"2048\") nor GB (e.g. \"2 GB\")")
    number, unit = Fraction(match.group(1)), (match.group(2) or "").lower()
    if unit in ("gb", "gib"):
        return _whole(number * 1024)
    if number.denominator != 1:
        raise ValueError(f"{value!r}: MiB must be a whole number (or say \"{value} GB\")")
    return int(number)


def _whole(number: Fraction) -> int:
    """Exactly (a float turns "999999999999999999999999999999" into 1000000000000000019884624838656)."""
    return round(number)


# FARGATE task sizes: cpu units -> allowed memory in MiB (docs/ecs-semantics.md §FARGATE task sizes).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
