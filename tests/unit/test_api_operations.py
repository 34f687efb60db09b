"""The API's operation registry: every operation is ECS's (botocore's model has it), and the README's
table of supported operations lists exactly the registered ones."""

from __future__ import annotations

import re
from pathlib import Path

from ecs_operator.api.operations import load
from ecs_operator.api.shapes import operation_model

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_operations() -> list[str]:
    section = README.read_text().split("\n## The ECS API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)


def test_every_registered_operation_is_in_botocores_ecs_model() -> None:
    assert [name for name in load() if operation_model(name) is None] == []


def test_the_readme_table_lists_exactly_the_registered_operations() -> None:
    listed = readme_operations()
    assert len(listed) == len(set(listed))
    assert sorted(listed) == sorted(load())
