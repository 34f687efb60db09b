"""The fidelity report of a `convert` run: one verdict per input field path, as JSON or as a table."""

from __future__ import annotations

import json
from typing import Any

from ecs_operator.translate.fidelity import VERDICTS, Entry, ancestors, summarize
from ecs_operator.translate.mapping import default_entry

from .emit import object_names
from .pipeline import Conversion, Target


def report_entries(conversions: list[Conversion], to: Target) -> list[dict[str, Any]]:
    out = []
    for c in conversions:
        entry: dict[str, Any] = {
            "file": c.obj.document.file,
            "index": c.index,
            "kind": c.obj.kind,
            "name": c.name,
            "input": c.obj.form,
            "summary": summarize(c.fields),
            "fields": [e.to_json() for e in c.fields],
            "objects": object_names(c, to),
        }
        if c.obj.dropped:
            entry["dropped"] = list(c.obj.dropped)
        if c.note:
            entry["note"] = c.note
        if c.task_definition is not None:
            entry["taskDefinition"] = c.task_definition
        out.append(entry)
    return out


def report_json(conversions: list[Conversion], to: Target) -> str:
    """A JSON array, one input object per line (compact: json's C encoder, not its slow indenting one)."""
    entries = report_entries(conversions, to)
    return "[\n" + ",\n".join(json.dumps(e) for e in entries) + "\n]\n" if entries else "[]\n"


def report_text(conversions: list[Conversion], to: Target) -> str:
    """Per object: what is unsupported, then what is approximated, then how many fields are exact."""
    lines: list[str] = []
    for c in conversions:
        summary = summarize(c.fields)["summary"]
        lines.append(f"{c.label}  {c.obj.kind} {c.name} ({c.obj.form}): {summary}")
        rows = _rows(c.obj.kind, c.fields)
        width = max((len(path) for _, path, _ in rows), default=0)
        lines += [f"  {verdict:<12}  {path:<{width}}  {text}".rstrip() for verdict, path, text in rows]
        exact = sum(1 for e in c.fields if e.verdict == "exact")
        lines.append(f"  {exact} field{'s' if exact != 1 else ''} exact")
        if c.obj.dropped:
            lines.append(f"  read-only fields dropped: {', '.join(c.obj.dropped)}")
        if c.task_definition is not None:
            td = c.task_definition
            summary = f"{td['summary']['summary']}: " if "summary" in td else ""
            resolved = f" = {td['resolved']}" if td["resolved"] else ""
            lines.append(f"  task definition {td['reference']}{resolved}: {summary}{td['note']}")
        if c.note:
            lines.append(f"  {c.note}")
        names = object_names(c, to)
        if names:
            lines.append(f"  -> {', '.join(names)}")
    return "\n".join(lines) + "\n" if lines else ""


def _rows(kind: str, fields: list[Entry]) -> list[tuple[str, str, str]]:
    """(verdict, path, explanation) of the fields that are not exact, unsupported first.

    Fields under one enclosing field with one verdict and one explanation are one row
    (`proxyConfiguration (12 fields)`): the JSON report lists each.
    """
    rows: list[tuple[str, str, str]] = []
    done: set[str] = set()
    for e in sorted((e for e in fields if e.verdict != "exact"), key=lambda e: -VERDICTS.index(e.verdict)):
        if e.path in done:
            continue
        group, members = e.path, [e]
        for parent in ancestors(e.path):
            under = [f for f in fields if f.path.startswith((parent + ".", parent + "["))]
            if any(f.verdict != e.verdict for f in under) or len({f.note for f in under if f.note}) > 1:
                break
            if len(under) > 1:
                group, members = parent, under
        done.update(f.path for f in members)
        row = e if len(members) == 1 else (default_entry(kind, group) or e)  # a group reads as its table row
        note = next((f.note for f in members if f.note), "") or row.note
        explanation = note if e.verdict == "unsupported" else (f"-> {row.target}" + (f": {note}" if note else ""))
        label = f"{group} ({len(members)} fields)" if len(members) > 1 else group
        rows.append((e.verdict, label, explanation))
    return rows
