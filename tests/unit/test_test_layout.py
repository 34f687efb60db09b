"""The suite's own layout: pytest's default import mode needs every test module's basename to be unique.

Two `test_x.py` files in different folders collect fine one at a time and fail together
("import file mismatch"), which is how a whole CI run once stopped after 29 s.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_unique_basename() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
