"""The cluster query language: parsing (ECS's examples, precedence, errors with positions) and evaluation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from ecs_operator.placement.query import (
    MAX_EXPRESSION_LENGTH,
    And,
    Instance,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    evaluate,
    java_regex,
    parse,
)

ZONE = "attribute:ecs.availability-zone"
TYPE = "attribute:ecs.instance-type"


# --- the ECS guide's examples (docs/ecs-semantics.md §The cluster query language) --------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("attribute:ecs.instance-type == t2.small", Term(TYPE, "==", ("t2.small",))),
        (
            "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]",
            Term(ZONE, "in", ("us-east-1a", "us-east-1b")),
        ),
        (
            "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
            And((Term(TYPE, "=~", ("g2.*",)), Term(ZONE, "!=", ("us-east-1d",)))),
        ),
        ("task:group == service:production", Term("task:group", "==", ("service:production",))),
        ("not(task:group == database)", Not(Term("task:group", "==", ("database",)))),
        ("runningTasksCount == 1", Term("runningTasksCount", "==", ("1",))),
        ("agentVersion < 1.14.5", Term("agentVersion", "<", ("1.14.5",))),
        ("registeredAt < 2018-02-13", Term("registeredAt", "<", ("2018-02-13",))),
        ("ec2InstanceId in ['i-abcd1234', 'i-wxyx7890']", Term("ec2InstanceId", "in", ("i-abcd1234", "i-wxyx7890"))),
        ("attribute:stack exists", Term("attribute:stack", "exists")),
    ],
)
def test_reference_examples_parse(text: str, expected: object) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("word", "symbol"),
    [
        ("equals", "=="),
        ("not_equals", "!="),
        ("greater_than", ">"),
        ("greater_than_equal", ">="),
        ("less_than", "<"),
        ("less_than_equal", "<="),
        ("matches", "=~"),
        ("not_matches", "!~"),
    ],
)
def test_word_operators_mean_the_symbols(word: str, symbol: str) -> None:
    assert parse(f"attribute:n {word} 5") == parse(f"attribute:n {symbol} 5") == Term("attribute:n", symbol, ("5",))  # type: ignore[arg-type]


def test_list_and_existence_operator_spellings() -> None:
    assert parse("attribute:a not_in [x]") == parse("attribute:a !in [x]") == Term("attribute:a", "!in", ("x",))
    assert parse("attribute:a not_exists") == parse("attribute:a !exists") == Term("attribute:a", "!exists")
    assert parse("attribute:a in x") == Term("attribute:a", "in", ("x",))  # a bare value is a one-item list


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (Term(f"attribute:{n}", "exists") for n in "abc")
    assert parse("attribute:a exists or attribute:b exists and attribute:c exists") == Or((a, And((b, c))))
    assert parse("attribute:a exists and attribute:b exists or attribute:c exists") == Or((And((a, b)), c))
    assert parse("attribute:a exists && (attribute:b exists || attribute:c exists)") == And((a, Or((b, c))))
    assert parse("attribute:a exists AND attribute:b exists OR attribute:c exists") == Or((And((a, b)), c))


def test_chains_are_flat_and_negations_nest() -> None:
    a, b, c = (Term(f"attribute:{n}", "exists") for n in "abc")
    assert parse("attribute:a exists or (attribute:b exists or attribute:c exists)") == Or((a, b, c))
    assert parse("!(attribute:a exists) && not (attribute:b exists or attribute:c exists)") == And(
        (Not(a), Not(Or((b, c))))
    )
    assert parse("((attribute:a exists))") == a


def test_values_next_to_parentheses_and_quotes() -> None:
    assert parse("not(attribute:a == b)") == Not(Term("attribute:a", "==", ("b",)))
    assert parse("attribute:t =~ (t2|m5).*") == Term("attribute:t", "=~", ("(t2|m5).*",))
    assert parse("not(attribute:t =~ (t2|m5).*)") == Not(Term("attribute:t", "=~", ("(t2|m5).*",)))
    assert parse("attribute:t =~ g[0-9].*") == Term("attribute:t", "=~", ("g[0-9].*",))
    assert parse("not(attribute:t =~ [cm][0-9]+\\..*)") == Not(Term("attribute:t", "=~", ("[cm][0-9]+\\..*",)))
    assert parse("attribute:a in [x,y ,  z]") == Term("attribute:a", "in", ("x", "y", "z"))
    assert parse("attribute:a in ['x y', \"it's\"]") == Term("attribute:a", "in", ("x y", "it's"))
    assert parse("attribute:a=='b c'&&attribute:d!=e") == And(
        (Term("attribute:a", "==", ("b c",)), Term("attribute:d", "!=", ("e",)))
    )


@pytest.mark.parametrize(
    "text",
    [
        "attribute:a == 'x y' and not(attribute:b in [p, 'q r', s] or agentVersion >= 1.2)",
        "(attribute:a exists or attribute:b !exists) and task:group != service:web",
        "attribute:t =~ '(t2|m5).*' or registeredAt > 2018-06-18T22:28:28+00:00",
        "ec2InstanceId !~ 'i-0.*' and runningTasksCount <= 3",
    ],
)
def test_printing_round_trips(text: str) -> None:
    expr = parse(text)
    assert parse(str(expr)) == expr


@pytest.mark.parametrize(
    "text", ["registeredAt > 2018-06-18T22:28:28+00:00", "registeredAt > 2018-06-18T22:28:28Z",
             "registeredAt > 2018-06-18T22:28:28", "registeredAt > 2018-06-18"],
)  # fmt: skip
def test_registered_at_accepts_the_documented_forms(text: str) -> None:
    parse(text)


# --- errors ---------------------------------------------------------------------------------------


def error(text: str) -> QuerySyntaxError:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    return caught.value


def test_error_message_points_at_the_character() -> None:
    e = error("attribute:ecs.zone foo bar")
    assert (e.position, e.reason) == (19, "expected an operator")
    assert str(e) == (
        "expected an operator at position 19: attribute:ecs.zone foo bar\n"
        + " " * len("expected an operator at position 19: attribute:ecs.zone ")
        + "^"
    )


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("", 0, "expected a subject"),
        ("foo == bar", 0, "expected a subject"),
        ("attribute: == x", 10, "expected an attribute name after attribute:"),
        ("attribute:a ==", 14, "expected a value"),
        ("attribute:a == x attribute:b == y", 17, "expected and, or, or the end of the expression"),
        ("attribute:a == x)", 16, "expected and, or, or the end of the expression"),
        ("(attribute:a == x", 17, "expected )"),
        ("not attribute:a == x", 4, "expected ( after not"),
        ("!attribute:a == x", 1, "expected ( after !"),
        ("attribute:a == [x]", 15, "a list [...] is only allowed after in and !in"),
        ("attribute:a in []", 16, "expected a value"),
        ("attribute:a in [x,]", 18, "expected a value"),
        ("attribute:a in [x y]", 18, "expected , or ] in the list"),
        ("attribute:a == 'x", 15, "unterminated quoted value"),
        ("attribute:a == x and", 20, "expected a subject"),
        ("attribute:a exists b", 19, "expected and, or, or the end of the expression"),
        ("attribute:a = b", 12, "expected an operator"),
        ("attribute:a inside [b]", 12, "expected an operator"),
        ("agentConnected > 1", 15, "agentConnected does not take > (it takes ==, !=, in, !in, =~, !~)"),
        ("ec2InstanceId exists", 14, "ec2InstanceId does not take exists (it takes ==, !=, in, !in, =~, !~)"),
        ("agentVersion in [1.0]", 13, "agentVersion does not take in (it takes ==, !=, >, >=, <, <=)"),
        ("runningTasksCount =~ 1", 18, "runningTasksCount does not take =~ (it takes ==, !=, >, >=, <, <=)"),
        ("registeredAt exists", 13, "registeredAt does not take exists (it takes ==, !=, >, >=, <, <=)"),
        ("task:group > a", 11, "task:group does not take >"),
        ("runningTasksCount == one", 21, "runningTasksCount compares with a whole number; got 'one'"),
        ("agentVersion < latest", 15, "agentVersion compares with a version such as 1.14.5; got 'latest'"),
        ("registeredAt < 2018-02-30x", 15, "registeredAt compares with"),
        ("registeredAt < yesterday", 15, "registeredAt compares with"),
        ("attribute:n > big", 14, "attributes compare by number with >, >=, < and <=; got 'big'"),
        ("attribute:t =~ 'g2[.*'", 15, "invalid regular expression"),
        ("attribute:t =~ [a-z&&[^e]]", 15, "invalid regular expression"),
        ("attribute:t =~ '[a-z&&[^e]]'", 15, "invalid regular expression"),
        ("attribute:a in [x, 'y]", 19, "unterminated quoted value"),
    ],
)
def test_errors_name_position_and_reason(text: str, position: int, reason: str) -> None:
    e = error(text)
    assert e.position == position
    assert e.reason.startswith(reason)
    first, caret = str(e).split("\n")
    assert first.startswith(f"{e.reason} at position {position}: ")
    assert caret.endswith("^") and set(caret[:-1]) <= {" "}


def test_expression_limit_is_2000_characters() -> None:
    clause = "attribute:a exists"
    text = " or ".join([clause] * 200)[:MAX_EXPRESSION_LENGTH]
    text = text[: text.rfind(" or ")]
    text += (
        " or attribute:"
        + "b" * (MAX_EXPRESSION_LENGTH - len(text) - len(" or attribute:") - len(" exists"))
        + " exists"
    )
    assert len(text) == MAX_EXPRESSION_LENGTH
    parse(text)
    e = error(text + " ")
    assert (e.position, e.reason) == (2000, "an expression has at most 2000 characters (this one has 2001)")


def test_long_expression_errors_show_a_window_with_the_caret_under_the_culprit() -> None:
    text = " and ".join(["attribute:a exists"] * 20) + " and attribute:b ?? x and attribute:c exists"
    e = error(text)
    first, caret = str(e).split("\n")
    assert e.position == text.index("??")
    assert "..." in first and len(first) < 200
    assert first[caret.index("^")] == "?"


# --- evaluation -----------------------------------------------------------------------------------

WEB = Instance(
    "i-web1",
    attributes={"ecs.availability-zone": "us-east-1a", "ecs.instance-type": "g2.2xlarge", "stack": "prod", "gen": "5"},
    agentConnected=True,
    agentVersion="1.14.5",
    registeredAt=datetime(2018, 6, 18, 22, 28, 28, tzinfo=UTC),
    runningTasksCount=1,
    task_groups={"service:production"},
)
BARE = Instance(
    "i-bare", attributes={"ecs.availability-zone": "us-east-1d"}, agentConnected=False, agentVersion="1.9.0"
)


@pytest.mark.parametrize(
    ("text", "web", "bare"),
    [
        ("attribute:ecs.instance-type == g2.2xlarge", True, False),
        ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", True, False),
        ("attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d", True, False),
        ("attribute:ecs.instance-type =~ g2", False, False),  # Java matches(): the whole value
        ("attribute:ecs.instance-type !~ g2.*", False, True),  # a missing attribute passes the negations
        ("attribute:stack != prod", False, True),
        ("attribute:stack !in [prod, dev]", False, True),
        ("attribute:stack exists", True, False),
        ("attribute:stack !exists", False, True),
        ("task:group == service:production", True, False),
        ("not(task:group == service:production)", False, True),
        ("task:group != service:production", False, True),
        ("task:group in [service:a, service:production]", True, False),
        ("task:group =~ service:.*", True, False),
        ("task:group exists", True, False),
        ("runningTasksCount == 1", True, False),
        ("runningTasksCount < 1", False, True),
        ("agentVersion < 1.14.5", False, True),
        ("agentVersion >= 1.14.5", True, False),
        ("agentVersion == 1.14.5.0", True, False),
        ("agentVersion > 1.10", True, False),  # numeric parts: 1.9 < 1.10 < 1.14
        ("registeredAt < 2018-06-19", True, True),  # BARE has the default registeredAt, the epoch
        ("registeredAt > 2018-06-18", True, False),
        ("registeredAt == 2018-06-18T22:28:28Z", True, False),
        ("registeredAt >= 2018-06-18T23:28:28+01:00", True, False),
        ("ec2InstanceId in ['i-web1', 'i-other']", True, False),
        ("ec2InstanceId =~ i-.*", True, True),
        ("agentConnected == true", True, False),
        ("agentConnected != true", False, True),
        ("attribute:gen > 4", True, False),
        ("attribute:gen >= 5.0", True, False),
        ("attribute:gen < 5", False, False),  # missing: neither side of an ordering holds
        ("not(attribute:gen < 5)", True, True),
        ("attribute:stack == prod or agentConnected == false", True, True),
        ("(attribute:stack == prod or agentConnected == false) and not(runningTasksCount > 0)", False, True),
    ],
)
def test_evaluate(text: str, web: bool, bare: bool) -> None:
    expr = parse(text)
    assert (evaluate(expr, WEB), evaluate(expr, BARE)) == (web, bare)


def test_attribute_ordering_is_numeric_and_never_true_for_non_numbers() -> None:
    assert evaluate(parse("attribute:gen > 10"), Instance("a", {"gen": "9"})) is False  # not "9" > "10" as strings
    assert evaluate(parse("attribute:gen > 10"), Instance("a", {"gen": "11"})) is True
    assert evaluate(parse("attribute:gen > 1"), Instance("a", {"gen": "ten"})) is False
    assert evaluate(parse("attribute:gen == 05"), Instance("a", {"gen": "5"})) is False  # equality compares strings


# --- Java regular expressions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"\Qa.b\E+", "a.bbb", True),  # as in Java, the quantifier takes the last quoted character
        (r"\Qa.b\E", "a.b", True),
        (r"\Qa.b\E", "axb", False),
        (r"\p{Alpha}+\d", "abc1", True),
        (r"\P{Digit}+", "abc", True),
        (r"[\p{Lower}0-9]+", "ab12", True),
        (r"\p{IsAlpha}+", "abc", True),
        (r"(?<zone>us-east-1[a-f])", "us-east-1c", True),
        (r"\d+", "١٢", False),  # Java's \d is ASCII
        (r"a++b", "aab", True),
        (r"[]a]+", "]a]", True),
        (r"g2.*\z", "g2.large", True),
    ],
)
def test_java_regex(pattern: str, text: str, matches: bool) -> None:
    assert bool(java_regex(pattern).fullmatch(text)) is matches


@pytest.mark.parametrize("pattern", [r"[a-z&&[^e]]", r"[a[b]]", r"\p{Greek}", r"[\P{Digit}]"])
def test_java_regex_refuses_what_it_would_misread(pattern: str) -> None:
    with pytest.raises(re.error):
        java_regex(pattern)
