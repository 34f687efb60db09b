"""Files (or standard input) to parsed documents: tolerant JSON, or YAML with several documents."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .problems import InputError, InputProblem
from .templates import template_hints

STDIN = "-"
STDIN_NAME = "<stdin>"


@dataclass(frozen=True)
class Document:
    """One document of an input file."""

    file: str
    """The file as named on the command line (`<stdin>` for `-`)."""
    number: int
    """1-based position among the file's documents."""
    several: bool
    """The file holds more than one document (messages then name the document)."""
    data: Any
    hints: tuple[str, ...]
    """Template placeholders found in the file (see templates.py)."""

    @property
    def where(self) -> str:
        return f"{self.file} (document {self.number})" if self.several else self.file

    @property
    def stem(self) -> str:
        """The file name without extension: the default name of what has none (e.g. a containerDefinitions array)."""
        return "stdin" if self.file == STDIN_NAME else Path(self.file).name.split(".")[0]


def read_text(file: str) -> str:
    if file == STDIN:
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InputError(InputProblem(file, "", f"cannot read it: {reason}")) from None


def parse(file: str, text: str) -> list[Document]:
    """JSON when the file says so (by name or by its first character), else YAML (`---` separates documents)."""
    file = STDIN_NAME if file == STDIN else file
    hints = template_hints(text)
    if not text.strip():
        raise InputError(InputProblem(file, "", "empty: no ECS document in it"))
    if file.endswith(".json") or text.lstrip()[:1] in ("{", "[", '"'):
        data = [_json(file, text, hints)]
    else:
        data = [d for d in _yaml(file, text, hints) if d is not None]
        if not data:
            raise InputError(InputProblem(file, "", "no ECS document in it (only comments or empty documents)"))
    return [Document(file, i + 1, len(data) > 1, d, hints) for i, d in enumerate(data)]


# A JSON string, or a comma whose next non-blank character closes an object or array.
_STRING_OR_TRAILING_COMMA = re.compile(r'("(?:[^"\\]|\\.)*")|,(?=\s*[}\]])', re.DOTALL)


def strip_trailing_commas(text: str) -> str:
    """`{"a": [1, 2,],}` -> `{"a": [1, 2 ] }`: commas inside strings are kept; columns stay where they were."""
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: m.group(1) or " ", text)


def _json(file: str, text: str, hints: tuple[str, ...]) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass  # most files are plain JSON: the tolerant pass only for the others
    try:
        return json.loads(strip_trailing_commas(text))
    except json.JSONDecodeError as e:
        at = f"line {e.lineno} column {e.colno}{_hinted(_fragment(text) + hints)}"
        raise InputError(InputProblem(file, "", f"not valid JSON at {at}: {e.msg}")) from None


def _fragment(text: str) -> tuple[str, ...]:
    if re.match(r'\s*"[^"]*"\s*:', text):
        return ('it is a fragment: a member such as "containerDefinitions": [...] without the { } of its object',)
    return ()


def _yaml(file: str, text: str, hints: tuple[str, ...]) -> list[Any]:
    import yaml  # JSON inputs (the common case) never need it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return list(yaml.load_all(text, Loader=loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        raise InputError(InputProblem(file, "", f"not valid YAML{at}{_hinted(hints)}: {e.problem}")) from None
    except yaml.YAMLError as e:
        raise InputError(InputProblem(file, "", f"not valid YAML{_hinted(hints)}: {e}")) from None


def _hinted(hints: tuple[str, ...]) -> str:
    return f" ({'; '.join(hints)})" if hints else ""
