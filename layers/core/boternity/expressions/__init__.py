"""The two small languages of a workflow: ``{{ templates }}`` in strings and JEXL conditions.

    from boternity.expressions import render, render_value, evaluate_condition

    render("Digest for {{ workflow.name }}", ctx)                    # -> "Digest for daily-digest"
    render_value({"items": "{{ steps.fetch.output.items }}"}, ctx)   # -> {"items": [...]}
    evaluate_condition("steps.fetch.output.items|length > 0", ctx)   # -> True

Both read the same context mapping (``steps``, ``trigger``, ``variables``, ``workflow``, ``run``,
``item``, ``index``, ``secrets``, ``loop``, ``event``), swap claim-checked values
(``{"$ref": ...}``) for their content through an optional ``resolver``, and raise only
``boternity.errors.ExpressionError``. Pure standard library: every Lambda imports this.
"""

from __future__ import annotations

from boternity.errors import ExpressionError
from boternity.expressions.jexl import (
    MAX_DEPTH,
    TRANSFORMS,
    Node,
    condition_references,
    evaluate,
    evaluate_condition,
    truthy,
)
from boternity.expressions.jexl import parse as parse_condition
from boternity.expressions.paths import Ref, to_text
from boternity.expressions.templates import (
    TEMPLATE_ROOTS,
    has_templates,
    render,
    render_value,
    substitute_input,
    template_references,
    value_references,
)

__all__ = [
    "MAX_DEPTH",
    "TEMPLATE_ROOTS",
    "TRANSFORMS",
    "ExpressionError",
    "Node",
    "Ref",
    "condition_references",
    "evaluate",
    "evaluate_condition",
    "has_templates",
    "parse_condition",
    "render",
    "render_value",
    "substitute_input",
    "template_references",
    "to_text",
    "truthy",
    "value_references",
]
