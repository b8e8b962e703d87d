"""A fast, exact in-memory DynamoDB for the local engine, answering in place of moto's.

moto's DynamoDB spends most of a local run's CPU on one UpdateItem: a botocore-model parse of the
request, an expression parser rebuilt per call, validators that deep-copy items, and a botocore
serialisation of the answer. Here the same wire JSON is answered from the request body: each
distinct expression string is parsed once, items are stored as typed JSON (``{"S": ...}``), and one
lock makes every operation atomic, as DynamoDB's writes are. Items are deep-copied on the way in
and out by the JSON boundary itself (each request body is freshly parsed, each answer serialised to
text before the lock is released), and a stored attribute value is never changed in place, only
replaced, so no caller ever shares an object with the store.

Plugged in at moto's level (``DynamoHandler._dispatch``), so every boto3 client of the process,
created before or after :func:`enable`, reaches it while moto's mock is active.

Exactness by construction: this module answers only requests it fully understands on tables it
owns. Anything else (an operation, parameter, type or expression shape it does not implement, a
request moto would refuse with a ValidationException, a table it did not create) goes to moto
unchanged. When such a request names a table held here, the table is first *handed over*: its
items are written into moto's own table, which from then on answers every request on it. So a
response never silently differs from moto's; an unusual request only makes that table slow.

Tables live with moto's backend object (``dynamodb_backends[account][region]``), so a moto reset
drops them exactly as it drops moto's. TTL is not enforced, as in moto.
"""

from __future__ import annotations

import binascii
import collections
import copy
import json
import re
import threading
import uuid
import weakref
from decimal import Decimal, InvalidOperation
from email.utils import formatdate
from typing import Any

__all__ = ["disable", "enable", "enabled", "handovers", "held_tables"]

# ---------------------------------------------------------------------- wiring

_lock = threading.RLock()   # every operation, as DynamoDB applies each write atomically
_original_dispatch: Any = None
_backends: weakref.WeakSet[Any] = weakref.WeakSet()   # backends holding fast tables
_handovers: collections.deque[tuple[str, str]] = collections.deque(maxlen=100)
_STORE_ATTR = "_boternity_fast_tables"
_JSON_TYPE = "application/x-amz-json-1.0"
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
_CONDITION_FAILED = "The conditional request failed"
# moto's RESULT_SIZE_LIMIT: a Query page stops before 1 MB of items.
_PAGE_BYTES = 1_000_000
# Items above this go to moto, which checks DynamoDB's 400 KB item limit with its own count.
_ITEM_BYTES_SAFE = 350_000


# Operations that never read or write items: moto answers them as they are, tables stay here.
_METADATA_ONLY = frozenset({"ListTables", "DescribeTimeToLive", "UpdateTimeToLive", "ListTagsOfResource",
                            "TagResource", "UntagResource", "DescribeEndpoints", "DescribeLimits",
                            "DescribeContinuousBackups"})


class _Unsupported(Exception):
    """Not answered here: moto answers (after the named tables are handed over)."""


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__(_CONDITION_FAILED)
        self.item = item


def enable() -> None:
    """Answer DynamoDB requests here from now on (idempotent). Call after moto's mock started."""
    global _original_dispatch
    from moto.dynamodb.responses import DynamoHandler

    with _lock:
        if _original_dispatch is None:
            _original_dispatch = DynamoHandler._dispatch
            DynamoHandler._dispatch = _dispatch


def disable() -> None:
    """Hand every table held here to moto and let moto answer again (idempotent)."""
    global _original_dispatch
    from moto.dynamodb.responses import DynamoHandler

    with _lock:
        for backend in list(_backends):
            for name in list(_store(backend)):
                _hand_over(backend, name, "disable()")
        if _original_dispatch is not None:
            DynamoHandler._dispatch = _original_dispatch
            _original_dispatch = None


def enabled() -> bool:
    return _original_dispatch is not None


def held_tables() -> list[str]:
    """Names of the tables answered here (not yet handed to moto), across accounts and regions."""
    with _lock:
        return sorted(name for backend in list(_backends) for name in backend.__dict__.get(_STORE_ATTR) or {})


def _store(backend: Any) -> dict[str, _Table]:
    # In the backend's own __dict__: moto's reset replaces it, dropping these tables with its own.
    tables = backend.__dict__.get(_STORE_ATTR)
    if tables is None:
        tables = backend.__dict__[_STORE_ATTR] = {}
        _backends.add(backend)
    return tables


def handovers() -> list[tuple[str, str]]:
    """The latest tables handed to moto, with why: ``(table, reason)``, oldest first."""
    with _lock:
        return list(_handovers)


def _hand_over(backend: Any, name: str, reason: str) -> None:
    """Move a table's items into moto's table of the same name; moto answers for it from now on."""
    table = _store(backend).pop(name, None)
    if table is None:
        return
    _handovers.append((name, reason))
    moto_table = backend.get_table(name)
    for item in table.all_items():
        moto_table.put_item(copy.deepcopy(item))


def _dispatch(handler: Any, request: Any, full_url: str | None = None, headers: Any = None) -> Any:
    from moto import settings

    if settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf"):
        # moto checks IAM policies on requests (set_initial_no_auth_action_count): it answers all.
        return _fall_through(handler, request, full_url, headers)
    target = request.headers.get("X-Amz-Target") or ""
    action = target.rsplit(".", 1)[-1]
    op = _OPERATIONS.get(action)
    if op is None and action not in ("CreateTable", "DescribeTable", "DeleteTable"):
        if action in _METADATA_ONLY:
            return _original_dispatch(handler, request, full_url, headers)
        return _fall_through(handler, request, full_url, headers)
    if request.content_encoding:   # a compressed body: moto decodes it; not ours to read
        return _fall_through(handler, request, full_url, headers)
    try:
        body = json.loads(request.data or b"{}")
    except ValueError:
        return _fall_through(handler, request, full_url, headers)
    if not isinstance(body, dict):
        return _fall_through(handler, request, full_url, headers)
    backend = _backend_for(handler, request, full_url)
    with _lock:
        tables = _store(backend)
        if action == "CreateTable":
            response = _original_dispatch(handler, request, full_url, headers)
            if str(response[0]) == "200" and body.get("TableName") not in tables:
                definition = _Table.from_definition(body)
                if definition is not None:
                    tables[definition.name] = definition
            return response
        if action in ("DescribeTable", "DeleteTable"):
            # moto counts items (ItemCount, TableSizeBytes) in these answers: an empty table's
            # answer is already exact, a filled one is handed over first.
            name = body.get("TableName")
            if name in tables and (action == "DeleteTable" or tables[name].count):
                _hand_over(backend, name, f"{action} counts items")
            response = _original_dispatch(handler, request, full_url, headers)
            if action == "DeleteTable" and str(response[0]) == "200":
                tables.pop(name, None)
            return response
        names = _table_names(action, body)
        if names is None or not names or any(n not in tables for n in names):
            for name in names or list(tables):
                if name in tables:
                    _hand_over(backend, name, f"{action} names a table moto holds, or none")
            return _original_dispatch(handler, request, full_url, headers)
        try:
            result = op(tables, body)
        except _ConditionFailed as exc:
            err: dict[str, Any] = {"__type": _ERROR_PREFIX + "ConditionalCheckFailedException",
                                   "message": _CONDITION_FAILED}
            if exc.item is not None:
                err["Item"] = exc.item
            return _respond(400, err, "ConditionalCheckFailedException")
        except _Cancelled as exc:
            return _respond(400, exc.body(), "TransactionCanceledException")
        except (_Unsupported, InvalidOperation, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            # Not ours to answer (nothing was written: every operation checks before it writes).
            for name in names:
                _hand_over(backend, name, f"{action}: {type(exc).__name__} {exc}")
            return _original_dispatch(handler, request, full_url, headers)
        return _respond(200, result, None)


def _fall_through(handler: Any, request: Any, full_url: str | None, headers: Any) -> Any:
    # A request not answered here (BatchWriteItem, TransactGetItems, an unreadable body, IAM checks on):
    # every table of the backend it may touch goes to moto first, so moto sees all the data.
    backend = _backend_for(handler, request, full_url)
    with _lock:
        tables = _store(backend)
        action = (request.headers.get("X-Amz-Target") or "").rsplit(".", 1)[-1]
        for name in list(tables):
            _hand_over(backend, name, f"{action} is not answered here")
        return _original_dispatch(handler, request, full_url, headers)


def _backend_for(handler: Any, request: Any, full_url: str | None) -> Any:
    """moto's backend for this request, found exactly as moto finds it (region, then account)."""
    from moto.dynamodb.models import dynamodb_backends

    handler.headers = request.headers
    handler.querystring = {}
    from moto.iam.models import mark_account_as_visited

    region = handler.get_region_from_url(request, full_url or request.raw_url)
    account = handler.get_current_account()
    mark_account_as_visited(account_id=account, access_key=handler.get_access_key(), service="dynamodb",
                            region=region)
    return dynamodb_backends[account][region]


def _respond(status: int, body: dict[str, Any], error: str | None) -> tuple[int, dict[str, str], str]:
    text = json.dumps(body)
    headers = {"server": "amazon.com", "date": formatdate(usegmt=True),
               "x-amzn-requestid": uuid.uuid4().hex + uuid.uuid4().hex[:20],
               # botocore checks this checksum on every DynamoDB answer
               "x-amz-crc32": str(binascii.crc32(text.encode("utf-8")) & 0xFFFFFFFF)}
    if error is None:
        headers["Content-Type"] = _JSON_TYPE
    else:
        headers.update({"X-Amzn-ErrorType": error, "Content-Type": "application/json", "status": str(status)})
    return status, headers, text


def _table_names(action: str, body: dict[str, Any]) -> list[str] | None:
    if action == "TransactWriteItems":
        names = []
        for entry in body.get("TransactItems") or []:
            if not isinstance(entry, dict) or len(entry) != 1:
                return None
            op = next(iter(entry.values()))
            if not isinstance(op, dict) or not isinstance(op.get("TableName"), str):
                return None
            names.append(op["TableName"])
        return sorted(set(names))
    name = body.get("TableName")
    return [name] if isinstance(name, str) else None


# ---------------------------------------------------------------------- values

_NUMBER = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


def _check_value(value: Any) -> None:
    """Refuse (to moto) any value this module does not store exactly as moto does."""
    if not isinstance(value, dict) or len(value) != 1:
        raise _Unsupported("malformed attribute value")
    (kind, v), = value.items()
    if kind == "S":
        if not isinstance(v, str):
            raise _Unsupported("S")
    elif kind == "N":
        if not isinstance(v, str) or not _NUMBER.fullmatch(v) or len(v) > 38:
            raise _Unsupported("N")
    elif kind == "BOOL":
        if not isinstance(v, bool):
            raise _Unsupported("BOOL")
    elif kind == "NULL":
        if v is not True:
            raise _Unsupported("NULL")
    elif kind in ("SS", "NS"):
        if not isinstance(v, list) or not v or len(set(map(str, v))) != len(v):
            raise _Unsupported("empty or repeating set")
        for e in v:
            _check_value({kind[0]: e})
        if "" in v or (kind == "NS" and len({Decimal(e) for e in v}) != len(v)):
            raise _Unsupported("empty or repeating set member")
    elif kind == "L":
        if not isinstance(v, list):
            raise _Unsupported("L")
        for e in v:
            _check_value(e)
    elif kind == "M":
        if not isinstance(v, dict):
            raise _Unsupported("M")
        for e in v.values():
            _check_value(e)
    else:
        raise _Unsupported(f"type {kind}")


def _size(value: dict[str, Any]) -> int:
    """moto's DynamoType.size(): what it counts against the 1 MB page."""
    (kind, v), = value.items()
    if kind == "N":
        return len(str(v))
    if kind in ("SS", "NS"):
        return sum(_size({kind[0]: e}) for e in v)
    if kind == "L":
        return sum(_size(e) for e in v)
    if kind == "M":
        return sum(len(k.encode("utf-8")) + _size(e) for k, e in v.items())
    if isinstance(v, bool):
        return 1
    return len(v.encode("utf-8")) if isinstance(v, str) else len(str(v).encode("utf-8"))


def _item_size(item: dict[str, Any]) -> int:
    return sum(len(k.encode("utf-8")) + _size(v) for k, v in item.items())


def _sort_key(value: dict[str, Any]) -> Any:
    # Strings by code point, which is UTF-8 byte order; numbers numerically.
    (kind, v), = value.items()
    return Decimal(v) if kind == "N" else v


def _arith(a: str, b: str, sign: int) -> str:
    # moto's DynamoType.__add__/__sub__: ints stay ints, a '.' makes both Decimals.
    if "e" in a.lower() or "e" in b.lower():
        raise _Unsupported("exponent")
    x: Any = Decimal(a) if "." in a else int(a)
    y: Any = Decimal(b) if "." in b else int(b)
    return f"{x + y if sign > 0 else x - y}"


# ---------------------------------------------------------------------- expressions

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
                    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><>|<=|>=|[=<>(),.\[\]+-]))")
_KEYWORDS = {"AND", "OR", "NOT", "BETWEEN", "IN"}
_FUNCTIONS = {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains", "size",
              "if_not_exists", "list_append"}
_reserved: set[str] | None = None


def _reserved_words() -> set[str]:
    global _reserved
    if _reserved is None:
        from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords

        _reserved = {w.upper() for w in ReservedKeywords.get_reserved_keywords()}
    return _reserved


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _Unsupported("token")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over one expression; the trees are tuples, cached by expression text."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.names: set[str] = set()
        self.values: set[str] = set()

    def peek(self, offset: int = 0) -> tuple[str, str]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else ("end", "")

    def take(self, text: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok[0] == "end" or (text is not None and tok[1].upper() != text):
            raise _Unsupported(f"expected {text}")
        self.i += 1
        return tok

    def at(self, text: str) -> bool:
        kind, val = self.peek()
        return kind in ("op", "word") and val.upper() == text

    def done(self) -> None:
        if self.i != len(self.toks):
            raise _Unsupported("trailing tokens")

    # paths and operands
    def path(self) -> tuple[Any, ...]:
        parts: list[Any] = [self.name()]
        while True:
            if self.at("."):
                self.take()
                parts.append(self.name())
            elif self.at("["):
                self.take()
                kind, num = self.take()
                if kind != "num":
                    raise _Unsupported("index")
                self.take("]")
                parts.append(int(num))
            else:
                return ("path", tuple(parts))

    def name(self) -> Any:
        kind, val = self.take()
        if kind == "name":
            self.names.add(val)
            return ("#", val)
        if kind == "word" and val.upper() not in _KEYWORDS and val not in _FUNCTIONS:
            if val.upper() in _reserved_words():
                raise _Unsupported("reserved word")   # moto names it in a ValidationException
            return val
        raise _Unsupported("name")

    def operand(self) -> tuple[Any, ...]:
        kind, val = self.peek()
        if kind == "value":
            self.take()
            self.values.add(val)
            return ("value", val)
        if kind == "word" and val == "size" and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            p = self.path()
            self.take(")")
            return ("size", p)
        return self.path()

    # conditions
    def condition(self) -> tuple[Any, ...]:
        left = self.conjunction()
        while self.at("OR"):
            self.take()
            left = ("or", left, self.conjunction())
        return left

    def conjunction(self) -> tuple[Any, ...]:
        left = self.negation()
        while self.at("AND"):
            self.take()
            left = ("and", left, self.negation())
        return left

    def negation(self) -> tuple[Any, ...]:
        if self.at("NOT"):
            self.take()
            return ("not", self.negation())
        return self.primary()

    def primary(self) -> tuple[Any, ...]:
        if self.at("("):
            self.take()
            inner = self.condition()
            self.take(")")
            if inner[0] == "paren":
                raise _Unsupported("redundant parentheses")   # moto's ValidationException
            return ("paren", inner)
        kind, val = self.peek()
        if kind == "word" and val in _FUNCTIONS and val != "size" and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            args = [self.operand()]
            while self.at(","):
                self.take()
                args.append(self.operand())
            self.take(")")
            arity = {"attribute_exists": 1, "attribute_not_exists": 1, "attribute_type": 2, "begins_with": 2,
                     "contains": 2}.get(val)
            if arity != len(args) or args[0][0] != "path":
                raise _Unsupported("function")
            return ("fn", val, *args)
        left = self.operand()
        kind, val = self.peek()
        if kind == "op" and val in ("=", "<>", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", val, left, self.operand())
        if self.at("BETWEEN"):
            self.take()
            low = self.operand()
            self.take("AND")
            return ("between", left, low, self.operand())
        if self.at("IN"):
            self.take()
            self.take("(")
            options = [self.operand()]
            while self.at(","):
                self.take()
                options.append(self.operand())
            self.take(")")
            return ("in", left, *options)
        raise _Unsupported("condition")

    # updates
    def update(self) -> dict[str, list[Any]]:
        clauses: dict[str, list[Any]] = {}
        while self.peek()[0] != "end":
            kind, word = self.take()
            clause = word.upper()
            if kind != "word" or clause not in ("SET", "REMOVE", "ADD", "DELETE") or clause in clauses:
                raise _Unsupported("clause")
            actions: list[Any] = []
            while True:
                target = self.path()
                if clause == "SET":
                    self.take("=")
                    actions.append((target, self.set_value()))
                elif clause == "REMOVE":
                    actions.append((target, None))
                else:
                    kind, val = self.take()
                    if kind != "value":
                        raise _Unsupported("ADD/DELETE value")
                    self.values.add(val)
                    actions.append((target, ("value", val)))
                if not self.at(","):
                    break
                self.take()
            clauses[clause] = actions
        if not clauses:
            raise _Unsupported("empty update")
        return clauses

    def set_value(self) -> tuple[Any, ...]:
        left = self.set_operand()
        if self.at("+") or self.at("-"):
            op = self.take()[1]
            return ("arith", op, left, self.set_operand())
        return left

    def set_operand(self) -> tuple[Any, ...]:
        kind, val = self.peek()
        if kind == "word" and val in ("if_not_exists", "list_append") and self.peek(1)[1] == "(":
            self.take()
            self.take("(")
            first = self.set_operand() if val == "list_append" else self.path()
            self.take(",")
            second = self.set_operand()
            self.take(")")
            return (val, first, second)
        if kind == "value":
            self.take()
            self.values.add(val)
            return ("value", val)
        return self.path()


_parsed: dict[tuple[str, str], tuple[Any, frozenset[str], frozenset[str]]] = {}
_PARSED_MAX = 4096


def _parse(kind: str, text: Any) -> tuple[Any, frozenset[str], frozenset[str]]:
    """(tree, names used, values used) of an expression, parsed once per distinct text."""
    if not isinstance(text, str) or not text.strip():
        raise _Unsupported("empty expression")
    hit = _parsed.get((kind, text))
    if hit is None:
        if len(_parsed) >= _PARSED_MAX:   # bounded: expressions repeat, but a caller may build many
            _parsed.clear()
        p = _Parser(text)
        if kind == "update":
            tree: Any = p.update()
        elif kind == "projection":
            paths = [p.path()]
            while p.at(","):
                p.take()
                paths.append(p.path())
            tree = paths
        else:
            tree = p.condition()
        p.done()
        hit = _parsed[(kind, text)] = (tree, frozenset(p.names), frozenset(p.values))
    return hit


class _Expressions:
    """The expressions of one request with their placeholders, every one defined and used."""

    def __init__(self, body: dict[str, Any], **texts: Any) -> None:
        names = body.get("ExpressionAttributeNames")
        values = body.get("ExpressionAttributeValues")
        if names is not None and (not isinstance(names, dict) or not names):
            raise _Unsupported("ExpressionAttributeNames")
        if values is not None and (not isinstance(values, dict) or not values):
            raise _Unsupported("ExpressionAttributeValues")
        self.names: dict[str, str] = names or {}
        self.values: dict[str, Any] = values or {}
        used_names: set[str] = set()
        used_values: set[str] = set()
        self.trees: dict[str, Any] = {}
        for kind, text in texts.items():
            if text is None:
                continue
            tree, n, v = _parse(kind, text)
            if kind != "update" and values and any(list(values.get(x) or {}) == ["NULL"] for x in v):
                raise _Unsupported("NULL in a condition")   # moto refuses some where it parses them
            self.trees[kind] = tree
            used_names |= n
            used_values |= v
        if used_names != set(self.names) or used_values != set(self.values):
            # moto's ValidationException
            odd = sorted(used_names ^ set(self.names)) + sorted(used_values ^ set(self.values))
            raise _Unsupported(f"undefined or unused placeholders {odd}")
        for name in self.names.values():
            if not isinstance(name, str) or not name:
                raise _Unsupported("attribute name")
        for value in self.values.values():
            _check_value(value)

    def top(self, part: Any) -> str:
        return self.names[part[1]] if isinstance(part, tuple) else part

    def resolve(self, path: tuple[Any, ...], item: dict[str, Any] | None) -> dict[str, Any] | None:
        if item is None:
            return None
        parts = path[1]
        node = item.get(self.top(parts[0]))
        for part in parts[1:]:
            if node is None:
                return None
            if isinstance(part, int):
                node = node["L"][part] if "L" in node and 0 <= part < len(node["L"]) else None
            else:
                node = node["M"].get(self.top(part)) if "M" in node else None
        return node

    def operand(self, op: tuple[Any, ...], item: dict[str, Any] | None) -> dict[str, Any] | None:
        if op[0] == "value":
            return self.values[op[1]]
        if op[0] == "size":
            target = self.resolve(op[1], item)
            if target is None:
                raise _Unsupported("size of a missing attribute")
            (kind, v), = target.items()
            if kind not in ("S", "SS", "NS", "L", "M"):
                raise _Unsupported("size of this type")
            return {"N": str(len(v))}
        return self.resolve(op, item)

    def test(self, tree: tuple[Any, ...], item: dict[str, Any] | None) -> bool:
        tag = tree[0]
        if tag == "paren":
            return self.test(tree[1], item)
        if tag == "and":
            return self.test(tree[1], item) and self.test(tree[2], item)
        if tag == "or":
            return self.test(tree[1], item) or self.test(tree[2], item)
        if tag == "not":
            return not self.test(tree[1], item)
        if tag == "cmp":
            return _compare(tree[1], self.operand(tree[2], item), self.operand(tree[3], item))
        if tag == "between":
            value, low, high = (self.operand(t, item) for t in tree[1:])
            if value is None or low is None or high is None:
                raise _Unsupported("BETWEEN on a missing attribute")   # moto raises a TypeError
            return _compare("<=", low, value) and _compare("<=", value, high)
        if tag == "in":
            value = self.operand(tree[1], item)
            return any(_compare("=", value, self.operand(t, item)) for t in tree[2:])
        name, *args = tree[1:]
        target = self.resolve(args[0], item)
        if name == "attribute_exists":
            return target is not None
        if name == "attribute_not_exists":
            return target is None
        other = self.operand(args[1], item)
        if other is None:
            raise _Unsupported("function operand")
        (okind, oval), = other.items()
        if name == "attribute_type":
            if okind != "S" or oval not in ("S", "SS", "N", "NS", "B", "BS", "BOOL", "NULL", "L", "M"):
                raise _Unsupported("attribute_type")
            return target is not None and next(iter(target)) == oval
        if name == "begins_with":
            if okind != "S":
                raise _Unsupported("begins_with operand")
            return target is not None and "S" in target and target["S"].startswith(oval)
        # contains
        if target is None:
            return False
        (tkind, tval), = target.items()
        if tkind == "S" and okind == "S":
            return oval in tval
        if tkind == "SS" and okind == "S":
            return oval in tval
        if tkind == "NS" and okind == "N":
            return Decimal(oval) in {Decimal(e) for e in tval}
        if tkind in ("S", "SS", "NS", "L", "BS", "B"):
            raise _Unsupported("contains on mixed types")
        return False


def _compare(op: str, a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    # moto compares cast values; where that could differ from DynamoDB (mixed types, NULL,
    # documents) the request goes to moto instead.
    if a is None or b is None:
        if op in ("<", "<=", ">", ">="):
            return False
        if (a or b or {}).keys() & {"NULL"}:
            raise _Unsupported("NULL against a missing attribute")
        return (a is None and b is None) == (op == "=")
    (ka, va), = a.items()
    (kb, vb), = b.items()
    if ka != kb or ka in ("NULL", "L", "M"):
        raise _Unsupported("comparison across types")
    if ka == "N":
        x, y = Decimal(va), Decimal(vb)
    elif ka in ("SS", "NS"):
        if op not in ("=", "<>"):
            raise _Unsupported("ordering sets")
        cast = Decimal if ka == "NS" else str
        x, y = {cast(e) for e in va}, {cast(e) for e in vb}
    elif ka == "BOOL" and op not in ("=", "<>"):
        raise _Unsupported("ordering booleans")
    else:
        x, y = va, vb
    if op == "=":
        return bool(x == y)
    if op == "<>":
        return bool(x != y)
    if op == "<":
        return bool(x < y)
    if op == "<=":
        return bool(x <= y)
    if op == ">":
        return bool(x > y)
    return bool(x >= y)


# ---------------------------------------------------------------------- tables


class _Table:
    def __init__(self, name: str, hash_attr: str, range_attr: str | None, types: dict[str, str],
                 indexes: dict[str, tuple[str, str | None]]) -> None:
        self.name = name
        self.hash_attr = hash_attr
        self.range_attr = range_attr
        self.types = types
        self.indexes = indexes
        # partition value -> sort value (or None) -> item, all as typed JSON
        self.partitions: dict[Any, dict[Any, dict[str, Any]]] = {}
        self.sizes: dict[tuple[Any, Any], int] = {}   # moto's size of each item, by key
        self.count = 0

    @classmethod
    def from_definition(cls, body: dict[str, Any]) -> _Table | None:
        """A table this module can hold exactly, or None (moto keeps it). Only string and number
        keys, and global indexes projecting ALL; no local indexes or streams."""
        allowed = {"TableName", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "BillingMode",
                   "ProvisionedThroughput", "Tags", "DeletionProtectionEnabled", "TableClass"}
        if set(body) - allowed:
            return None
        types = {d["AttributeName"]: d["AttributeType"] for d in body.get("AttributeDefinitions") or []}
        if any(t not in ("S", "N") for t in types.values()):
            return None

        def keys(schema: list[dict[str, str]]) -> tuple[str, str | None] | None:
            h = [k["AttributeName"] for k in schema if k["KeyType"] == "HASH"]
            r = [k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"]
            if len(h) != 1 or len(r) > 1 or len(schema) != len(h) + len(r):
                return None
            return h[0], (r[0] if r else None)

        main = keys(body.get("KeySchema") or [])
        if main is None:
            return None
        indexes: dict[str, tuple[str, str | None]] = {}
        for gsi in body.get("GlobalSecondaryIndexes") or []:
            k = keys(gsi.get("KeySchema") or [])
            if k is None or k[1] is None or (gsi.get("Projection") or {}).get("ProjectionType") != "ALL":
                return None
            indexes[gsi["IndexName"]] = k
        return cls(body["TableName"], main[0], main[1], types, indexes)

    def key_of(self, attrs: dict[str, Any], *, exact: bool) -> tuple[Any, Any]:
        """(partition, sort) of a Key (``exact``: nothing else in it) or of an item."""
        wanted = [self.hash_attr] + ([self.range_attr] if self.range_attr else [])
        if exact and set(attrs) != set(wanted):
            raise _Unsupported("key attributes")
        out = []
        for name in wanted:
            value = attrs.get(name)
            if not isinstance(value, dict) or list(value) != [self.types[name]]:
                raise _Unsupported("key type")
            v = value[self.types[name]]
            _check_value(value)
            if v == "":
                raise _Unsupported("empty key")
            out.append(v if self.types[name] == "S" else Decimal(v))
        return out[0], (out[1] if self.range_attr else None)

    def check_item(self, item: Any) -> tuple[Any, Any]:
        if not isinstance(item, dict):
            raise _Unsupported("item")
        key = self.key_of(item, exact=False)
        for name, value in item.items():
            if not isinstance(name, str) or not name:
                raise _Unsupported("attribute name")
            _check_value(value)
        for h, r in self.indexes.values():
            for attr in (h, r):
                if attr in item:
                    value = item[attr]
                    if list(value) != [self.types[attr]] or value[self.types[attr]] == "":
                        raise _Unsupported("index key")   # moto refuses it
        if _item_size(item) > _ITEM_BYTES_SAFE:
            raise _Unsupported("large item")
        return key

    def check_written(self, key: tuple[Any, Any], new: dict[str, Any], written: set[str],
                      old: dict[str, Any] | None) -> int:
        """check_item for an updated item, looking only at what the update wrote (every value
        it wrote was checked as an expression value); the size is kept up to date per item."""
        if old is None:
            self.check_item(new)
            return _item_size(new)
        for h, r in self.indexes.values():
            for attr in (h, r):
                if attr in written and attr in new:
                    value = new[attr]
                    if list(value) != [self.types[attr]] or value[self.types[attr]] == "":
                        raise _Unsupported("index key")
        size = self.sizes[key]
        for name in written:
            if name in old:
                size -= len(name.encode("utf-8")) + _size(old[name])
            if name in new:
                size += len(name.encode("utf-8")) + _size(new[name])
        if size > _ITEM_BYTES_SAFE:
            raise _Unsupported("large item")
        return size

    def get(self, key: tuple[Any, Any]) -> dict[str, Any] | None:
        part = self.partitions.get(key[0])
        return part.get(key[1]) if part else None

    def put(self, key: tuple[Any, Any], item: dict[str, Any], size: int | None = None) -> None:
        part = self.partitions.setdefault(key[0], {})
        if key[1] not in part:
            self.count += 1
        part[key[1]] = item
        self.sizes[key] = _item_size(item) if size is None else size

    def delete(self, key: tuple[Any, Any]) -> None:
        part = self.partitions.get(key[0])
        if part and key[1] in part:
            del part[key[1]]
            del self.sizes[key]
            self.count -= 1
            if not part:
                del self.partitions[key[0]]

    def all_items(self) -> list[dict[str, Any]]:
        return [item for part in self.partitions.values() for item in part.values()]


def _table(tables: dict[str, _Table], body: dict[str, Any]) -> _Table:
    return tables[body["TableName"]]


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = set(body) - allowed - {"TableName"}
    if extra:
        raise _Unsupported(f"parameters {sorted(extra)}")
    if body.get("ReturnConsumedCapacity", "NONE") != "NONE":
        raise _Unsupported("ReturnConsumedCapacity")
    if body.get("ReturnItemCollectionMetrics", "NONE") != "NONE":
        raise _Unsupported("ReturnItemCollectionMetrics")


def _on_failure(body: dict[str, Any]) -> bool:
    mode = body.get("ReturnValuesOnConditionCheckFailure", "NONE")
    if mode not in ("NONE", "ALL_OLD"):
        raise _Unsupported("ReturnValuesOnConditionCheckFailure")
    return mode == "ALL_OLD"


def _check_condition(exprs: _Expressions, item: dict[str, Any] | None, all_old: bool) -> None:
    tree = exprs.trees.get("condition")
    if tree is not None and not exprs.test(tree, item):
        raise _ConditionFailed(item if all_old and item else None)


_COMMON = {"ReturnConsumedCapacity", "ReturnItemCollectionMetrics", "ExpressionAttributeNames",
           "ExpressionAttributeValues"}


# ---------------------------------------------------------------------- operations


def _prepare_put(table: _Table, body: dict[str, Any]) -> tuple[Any, dict[str, Any], _Expressions, bool]:
    key = table.check_item(body.get("Item"))
    exprs = _Expressions(body, condition=body.get("ConditionExpression"))
    return key, body["Item"], exprs, _on_failure(body)


def _put_item(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    _only(body, _COMMON | {"Item", "ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"})
    table = _table(tables, body)
    returns = body.get("ReturnValues", "NONE")
    if returns not in ("NONE", "ALL_OLD"):
        raise _Unsupported("ReturnValues")
    key, item, exprs, all_old = _prepare_put(table, body)
    old = table.get(key)
    _check_condition(exprs, old, all_old)
    table.put(key, item)
    return {"Attributes": old} if returns == "ALL_OLD" and old else {}


def _get_item(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    _only(body, _COMMON | {"Key", "ConsistentRead", "ProjectionExpression"})
    if "ExpressionAttributeValues" in body or not isinstance(body.get("ConsistentRead", False), bool):
        raise _Unsupported("GetItem parameters")
    table = _table(tables, body)
    key = table.key_of(body.get("Key") or {}, exact=True)
    names = _projection(_Expressions(body, projection=body.get("ProjectionExpression")))
    item = table.get(key)
    if item is None:
        return {}
    return {"Item": _project(names, item)}


def _projection(exprs: _Expressions) -> list[str] | None:
    """The attribute names a ProjectionExpression keeps; checked before any item is read, as
    moto checks it when it parses the request."""
    paths = exprs.trees.get("projection")
    if paths is None:
        return None
    if any(len(path[1]) != 1 for path in paths):
        raise _Unsupported("nested projection")
    names = [exprs.top(path[1][0]) for path in paths]
    if len(set(names)) != len(names):
        raise _Unsupported("overlapping projection paths")   # moto's ValidationException
    return names


def _project(names: list[str] | None, item: dict[str, Any]) -> dict[str, Any]:
    if names is None:
        return item
    return {name: item[name] for name in names if name in item}


def _delete_item(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    _only(body, _COMMON | {"Key", "ConditionExpression", "ReturnValues", "ReturnValuesOnConditionCheckFailure"})
    table = _table(tables, body)
    returns = body.get("ReturnValues", "NONE")
    if returns not in ("NONE", "ALL_OLD"):
        raise _Unsupported("ReturnValues")
    key = table.key_of(body.get("Key") or {}, exact=True)
    exprs = _Expressions(body, condition=body.get("ConditionExpression"))
    old = table.get(key)
    _check_condition(exprs, old, _on_failure(body))
    table.delete(key)
    return {"Attributes": old} if returns == "ALL_OLD" and old else {}


def _updated(table: _Table, exprs: _Expressions, key: tuple[Any, Any], key_attrs: dict[str, Any],
             old: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
    """The item after the update expression; every operand read from the item as it was."""
    clauses = exprs.trees["update"]
    # Shallow: attribute values are never changed in place, only replaced.
    new = dict(old) if old is not None else dict(key_attrs)
    written: set[str] = set()
    read: set[str] = set()
    planned: list[tuple[str, str, Any]] = []

    def target(path: tuple[Any, ...]) -> str:
        if len(path[1]) != 1:
            raise _Unsupported("nested update path")
        name = exprs.top(path[1][0])
        if name in written or name == table.hash_attr or name == table.range_attr:
            raise _Unsupported("overlapping or key path")
        written.add(name)
        return name

    def value(tree: tuple[Any, ...], own: str) -> dict[str, Any]:
        tag = tree[0]
        if tag == "value":
            return exprs.values[tree[1]]
        if tag == "path":
            name = exprs.top(tree[1][0])
            if name != own:
                read.add(name)
            found = exprs.resolve(tree, old)
            if found is None:
                raise _Unsupported("operand missing")   # moto's ValidationException
            return found
        if tag == "if_not_exists":
            if len(tree[1][1]) != 1:
                raise _Unsupported("nested if_not_exists")
            name = exprs.top(tree[1][1][0])
            if name != own:
                read.add(name)
            found = exprs.resolve(tree[1], old)
            return found if found is not None else value(tree[2], own)
        if tag == "list_append":
            a, b = value(tree[1], own), value(tree[2], own)
            if "L" not in a or "L" not in b:
                raise _Unsupported("list_append types")
            return {"L": a["L"] + b["L"]}
        if tag == "arith":
            a, b = value(tree[2], own), value(tree[3], own)
            if "N" not in a or "N" not in b:
                raise _Unsupported("arithmetic types")
            return {"N": _arith(a["N"], b["N"], 1 if tree[1] == "+" else -1)}
        raise _Unsupported("SET operand")

    for path, tree in clauses.get("SET", []):
        name = target(path)
        planned.append(("SET", name, value(tree, name)))
    for path, _ in clauses.get("REMOVE", []):
        planned.append(("REMOVE", target(path), None))
    for clause in ("ADD", "DELETE"):
        for path, tree in clauses.get(clause, []):
            planned.append((clause, target(path), exprs.values[tree[1]]))
    if read & written:
        raise _Unsupported("an action reads what another writes")   # moto applies in order
    for action, name, val in planned:
        current = new.get(name)
        if action == "SET":
            new[name] = val
        elif action == "REMOVE":
            new.pop(name, None)
        elif action == "ADD":
            (kind, v), = val.items()
            if kind == "N" and (current is None or "N" in current):
                # moto adds to "0" when the attribute is missing, with DynamoType.__add__
                new[name] = {"N": _arith(current["N"] if current else "0", v, 1)}
            elif current is None and kind in ("SS", "NS"):
                new[name] = val
            elif kind in ("SS", "NS") and kind in current:
                # moto keeps a set's order as a Python set gives it; DynamoDB promises none.
                merged = list(current[kind]) + [e for e in v if e not in current[kind]]
                new[name] = {kind: merged}
            else:
                raise _Unsupported("ADD types")
        else:
            (kind, v), = val.items()
            if kind not in ("SS", "NS"):
                raise _Unsupported("DELETE types")
            if current is None:
                continue
            if kind not in current:
                raise _Unsupported("DELETE types")
            left = [e for e in current[kind] if e not in v]
            if left:
                new[name] = {kind: left}
            else:
                new.pop(name)
    return new, table.check_written(key, new, written, old)


def _prepare_update(table: _Table, body: dict[str, Any]) -> tuple[Any, dict[str, Any], _Expressions, bool]:
    key = table.key_of(body.get("Key") or {}, exact=True)
    exprs = _Expressions(body, update=body.get("UpdateExpression"), condition=body.get("ConditionExpression"))
    return key, body["Key"], exprs, _on_failure(body)


def _update_item(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    _only(body, _COMMON | {"Key", "UpdateExpression", "ConditionExpression", "ReturnValues",
                           "ReturnValuesOnConditionCheckFailure"})
    table = _table(tables, body)
    returns = body.get("ReturnValues", "NONE")
    if returns not in ("NONE", "ALL_OLD", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"):
        raise _Unsupported("ReturnValues")
    key, key_attrs, exprs, all_old = _prepare_update(table, body)
    old = table.get(key)
    _check_condition(exprs, old, all_old)
    new, size = _updated(table, exprs, key, key_attrs, old)
    table.put(key, new, size)
    # What moto answers, including its ConsumedCapacity on every UpdateItem.
    result: dict[str, Any] = {"ConsumedCapacity": {"TableName": table.name, "CapacityUnits": 0.5}}
    before = old or {}
    if returns == "ALL_NEW":
        result["Attributes"] = new
    elif returns == "ALL_OLD" and before:
        result["Attributes"] = before
    elif returns == "UPDATED_OLD":
        changed = {k for k in set(before) | set(new) if before.get(k) != new.get(k)}
        updated = {k: v for k, v in before.items() if k in changed}
        if updated:
            result["Attributes"] = updated
    elif returns == "UPDATED_NEW":
        result["Attributes"] = _updated_new(before, new)
    return result


def _updated_new(original: Any, changed: Any) -> Any:
    """moto's DynamoHandler._build_updated_new_attributes, on the same typed JSON."""
    if type(changed) is not type(original):
        return changed
    if isinstance(changed, dict):
        return {k: _updated_new(original.get(k, None), changed[k]) for k in changed
                if k not in original or changed[k] != original[k]}
    if isinstance(changed, list):
        if len(changed) != len(original):
            return changed
        return changed if any(changed[i] != original[i] for i in range(len(changed))) else original
    return changed


def _query(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    _only(body, _COMMON | {"KeyConditionExpression", "IndexName", "ScanIndexForward", "Limit", "ExclusiveStartKey",
                           "ConsistentRead", "FilterExpression", "ProjectionExpression", "Select"})
    table = _table(tables, body)
    select = body.get("Select")
    if select not in (None, "ALL_ATTRIBUTES", "COUNT") or (select and "ProjectionExpression" in body):
        raise _Unsupported("Select")
    limit = body.get("Limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _Unsupported("Limit")
    forward = body.get("ScanIndexForward", True)
    consistent = body.get("ConsistentRead", False)
    if not isinstance(forward, bool) or not isinstance(consistent, bool):
        raise _Unsupported("flags")
    exprs = _Expressions(body, key=body.get("KeyConditionExpression"), filter=body.get("FilterExpression"),
                         projection=body.get("ProjectionExpression"))
    projected = _projection(exprs)
    index = body.get("IndexName")
    if index is not None:
        if index not in table.indexes or consistent:
            raise _Unsupported("index")
        hash_attr, range_attr = table.indexes[index]
    else:
        hash_attr, range_attr = table.hash_attr, table.range_attr
    hash_value, range_cond = _key_condition(exprs, body["KeyConditionExpression"], hash_attr, range_attr,
                                            table.types)

    if index is None:
        part = table.partitions.get(hash_value[table.types[hash_attr]] if table.types[hash_attr] == "S"
                                    else Decimal(hash_value["N"]), {})
        candidates = list(part.values())
        sort_attrs = [table.range_attr] if table.range_attr else []
    else:
        # moto compares index keys by type and value ("1.0" and "1" are one number)
        wanted = (next(iter(hash_value)), _sort_key(hash_value))
        candidates = [i for i in table.all_items() if range_attr in i and hash_attr in i
                      and (next(iter(i[hash_attr])), _sort_key(i[hash_attr])) == wanted]
        sort_attrs = [range_attr, table.hash_attr] + ([table.range_attr] if table.range_attr else [])
    if sort_attrs:
        candidates.sort(key=lambda i: tuple(_sort_key(i[a]) for a in sort_attrs))
    if not forward:
        candidates.reverse()
    key_attrs = [table.hash_attr] + ([table.range_attr] if table.range_attr else [])
    if index is not None:
        key_attrs += [a for a in (hash_attr, range_attr) if a not in key_attrs]
    start = body.get("ExclusiveStartKey")
    if start is not None:
        if not isinstance(start, dict) or set(start) != set(key_attrs):
            raise _Unsupported("ExclusiveStartKey")
        for name in key_attrs:
            if list(start[name]) != [table.types[name]]:
                raise _Unsupported("ExclusiveStartKey type")
            _check_value(start[name])
        order = [hash_attr] + sort_attrs if index is not None else key_attrs
        mark = tuple(_sort_key(start[a]) for a in order)
        candidates = [i for i in candidates
                      if (tuple(_sort_key(i[a]) for a in order) > mark) == forward
                      and tuple(_sort_key(i[a]) for a in order) != mark]

    return _page(candidates, limit=limit, key_attrs=key_attrs, size_of=_item_size,
                 keep=lambda i: range_cond is None or (range_attr in i and _sort_matches(range_cond, i[range_attr])),
                 exprs=exprs, projected=projected, select=select)


def _page(candidates: list[dict[str, Any]], *, limit: Any, key_attrs: list[str], size_of: Any, keep: Any,
          exprs: _Expressions, projected: Any, select: Any) -> dict[str, Any]:
    """One page of a Query or Scan, as moto cuts it: up to ``limit`` kept items or 1 MB, the
    filter applied to the page afterwards, the projection to what is returned."""
    results: list[dict[str, Any]] = []
    size = scanned = 0
    last_key = None
    for item in candidates:
        item_bytes = size_of(item)
        if len(results) == limit or size + item_bytes > _PAGE_BYTES:
            last_key = {a: results[-1][a] for a in key_attrs}
            break
        if keep(item):
            results.append(item)
            size += item_bytes
            scanned += 1
    filter_tree = exprs.trees.get("filter")
    if filter_tree is not None:
        results = [i for i in results if exprs.test(filter_tree, i)]
    out: dict[str, Any] = {"Count": len(results), "ScannedCount": scanned}
    if select != "COUNT":
        out["Items"] = [_project(projected, i) for i in results]
    if last_key is not None:
        out["LastEvaluatedKey"] = last_key
    return out


# The shapes of KeyConditionExpression answered here: the partition key first, as boto3's
# Key(...) conditions write them. moto reads key conditions with its own character-by-character
# parser, which reads other shapes its own way; those go to it.
_NAME = r"(?:#\w+|[A-Za-z_]\w*)"
_KEY_SHAPE = re.compile(
    rf"{_NAME} = :\w+(?: AND (?:{_NAME} (?:=|<|<=|>|>=) :\w+|begins_with\({_NAME}, :\w+\)"
    rf"|{_NAME} BETWEEN :\w+ AND :\w+))?", re.IGNORECASE)


def _scan(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    """moto's Scan of a whole table: items by (partition, sort) key, a page cut as a Query's,
    the filter applied to the page afterwards."""
    _only(body, _COMMON | {"Limit", "ExclusiveStartKey", "ConsistentRead", "FilterExpression",
                           "ProjectionExpression", "Select"})
    table = _table(tables, body)
    select = body.get("Select")
    if select not in (None, "ALL_ATTRIBUTES", "COUNT") or (select and "ProjectionExpression" in body):
        raise _Unsupported("Select")
    limit = body.get("Limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise _Unsupported("Limit")
    if not isinstance(body.get("ConsistentRead", False), bool):
        raise _Unsupported("ConsistentRead")
    exprs = _Expressions(body, filter=body.get("FilterExpression"), projection=body.get("ProjectionExpression"))
    projected = _projection(exprs)
    key_attrs = [table.hash_attr] + ([table.range_attr] if table.range_attr else [])
    candidates = sorted(table.all_items(), key=lambda i: tuple(_sort_key(i[a]) for a in key_attrs))
    start = body.get("ExclusiveStartKey")
    if start is not None:
        if not isinstance(start, dict) or set(start) != set(key_attrs):
            raise _Unsupported("ExclusiveStartKey")
        for name in key_attrs:
            if list(start[name]) != [table.types[name]]:
                raise _Unsupported("ExclusiveStartKey type")
            _check_value(start[name])
        mark = tuple(_sort_key(start[a]) for a in key_attrs)
        candidates = [i for i in candidates if tuple(_sort_key(i[a]) for a in key_attrs) > mark]
    return _page(candidates, limit=limit, key_attrs=key_attrs,
                 size_of=lambda i: table.sizes[table.key_of(i, exact=False)], keep=lambda i: True,
                 exprs=exprs, projected=projected, select=select)


def _key_condition(exprs: _Expressions, text: str, hash_attr: str, range_attr: str | None,
                   types: dict[str, str]) -> tuple[dict[str, Any], tuple[Any, ...] | None]:
    """The partition value and a test on the sort key, from ``hash = :v [AND sort-condition]``."""
    bare = text.strip()
    if bare.startswith("(") and bare.endswith(")"):
        bare = bare[1:-1]
    if not _KEY_SHAPE.fullmatch(bare):
        raise _Unsupported("key condition shape")
    tree = exprs.trees["key"]
    while tree[0] == "paren":
        tree = tree[1]
    parts = [tree[1], tree[2]] if tree[0] == "and" else [tree]
    if len(parts) == 2 and (parts[0][0] == "and" or parts[1][0] == "and"):
        raise _Unsupported("key condition shape")
    hash_value = None
    range_cond: tuple[Any, ...] | None = None

    def attr_of(op: tuple[Any, ...]) -> str:
        if op[0] != "path" or len(op[1]) != 1:
            raise _Unsupported("key condition operand")
        return exprs.top(op[1][0])

    def value_of(op: tuple[Any, ...], attr: str) -> dict[str, Any]:
        if op[0] != "value":
            raise _Unsupported("key condition value")
        value = exprs.values[op[1]]
        if list(value) != [types[attr]]:
            raise _Unsupported("key condition type")
        return value

    for part in parts:
        tag = part[0]
        if tag == "cmp" and part[1] == "=" and part[2][0] == "path" and attr_of(part[2]) == hash_attr:
            if hash_value is not None:
                raise _Unsupported("two hash conditions")
            hash_value = value_of(part[3], hash_attr)
            if hash_value[types[hash_attr]] == "":
                raise _Unsupported("empty key")
            continue
        if range_attr is None or range_cond is not None:
            raise _Unsupported("key condition")
        if tag == "cmp" and part[1] != "<>" and attr_of(part[2]) == range_attr:
            bound, op = value_of(part[3], range_attr), part[1]
            range_cond = (op, bound)
        elif tag == "between" and attr_of(part[1]) == range_attr:
            low, high = value_of(part[2], range_attr), value_of(part[3], range_attr)
            if _sort_key(low) > _sort_key(high):
                raise _Unsupported("BETWEEN bounds")   # DynamoDB refuses them
            range_cond = ("BETWEEN", low, high)
        elif tag == "fn" and part[1] == "begins_with" and attr_of(part[2]) == range_attr:
            if types[range_attr] != "S":
                raise _Unsupported("begins_with on a number")
            prefix = value_of(part[3], range_attr)["S"]
            range_cond = ("begins_with", prefix)
        else:
            raise _Unsupported("key condition")
    if hash_value is None:
        raise _Unsupported("no hash condition")
    return hash_value, range_cond


def _sort_matches(cond: tuple[Any, ...], value: dict[str, Any]) -> bool:
    if cond[0] == "begins_with":
        return "S" in value and value["S"].startswith(cond[1])
    if cond[0] == "BETWEEN":
        return _compare("<=", cond[1], value) and _compare("<=", value, cond[2])
    return _compare(cond[0], value, cond[1])


class _Cancelled(Exception):
    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("transaction cancelled")
        self.reasons = reasons

    def body(self) -> dict[str, Any]:
        message = ("Transaction cancelled, please refer cancellation reasons for specific reasons ["
                   + ", ".join(r["Code"] for r in self.reasons) + "]")
        return {"__type": _ERROR_PREFIX + "TransactionCanceledException", "CancellationReasons": self.reasons,
                "Message": message}


def _transact_write_items(tables: dict[str, _Table], body: dict[str, Any]) -> dict[str, Any]:
    _only(body, {"TransactItems", "ClientRequestToken", "ReturnConsumedCapacity", "ReturnItemCollectionMetrics"})
    entries = body["TransactItems"]
    if not isinstance(entries, list) or not 1 <= len(entries) <= 100:
        raise _Unsupported("TransactItems")
    # Check every entry before any is applied: a refusal leaves nothing half-written.
    plans: list[tuple[str, _Table, Any, dict[str, Any], _Expressions, bool]] = []
    seen: set[tuple[str, Any]] = set()
    for entry in entries:
        (kind, op), = entry.items()
        table = tables[op["TableName"]]
        common = _COMMON | {"TableName", "ConditionExpression", "ReturnValuesOnConditionCheckFailure"}
        if kind == "Put":
            allowed = common | {"Item"}
        elif kind == "Update":
            allowed = common | {"Key", "UpdateExpression"}
        elif kind in ("Delete", "ConditionCheck"):
            allowed = common | {"Key"}
        else:
            raise _Unsupported(kind)
        if set(op) - allowed or (kind == "ConditionCheck" and "ConditionExpression" not in op):
            raise _Unsupported("transaction entry")
        if kind == "Put":
            key, payload, exprs, all_old = _prepare_put(table, op)
        elif kind == "Update":
            key, payload, exprs, all_old = _prepare_update(table, op)
        else:
            key = table.key_of(op.get("Key") or {}, exact=True)
            payload, exprs, all_old = op["Key"], _Expressions(op, condition=op.get("ConditionExpression")), \
                _on_failure(op)
        if (table.name, key) in seen:
            raise _Unsupported("two operations on one item")
        seen.add((table.name, key))
        plans.append((kind, table, key, payload, exprs, all_old))
    reasons: list[dict[str, Any]] = []
    writes: list[tuple[_Table, Any, dict[str, Any] | None, int | None]] = []
    for kind, table, key, payload, exprs, all_old in plans:
        old = table.get(key)
        try:
            _check_condition(exprs, old, all_old)
        except _ConditionFailed as exc:
            reason: dict[str, Any] = {"Code": "ConditionalCheckFailed", "Message": _CONDITION_FAILED}
            if exc.item:
                reason["Item"] = exc.item
            reasons.append(reason)
            continue
        reasons.append({"Code": "None"})
        if kind == "Put":
            writes.append((table, key, payload, None))
        elif kind == "Update":
            writes.append((table, key, *_updated(table, exprs, key, payload, old)))
        elif kind == "Delete":
            writes.append((table, key, None, None))
    if any(r["Code"] != "None" for r in reasons):
        raise _Cancelled(reasons)
    for table, key, item, size in writes:
        if item is None:
            table.delete(key)
        else:
            table.put(key, item, size)
    return {"ConsumedCapacity": [], "ItemCollectionMetrics": {}}


_OPERATIONS: dict[str, Any] = {
    "PutItem": _put_item,
    "GetItem": _get_item,
    "UpdateItem": _update_item,
    "DeleteItem": _delete_item,
    "Query": _query,
    "Scan": _scan,
    "TransactWriteItems": _transact_write_items,
}
