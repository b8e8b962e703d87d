"""Conditions: the JEXL dialect of the reference implementation, plus ``!``.

    steps.classify.output.response|lower|contains('high')
    steps['gather-news'].output.items|length > 0 && trigger.action != 'closed'
    trigger.count > 5 ? 'high' : 'low'

Why a hand-written parser and not ``eval``: conditions come from workflow files and webhook
payloads, so they must never reach Python's evaluator, and every failure must be an
``ExpressionError`` with an offset that a workflow author can act on.

Semantics chosen for workflow authors rather than for Python:

* A missing property is ``null``, not an error, so ``steps.x.output.maybe == null`` is a test.
  Only an unknown *root* name is an error: it is almost always a typo.
* Ordering against ``null`` is false (a missing value is never less or greater than anything),
  which keeps loop conditions such as ``steps.poll.output.count < 10`` sane on the first pass.
* Numbers compare with an epsilon of 1e-6, so ``0.1 + 0.2 == 0.3``; booleans are not numbers.
* ``&&``/``||`` return one of their operands and short-circuit, as in JavaScript.

The parser is a precedence-climbing / shunting-yard hybrid with few Python frames per nesting
level, and it rejects anything nested deeper than ``MAX_DEPTH``: evaluation is recursive, and a
RecursionError must never escape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from boternity.errors import ExpressionError
from boternity.expressions.paths import (
    MISSING,
    Ref,
    Resolver,
    deep_resolve,
    get_item,
    read_string,
    to_text,
    type_name,
)
from boternity.parsing.limits import Limits, over_limit

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MAX_DEPTH",
    "TRANSFORMS",
    "Node",
    "condition_references",
    "evaluate",
    "evaluate_condition",
    "parse",
    "truthy",
]

#: Deepest nesting (of parentheses, brackets, operators, property chains) a condition may have.
MAX_DEPTH = 100
#: Two numbers closer than this are equal.
EPSILON = 1e-6

# ---------------------------------------------------------------------------------------- values


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def truthy(v: Any) -> bool:
    """JavaScript truthiness: false, null, 0, NaN and "" are false; everything else (even [] and {}) true."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    if isinstance(v, (int, float)):
        return v != 0 and v == v
    if isinstance(v, str):
        return v != ""
    return True


def _num_eq(a: int | float, b: int | float) -> bool:
    if a == b:
        return True
    try:
        return abs(a - b) < EPSILON
    except OverflowError:  # a huge int against a float: they are certainly not within epsilon
        return False


def _equal(a: Any, b: Any, env: _Env) -> bool:
    """Equality by value: numbers within EPSILON, lists and objects deeply, mixed types never.
    Every value visited counts against the evaluation's comparison budget (_Env.compared)."""
    env.compared()
    if _is_num(a):
        return _is_num(b) and _num_eq(a, b)
    if a is None or isinstance(a, (bool, str)):
        return type(a) is type(b) and a == b
    if isinstance(a, (list, tuple)):
        return (isinstance(b, (list, tuple)) and len(a) == len(b)
                and all(_equal(x, y, env) for x, y in zip(a, b, strict=True)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(v, b[k], env) for k, v in a.items()))
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return a is b  # a lazy mapping is never iterated, so only identity can be known
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


def _needle(v: Any) -> str | None:
    """What a value looks for inside a string: strings as they are, numbers as text, others nothing."""
    if isinstance(v, str):
        return v
    if _is_num(v):
        return to_text(v)
    return None


# ----------------------------------------------------------------------------------- evaluation


class _Env:
    """Everything one evaluation needs: the source (for errors), the context, the claim resolver."""

    __slots__ = ("compares_left", "context", "left", "limits", "resolve", "src")

    def __init__(self, src: str, context: Mapping[str, Any], resolve: Resolver) -> None:
        self.src = src
        self.context = context
        self.resolve = resolve
        self.limits = Limits.from_env()
        # Characters '+' and the copying transforms (lower, upper, trim, split) may still build.
        # Sixty 'steps.f.output.body +' of a 10 MB body held 600 MB and took 15 s: every partial sum
        # is a new string. Same budget as a step's templates.
        self.left = self.limits.max_rendered_chars
        # Values '==', '!=', 'in' and contains() may still visit: comparing two 5-million-element
        # lists from an http body took 2 s, and one condition may hold a hundred comparisons.
        self.compares_left = self.limits.max_compared_values

    def compared(self) -> None:
        self.compares_left -= 1
        if self.compares_left < 0:
            raise ExpressionError(f"the comparisons visit more than {self.limits.max_compared_values:,} values "
                                  f"{over_limit(self.limits, 'max_compared_values')}", expression=self.src)

    def spend(self, n: int, offset: int) -> None:
        self.left -= n
        if self.left < 0:
            raise self.fail(f"the string operations build more than {self.limits.max_rendered_chars:,} characters "
                            f"{over_limit(self.limits, 'max_rendered_chars')}", offset)

    def fail(self, message: str, offset: int) -> ExpressionError:
        return ExpressionError(message, expression=self.src, offset=offset)

    def deep(self, v: Any) -> Any:
        return deep_resolve(v, self.resolve)

    def text(self, v: Any, offset: int) -> str:
        try:
            return to_text(self.deep(v))
        except ExpressionError as exc:
            raise self.fail(exc.message, offset) from None


class Node:
    """A parsed condition. Immutable once built: parsed nodes are cached and shared.

    ``start``/``end`` delimit the node's source text; ``offset`` is where errors point (the
    operator of a binary node, the name of a transform...).
    """

    __slots__ = ("depth", "end", "offset", "start")

    def __init__(self, start: int, end: int, offset: int, children: tuple[Node, ...] = ()) -> None:
        self.start = start
        self.end = end
        self.offset = offset
        self.depth = 1 + max((c.depth for c in children), default=0)

    def ev(self, env: _Env) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        return ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}@{self.start}"


class Literal(Node):
    """A constant: string, number, true, false or null (array/object literals are built per evaluation)."""

    __slots__ = ("value",)

    def __init__(self, value: Any, start: int, end: int) -> None:
        super().__init__(start, end, start)
        self.value = value

    def ev(self, env: _Env) -> Any:
        return self.value


class ArrayLit(Node):
    """``[a, b]``: a fresh list each evaluation, so no caller can mutate a cached value."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[Node, ...], start: int, end: int) -> None:
        super().__init__(start, end, start, items)
        self.items = items

    def ev(self, env: _Env) -> Any:
        return [item.ev(env) for item in self.items]

    def children(self) -> tuple[Node, ...]:
        return self.items


class ObjectLit(Node):
    """``{a: 1, 'b-c': 2}``: keys are names or quoted strings, never evaluated."""

    __slots__ = ("keys", "values")

    def __init__(self, keys: tuple[str, ...], values: tuple[Node, ...], start: int, end: int) -> None:
        super().__init__(start, end, start, values)
        self.keys = keys
        self.values = values

    def ev(self, env: _Env) -> Any:
        return {k: v.ev(env) for k, v in zip(self.keys, self.values, strict=True)}

    def children(self) -> tuple[Node, ...]:
        return self.values


class Ident(Node):
    """A root name. It must be a key of the context: an unknown root is a typo, not a null."""

    __slots__ = ("name",)

    def __init__(self, name: str, start: int, end: int) -> None:
        super().__init__(start, end, start)
        self.name = name

    def ev(self, env: _Env) -> Any:
        if self.name not in env.context:
            raise env.fail(f"unknown identifier '{self.name}'", self.start)
        return env.resolve(env.context[self.name])


class Member(Node):
    """``obj.name``. A missing name is null; ``.length`` of a list or string is its length (JS)."""

    __slots__ = ("name", "obj")

    def __init__(self, obj: Node, name: str, start: int, end: int, offset: int) -> None:
        super().__init__(start, end, offset, (obj,))
        self.obj = obj
        self.name = name

    def ev(self, env: _Env) -> Any:
        container = self.obj.ev(env)
        value = get_item(container, self.name)
        if value is MISSING:
            if self.name == "length" and isinstance(container, (str, list, tuple)):
                return len(container)
            return None
        return env.resolve(value)

    def children(self) -> tuple[Node, ...]:
        return (self.obj,)


class Index(Node):
    """``obj[key]``: a name on an object, a position in a list; anything missing is null."""

    __slots__ = ("key", "obj")

    def __init__(self, obj: Node, key: Node, start: int, end: int, offset: int) -> None:
        super().__init__(start, end, offset, (obj, key))
        self.obj = obj
        self.key = key

    def ev(self, env: _Env) -> Any:
        container = self.obj.ev(env)
        key = self.key.ev(env)
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        value = get_item(container, key)
        return None if value is MISSING else env.resolve(value)

    def children(self) -> tuple[Node, ...]:
        return (self.obj, self.key)


class Transform(Node):
    """``obj|name`` or ``obj|name(args)``; the name was checked against TRANSFORMS when parsed."""

    __slots__ = ("args", "name", "obj")

    def __init__(self, obj: Node, name: str, args: tuple[Node, ...], start: int, end: int,
                 offset: int) -> None:
        super().__init__(start, end, offset, (obj, *args))
        self.obj = obj
        self.name = name
        self.args = args

    def ev(self, env: _Env) -> Any:
        value = self.obj.ev(env)
        args = [a.ev(env) for a in self.args]
        return TRANSFORMS[self.name][2](value, args, env, self)

    def children(self) -> tuple[Node, ...]:
        return (self.obj, *self.args)


class Unary(Node):
    """``!x`` (truthiness negation, never fails) and ``-x`` (numbers only)."""

    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: Node, start: int) -> None:
        super().__init__(start, operand.end, start, (operand,))
        self.op = op
        self.operand = operand

    def ev(self, env: _Env) -> Any:
        v = self.operand.ev(env)
        if self.op == "!":
            return not truthy(v)
        if not _is_num(v):
            raise env.fail(f"'-' needs a number, got {type_name(v)}", self.offset)
        return -v

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


class Logical(Node):
    """``&&`` and ``||``: return an operand, evaluate the right one only when needed."""

    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Node, right: Node, offset: int) -> None:
        super().__init__(left.start, right.end, offset, (left, right))
        self.op = op
        self.left = left
        self.right = right

    def ev(self, env: _Env) -> Any:
        left = self.left.ev(env)
        if truthy(left) == (self.op == "&&"):
            return self.right.ev(env)
        return left

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


class Binary(Node):
    """Comparison, ``in`` and arithmetic; both sides are always evaluated."""

    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: Node, right: Node, offset: int) -> None:
        super().__init__(left.start, right.end, offset, (left, right))
        self.op = op
        self.left = left
        self.right = right

    def ev(self, env: _Env) -> Any:
        return _BINARY_FNS[self.op](self.left.ev(env), self.right.ev(env), env, self.offset)

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


class Conditional(Node):
    """``test ? then : other``; only the chosen branch is evaluated."""

    __slots__ = ("other", "test", "then")

    def __init__(self, test: Node, then: Node, other: Node, offset: int) -> None:
        super().__init__(test.start, other.end, offset, (test, then, other))
        self.test = test
        self.then = then
        self.other = other

    def ev(self, env: _Env) -> Any:
        return self.then.ev(env) if truthy(self.test.ev(env)) else self.other.ev(env)

    def children(self) -> tuple[Node, ...]:
        return (self.test, self.then, self.other)


# ------------------------------------------------------------------------------------ operators


def _op_eq(a: Any, b: Any, env: _Env, at: int) -> bool:
    return _equal(env.deep(a), env.deep(b), env)


def _op_ne(a: Any, b: Any, env: _Env, at: int) -> bool:
    return not _equal(env.deep(a), env.deep(b), env)


def _ordering(op: str) -> Callable[[Any, Any, _Env, int], bool]:
    def compare(a: Any, b: Any, env: _Env, at: int) -> bool:
        if a is None or b is None:
            return False  # a missing value is never less or greater than anything
        if _is_num(a) and _is_num(b):
            if _num_eq(a, b):
                return op in ("<=", ">=")
        elif not (isinstance(a, str) and isinstance(b, str)):
            raise env.fail(f"cannot compare {type_name(a)} and {type_name(b)} with '{op}'", at)
        if op == "<":
            return a < b
        if op == "<=":
            return a <= b
        if op == ">":
            return a > b
        return a >= b

    return compare


def _op_in(a: Any, b: Any, env: _Env, at: int) -> bool:
    if isinstance(b, str):
        needle = _needle(a)
        return needle is not None and needle in b
    if isinstance(b, (list, tuple)):
        a = env.deep(a)
        return any(_equal(a, env.deep(x), env) for x in b)
    if isinstance(b, Mapping):
        if isinstance(a, int) and not isinstance(a, bool):
            a = str(a)  # object keys are strings, as in JavaScript
        return isinstance(a, str) and a in b
    if b is None:
        return False
    raise env.fail(f"'in' needs a string, list or object on its right, not a {type_name(b)}", at)


def _numbers(op: str, a: Any, b: Any, env: _Env, at: int) -> None:
    if not (_is_num(a) and _is_num(b)):
        raise env.fail(f"'{op}' needs numbers, got {type_name(a)} and {type_name(b)}", at)


def _op_add(a: Any, b: Any, env: _Env, at: int) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        left, right = env.text(a, at), env.text(b, at)
        env.spend(len(left) + len(right), at)
        return left + right
    _numbers("+", a, b, env, at)
    return _arith(lambda: a + b, env, at)


def _arith(compute: Callable[[], Any], env: _Env, at: int) -> Any:
    try:
        return compute()
    except ZeroDivisionError:
        raise env.fail("division by zero", at) from None
    except (OverflowError, ValueError) as exc:
        raise env.fail(f"arithmetic error: {exc}", at) from None


def _op_sub(a: Any, b: Any, env: _Env, at: int) -> Any:
    _numbers("-", a, b, env, at)
    return _arith(lambda: a - b, env, at)


def _op_mul(a: Any, b: Any, env: _Env, at: int) -> Any:
    _numbers("*", a, b, env, at)
    return _arith(lambda: a * b, env, at)


def _op_div(a: Any, b: Any, env: _Env, at: int) -> Any:
    _numbers("/", a, b, env, at)
    return _arith(lambda: a / b, env, at)


def _op_floordiv(a: Any, b: Any, env: _Env, at: int) -> Any:
    _numbers("//", a, b, env, at)
    return _arith(lambda: a // b, env, at)


def _op_mod(a: Any, b: Any, env: _Env, at: int) -> Any:
    """JavaScript's remainder: the sign follows the dividend (``-7 % 3`` is -1, not Python's 2)."""
    _numbers("%", a, b, env, at)

    def remainder() -> Any:
        r = abs(a) % abs(b)
        return -r if a < 0 else r

    return _arith(remainder, env, at)


def _op_pow(a: Any, b: Any, env: _Env, at: int) -> Any:
    """Exact for modest integer powers; floats otherwise, so ``10 ^ 10000000`` cannot hang a Lambda."""
    _numbers("^", a, b, env, at)
    if isinstance(a, int) and isinstance(b, int) and 0 <= b and max(a.bit_length(), 1) * b <= 4096:
        return a**b
    return _arith(lambda: math.pow(a, b), env, at)


_BINARY_FNS: dict[str, Callable[[Any, Any, _Env, int], Any]] = {
    "==": _op_eq,
    "!=": _op_ne,
    "<": _ordering("<"),
    "<=": _ordering("<="),
    ">": _ordering(">"),
    ">=": _ordering(">="),
    "in": _op_in,
    "+": _op_add,
    "-": _op_sub,
    "*": _op_mul,
    "/": _op_div,
    "//": _op_floordiv,
    "%": _op_mod,
    "^": _op_pow,
}

# (precedence, right-associative); the ternary sits below all of them.
_PRECEDENCE: dict[str, tuple[int, bool]] = {
    "||": (1, False),
    "&&": (2, False),
    "==": (3, False), "!=": (3, False),
    "<": (4, False), "<=": (4, False), ">": (4, False), ">=": (4, False), "in": (4, False),
    "+": (5, False), "-": (5, False),
    "*": (6, False), "/": (6, False), "//": (6, False), "%": (6, False),
    "^": (7, True),
}

# ----------------------------------------------------------------------------------- transforms


def _str_in(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _built(s: str, env: _Env, node: Transform) -> str:
    """``s``, a string a transform copies, counted against the evaluation's budget (_Env.spend)."""
    env.spend(len(s), node.offset)
    return s


def _t_lower(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    return _built(_str_in(v), env, node).lower()


def _t_upper(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    return _built(_str_in(v), env, node).upper()


def _t_trim(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    return _built(_str_in(v), env, node).strip()


def _t_split(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    delim = args[0] if args else ","
    if not isinstance(delim, str):
        raise env.fail(f"split() needs a string delimiter, got {type_name(delim)}", node.offset)
    # Splitting copies the text into pieces (a 10 MB body split 100 times in one condition: 7 s).
    s = _built(_str_in(v), env, node)
    return list(s) if delim == "" else s.split(delim)


def _t_not(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    return not truthy(v)


def _t_contains(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    if isinstance(v, (list, tuple)):
        return _op_in(args[0], v, env, node.offset)
    needle = _needle(args[0])
    return needle is not None and needle in _str_in(v)


def _t_match(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    needle = _needle(args[0])
    return needle is not None and needle in _str_in(v)


def _t_starts(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    needle = _needle(args[0])
    return needle is not None and _str_in(v).startswith(needle)


def _t_ends(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    needle = _needle(args[0])
    return needle is not None and _str_in(v).endswith(needle)


def _t_length(v: Any, args: list[Any], env: _Env, node: Transform) -> Any:
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v)
    return 0


#: name -> (fewest arguments, most arguments, implementation)
TRANSFORMS: dict[str, tuple[int, int, Callable[[Any, list[Any], _Env, Transform], Any]]] = {
    "lower": (0, 0, _t_lower),
    "upper": (0, 0, _t_upper),
    "trim": (0, 0, _t_trim),
    "split": (0, 1, _t_split),
    "not": (0, 0, _t_not),
    "contains": (1, 1, _t_contains),
    "startsWith": (1, 1, _t_starts),
    "endsWith": (1, 1, _t_ends),
    "match": (1, 1, _t_match),
    "length": (0, 0, _t_length),
}

# --------------------------------------------------------------------------------------- lexing

_NUM, _STR, _NAME, _OP, _EOF = "number", "string", "name", "op", "end"
_TWO_CHAR = frozenset({"||", "&&", "==", "!=", "<=", ">=", "//"})
_ONE_CHAR = frozenset("?:<>+-*/%^!.[](){},|")
_DIGITS = "0123456789"
_KEYWORDS: dict[str, Any] = {"true": True, "false": False, "null": None}
_HINTS = {"=": " (use == to compare)", "&": " (use && for 'and')"}

_Token = tuple[str, Any, int, int]  # kind, value, start, end


def _tokenize(src: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c.isspace():
            i += 1
        elif c in "'\"":
            value, j = read_string(src, i)
            tokens.append((_STR, value, i, j))
            i = j
        elif c in _DIGITS:
            j = i
            while j < n and src[j] in _DIGITS:
                j += 1
            is_float = False
            if j + 1 < n and src[j] == "." and src[j + 1] in _DIGITS:
                is_float = True
                j += 1
                while j < n and src[j] in _DIGITS:
                    j += 1
            if j < n and src[j] in "eE":
                k = j + 1
                if k < n and src[k] in "+-":
                    k += 1
                if k < n and src[k] in _DIGITS:
                    is_float = True
                    j = k
                    while j < n and src[j] in _DIGITS:
                        j += 1
            try:
                number: Any = float(src[i:j]) if is_float else int(src[i:j])
            except ValueError:  # more digits than Python will convert
                raise ExpressionError("number too long", expression=src, offset=i) from None
            if isinstance(number, float) and math.isinf(number):
                # 1e999 would be Infinity, which no JSON value can be compared with meaningfully.
                raise ExpressionError("number out of range (beyond a double)", expression=src, offset=i)
            tokens.append((_NUM, number, i, j))
            i = j
        elif c.isalpha() or c in "_$":
            j = i + 1
            while j < n and (src[j].isalnum() or src[j] in "_$"):
                j += 1
            word = src[i:j]
            tokens.append((_OP if word == "in" else _NAME, word, i, j))
            i = j
        elif src[i : i + 2] in _TWO_CHAR:
            tokens.append((_OP, src[i : i + 2], i, i + 2))
            i += 2
        elif c in _ONE_CHAR:
            tokens.append((_OP, c, i, i + 1))
            i += 1
        else:
            raise ExpressionError(f"unexpected character {c!r}{_HINTS.get(c, '')}", expression=src, offset=i)
    tokens.append((_EOF, None, n, n))
    return tokens


def _is_property_name(tok: _Token) -> bool:
    """A name after '.' or as an object key: any name, keywords (``true``, ``in``) included."""
    return tok[0] == _NAME or (tok[0] == _OP and tok[1] == "in")


def _describe(tok: _Token) -> str:
    kind, value = tok[0], tok[1]
    if kind == _EOF:
        return "end of expression"
    if kind == _OP:
        return f"'{value}'"
    if kind == _STR:
        return f"string {value!r}"
    if kind == _NUM:
        return f"number {value!r}"
    return f"name '{value}'"


# -------------------------------------------------------------------------------------- parsing


class _Parser:
    """Recursive descent over a token list, one instance per parse.

    ``nesting`` counts open sub-expressions (parentheses, brackets, arguments, ternary branches)
    so that a pathological input fails with ExpressionError long before Python's own recursion
    limit; ``checked`` caps the depth of the finished tree, which also bounds evaluation.
    """

    def __init__(self, src: str) -> None:
        self.src = src
        self.tokens = _tokenize(src)
        self.pos = 0
        self.nesting = 0

    # -- helpers
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def advance(self) -> _Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def at(self, op: str) -> bool:
        tok = self.tokens[self.pos]
        return tok[0] == _OP and tok[1] == op

    def fail(self, message: str, offset: int) -> ExpressionError:
        return ExpressionError(message, expression=self.src, offset=offset)

    def unexpected(self, tok: _Token, expected: str = "") -> ExpressionError:
        tail = f" (expected {expected})" if expected else ""
        return self.fail(f"unexpected {_describe(tok)}{tail}", tok[2])

    def expect(self, op: str, expected: str) -> _Token:
        if not self.at(op):
            raise self.unexpected(self.peek(), expected)
        return self.advance()

    def checked(self, node: Node) -> Node:
        if node.depth > MAX_DEPTH:
            raise self.fail(f"expression nested too deeply (more than {MAX_DEPTH} levels)", node.offset)
        return node

    # -- grammar
    def parse(self) -> Node:
        if self.peek()[0] == _EOF:
            raise self.fail("empty expression", 0)
        node = self.ternary()
        if self.peek()[0] != _EOF:
            raise self.unexpected(self.peek())
        return node

    def ternary(self) -> Node:
        """``test ? then : else``, lowest precedence and right-associative."""
        self.nesting += 1
        if self.nesting > MAX_DEPTH:
            raise self.fail(f"expression nested too deeply (more than {MAX_DEPTH} levels)", self.peek()[2])
        node = self.binary()
        if self.at("?"):
            question = self.advance()
            then = self.ternary()
            self.expect(":", "':' of 'condition ? then : else'")
            other = self.ternary()
            node = self.checked(Conditional(node, then, other, question[2]))
        self.nesting -= 1
        return node

    def binary(self) -> Node:
        """All binary operators at once, by precedence (shunting-yard: no recursion per level)."""
        operands = [self.unary()]
        ops: list[tuple[str, int, int]] = []  # operator, precedence, offset

        def reduce() -> None:
            op, _prec, offset = ops.pop()
            right = operands.pop()
            left = operands.pop()
            cls = Logical if op in ("&&", "||") else Binary
            operands.append(self.checked(cls(op, left, right, offset)))

        while True:
            tok = self.peek()
            info = _PRECEDENCE.get(tok[1]) if tok[0] == _OP else None
            if info is None:
                break
            prec, right_assoc = info
            while ops and (ops[-1][1] > prec or (ops[-1][1] == prec and not right_assoc)):
                reduce()
            self.advance()
            ops.append((tok[1], prec, tok[2]))
            operands.append(self.unary())
        while ops:
            reduce()
        return operands[0]

    def unary(self) -> Node:
        prefixes: list[_Token] = []
        while self.at("!") or self.at("-"):
            prefixes.append(self.advance())
        node = self.postfix()
        for tok in reversed(prefixes):
            node = self.checked(Unary(tok[1], node, tok[2]))
        return node

    def postfix(self) -> Node:
        start = self.peek()[2]
        node = self.primary()
        while True:
            tok = self.peek()
            if tok[0] != _OP:
                return node
            if tok[1] == ".":
                self.advance()
                name = self.advance()
                if not _is_property_name(name):
                    raise self.unexpected(name, "a property name after '.'")
                node = Member(node, name[1], start, name[3], name[2])
            elif tok[1] == "[":
                self.advance()
                key = self.ternary()
                close = self.expect("]", "']'")
                node = Index(node, key, start, close[3], tok[2])
            elif tok[1] == "|":
                self.advance()
                name = self.advance()
                if name[0] != _NAME:
                    raise self.unexpected(name, "a transform name after '|'")
                node = self.transform(node, name, start)
            else:
                return node
            node = self.checked(node)

    def transform(self, obj: Node, name: _Token, start: int) -> Node:
        spec = TRANSFORMS.get(name[1])
        if spec is None:
            raise self.fail(f"unknown transform '{name[1]}' (known: {', '.join(TRANSFORMS)})", name[2])
        args: tuple[Node, ...] = ()
        end = name[3]
        if self.at("("):
            self.advance()
            args, end = self.arguments(")")
        fewest, most, _fn = spec
        if not fewest <= len(args) <= most:
            want = str(fewest) if fewest == most else f"{fewest} to {most}"
            raise self.fail(f"transform '{name[1]}' takes {want} argument{'' if want == '1' else 's'}, "
                            f"got {len(args)}", name[2])
        return Transform(obj, name[1], args, start, end, name[2])

    def arguments(self, close: str) -> tuple[tuple[Node, ...], int]:
        """Comma-separated expressions up to ``close`` (already past the opener); no trailing comma."""
        items: list[Node] = []
        if not self.at(close):
            while True:
                items.append(self.ternary())
                if not self.at(","):
                    break
                self.advance()
        end = self.expect(close, f"',' or '{close}'")
        return tuple(items), end[3]

    def primary(self) -> Node:
        tok = self.advance()
        kind, value, start, end = tok
        if kind == _NUM or kind == _STR:
            return Literal(value, start, end)
        if kind == _NAME:
            if value in _KEYWORDS:
                return Literal(_KEYWORDS[value], start, end)
            return Ident(value, start, end)
        if kind == _OP:
            if value == "(":
                node = self.ternary()
                self.expect(")", "')'")
                return node
            if value == "[":
                self.nesting += 1
                items, end = self.arguments("]")
                self.nesting -= 1
                return ArrayLit(items, start, end)
            if value == "{":
                return self.object_literal(start)
        raise self.unexpected(tok)

    def object_literal(self, start: int) -> Node:
        keys: list[str] = []
        values: list[Node] = []
        if not self.at("}"):
            while True:
                key = self.advance()
                if key[0] == _STR or _is_property_name(key):
                    keys.append(key[1])
                else:
                    raise self.unexpected(key, "an object key (a name or a quoted string)")
                self.expect(":", "':' after an object key")
                values.append(self.ternary())
                if not self.at(","):
                    break
                self.advance()
        end = self.expect("}", "',' or '}'")
        return ObjectLit(tuple(keys), tuple(values), start, end[3])


#: Conditions up to this long are cached once parsed. Longer ones are parsed each time: the cache
#: kept every tree, and 30 distinct 250 KB array literals (one per PUT) held 555 MB of the api
#: function's memory for good; at 1,024 entries this bounds what the cache can hold.
CACHED_MAX_CHARS = 1024


def parse(expr: str) -> Node:
    """Parse a condition (cached when short: the same conditions are evaluated on every run).

    Raises ExpressionError with the offset of the problem, e.g. ``unexpected ')'`` at offset 7.
    Unknown transforms and wrong argument counts are parse errors too, so a workflow with a typo
    fails when it is loaded, not when the branch is first taken.
    """
    if not isinstance(expr, str):
        raise ExpressionError(f"a condition must be a string, not {type_name(expr)}")
    if len(expr) > CACHED_MAX_CHARS:
        return _Parser(expr).parse()
    return _parse_cached(expr)


@lru_cache(maxsize=1024)
def _parse_cached(expr: str) -> Node:
    return _Parser(expr).parse()


def evaluate(expr: str, context: Mapping[str, Any], *,
             resolver: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """The value of ``expr`` in ``context``, with claim-checked values resolved (deeply) in it."""
    node = parse(expr)
    env = _Env(expr, context, Resolver(resolver))
    try:
        return env.deep(node.ev(env))
    except RecursionError:  # data nested absurdly deep (the expression itself is capped)
        raise ExpressionError("value nested too deeply to evaluate", expression=expr) from None


def evaluate_condition(expr: str, context: Mapping[str, Any], *,
                       resolver: Callable[[dict[str, Any]], Any] | None = None) -> bool:
    """Whether ``expr`` is truthy in ``context`` (JavaScript truthiness, see ``truthy``)."""
    node = parse(expr)
    env = _Env(expr, context, Resolver(resolver))
    try:
        return truthy(node.ev(env))
    except RecursionError:
        raise ExpressionError("value nested too deeply to evaluate", expression=expr) from None


# ------------------------------------------------------------------------------------ references


def _static_key(node: Node) -> str | int | None:
    if isinstance(node, Literal):
        v = node.value
        if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
            return v
    return None


def _walk(node: Node, src: str, out: list[Ref]) -> None:
    """Append the references in ``node`` to ``out``, in source order."""
    chain: list[Node] = []
    base = node
    while isinstance(base, (Member, Index, Transform)):
        chain.append(base)
        base = base.obj
    chain.reverse()
    if isinstance(base, Ident):
        path: list[str | int] = []
        last: Node = base
        for link in chain:
            if isinstance(link, Member):
                path.append(link.name)
            elif isinstance(link, Index) and (key := _static_key(link.key)) is not None:
                path.append(key)
            else:
                break
            last = link
        out.append(Ref(root=base.name, path=tuple(path), text=src[last.start:last.end], offset=last.start))
    elif chain:
        _walk(base, src, out)
    else:
        for child in node.children():
            _walk(child, src, out)
    for link in chain:
        for child in link.children()[1:]:  # index keys and transform arguments, not the object
            _walk(child, src, out)


def condition_references(expr: str) -> list[Ref]:
    """Every root name a condition reads, with the longest static path after it, in source order.

    ``steps['gather-news'].output.items|length > 0`` gives
    ``Ref(root="steps", path=("gather-news", "output", "items"))``: the path stops at a transform or
    at a bracket whose key is computed. Names inside array and object literals and transform
    arguments count too; object keys and transform names do not.
    """
    out: list[Ref] = []
    _walk(parse(expr), expr, out)
    return out
