"""ECS's cluster query language (memberOf `expression`, ListContainerInstances `filter`): parser and evaluator.

Grammar (docs/ecs-semantics.md §The cluster query language), `and` binding tighter than `or`:

    expr   := and (("or" | "||") and)*
    and    := unary (("and" | "&&") unary)*
    unary  := ("not" | "!") "(" expr ")" | "(" expr ")" | term
    term   := subject operator [argument]
    subject:= "attribute:" NAME | agentConnected | agentVersion | ec2InstanceId | registeredAt
            | runningTasksCount | task:group
    argument := value | "[" value ("," value)* "]"           (lists only after in / !in)

ECS publishes no lexical rules for values. Here an unquoted value runs to the next whitespace, stopping
early at a `)` it did not open and, inside a list, at `,` or `]`; so `not(attribute:a == b)` and
`=~ (t2|m5).*` both read as meant. Quote a value ('x' or "x", no escapes) to put spaces in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence, Set as AbstractSet
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from operator import ge, gt, le, lt
from typing import Any, Literal, NoReturn, get_args

MAX_EXPRESSION_LENGTH = 2000
"""A memberOf expression is at most 2000 characters."""

Operator = Literal["==", "!=", ">", ">=", "<", "<=", "exists", "!exists", "in", "!in", "=~", "!~"]
"""Operators in their canonical (symbolic) spelling."""

OPERATOR_SPELLINGS: dict[str, Operator] = {
    "==": "==", "equals": "==",
    "!=": "!=", "not_equals": "!=",
    ">": ">", "greater_than": ">",
    ">=": ">=", "greater_than_equal": ">=",
    "<": "<", "less_than": "<",
    "<=": "<=", "less_than_equal": "<=",
    "exists": "exists",
    "!exists": "!exists", "not_exists": "!exists",
    "in": "in",
    "!in": "!in", "not_in": "!in",
    "=~": "=~", "matches": "=~",
    "!~": "!~", "not_matches": "!~",
}  # fmt: skip
ORDERING: frozenset[Operator] = frozenset({">", ">=", "<", "<="})
NEGATED: dict[Operator, Operator] = {"!=": "==", "!in": "in", "!exists": "exists", "!~": "=~"}
"""Negative operators and the positive one they deny."""

ATTRIBUTE_PREFIX = "attribute:"
SUBJECTS = ("agentConnected", "agentVersion", "ec2InstanceId", "registeredAt", "runningTasksCount", "task:group")
"""Subjects besides `attribute:<name>`."""

_EQUALITY: frozenset[Operator] = frozenset({"==", "!=", "in", "!in", "=~", "!~"})
_COMPARISON: frozenset[Operator] = frozenset({"==", "!=", ">", ">=", "<", "<="})
ALLOWED_OPERATORS: dict[str, frozenset[Operator]] = {
    "agentConnected": _EQUALITY,
    "ec2InstanceId": _EQUALITY,
    "agentVersion": _COMPARISON,
    "registeredAt": _COMPARISON,
    "runningTasksCount": _COMPARISON,
    # The guide lists no set for task:group; ordering a group name means nothing, so it is refused.
    "task:group": _EQUALITY | {"exists", "!exists"},
}
"""Per-subject operator sets from the ECS guide; `attribute:<name>` takes every operator."""


class QuerySyntaxError(ValueError):
    """An expression ECS would refuse; `position` is the 0-based offending character."""

    def __init__(self, expression: str, position: int, reason: str) -> None:
        self.expression = expression
        self.position = position
        self.reason = reason
        super().__init__(_pointing_at(expression, position, reason))


def _pointing_at(expression: str, position: int, reason: str) -> str:
    """`<reason> at position N: <expression>` and a caret line under character N (long text is windowed)."""
    start, end = max(0, position - 40), min(len(expression), position + 40)
    lead = "..." if start else ""
    shown = lead + expression[start:end] + ("..." if end < len(expression) else "")
    shown = re.sub(r"\s", " ", shown)  # keep the caret aligned
    head = f"{reason} at position {position}: "
    return f"{head}{shown}\n{' ' * (len(head) + len(lead) + position - start)}^"


# --- AST ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """`subject operator argument`; `values` holds one value, the list of in/!in, or none for exists."""

    subject: str
    """`attribute:<name>` as written, or one of SUBJECTS."""
    operator: Operator
    values: tuple[str, ...] = ()

    @property
    def attribute(self) -> str | None:
        """The attribute name of an `attribute:<name>` subject."""
        return self.subject[len(ATTRIBUTE_PREFIX) :] if self.subject.startswith(ATTRIBUTE_PREFIX) else None

    def __str__(self) -> str:
        if not self.values:
            return f"{self.subject} {self.operator}"
        if self.operator in ("in", "!in"):
            return f"{self.subject} {self.operator} [{', '.join(_quoted(v) for v in self.values)}]"
        return f"{self.subject} {self.operator} {_quoted(self.values[0])}"


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return " and ".join(f"({i})" if isinstance(i, Or) else str(i) for i in self.items)


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return " or ".join(f"({i})" if isinstance(i, And) else str(i) for i in self.items)


@dataclass(frozen=True)
class Not:
    operand: Expr

    def __str__(self) -> str:
        return f"not({self.operand})"


Expr = Term | And | Or | Not


def _quoted(value: str) -> str:
    """A value as the parser reads it back: bare when safe, else quoted."""
    if re.fullmatch(r"[^\s'\"()\[\],]+", value):
        return value
    return f'"{value}"' if "'" in value else f"'{value}'"


# --- parser -------------------------------------------------------------------------------------


def parse(expression: str) -> Expr:
    """Parse a cluster query; QuerySyntaxError says where and why it is not one ECS accepts."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise QuerySyntaxError(
            expression,
            MAX_EXPRESSION_LENGTH,
            f"an expression has at most {MAX_EXPRESSION_LENGTH} characters (this one has {len(expression)})",
        )
    return _Parser(expression).expression()


_SPELLINGS_LONGEST_FIRST = sorted(OPERATOR_SPELLINGS, key=len, reverse=True)
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_./-]+")  # ECS attribute names: [A-Za-z0-9-_/.]


def _word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


class _Parser:
    """Recursive descent straight over the text: how a value is read depends on where it stands."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, reason: str, position: int | None = None) -> NoReturn:
        raise QuerySyntaxError(self.text, self.pos if position is None else position, reason)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at(self, spelling: str) -> bool:
        """Whether `spelling` (case-insensitive; whole words only) stands at the cursor."""
        end = self.pos + len(spelling)
        if self.text[self.pos : end].lower() != spelling:
            return False
        return not (_word_char(spelling[-1]) and end < len(self.text) and _word_char(self.text[end]))

    def take(self, *spellings: str) -> str | None:
        """Consume the first of `spellings` found at the cursor (after spaces)."""
        self.skip_space()
        for spelling in spellings:
            if self.at(spelling):
                self.pos += len(spelling)
                return spelling
        return None

    def expression(self) -> Expr:
        expr = self.disjunction()
        self.skip_space()
        if self.pos < len(self.text):
            self.fail("expected and, or, or the end of the expression")
        return expr

    def disjunction(self) -> Expr:
        items = [self.conjunction()]
        while self.take("||", "or"):
            items.append(self.conjunction())
        return combine(Or, items)

    def conjunction(self) -> Expr:
        items = [self.unary()]
        while self.take("&&", "and"):
            items.append(self.unary())
        return combine(And, items)

    def unary(self) -> Expr:
        negation = self.take("not", "!")
        if negation:
            if not self.take("("):
                self.fail(f"expected ( after {negation}")
            return Not(self.parenthesised())
        if self.take("("):
            return self.parenthesised()
        return self.term()

    def parenthesised(self) -> Expr:
        inner = self.disjunction()
        if not self.take(")"):
            self.fail("expected )")
        return inner

    def term(self) -> Term:
        self.skip_space()
        subject = self.subject()
        self.skip_space()
        operator_at = self.pos
        operator = self.operator()
        allowed = ALLOWED_OPERATORS.get(subject)
        if allowed is not None and operator not in allowed:
            takes = ", ".join(o for o in get_args(Operator) if o in allowed)
            self.fail(f"{subject} does not take {operator} (it takes {takes})", operator_at)
        if operator in ("exists", "!exists"):
            return Term(subject, operator)
        values = self.argument(operator)
        for value, position in values:
            self.check_value(subject, operator, value, position)
        return Term(subject, operator, tuple(v for v, _ in values))

    def subject(self) -> str:
        if self.text.startswith(ATTRIBUTE_PREFIX, self.pos):
            name = _ATTRIBUTE_NAME.match(self.text, self.pos + len(ATTRIBUTE_PREFIX))
            if not name:
                self.fail("expected an attribute name after attribute:", self.pos + len(ATTRIBUTE_PREFIX))
            self.pos = name.end()
            return ATTRIBUTE_PREFIX + name.group()
        for subject in SUBJECTS:
            end = self.pos + len(subject)
            if self.text.startswith(subject, self.pos) and not (end < len(self.text) and _word_char(self.text[end])):
                self.pos = end
                return subject
        self.fail("expected a subject (attribute:<name>, " + ", ".join(SUBJECTS) + ")")

    def operator(self) -> Operator:
        for spelling in _SPELLINGS_LONGEST_FIRST:
            if self.at(spelling):
                self.pos += len(spelling)
                return OPERATOR_SPELLINGS[spelling]
        self.fail("expected an operator")

    def argument(self, operator: Operator) -> list[tuple[str, int]]:
        self.skip_space()
        if not self.text.startswith("[", self.pos) or operator in ("=~", "!~"):  # a regex may open with [
            return [self.value(in_list=False)]
        if operator not in ("in", "!in"):
            self.fail("a list [...] is only allowed after in and !in")
        self.pos += 1
        values = []
        while True:
            self.skip_space()
            values.append(self.value(in_list=True))
            if self.take(","):
                continue
            if self.take("]"):
                return values
            self.fail("expected , or ] in the list")

    def value(self, in_list: bool) -> tuple[str, int]:
        start, text = self.pos, self.text
        if start < len(text) and text[start] in "'\"":
            end = text.find(text[start], start + 1)
            if end < 0:
                self.fail("unterminated quoted value", start)
            self.pos = end + 1
            return text[start + 1 : end], start
        parens = brackets = 0
        while self.pos < len(text):
            c = text[self.pos]
            if c.isspace() or (c == ")" and not parens) or (in_list and not brackets and c == "]"):
                break
            if in_list and c == "," and not parens and not brackets:
                break
            if c in "()":
                parens += 1 if c == "(" else -1
            elif c == "[":
                brackets += 1
            elif c == "]" and brackets:
                brackets -= 1
            self.pos += 1
        if self.pos == start:
            self.fail("expected a value")
        return text[start : self.pos], start

    def check_value(self, subject: str, operator: Operator, value: str, position: int) -> None:
        if operator in ("=~", "!~"):
            try:
                java_regex(value)
            except re.error as error:
                self.fail(f"invalid regular expression ({error.msg})", position)
            return
        literal = _literal(subject, operator)
        if literal is not None and literal[0](value) is None:
            self.fail(f"{literal[1]}; got {value!r}", position)


def combine(kind: type[And | Or], items: list[Expr]) -> Expr:
    """`items` joined by and/or: one item stays itself, nested groups of the same kind are flattened."""
    if len(items) == 1:
        return items[0]
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


# --- literals of the typed subjects -------------------------------------------------------------

_VERSION = re.compile(r"v?(\d+(?:\.\d+)*)")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?)?")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _version(text: str) -> tuple[int, ...] | None:
    """`1.14.5` -> (1, 14, 5); trailing zeros dropped so 1.14 == 1.14.0; suffixes after the numbers ignored."""
    match = _VERSION.match(text)
    if not match:
        return None
    parts = [int(p) for p in match.group(1).split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _strict_version(text: str) -> tuple[int, ...] | None:
    return _version(text) if _VERSION.fullmatch(text) else None


def _timestamp(text: str) -> datetime | None:
    """The registeredAt forms ECS documents; no zone means UTC."""
    return _utc(datetime.fromisoformat(text)) if _TIMESTAMP.fullmatch(text) else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _count(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _number(text: str) -> Decimal | None:
    return Decimal(text) if _NUMBER.fullmatch(text) else None


_LITERALS: dict[str, tuple[Callable[[str], object | None], str]] = {
    "agentVersion": (_strict_version, "agentVersion compares with a version such as 1.14.5"),
    "registeredAt": (_timestamp, "registeredAt compares with 2018-06-18, 2018-06-18T22:28:28 or that with Z or +00:00"),
    "runningTasksCount": (_count, "runningTasksCount compares with a whole number"),
    ATTRIBUTE_PREFIX: (_number, "attributes compare by number with >, >=, < and <="),
}
"""How the comparable subjects read their value, and what to say when they cannot."""


def _literal(subject: str, operator: Operator) -> tuple[Callable[[str], object | None], str] | None:
    """The reader of this term's values; None: they compare as plain strings."""
    if subject in _LITERALS:
        return _LITERALS[subject]
    return _LITERALS[ATTRIBUTE_PREFIX] if operator in ORDERING else None


# --- Java regular expressions -------------------------------------------------------------------

_POSIX_CLASSES = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": r"\x00-\x7F",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": r"!-/:-@\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": r" \t",
    "Cntrl": r"\x00-\x1F\x7F",
    "XDigit": "0-9a-fA-F",
    "Space": r" \t\n\x0B\f\r",
}


@lru_cache(maxsize=512)
def java_regex(pattern: str) -> re.Pattern[str]:
    """A Java regular expression (what `=~` takes) as a Python pattern; use it with fullmatch, like Java's matches().

    Translated: \\Q...\\E quoting, \\p{Alpha}-style POSIX classes, \\z and \\Z, (?<name>...) groups; \\w, \\d
    and \\s stay ASCII as in Java. Possessive quantifiers and atomic groups work as-is (Python 3.11).
    Class unions and intersections (`[a-z&&[^e]]`) raise re.error rather than silently mean something else.
    """
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            escape = pattern[i + 1]
            if escape == "Q":
                end = pattern.find("\\E", i + 2)
                end = len(pattern) if end < 0 else end
                out.append(re.escape(pattern[i + 2 : end]))
                i = end + 2
                continue
            if escape in "pP" and pattern.startswith("{", i + 2):
                close = pattern.find("}", i + 3)
                name = pattern[i + 3 : close].removeprefix("Is") if close > 0 else ""
                if name not in _POSIX_CLASSES:
                    raise re.error(f"unsupported character class \\{escape}{{{name}}}")
                if escape == "P" and in_class:
                    raise re.error("\\P{...} inside [...] is not supported")
                body = _POSIX_CLASSES[name]
                out.append(body if in_class else f"[{body}]" if escape == "p" else f"[^{body}]")
                i = close + 1
                continue
            out.append({"z": r"\Z", "Z": r"(?=\n?\Z)"}.get(escape, c + escape))
            i += 2
            continue
        if in_class and c == "[":
            raise re.error("nested character classes (unions) are not supported")
        if in_class and pattern.startswith("&&", i):
            raise re.error("character class intersection (&&) is not supported")
        if not in_class and pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        if c == "[" and not in_class:
            # A ']' right after '[' or '[^' is a literal, not the end of the class.
            end = i + 2 if pattern.startswith("^", i + 1) else i + 1
            end += pattern.startswith("]", end)
            out.append(pattern[i:end])
            i, in_class = end, True
            continue
        if c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


# --- evaluation ---------------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Instance:
    """What the query language can ask about a container instance (a Node); `ec2InstanceId` is the node name."""

    ec2InstanceId: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    """ECS attribute names (`ecs.availability-zone`, custom names) and values in ECS spelling (x86_64)."""
    agentConnected: bool = True
    agentVersion: str = ""
    registeredAt: datetime = _EPOCH
    runningTasksCount: int = 0
    task_groups: AbstractSet[str] = frozenset()
    """Task groups (`service:web`, `family:nginx`) of the tasks running on the instance."""


def evaluate(expr: Expr, instance: Instance) -> bool:
    """Whether `instance` satisfies the expression, as ECS decides it when filtering instances."""
    if isinstance(expr, And):
        return all(evaluate(item, instance) for item in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(item, instance) for item in expr.items)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, instance)
    return holds(expr, instance)


TASK_SUBJECTS = frozenset({"runningTasksCount", "task:group"})
"""Subjects whose value follows the tasks on the instance (the cluster's tasks: ECS clusters are separate)."""


def depends_on_tasks(expr: Expr) -> bool:
    """Whether the expression's truth on an instance changes as tasks start and stop there."""
    if isinstance(expr, (And, Or)):
        return any(depends_on_tasks(item) for item in expr.items)
    if isinstance(expr, Not):
        return depends_on_tasks(expr.operand)
    return expr.subject in TASK_SUBJECTS


def holds(term: Term, instance: Instance) -> bool:
    """One term. A subject has a set of actual values (one, none for a missing attribute, the task groups
    for task:group); positive operators ask whether any value matches, negative ones deny that. So a
    missing attribute satisfies `!=`, `!in`, `!~` and `!exists`, as Kubernetes' NotIn/DoesNotExist do;
    and ordering on an attribute compares numbers, never true for a non-number (as Kubernetes' Gt/Lt)."""
    positive = NEGATED.get(term.operator)
    if positive is not None:
        return not holds(replace(term, operator=positive), instance)
    ordering = term.operator in ORDERING
    actual = _actual_values(term, instance, ordering)
    if term.operator == "exists":
        return bool(actual)
    if term.operator == "=~":
        pattern = java_regex(term.values[0])
        return any(pattern.fullmatch(str(value)) for value in actual)
    literal = _literal(term.subject, term.operator)
    wanted = [literal[0](v) if literal else v for v in term.values]
    if term.operator in ("==", "in"):
        return any(value in wanted for value in actual)
    compare = _COMPARE[term.operator]
    return any(compare(value, wanted[0]) for value in actual)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {">": gt, ">=": ge, "<": lt, "<=": le}


def _actual_values(term: Term, instance: Instance, ordering: bool) -> Sequence[object]:
    name = term.attribute
    if name is not None:
        value = instance.attributes.get(name)
        if value is None or not ordering:
            return [] if value is None else [value]
        number = _number(value)
        return [] if number is None else [number]
    match term.subject:
        case "ec2InstanceId":
            return [instance.ec2InstanceId]
        case "agentConnected":
            return ["true" if instance.agentConnected else "false"]
        case "agentVersion":
            version = _version(instance.agentVersion)
            return [] if version is None else [version]
        case "registeredAt":
            return [_utc(instance.registeredAt)]
        case "runningTasksCount":
            return [instance.runningTasksCount]
        case _:  # task:group
            return sorted(instance.task_groups)
