"""JEXL conditions: literals, operators and precedence, transforms, errors, references, claim checks."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boternity.errors import ExpressionError
from boternity.expressions import (
    MAX_DEPTH,
    Ref,
    condition_references,
    evaluate,
    evaluate_condition,
    parse_condition,
    truthy,
)

CTX: dict[str, Any] = {
    "steps": {
        "classify": {"output": {"response": "HIGH risk", "score": 0.75}},
        "gather-news": {"output": {"items": [1, 2]}},
    },
    "trigger": {"action": "opened", "roles": ["admin"], "labels": "bug,urgent", "n": 3},
    "event": {"pull_request": {"draft": False, "title": "  Fix Login  "}, "nothing": None},
    "workflow": {"name": "daily-digest"},
    "loop": {"iteration": 2},
}


def ev(expr: str, context: Mapping[str, Any] = CTX) -> Any:
    return evaluate(expr, context)


def error_of(expr: str, context: Mapping[str, Any] = CTX) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, context)
    return info.value


# ----------------------------------------------------------------------------- the brief's cases


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("steps.classify.output.response|lower|contains('high')", True),
        ("steps['gather-news'].output.items|length > 1", True),
        ("'admin' in trigger.roles", True),
        ("!(trigger.action == 'closed')", True),
        ("trigger.count > 5 ? 'high' : 'low'", "low"),
        ("workflow.name == 'daily-digest'", True),
        ("steps.nope.output == null", True),
    ],
)
def test_documented_examples(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


def test_unknown_root_identifier_is_an_error() -> None:
    err = error_of("foo == 1")
    assert err.message == "unknown identifier 'foo'"
    assert err.offset == 0


# ----------------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("'single'", "single"),
        ('"double"', "double"),
        (r"'it\'s \"quoted\"\n'", "it's \"quoted\"\n"),
        (r"'\u00e9'", "é"),
        ("42", 42),
        ("3.25", 3.25),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ("[1, 'a', [true]]", [1, "a", [True]]),
        ("[]", []),
        ("{a: 1, 'b-c': 2, \"d\": [null]}", {"a": 1, "b-c": 2, "d": [None]}),
        ("{}", {}),
        ("{in: 1, true: 2}", {"in": 1, "true": 2}),
    ],
)
def test_literals(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


# ------------------------------------------------------------------------------ property access


class TestAccess:
    def test_dots_brackets_and_computed_keys(self) -> None:
        assert ev("event.pull_request.draft") is False
        assert ev("trigger.roles[0]") == "admin"
        assert ev("steps['gather-news'].output['items'][1]") == 2
        assert ev("steps[trigger.action == 'opened' ? 'classify' : 'x'].output.score") == 0.75
        assert ev("[10, 20, 30][trigger.n - 1]") == 30
        assert ev("[10, 20, 30][4 / 2]") == 30  # an integral float is an index

    @pytest.mark.parametrize(
        "expr",
        [
            "trigger.missing",
            "trigger.missing.deeper.still",
            "event.nothing.x",
            "trigger.roles[5]",
            "trigger.roles[-1]",
            "trigger.action.x",
            "trigger.n.x",
            "trigger[null]",
            "trigger[[1]]",
        ],
    )
    def test_missing_properties_are_null_not_errors(self, expr: str) -> None:
        assert ev(expr) is None

    def test_length_property_of_lists_and_strings(self) -> None:
        assert ev("trigger.roles.length") == 1
        assert ev("trigger.action.length") == 6
        assert ev("{length: 'own'}.length") == "own"

    def test_roots_are_checked_with_in_on_any_mapping(self) -> None:
        class Lazy(Mapping[str, Any]):
            def __getitem__(self, key: str) -> Any:
                if key == "event":
                    return {"x": 1}
                raise KeyError(key)

            def __iter__(self) -> Iterator[str]:
                raise AssertionError("never iterated")

            def __len__(self) -> int:
                raise AssertionError("never sized")

        assert evaluate("event.x + 1", Lazy()) == 2
        with pytest.raises(ExpressionError, match="unknown identifier 'steps'"):
            evaluate("steps.a", Lazy())


# ------------------------------------------------------------------------ operators and precedence


class TestOperators:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("1 + 2 * 3", 7),
            ("(1 + 2) * 3", 9),
            ("2 ^ 3 ^ 2", 512),  # right-associative
            ("-2 ^ 2", 4),  # unary binds tighter than ^
            ("2 ^ -1", 0.5),
            ("10 - 4 - 3", 3),  # left-associative
            ("7 / 2", 3.5),
            ("7 // 2", 3),
            ("-7 // 2", -4),
            ("7 % 3", 1),
            ("-7 % 3", -1),  # JavaScript remainder: the sign follows the dividend
            ("1 + 2 == 3 && 2 < 3", True),
            ("1 < 2 == true", True),  # comparison binds tighter than equality
            ("'b' in 'abc' == true", True),
        ],
    )
    def test_arithmetic_and_precedence(self, expr: str, expected: Any) -> None:
        assert ev(expr) == expected

    def test_ternary_needs_no_parentheses_around_its_condition(self) -> None:
        assert ev("trigger.n > 2 && trigger.action == 'opened' ? 'go' : 'stop'") == "go"
        assert ev("trigger.n > 5 || false ? 'go' : 'stop'") == "stop"

    def test_ternary_is_right_associative(self) -> None:
        assert ev("trigger.n == 1 ? 'one' : trigger.n == 3 ? 'three' : 'many'") == "three"
        assert ev("true ? false ? 1 : 2 : 3") == 2

    def test_and_or_return_an_operand(self) -> None:
        assert ev("trigger.missing || 'fallback'") == "fallback"
        assert ev("trigger.action || 'fallback'") == "opened"
        assert ev("0 && 'never'") == 0
        assert ev("'a' && 'b'") == "b"

    def test_and_or_short_circuit(self) -> None:
        assert ev("false && nope.x") is False
        assert ev("true || nope.x") is True
        assert ev("true ? 1 : nope") == 1

    def test_not(self) -> None:
        assert ev("!trigger.missing") is True
        assert ev("!!trigger.roles") is True
        assert ev("!0 && !''") is True

    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("'ad' in 'admin'", True),
            ("'x' in trigger.roles", False),
            ("'action' in trigger", True),
            ("'nope' in trigger", False),
            ("[1] in [[1], 2]", True),
            ("1 in [1.0000001]", True),
            ("1 in '123'", True),
            ("null in 'null'", False),
            ("'a' in trigger.missing", False),
        ],
    )
    def test_in(self, expr: str, expected: bool) -> None:
        assert ev(expr) is expected

    def test_plus_concatenates_when_either_side_is_a_string(self) -> None:
        assert ev("'n=' + trigger.n") == "n=3"
        assert ev("trigger.roles + '!'") == '["admin"]!'
        assert ev("'x' + null + true") == "xnulltrue"
        assert ev("1 + 2 + 'c'") == "3c"


class TestEquality:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("0.1 + 0.2 == 0.3", True),
            ("1 == 1.0000001", True),
            ("1 == 1.001", False),
            ("1 == true", False),  # booleans are not numbers
            ("0 == false", False),
            ("'1' == 1", False),
            ("null == false", False),
            ("null == trigger.missing", True),
            ("[1, [2, {a: 3}]] == [1, [2, {a: 3.0000000001}]]", True),
            ("{a: 1, b: 2} == {b: 2, a: 1}", True),
            ("{a: 1} == {a: 1, b: null}", False),
            ("[1, 2] != [2, 1]", True),
        ],
    )
    def test_equality_by_value(self, expr: str, expected: bool) -> None:
        assert ev(expr) is expected


class TestOrdering:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("1 < 2", True),
            ("2 <= 2", True),
            ("0.3 <= 0.1 + 0.2", True),
            ("0.3 < 0.3000000001", False),  # within epsilon: equal, so not less
            ("'apple' < 'banana'", True),
            ("'b' >= 'a'", True),
        ],
    )
    def test_numbers_and_strings_order(self, expr: str, expected: bool) -> None:
        assert ev(expr) is expected

    @pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
    def test_null_is_never_less_or_greater(self, op: str) -> None:
        assert ev(f"trigger.missing {op} 1") is False
        assert ev(f"1 {op} null") is False
        assert ev(f"null {op} null") is False

    def test_first_loop_iteration_condition(self) -> None:
        ctx = {"steps": {"poll": {"output": None}}}
        assert evaluate_condition("steps.poll.output.count < 10", ctx) is False
        assert evaluate_condition("!(steps.poll.output.count >= 10)", ctx) is True

    @pytest.mark.parametrize(
        ("expr", "types"),
        [("1 < '2'", "number and string"), ("true > false", "boolean and boolean"),
         ("[1] <= [2]", "list and list"), ("{} >= 1", "object and number")],
    )
    def test_other_pairs_are_errors_naming_both_types(self, expr: str, types: str) -> None:
        assert f"cannot compare {types}" in error_of(expr).message


class TestArithmeticErrors:
    @pytest.mark.parametrize("expr", ["1 / 0", "1 // 0", "1 % 0", "1.5 / 0.0", "0 ^ -1"])
    def test_division_by_zero(self, expr: str) -> None:
        error_of(expr)

    def test_division_by_zero_message_and_offset(self) -> None:
        err = error_of("trigger.n / 0")
        assert err.message == "division by zero"
        assert err.offset == 10

    @pytest.mark.parametrize(
        "expr", ["null + 1", "[1] + [2]", "true + 1", "'a' - 1", "{} * 2", "-'a'", "trigger.roles ^ 2"]
    )
    def test_arithmetic_on_non_numbers(self, expr: str) -> None:
        error_of(expr)

    def test_huge_powers_do_not_hang(self) -> None:
        error_of("10 ^ 100000000")  # float overflow, reported; never computed exactly
        assert ev("2 ^ 64") == 18446744073709551616

    def test_in_against_a_number(self) -> None:
        assert "'in' needs a string, list or object" in error_of("1 in 5").message


# ----------------------------------------------------------------------------------- transforms


class TestTransforms:
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("'MiXed'|lower", "mixed"),
            ("'MiXed'|upper", "MIXED"),
            ("event.pull_request.title|trim", "Fix Login"),
            ("trigger.labels|split", ["bug", "urgent"]),
            ("'a b'|split(' ')", ["a", "b"]),
            ("'ab'|split('')", ["a", "b"]),
            ("trigger.missing|not", True),
            ("'x'|not", False),
            ("'hello'|contains('ell')", True),
            ("trigger.roles|contains('admin')", True),
            ("[[1]]|contains([1])", True),
            ("'hello'|startsWith('he')", True),
            ("'hello'|endsWith('lo')", True),
            ("'a.c'|match('.')", True),
            ("'abc'|match('a.c')", False),  # substring, not a regular expression
            ("'abc'|length", 3),
            ("trigger.roles|length", 1),
            ("trigger|length", 4),
            ("trigger.missing|length", 0),
            ("'a'|lower()", "a"),
        ],
    )
    def test_transforms(self, expr: str, expected: Any) -> None:
        assert ev(expr) == expected

    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("trigger.n|lower", ""),
            ("trigger.missing|upper", ""),
            ("trigger.missing|contains('x')", False),
            ("trigger|startsWith('a')", False),
            ("trigger.missing|split", [""]),
        ],
    )
    def test_non_strings_are_treated_as_empty_strings(self, expr: str, expected: Any) -> None:
        assert ev(expr) == expected

    def test_transforms_bind_tighter_than_operators(self) -> None:
        assert ev("'AB'|lower + 'C'|lower") == "abc"
        assert ev("!'x'|not") is True

    def test_transform_arguments_are_expressions(self) -> None:
        assert ev("'opened by admin'|contains(trigger.roles[0])") is True

    def test_split_needs_a_string_delimiter(self) -> None:
        assert "split() needs a string delimiter" in error_of("'a'|split(1)").message

    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("'a'|nope", "unknown transform 'nope'"),
            ("'a'|contains", "transform 'contains' takes 1 argument, got 0"),
            ("'a'|lower('x')", "transform 'lower' takes 0 arguments, got 1"),
            ("'a'|split(',', 2)", "transform 'split' takes 0 to 1 arguments, got 2"),
        ],
    )
    def test_bad_transforms_are_parse_errors(self, expr: str, message: str) -> None:
        with pytest.raises(ExpressionError, match=message):
            parse_condition(expr)


# ---------------------------------------------------------------------------------- truthiness


@pytest.mark.parametrize("value", [False, None, 0, 0.0, "", math.nan])
def test_falsy_values(value: Any) -> None:
    assert truthy(value) is False


@pytest.mark.parametrize("value", [True, 1, -0.5, "0", "false", [], {}, [0]])
def test_truthy_values(value: Any) -> None:
    assert truthy(value) is True


def test_evaluate_condition_returns_a_bool() -> None:
    assert evaluate_condition("trigger.roles", CTX) is True
    assert evaluate_condition("trigger.missing", CTX) is False
    assert evaluate_condition("steps.classify.output.score", CTX) is True


# --------------------------------------------------------------------------------------- syntax


class TestSyntaxErrors:
    @pytest.mark.parametrize(
        ("expr", "message", "offset"),
        [
            ("(1 + 2))", "unexpected ')'", 7),
            ("1 +", "unexpected end of expression", 3),
            ("", "empty expression", 0),
            ("   ", "empty expression", 0),
            ("a = 1", "unexpected character '=' (use == to compare)", 2),
            ("a & b", "unexpected character '&' (use && for 'and')", 2),
            ("'open", "unterminated string", 0),
            ("a.", "unexpected end of expression (expected a property name after '.')", 2),
            ("a.0", "expected a property name", 2),
            ("a[1", "expected ']'", 3),
            ("[1, 2,]", "unexpected ']'", 6),
            ("{a 1}", "expected ':' after an object key", 3),
            ("{1: 2}", "expected an object key", 1),
            ("true ? 1", "':' of 'condition ? then : else'", 8),
            ("a b", "unexpected name 'b'", 2),
            ("#", "unexpected character '#'", 0),
            ("'a'|", "a transform name after '|'", 4),
        ],
    )
    def test_syntax_error_message_and_offset(self, expr: str, message: str, offset: int) -> None:
        with pytest.raises(ExpressionError) as info:
            parse_condition(expr)
        assert message in info.value.message
        assert info.value.offset == offset
        assert info.value.expression == expr

    def test_message_reads_like_the_brief(self) -> None:
        with pytest.raises(ExpressionError, match=r"^unexpected '\)' at offset 7"):
            parse_condition("(1 + 2))")

    def test_parse_is_cached(self) -> None:
        assert parse_condition("trigger.n > 1") is parse_condition("trigger.n > 1")

    @pytest.mark.parametrize(
        "expr",
        [
            "(" * (MAX_DEPTH + 5) + "1" + ")" * (MAX_DEPTH + 5),
            "!" * (MAX_DEPTH + 5) + "1",
            "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5),
            " + ".join(["1"] * (MAX_DEPTH + 5)),
            "a" + ".b" * (MAX_DEPTH + 5),
            "(" * 5000 + "1" + ")" * 5000,
        ],
    )
    def test_deep_nesting_is_rejected_when_parsing(self, expr: str) -> None:
        with pytest.raises(ExpressionError, match="nested too deeply"):
            parse_condition(expr)

    def test_nesting_just_under_the_limit_evaluates(self) -> None:
        depth = MAX_DEPTH - 2
        assert ev("(" * depth + "1" + ")" * depth) == 1
        assert ev("!" * depth + "1") is (depth % 2 == 0)

    def test_very_long_integer_literal(self) -> None:
        with pytest.raises(ExpressionError, match="number too long"):
            parse_condition("9" * 5000)


# ----------------------------------------------------------------------------------- references


class TestReferences:
    def test_longest_static_path_stops_at_a_transform(self) -> None:
        (ref,) = condition_references("steps['gather-news'].output.items|length > 0")
        assert ref == Ref(root="steps", path=("gather-news", "output", "items"),
                          text="steps['gather-news'].output.items", offset=0)

    def test_path_stops_at_a_computed_bracket_whose_key_is_also_read(self) -> None:
        refs = condition_references("steps.a.output[trigger.key].x")
        assert [(r.root, r.path) for r in refs] == [("steps", ("a", "output")), ("trigger", ("key",))]

    def test_integer_brackets_are_static(self) -> None:
        (ref,) = condition_references("event.items[0].name == 'x'")
        assert ref.path == ("items", 0, "name")

    def test_references_in_literals_arguments_and_branches(self) -> None:
        expr = "[event.a, {k: loop.iteration}]|contains(steps.b.output|lower) ? workflow.name : run.id"
        refs = condition_references(expr)
        assert [(r.root, r.path) for r in refs] == [
            ("event", ("a",)),
            ("loop", ("iteration",)),
            ("steps", ("b", "output")),
            ("workflow", ("name",)),
            ("run", ("id",)),
        ]

    def test_every_occurrence_is_reported_with_its_source_text(self) -> None:
        expr = "trigger.action == 'opened' || trigger.action == 'edited'"
        refs = condition_references(expr)
        assert [r.offset for r in refs] == [0, 30]
        for ref in refs:
            assert expr[ref.offset : ref.offset + len(ref.text)] == ref.text

    def test_unknown_roots_are_reported_not_rejected(self) -> None:
        assert [r.root for r in condition_references("foo.bar == 1")] == ["foo"]

    def test_object_keys_transform_names_and_keywords_are_not_references(self) -> None:
        assert condition_references("{steps: 1, lower: true}.steps|lower == null") == []

    def test_bad_syntax_raises(self) -> None:
        with pytest.raises(ExpressionError):
            condition_references("steps.a ==")


# ---------------------------------------------------------------------------------- claim checks


class TestClaimChecks:
    STORE: dict[str, Any] = {
        "s3://b/items.json": {"items": [{"$ref": "s3://b/one.json"}, 2], "label": "HIGH"},
        "s3://b/one.json": {"n": 1},
    }

    def ctx(self) -> dict[str, Any]:
        return {"steps": {"fetch": {"output": {"$ref": "s3://b/items.json", "size": 99999}}}}

    def resolver(self, calls: list[str]) -> Any:
        def resolve(claim: dict[str, Any]) -> Any:
            calls.append(claim["$ref"])
            return self.STORE[claim["$ref"]]

        return resolve

    def test_claims_are_resolved_lazily_along_the_path(self) -> None:
        calls: list[str] = []
        assert evaluate_condition("steps.fetch.output.label|lower == 'high'", self.ctx(),
                                  resolver=self.resolver(calls))
        assert calls == ["s3://b/items.json"]

    def test_length_sees_the_resolved_value(self) -> None:
        assert evaluate("steps.fetch.output.items|length", self.ctx(), resolver=self.resolver([])) == 2

    def test_returned_values_are_resolved_deeply(self) -> None:
        out = evaluate("steps.fetch.output", self.ctx(), resolver=self.resolver([]))
        assert out == {"items": [{"n": 1}, 2], "label": "HIGH"}

    def test_equality_compares_resolved_content(self) -> None:
        assert evaluate("steps.fetch.output.items[0] == {n: 1}", self.ctx(), resolver=self.resolver([]))
        assert evaluate("{n: 1} in steps.fetch.output.items", self.ctx(), resolver=self.resolver([]))

    def test_without_a_resolver_the_claim_is_the_value(self) -> None:
        assert evaluate("steps.fetch.output.size", self.ctx()) == 99999
        assert evaluate("steps.fetch.output.items", self.ctx()) is None


# ----------------------------------------------------------------------------------- properties

_TOKENS = st.sampled_from(
    ["a", "b", "steps", "trigger", ".", "[", "]", "(", ")", "{", "}", ",", ":", "?", "!", "-", "+", "*",
     "/", "//", "%", "^", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "|", "in", "lower", "length",
     "contains", "split", "0", "1", "2.5", "1e400", "'x'", '"y"', "'", "\\", "true", "null", " ", "=", "#"]
)
_PROPERTY_CTX = {
    "a": {"b": [1, "x", None, {"c": True}], "n": 0, "s": "text"},
    "b": [[], {}, 1.5, "s"],
    "steps": {"x": {"output": None}},
    "trigger": None,
}


@settings(max_examples=500, deadline=None)
@given(st.lists(_TOKENS, max_size=25).map(" ".join) | st.lists(_TOKENS, max_size=25).map("".join)
       | st.text(max_size=40))
def test_parse_and_evaluate_never_raise_anything_but_expression_error(expr: str) -> None:
    try:
        parse_condition(expr)
        refs = condition_references(expr)
        evaluate(expr, _PROPERTY_CTX)
        evaluate_condition(expr, _PROPERTY_CTX)
    except ExpressionError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(expr)
    else:
        for ref in refs:
            assert expr[ref.offset : ref.offset + len(ref.text)] == ref.text


@given(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6))
def test_integer_arithmetic_matches_python(x: int, y: int) -> None:
    ctx = {"v": {"x": x, "y": y}}
    assert evaluate("v.x + v.y * 2", ctx) == x + y * 2
    assert evaluate("v.x < v.y", ctx) is (x < y)
    assert evaluate("v.x == v.y", ctx) is (x == y)
