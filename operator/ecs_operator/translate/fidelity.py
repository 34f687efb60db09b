"""The fidelity report: one verdict (exact, approximated, unsupported) for every ECS field of an input.

Defaults come from the mapping table (mapping.py); the translators override them for a concrete
field path where the input decides (a static hostPort is exact, a dynamic one approximated).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ecs_operator.models.readonly import ReadOnlyOutput

Verdict = Literal["exact", "approximated", "unsupported"]
VERDICTS: tuple[Verdict, ...] = ("exact", "approximated", "unsupported")


@dataclass(frozen=True)
class Entry:
    path: str
    verdict: Verdict
    target: str
    note: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "verdict": self.verdict, "target": self.target, "note": self.note}


@dataclass
class FidelityReport:
    """Collects the translators' verdicts; `entries()` completes them over the input's fields."""

    kind: str
    overrides: dict[str, Entry] = field(default_factory=dict)

    def exact(self, path: str, target: str, note: str = "") -> None:
        self.overrides[path] = Entry(path, "exact", target, note)

    def approximated(self, path: str, target: str, note: str) -> None:
        self.overrides[path] = Entry(path, "approximated", target, note)

    def unsupported(self, path: str, note: str) -> None:
        self.overrides[path] = Entry(path, "unsupported", "", note)

    def entries(self, document: dict[str, Any]) -> list[Entry]:
        """One entry per field path present in `document` (the ECS JSON that was translated)."""
        from .mapping import default_entry  # the table imports nothing from here at import time

        out: list[Entry] = []
        for path, value in leaves(document):
            if value == [] or value == {}:  # exported JSON lists every field, most of them empty: nothing is lost
                out.append(Entry(path, "exact", "(nothing)", "empty: nothing to translate"))
                continue
            entry = self.overrides.get(path) or default_entry(self.kind, path)
            if entry is not None and entry.verdict == "unsupported" and path not in self.overrides and value in OFF_VALUES:
                out.append(Entry(path, "exact", "(nothing)", f"{value!r}: the feature is off, as without it"))
                continue
            if entry is None:
                entry = next(
                    (self.overrides[p] for p in ancestors(path) if p in self.overrides),
                    Entry(path, "unsupported", "", "no mapping for this field"),
                )
            out.append(Entry(path, entry.verdict, entry.target, entry.note))
        return out


def summarize(entries: list[Entry]) -> dict[str, Any]:
    counts: dict[str, int] = {v: sum(1 for e in entries if e.verdict == v) for v in VERDICTS}
    return {
        **counts,
        "summary": f"{counts['exact']} exact, {counts['approximated']} approximated, {counts['unsupported']} unsupported",
    }


def ignored_read_only(spec: ReadOnlyOutput) -> dict[str, list[str]]:
    """The report's `ignoredReadOnlyFields`: ECS output fields a pasted describe-* output carried (absent when none)."""
    fields = spec.ignored_read_only_fields
    return {"ignoredReadOnlyFields": fields} if fields else {}


# A feature switched off asks for nothing Kubernetes lacks: no verdict of "unsupported" for it.
OFF_VALUES = (False, "DISABLED", "NONE", "disabled")

# Values kept whole (maps of free-form keys): the field is the unit of judgement, not each key.
WHOLE_VALUE_FIELDS = {
    "dockerLabels", "options", "driverOpts", "labels", "podLabels", "podAnnotations", "nodeLabels",
}


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(field path, value) down to scalars, scalar lists, free-form maps and empty objects."""
    if isinstance(value, dict):
        last = path.rsplit(".", 1)[-1]
        if not value or last in WHOLE_VALUE_FIELDS:
            yield path, value
            return
        for key, item in value.items():
            if item is None:
                continue
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, value


_INDEX = re.compile(r"\[\d+\]")


def generic(path: str) -> str:
    """`containerDefinitions[0].portMappings[1].hostPort` -> `containerDefinitions[].portMappings[].hostPort`."""
    return _INDEX.sub("[]", path)


def ancestors(path: str) -> Iterator[str]:
    """Enclosing field paths, nearest first."""
    while True:
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            return
        path = path[:cut]
        yield path
