"""One `convert` invocation: every file loaded and detected, then converted together (so services
and tasks find their task definitions), then written as YAML plus a report."""

from __future__ import annotations

from dataclasses import dataclass, field

from .detect import EcsObject, detect
from .load import parse, read_text
from .pipeline import Conversion, Target, convert
from .problems import InputError, InputProblem


@dataclass
class Result:
    to: Target
    conversions: list[Conversion] = field(default_factory=list)
    problems: list[InputProblem] = field(default_factory=list)
    warnings: list[InputProblem] = field(default_factory=list)
    yaml: str = ""

    def report(self, form: str) -> str:
        from .report import report_json, report_text

        return report_json(self.conversions, self.to) if form == "json" else report_text(self.conversions, self.to)


def convert_files(files: list[str], to: Target, namespace: str | None, texts: dict[str, str] | None = None) -> Result:
    """`texts` gives file contents already read (the benchmark); other files are read here."""
    result = Result(to)
    objects: list[tuple[EcsObject, int]] = []
    for file in files:
        try:
            documents = parse(file, texts[file] if texts and file in texts else read_text(file))
            found = [obj for document in documents for obj in detect(document)]
        except InputError as e:
            result.problems.append(e.problem)
            continue
        objects += [(obj, i) for i, obj in enumerate(found)]
    if not objects and not result.problems:
        result.problems.append(InputProblem(", ".join(files), "", "no ECS document found"))
    outcome = convert(objects, to, namespace)
    result.problems += outcome.problems
    result.warnings = outcome.warnings
    if not result.problems:
        from .emit import output_objects, to_yaml

        result.conversions = outcome.conversions
        result.yaml = to_yaml(output_objects(outcome.conversions, to))
    return result
