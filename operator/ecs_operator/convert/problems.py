"""What `convert` tells the user about an input: errors (exit 2) and warnings, each naming the file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputProblem:
    """`where` is the file (and document number); `path` the JSON path inside that document."""

    where: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.path}: {self.message}" if self.path else f"{self.where}: {self.message}"


class InputError(Exception):
    """An input that cannot be used at all (unreadable, not JSON/YAML, not an ECS document)."""

    def __init__(self, problem: InputProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem
