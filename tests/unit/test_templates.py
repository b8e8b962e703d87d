"""``{{ templates }}``: syntax, rendering, references, claim checks and skill-body substitution."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boternity.errors import ExpressionError
from boternity.expressions import (
    Ref,
    has_templates,
    render,
    render_value,
    substitute_input,
    template_references,
    value_references,
)

CTX: dict[str, Any] = {
    "steps": {
        "gather-news": {"output": {"items": [{"title": "A"}, {"title": "B"}], "count": 2}},
        "classify": {"output": {"response": "HIGH risk", "score": 0.75, "nothing": None, "ok": True}},
    },
    "trigger": {"action": "opened", "labels": ["bug", "urgent"], "weird key": 1},
    "variables": {"greeting": "Hello", "limit": 10},
    "workflow": {"name": "daily-digest"},
    "run": {"id": "r-1"},
    "item": {"url": "https://example.com"},
    "index": 3,
}


def error_of(template: str, context: Mapping[str, Any] = CTX) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        render(template, context)
    return info.value


# ------------------------------------------------------------------------------------ rendering


class TestRender:
    def test_text_without_templates_is_returned_unchanged(self) -> None:
        assert render("plain text, {single braces} and }} too", CTX) == "plain text, {single braces} and }} too"

    def test_strings_render_raw(self) -> None:
        assert render("Hi {{ workflow.name }}!", CTX) == "Hi daily-digest!"

    def test_spaces_inside_the_braces_are_optional(self) -> None:
        assert render("{{workflow.name}}|{{  workflow.name  }}", CTX) == "daily-digest|daily-digest"

    def test_step_ids_with_dashes_are_written_with_dots(self) -> None:
        assert render("{{ steps.gather-news.output.count }}", CTX) == "2"

    def test_integer_index_and_quoted_keys(self) -> None:
        assert render("{{ steps.gather-news.output.items[1].title }}", CTX) == "B"
        assert render("{{ steps['gather-news'].output[\"items\"][0]['title'] }}", CTX) == "A"
        assert render("{{ trigger['weird key'] }}", CTX) == "1"

    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("{{ steps.classify.output.score }}", "0.75"),
            ("{{ steps.classify.output.ok }}", "true"),
            ("{{ steps.classify.output.nothing }}", "null"),
            ("{{ trigger.labels }}", '["bug","urgent"]'),
            ("{{ steps.gather-news.output.items[0] }}", '{"title":"A"}'),
            ("{{ index }}", "3"),
        ],
    )
    def test_non_strings_render_as_compact_json(self, template: str, expected: str) -> None:
        assert render(template, CTX) == expected

    def test_json_keeps_non_ascii_characters(self) -> None:
        assert render("{{ variables.v }}", {"variables": {"v": ["café", "日本"]}}) == '["café","日本"]'

    def test_present_null_renders_as_null_even_with_a_default(self) -> None:
        assert render("{{ steps.classify.output.nothing | default('x') }}", CTX) == "null"

    def test_several_templates_in_one_string(self) -> None:
        out = render("{{ variables.greeting }}, {{ run.id }} #{{ index }}", CTX)
        assert out == "Hello, r-1 #3"

    def test_rendered_values_are_not_rendered_again(self) -> None:
        ctx = {"variables": {"v": "{{ variables.v }}"}}
        assert render("{{ variables.v }}", ctx) == "{{ variables.v }}"

    def test_digit_name_indexes_a_list(self) -> None:
        assert render("{{ trigger.labels.1 }}", CTX) == "urgent"

    def test_context_can_be_any_mapping_and_is_only_indexed(self) -> None:
        class Secrets(Mapping[str, str]):
            """Fetches one secret per lookup; iterating would fetch them all."""

            def __init__(self) -> None:
                self.fetched: list[str] = []

            def __getitem__(self, key: str) -> str:
                self.fetched.append(key)
                if key != "TOKEN":
                    raise KeyError(key)
                return "s3cr3t"

            def __iter__(self) -> Iterator[str]:
                raise AssertionError("a secrets mapping must never be iterated")

            def __len__(self) -> int:
                raise AssertionError("a secrets mapping must never be sized")

        secrets = Secrets()
        assert render("Bearer {{ secrets.TOKEN }}", {"secrets": secrets}) == "Bearer s3cr3t"
        assert secrets.fetched == ["TOKEN"]
        with pytest.raises(ExpressionError, match="'OTHER' is not in secrets"):
            render("{{ secrets.OTHER }}", {"secrets": secrets})


# ------------------------------------------------------------------------------ missing values


class TestMissing:
    def test_missing_key_names_the_reference(self) -> None:
        err = error_of("Topic: {{ trigger.topic }}")
        assert err.message == "{{ trigger.topic }}: 'topic' is not in trigger"
        assert err.offset == 7

    def test_missing_nested_key_names_the_path_walked(self) -> None:
        err = error_of("{{ steps.classify.output.label }}")
        assert err.message == "{{ steps.classify.output.label }}: 'label' is not in steps.classify.output"

    def test_index_out_of_range(self) -> None:
        err = error_of("{{ steps.gather-news.output.items[5] }}")
        assert "index 5 is out of range for steps.gather-news.output.items (length 2)" in err.message

    def test_walking_into_a_string(self) -> None:
        err = error_of("{{ workflow.name.first }}")
        assert err.message == "{{ workflow.name.first }}: workflow.name is string, so it has no 'first'"

    def test_walking_into_null_is_missing(self) -> None:
        err = error_of("{{ steps.classify.output.nothing.deeper }}")
        assert "steps.classify.output.nothing is null" in err.message

    def test_root_not_in_context(self) -> None:
        err = error_of("{{ loop.iteration }}")
        assert err.message == "{{ loop.iteration }}: 'loop' is not available here"

    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("{{ trigger.topic | default('general') }}", "general"),
            ('{{ trigger.topic|default("general") }}', "general"),
            ("{{ trigger.count | default(0) }}", "0"),
            ("{{ trigger.ratio | default(-1.5e2) }}", "-150.0"),
            ("{{ trigger.flag | default(true) }}", "true"),
            ("{{ trigger.flag | default(null) }}", "null"),
            ("{{ loop.iteration | default(1) }}", "1"),
            ("{{ steps.gather-news.output.items[9].title | default('') }}", ""),
        ],
    )
    def test_default_is_used_for_missing_values(self, template: str, expected: str) -> None:
        assert render(template, CTX) == expected

    def test_default_string_may_contain_braces_and_escapes(self) -> None:
        assert render("{{ trigger.x | default('}} it\\'s') }}", CTX) == "}} it's"


# --------------------------------------------------------------------------------------- syntax


class TestSyntax:
    @pytest.mark.parametrize(
        ("template", "message", "offset"),
        [
            ("Hello {{ workflow.name", "'{{' without a matching '}}'", 6),
            ("{{ }}", "empty reference", 0),
            ("{{}}", "empty reference", 0),
            ("{{ foo.bar }}", "unknown name 'foo'", 3),
            ("{{ steps. }}", "expected a name after '.'", 9),
            ("{{ steps.a[x] }}", "expected a non-negative index or a quoted key", 11),
            ("{{ steps.a[-1] }}", "expected a non-negative index or a quoted key", 11),
            ("{{ steps.a[0 }}", "expected ']'", 13),
            ("{{ steps.a['x }}", "unterminated string", 11),
            ("{{ steps.a | upper }}", "unknown filter 'upper'", 13),
            ("{{ steps.a | default }}", "expected '(' after default", 21),
            ("{{ steps.a | default(steps.b) }}", "default(...) takes a literal", 21),
            ("{{ steps.a | default('x' }}", "expected ')'", 25),
            ("{{ steps.a steps.b }}", "unexpected 's' after the reference 'steps.a'", 11),
            ("{{ steps . a }}", "unexpected '.'", 9),
        ],
    )
    def test_bad_syntax_is_an_error_with_an_offset(self, template: str, message: str, offset: int) -> None:
        err = error_of(template)
        assert message in err.message
        assert err.offset == offset
        assert err.expression == template

    def test_syntax_errors_are_found_even_when_the_value_would_be_missing(self) -> None:
        with pytest.raises(ExpressionError, match="unknown name 'nope'"):
            template_references("ok {{ steps.a.output }} then {{ nope }}")


# ----------------------------------------------------------------------------------- references


class TestReferences:
    def test_reference_fields(self) -> None:
        (ref,) = template_references("Say {{ steps['gather-news'].output.items[0] | default('') }}!")
        assert ref.root == "steps"
        assert ref.path == ("gather-news", "output", "items", 0)
        assert ref.has_default is True
        assert ref.offset == 4
        assert ref.text == "{{ steps['gather-news'].output.items[0] | default('') }}"

    def test_text_is_what_the_author_wrote_at_offset(self) -> None:
        template = "a {{index}} b {{  item.url  }} c"
        for ref in template_references(template):
            assert template[ref.offset : ref.offset + len(ref.text)] == ref.text
        assert [r.text for r in template_references(template)] == ["{{index}}", "{{  item.url  }}"]

    def test_no_templates_no_references(self) -> None:
        assert template_references("nothing here") == []

    def test_value_references_walk_dicts_and_lists_in_order(self) -> None:
        value = {
            "{{ not.a.template.key }}": "{{ trigger.action }}",
            "body": ["{{ steps.a.output }}", {"deep": "x {{ variables.limit }}"}, 3, None],
        }
        refs = value_references(value)
        assert [(r.root, r.path) for r in refs] == [
            ("trigger", ("action",)),
            ("steps", ("a", "output")),
            ("variables", ("limit",)),
        ]

    def test_ref_is_hashable_and_comparable(self) -> None:
        a = Ref(root="run", path=("id",), text="{{ run.id }}")
        assert a == Ref(root="run", path=("id",), text="{{ run.id }}")
        assert len({a, a}) == 1
        assert a.dotted() == "run.id"

    @pytest.mark.parametrize(
        ("text", "expected"), [("{{ x", True), ("a {{ b }}", True), ("{ x }", False), ("", False)]
    )
    def test_has_templates(self, text: str, expected: bool) -> None:
        assert has_templates(text) is expected

    def test_has_templates_is_false_for_non_strings(self) -> None:
        assert has_templates(3) is False  # type: ignore[arg-type]


# -------------------------------------------------------------------------------- render_value


class TestRenderValue:
    def test_single_template_keeps_the_value_type(self) -> None:
        assert render_value("{{ trigger.labels }}", CTX) == ["bug", "urgent"]
        assert render_value("  {{ variables.limit }}\n", CTX) == 10
        assert render_value("{{ steps.classify.output.nothing }}", CTX) is None

    def test_single_template_default_keeps_the_literal_type(self) -> None:
        assert render_value("{{ trigger.count | default(5) }}", CTX) == 5

    def test_text_around_a_template_makes_a_string(self) -> None:
        assert render_value("labels: {{ trigger.labels }}", CTX) == 'labels: ["bug","urgent"]'
        assert render_value("{{ index }}{{ index }}", CTX) == "33"

    def test_renders_recursively_but_not_dict_keys(self) -> None:
        value = {
            "{{ run.id }}": "{{ run.id }}",
            "list": ["{{ index }}", "n={{ index }}", 7, True, None],
            "nested": {"url": "{{ item.url }}/feed"},
        }
        assert render_value(value, CTX) == {
            "{{ run.id }}": "r-1",
            "list": [3, "n=3", 7, True, None],
            "nested": {"url": "https://example.com/feed"},
        }

    def test_values_without_templates_come_back_equal(self) -> None:
        value = {"a": [1, 2.5, "x", None, {"b": False}]}
        assert render_value(value, CTX) == value

    def test_missing_value_in_a_nested_string_is_an_error(self) -> None:
        with pytest.raises(ExpressionError, match="'nope' is not in trigger"):
            render_value({"a": ["{{ trigger.nope }}"]}, CTX)


# ------------------------------------------------------------------------------- claim checks


class TestClaimChecks:
    STORE: dict[str, Any] = {
        "s3://b/out.json": {"items": [{"title": "big"}, {"$ref": "s3://b/inner.json"}], "n": 2},
        "s3://b/inner.json": {"title": "inner"},
    }

    def ctx(self) -> dict[str, Any]:
        return {"steps": {"fetch": {"output": {"$ref": "s3://b/out.json", "size": 123456}}}}

    def resolver(self, calls: list[str]) -> Any:
        def resolve(claim: dict[str, Any]) -> Any:
            calls.append(claim["$ref"])
            return self.STORE[claim["$ref"]]

        return resolve

    def test_claims_are_resolved_while_walking_a_path(self) -> None:
        calls: list[str] = []
        out = render("{{ steps.fetch.output.items[0].title }}", self.ctx(), resolver=self.resolver(calls))
        assert out == "big"
        assert calls == ["s3://b/out.json"]  # lazily: the inner claim was not touched

    def test_claims_inside_a_whole_value_are_resolved(self) -> None:
        calls: list[str] = []
        out = render_value("{{ steps.fetch.output }}", self.ctx(), resolver=self.resolver(calls))
        assert out == {"items": [{"title": "big"}, {"title": "inner"}], "n": 2}
        assert calls == ["s3://b/out.json", "s3://b/inner.json"]

    def test_claims_are_resolved_before_rendering_as_json(self) -> None:
        out = render("{{ steps.fetch.output.items }}", self.ctx(), resolver=self.resolver([]))
        assert json.loads(out) == [{"title": "big"}, {"title": "inner"}]

    def test_each_claim_is_resolved_once_per_call(self) -> None:
        calls: list[str] = []
        value = {"a": "{{ steps.fetch.output.n }}", "b": "{{ steps.fetch.output.items[0] }}"}
        render_value(value, self.ctx(), resolver=self.resolver(calls))
        assert calls == ["s3://b/out.json"]

    def test_without_a_resolver_claims_are_used_as_they_are(self) -> None:
        assert render_value("{{ steps.fetch.output }}", self.ctx()) == {"$ref": "s3://b/out.json", "size": 123456}
        with pytest.raises(ExpressionError, match="'items' is not in steps.fetch.output"):
            render("{{ steps.fetch.output.items }}", self.ctx())

    def test_resolver_failures_propagate_unchanged(self) -> None:
        def broken(claim: dict[str, Any]) -> Any:
            raise TimeoutError("s3 is slow")

        with pytest.raises(TimeoutError):
            render("{{ steps.fetch.output.n }}", self.ctx(), resolver=broken)


# ------------------------------------------------------------------------------ skill bodies


class TestSubstituteInput:
    def test_both_spellings_are_replaced(self) -> None:
        assert substitute_input("A: {{ input }} B: {{input}}", "x") == "A: x B: x"

    def test_other_templates_are_left_verbatim(self) -> None:
        body = "{{ steps.a.output }} {{  input  }} {{ input | default('') }} {{ input}}"
        assert substitute_input(body, "x") == body

    def test_the_input_is_inserted_literally_in_one_pass(self) -> None:
        assert substitute_input("{{ input }}", r"\1 {{input}} \g<0>") == r"\1 {{input}} \g<0>"


# ----------------------------------------------------------------------------------- properties


_TEMPLATE_ALPHABET = st.sampled_from(
    ["{{", "}}", "{", "}", " ", ".", "[", "]", "'", '"', "\\", "|", "(", ")", "0", "7", "-", "_", "x",
     "steps", "trigger", "item", "default", "true", "null", "a-b", "\n"]
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_TEMPLATE_ALPHABET, max_size=30).map("".join) | st.text(max_size=60))
def test_any_text_renders_or_raises_expression_error(template: str) -> None:
    ctx = {"steps": {"x": {"a-b": [1]}}, "trigger": {}, "item": "x"}
    try:
        out = render(template, ctx)
        refs = template_references(template)
    except ExpressionError as exc:
        assert exc.offset is None or 0 <= exc.offset <= len(template)
    else:
        assert isinstance(out, str)
        for ref in refs:
            assert template[ref.offset : ref.offset + len(ref.text)] == ref.text


@given(st.text().filter(lambda s: "{{" not in s))
def test_text_without_open_braces_is_unchanged(text: str) -> None:
    assert render(text, {}) == text
    assert substitute_input(text, "input") == text


@given(_JSON)
def test_a_single_template_returns_the_value_and_render_returns_its_text(value: Any) -> None:
    ctx = {"variables": {"v": value}}
    assert render_value("{{ variables.v }}", ctx) == value
    expected = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert render("{{ variables.v }}", ctx) == expected
