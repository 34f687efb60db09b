"""Placeholders of template engines in a file: ECS JSON is often kept as a template and rendered later.

Naming the syntax tells the user why a document does not parse or validate (or converts with
`${...}` left in its values): render the template first.
"""

from __future__ import annotations

import re

# (what the syntax is called, a substring every match has, its pattern); the first matches are shown.
SYNTAXES: tuple[tuple[str, str, re.Pattern[str]], ...] = (
    ("Terraform/envsubst template", "${", re.compile(r"\$\{[^}\n]{1,80}\}")),
    ("mustache/Go template (e.g. ecspresso)", "{{", re.compile(r"\{\{[^\n]{0,80}?\}\}")),
    ("$$$NAME$$$ placeholder (ECS agent tests)", "$$$", re.compile(r"\$\$\$[A-Za-z0-9_]{1,80}\$\$\$")),
    ("<PLACEHOLDER> template", "<", re.compile(r"<[A-Z][A-Z0-9_-]{0,78}[A-Z0-9]>")),
)
SHOWN = 3


def template_hints(text: str) -> tuple[str, ...]:
    """One phrase per placeholder syntax found, e.g. `it looks like a mustache/Go template ...: {{command}}`."""
    hints = []
    for name, marker, pattern in SYNTAXES:
        if marker not in text:  # the substring test is much cheaper than the scan
            continue
        found = list(dict.fromkeys(pattern.findall(text)))
        if found:
            more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
            hints.append(f"it looks like a {name}: {', '.join(found[:SHOWN])}{more}")
    return tuple(hints)
