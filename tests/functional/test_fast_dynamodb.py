"""fast_dynamodb answers exactly as moto's DynamoDB does: random sequences of the operations and
expression shapes the stores use go to a moto table and a fast table, and every answer and error
must be equal. The fast table must still be held at the end: the fast path answered them all."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boternity.local import fast_dynamodb
from tests.support.ddb_pair import FAST, table_pair

PKS = ["RUN#r1", "RUN#r2", "CONC#w"]
SKS = ["RUN", "STEP#a", "STEP#a#i1", "STEP#a#i10", "STEP#b", "ATTEMPT#a#0", "SYNC#a", "é", "Z"]
STATUSES = ["RUNNING", "running", "completed", "failed", "PENDING", "QUEUED", ""]
NUMBERS = ["0", "1", "2", "-1", "1.5", "10", "0.25", "100"]
TAGS = ["t1", "t2", "t3"]


class Placeholders:
    """Names and values of one request, each placeholder used exactly once."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attr: str, alias: bool) -> str:
        # 'status' is a reserved word: always aliased, as the stores do
        if not alias and attr != "status":
            return attr
        key = f"#n{len(self.names)}"
        self.names[key] = attr
        return key

    def value(self, typed: dict[str, Any]) -> str:
        key = f":v{len(self.values)}"
        self.values[key] = typed
        return key

    def kwargs(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.names:
            out["ExpressionAttributeNames"] = self.names
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


keys = st.builds(lambda pk, sk: {"pk": {"S": pk}, "sk": {"S": sk}}, st.sampled_from(PKS), st.sampled_from(SKS))
numbers = st.sampled_from(NUMBERS).map(lambda n: {"N": n})
strings = st.sampled_from(STATUSES).map(lambda s: {"S": s})
tag_sets = st.lists(st.sampled_from(TAGS), min_size=1, max_size=3, unique=True).map(lambda v: {"SS": v})


@st.composite
def items(draw: Any) -> dict[str, Any]:
    item = dict(draw(keys))
    if draw(st.booleans()):
        item["status"] = draw(strings)
    if draw(st.booleans()):
        item["n"] = draw(numbers)
    if draw(st.booleans()):
        item["tags"] = draw(tag_sets)
    if draw(st.booleans()):
        item["flag"] = {"BOOL": draw(st.booleans())}
    if draw(st.booleans()):
        item["doc"] = {"M": {"a": draw(numbers), "l": {"L": [draw(strings)]}}}
    if draw(st.booleans()):
        item["gsi1pk"] = {"S": "WF#w"}
        item["gsi1sk"] = {"S": draw(st.sampled_from(["2026-01-01#a", "2026-01-02#b", "2026-01-01#c"]))}
    return item


@st.composite
def condition(draw: Any, ph: Placeholders, depth: int = 0) -> str:
    """A condition over the item's attributes, built the way the stores build theirs."""
    if depth < 2 and draw(st.integers(0, 2)) == 0:
        op = draw(st.sampled_from(["AND", "OR", "NOT"]))
        if op == "NOT":
            return f"NOT ({draw(condition(ph, depth + 1))})"
        return f"({draw(condition(ph, depth + 1))}) {op} ({draw(condition(ph, depth + 1))})"
    alias = draw(st.booleans())
    kind = draw(st.sampled_from(["exists", "not_exists", "eq", "ne", "in", "order", "between", "begins",
                                 "contains_set", "contains_str", "size", "type", "nested"]))
    if kind in ("exists", "not_exists"):
        attr = draw(st.sampled_from(["pk", "status", "n", "tags", "flag", "doc", "absent"]))
        return f"attribute_{kind}({ph.name(attr, alias)})"
    if kind in ("eq", "ne"):
        attr, value = draw(st.sampled_from([("status", strings), ("n", numbers), ("flag", st.booleans().map(
            lambda b: {"BOOL": b})), ("tags", tag_sets)]))
        return f"{ph.name(attr, alias)} {'=' if kind == 'eq' else '<>'} {ph.value(draw(value))}"
    if kind == "in":
        options = draw(st.lists(strings, min_size=1, max_size=3))
        return f"{ph.name('status', alias)} IN ({', '.join(ph.value(o) for o in options)})"
    if kind == "order":
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        attr, value = draw(st.sampled_from([("n", numbers), ("status", strings), ("sk", st.sampled_from(SKS).map(
            lambda s: {"S": s}))]))
        return f"{ph.name(attr, alias)} {op} {ph.value(draw(value))}"
    if kind == "between":
        # guarded: moto fails on BETWEEN over a missing attribute
        n = ph.name("n", alias)
        return f"attribute_exists({n}) AND {ph.name('n', True)} BETWEEN {ph.value(draw(numbers))} AND " \
               f"{ph.value(draw(numbers))}"
    if kind == "begins":
        attr = draw(st.sampled_from(["sk", "status", "n"]))
        return f"begins_with({ph.name(attr, alias)}, {ph.value({'S': draw(st.sampled_from(['STEP#', 'R', 'run', '']))})})"
    if kind == "contains_set":
        return f"contains({ph.name('tags', alias)}, {ph.value({'S': draw(st.sampled_from(TAGS))})})"
    if kind == "contains_str":
        return f"contains({ph.name('status', alias)}, {ph.value({'S': draw(st.sampled_from(['UN', 'ing', 'x']))})})"
    if kind == "size":
        t = ph.name("tags", alias)
        return f"attribute_exists({t}) AND size({ph.name('tags', True)}) > {ph.value({'N': draw(st.sampled_from(['0', '1', '2']))})}"
    if kind == "type":
        attr = draw(st.sampled_from(["n", "status", "tags", "absent"]))
        return f"attribute_type({ph.name(attr, alias)}, {ph.value({'S': draw(st.sampled_from(['N', 'S', 'SS']))})})"
    return f"{ph.name('doc', alias)}.a = {ph.value(draw(numbers))}"


@st.composite
def update_expression(draw: Any, ph: Placeholders) -> str:
    attrs = draw(st.lists(st.sampled_from(["status", "n", "tags", "flag", "lst", "extra", "gsi1pk"]),
                          min_size=1, max_size=4, unique=True))
    clauses: dict[str, list[str]] = {"SET": [], "REMOVE": [], "ADD": [], "DELETE": []}
    for attr in attrs:
        alias = draw(st.booleans())
        name = ph.name(attr, alias)
        if attr == "n":
            how = draw(st.sampled_from(["set", "inc", "dec", "add", "remove", "if_not_exists"]))
            if how == "set":
                clauses["SET"].append(f"{name} = {ph.value(draw(numbers))}")
            elif how in ("inc", "dec"):
                sign = "+" if how == "inc" else "-"
                clauses["SET"].append(f"{name} = if_not_exists({ph.name('n', alias)}, {ph.value({'N': '0'})}) "
                                      f"{sign} {ph.value(draw(numbers))}")
            elif how == "add":
                clauses["ADD"].append(f"{name} {ph.value(draw(numbers))}")
            elif how == "remove":
                clauses["REMOVE"].append(name)
            else:
                clauses["SET"].append(f"{name} = if_not_exists({ph.name('n', alias)}, {ph.value(draw(numbers))})")
        elif attr == "tags":
            how = draw(st.sampled_from(["ADD", "DELETE", "REMOVE"]))
            if how == "REMOVE":
                clauses["REMOVE"].append(name)
            else:
                clauses[how].append(f"{name} {ph.value(draw(tag_sets))}")
        elif attr == "lst":
            clauses["SET"].append(f"{name} = list_append(if_not_exists({ph.name('lst', alias)}, "
                                  f"{ph.value({'L': []})}), {ph.value({'L': [draw(strings)]})})")
        elif attr == "flag":
            clauses["SET"].append(f"{name} = {ph.value({'BOOL': draw(st.booleans())})}")
        elif attr == "gsi1pk":
            clauses["SET"].append(f"{name} = {ph.value({'S': 'WF#w'})}")
        elif draw(st.booleans()):
            clauses["REMOVE"].append(name)
        else:
            clauses["SET"].append(f"{name} = {ph.value(draw(strings))}")
    order = draw(st.permutations(["SET", "REMOVE", "ADD", "DELETE"]))
    keyword = draw(st.sampled_from([str.upper, str.lower]))
    return " ".join(f"{keyword(c)} {', '.join(clauses[c])}" for c in order if clauses[c])


@st.composite
def operations(draw: Any) -> tuple[str, dict[str, Any]]:
    op = draw(st.sampled_from(["put", "put", "update", "update", "update", "get", "delete", "query", "gsi",
                               "transact", "scan"]))
    ph = Placeholders()
    if op == "put":
        kwargs: dict[str, Any] = {"TableName": FAST, "Item": draw(items())}
        if draw(st.booleans()):
            kwargs["ConditionExpression"] = draw(condition(ph))
            kwargs["ReturnValuesOnConditionCheckFailure"] = draw(st.sampled_from(["ALL_OLD", "NONE"]))
        kwargs["ReturnValues"] = draw(st.sampled_from(["NONE", "ALL_OLD"]))
        return "put_item", {**kwargs, **ph.kwargs()}
    if op == "update":
        kwargs = {"TableName": FAST, "Key": draw(keys), "UpdateExpression": draw(update_expression(ph)),
                  "ReturnValues": draw(st.sampled_from(["NONE", "ALL_NEW", "ALL_OLD", "UPDATED_NEW",
                                                        "UPDATED_OLD"]))}
        if draw(st.booleans()):
            kwargs["ConditionExpression"] = draw(condition(ph))
            kwargs["ReturnValuesOnConditionCheckFailure"] = draw(st.sampled_from(["ALL_OLD", "NONE"]))
        return "update_item", {**kwargs, **ph.kwargs()}
    if op == "get":
        kwargs = {"TableName": FAST, "Key": draw(keys), "ConsistentRead": draw(st.booleans())}
        if draw(st.booleans()):
            attrs = draw(st.lists(st.sampled_from(["pk", "status", "n", "tags", "absent"]), min_size=1,
                                  max_size=3, unique=True))
            kwargs["ProjectionExpression"] = ", ".join(ph.name(a, draw(st.booleans())) for a in attrs)
        return "get_item", {**kwargs, **ph.kwargs()}
    if op == "delete":
        kwargs = {"TableName": FAST, "Key": draw(keys), "ReturnValues": draw(st.sampled_from(["NONE", "ALL_OLD"]))}
        if draw(st.booleans()):
            kwargs["ConditionExpression"] = draw(condition(ph))
        return "delete_item", {**kwargs, **ph.kwargs()}
    if op in ("query", "gsi"):
        if op == "query":
            kc = f"{ph.name('pk', draw(st.booleans()))} = {ph.value({'S': draw(st.sampled_from(PKS))})}"
            sort_attr, bounds = "sk", SKS + ["STEP#", "A", "Ω"]
            kwargs = {"TableName": FAST, "ConsistentRead": draw(st.booleans())}
        else:
            kc = f"{ph.name('gsi1pk', draw(st.booleans()))} = {ph.value({'S': 'WF#w'})}"
            sort_attr, bounds = "gsi1sk", ["2026-01-01", "2026-01-01#c", "2026-01-02#b", "2027"]
            kwargs = {"TableName": FAST, "IndexName": "gsi1"}
        how = draw(st.sampled_from(["none", "begins", "between", "<", "<=", ">", ">=", "="]))
        s = ph.name(sort_attr, draw(st.booleans())) if how != "none" else ""
        if how == "begins":
            kc += f" AND begins_with({s}, {ph.value({'S': draw(st.sampled_from(bounds))})})"
        elif how == "between":
            lo, hi = sorted(draw(st.lists(st.sampled_from(bounds), min_size=2, max_size=2)))
            kc += f" AND {s} BETWEEN {ph.value({'S': lo})} AND {ph.value({'S': hi})}"
        elif how != "none":
            kc += f" AND {s} {how} {ph.value({'S': draw(st.sampled_from(bounds))})}"
        kwargs.update(KeyConditionExpression=kc, ScanIndexForward=draw(st.booleans()))
        if draw(st.booleans()):
            kwargs["Limit"] = draw(st.integers(1, 4))
        if draw(st.integers(0, 3)) == 0:
            kwargs["FilterExpression"] = draw(condition(ph))
        if draw(st.integers(0, 4)) == 0:
            kwargs["Select"] = "COUNT"
        return "query", {**kwargs, **ph.kwargs()}
    if op == "scan":
        kwargs = {"TableName": FAST, "ConsistentRead": draw(st.booleans())}
        if draw(st.booleans()):
            kwargs["Limit"] = draw(st.integers(1, 5))
        if draw(st.integers(0, 2)) == 0:
            kwargs["FilterExpression"] = draw(condition(ph))
        if draw(st.integers(0, 4)) == 0:
            kwargs["Select"] = "COUNT"
        elif draw(st.integers(0, 3)) == 0:
            attrs = draw(st.lists(st.sampled_from(["pk", "sk", "status", "n"]), min_size=1, max_size=3, unique=True))
            kwargs["ProjectionExpression"] = ", ".join(ph.name(a, draw(st.booleans())) for a in attrs)
        return "scan", {**kwargs, **ph.kwargs()}
    entries = []
    for key in draw(st.lists(keys, min_size=1, max_size=3, unique_by=lambda k: (k["pk"]["S"], k["sk"]["S"]))):
        eph = Placeholders()
        kind = draw(st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]))
        entry: dict[str, Any] = {"TableName": FAST}
        if kind == "Put":
            entry["Item"] = {**draw(items()), **key}
        elif kind == "Update":
            entry.update(Key=key, UpdateExpression=draw(update_expression(eph)))
        else:
            entry["Key"] = key
        if kind == "ConditionCheck" or draw(st.booleans()):
            entry["ConditionExpression"] = draw(condition(eph))
            entry["ReturnValuesOnConditionCheckFailure"] = draw(st.sampled_from(["ALL_OLD", "NONE"]))
        entries.append({kind: {**entry, **eph.kwargs()}})
    return "transact_write_items", {"TransactItems": entries}


def _run(pair: Any, operation: str, kwargs: dict[str, Any]) -> None:
    status, answer = pair.call(operation, **kwargs)
    if operation in ("query", "scan") and status == "ok":
        pages = 0
        while "LastEvaluatedKey" in answer and pages < 10:   # every page of the listing, both sides
            kwargs = {**kwargs, "ExclusiveStartKey": answer["LastEvaluatedKey"]}
            status, answer = pair.call(operation, **kwargs)
            pages += 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations(), min_size=1, max_size=25))
def test_random_sequences_answer_as_moto_does(sequence: list[tuple[str, dict[str, Any]]]) -> None:
    with table_pair() as pair:
        for operation, kwargs in sequence:
            _run(pair, operation, kwargs)
        # Everything generated is within what the fast path implements: none of it went to moto.
        assert fast_dynamodb.held_tables() == [FAST], [h for h in fast_dynamodb.handovers() if h[1] != "disable()"]
        moto_items, fast_items = pair.scan_both()
        assert fast_items == moto_items


def numbered_table(name: str) -> dict[str, Any]:
    """A table keyed by a number alone, with an index sorted by a number (Powertools' default
    idempotency table has a partition key only)."""
    return {"TableName": name, "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "N"},
                                     {"AttributeName": "g", "AttributeType": "S"},
                                     {"AttributeName": "n", "AttributeType": "N"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{"IndexName": "by_n", "KeySchema": [
                {"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "n", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"}}]}


ids = st.sampled_from(["1", "1.0", "2", "10", "-3", "0.5"]).map(lambda n: {"N": n})


@st.composite
def numbered_operations(draw: Any) -> tuple[str, dict[str, Any]]:
    op = draw(st.sampled_from(["put", "update", "get", "delete", "query"]))
    if op == "put":
        item = {"id": draw(ids), "g": {"S": draw(st.sampled_from(["x", "y"]))}, "n": draw(numbers)}
        return "put_item", {"TableName": FAST, "Item": item, "ReturnValues": draw(st.sampled_from(["NONE", "ALL_OLD"]))}
    if op == "update":
        return "update_item", {"TableName": FAST, "Key": {"id": draw(ids)}, "UpdateExpression": "ADD n :d SET g = :g",
                               "ExpressionAttributeValues": {":d": draw(numbers), ":g": {"S": "x"}},
                               "ReturnValues": draw(st.sampled_from(["ALL_NEW", "UPDATED_OLD", "UPDATED_NEW"]))}
    if op == "get":
        return "get_item", {"TableName": FAST, "Key": {"id": draw(ids)}}
    if op == "delete":
        return "delete_item", {"TableName": FAST, "Key": {"id": draw(ids)}, "ReturnValues": "ALL_OLD"}
    how = draw(st.sampled_from(["", " AND n > :b", " AND n BETWEEN :b AND :c", " AND n <= :b"]))
    values: dict[str, Any] = {":g": {"S": draw(st.sampled_from(["x", "y"]))}}
    if ":b" in how:
        values[":b"] = draw(numbers)
    if ":c" in how:
        values[":c"] = {"N": "1000"}
    kwargs: dict[str, Any] = {"TableName": FAST, "IndexName": "by_n", "KeyConditionExpression": "g = :g" + how,
                              "ExpressionAttributeValues": values, "ScanIndexForward": draw(st.booleans())}
    if draw(st.booleans()):
        kwargs["Limit"] = draw(st.integers(1, 3))
    return "query", kwargs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(numbered_operations(), min_size=1, max_size=20))
def test_number_keys_and_a_partition_key_only_table_answer_as_moto_does(
        sequence: list[tuple[str, dict[str, Any]]]) -> None:
    with table_pair(numbered_table) as pair:
        for operation, kwargs in sequence:
            _run(pair, operation, kwargs)
        assert fast_dynamodb.held_tables() == [FAST], [h for h in fast_dynamodb.handovers() if h[1] != "disable()"]
        moto_items, fast_items = pair.scan_both()
        assert fast_items == moto_items


# ---------------------------------------------------------------------- what goes to moto


@pytest.mark.parametrize("operation, kwargs, outcome", [
    # an unused placeholder: moto's ValidationException, word for word
    ("update_item", {"Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}, "UpdateExpression": "SET x = :one",
                     "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}}}, "ValidationException"),
    # a reserved word used bare
    ("update_item", {"Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}, "UpdateExpression": "SET status = :s",
                     "ExpressionAttributeValues": {":s": {"S": "x"}}}, "ValidationException"),
    # a key with a wrong type, a missing key part, an extra attribute in the key
    ("get_item", {"Key": {"pk": {"N": "1"}, "sk": {"S": "b"}}}, "ok"),   # moto finds nothing; AWS refuses
    ("get_item", {"Key": {"pk": {"S": "a"}}}, "ValidationException"),
    ("get_item", {"Key": {"pk": {"S": "a"}, "sk": {"S": "b"}, "x": {"S": "c"}}}, "ValidationException"),
    # an empty key string, an index key of the wrong type
    ("put_item", {"Item": {"pk": {"S": ""}, "sk": {"S": "c"}}}, "ValidationException"),
    ("put_item", {"Item": {"pk": {"S": "a"}, "sk": {"S": "c"}, "gsi1pk": {"N": "1"}}}, "ok"),   # moto accepts it
    # arithmetic on a missing attribute
    ("update_item", {"Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}, "UpdateExpression": "SET n = n + :one",
                     "ExpressionAttributeValues": {":one": {"N": "1"}}}, "ValidationException"),
    # a key attribute in an update
    ("update_item", {"Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}, "UpdateExpression": "SET sk = :s",
                     "ExpressionAttributeValues": {":s": {"S": "c"}}}, "ValidationException"),
    # a syntax error
    ("put_item", {"Item": {"pk": {"S": "a"}, "sk": {"S": "c"}}, "ConditionExpression": "attribute_exists(pk"},
     "exception"),   # moto raises a Python ValueError
    # two operations on one item in a transaction
    ("transact_write_items", {"TransactItems": [
        {"Put": {"TableName": FAST, "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}},
        {"Delete": {"TableName": FAST, "Key": {"pk": {"S": "a"}, "sk": {"S": "b"}}}}]}, "ValidationException"),
    # an unknown index, a Query without a partition condition
    ("query", {"IndexName": "nope", "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {
        ":p": {"S": "a"}}}, "ResourceNotFoundException"),
    ("query", {"KeyConditionExpression": "sk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}},
     "ValidationException"),
    # the sort key condition first: moto's own key condition parser reads it
    ("query", {"KeyConditionExpression": "begins_with(sk, :s) AND pk = :p",
               "ExpressionAttributeValues": {":p": {"S": "a"}, ":s": {"S": "b"}}}, "ok"),
    # redundant parentheses, a NULL bound in BETWEEN (refused even where never evaluated)
    ("put_item", {"Item": {"pk": {"S": "a"}, "sk": {"S": "c"}}, "ConditionExpression": "((attribute_not_exists(pk)))"},
     "ValidationException"),
    ("put_item", {"Item": {"pk": {"S": "a"}, "sk": {"S": "c"}},
                  "ConditionExpression": "attribute_not_exists(pk) OR n0 BETWEEN :a AND :b",
                  "ExpressionAttributeValues": {":a": {"NULL": True}, ":b": {"N": "1"}}}, "exception"),
])
def test_what_the_fast_path_does_not_answer_moto_does_with_the_same_data(operation: str, kwargs: dict[str, Any],
                                                                        outcome: str) -> None:
    with table_pair() as pair:
        seed = {"pk": {"S": "a"}, "sk": {"S": "b"}, "n0": {"N": "1"}}
        pair.call("put_item", TableName=FAST, Item=seed)
        status, answer = pair.call(operation, **({"TableName": FAST} | kwargs if operation != "transact_write_items"
                                                 else kwargs))
        assert (answer["Error"]["Code"] if status == "error" else status) == outcome
        assert fast_dynamodb.held_tables() == []   # handed over: moto answered, and holds the item
        assert pair.call("get_item", TableName=FAST, Key={"pk": {"S": "a"}, "sk": {"S": "b"}})[1]["Item"] == seed


def test_an_operation_it_does_not_implement_sees_every_item() -> None:
    with table_pair() as pair:
        for i in range(3):
            pair.call("put_item", TableName=FAST, Item={"pk": {"S": "a"}, "sk": {"S": str(i)}})
        keys = [{"pk": {"S": "a"}, "sk": {"S": str(i)}} for i in range(3)]
        answer = pair.client.batch_get_item(RequestItems={FAST: {"Keys": keys}})
        assert len(answer["Responses"][FAST]) == 3
        assert fast_dynamodb.handovers()[-1] == (FAST, "BatchGetItem is not answered here")


def test_describe_and_delete_table_count_the_items_held() -> None:
    with table_pair() as pair:
        # empty: moto's own answer is exact, and the table stays here
        assert pair.client.describe_table(TableName=FAST)["Table"]["ItemCount"] == 0
        assert fast_dynamodb.held_tables() == [FAST]
        pair.call("put_item", TableName=FAST, Item={"pk": {"S": "a"}, "sk": {"S": "b"}, "x": {"S": "y"}})
        described = pair.client.describe_table(TableName=FAST)["Table"]
        assert described["ItemCount"] == 1
        pair.client.delete_table(TableName=FAST)
        assert fast_dynamodb.held_tables() == []
        with pytest.raises(pair.client.exceptions.ResourceNotFoundException):
            pair.client.get_item(TableName=FAST, Key={"pk": {"S": "a"}, "sk": {"S": "b"}})


def test_a_missing_table_is_moto_s_resource_not_found() -> None:
    with table_pair() as pair:
        status, answer = pair.call("get_item", TableName="nope", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})
        assert (status, answer["Error"]["Code"]) == ("error", "ResourceNotFoundException")
        assert fast_dynamodb.held_tables() == [FAST]


def test_clients_made_before_enable_reach_it() -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        early = boto3.client("dynamodb", region_name="us-east-1")
        fast_dynamodb.enable()
        try:
            from boternity.store.run_records import table_definition

            early.create_table(**table_definition("t"))
            early.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "b"}})
            assert fast_dynamodb.held_tables() == ["t"]
            late = boto3.resource("dynamodb", region_name="us-east-1").Table("t")
            assert late.get_item(Key={"pk": "a", "sk": "b"})["Item"] == {"pk": "a", "sk": "b"}
        finally:
            fast_dynamodb.disable()
        # handed to moto on disable: nothing lost
        assert early.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})["Item"]["pk"] == {"S": "a"}


def test_concurrent_writes_are_atomic_and_a_failed_transaction_undoes_nothing_else() -> None:
    """What moto_patches and cloud_patches add to moto (a lock, no whole-table rollback) holds
    here by construction: every UpdateItem from many threads counts, and a cancelled transaction
    leaves other threads' writes alone."""
    import threading

    with table_pair() as pair:
        key = {"pk": {"S": "CONC#w"}, "sk": {"S": "CONC"}}

        def bump() -> None:
            for _ in range(25):
                pair.client.update_item(TableName=FAST, Key=key, UpdateExpression="ADD running :one",
                                        ExpressionAttributeValues={":one": {"N": "1"}})
                with pytest.raises(pair.client.exceptions.TransactionCanceledException):
                    pair.client.transact_write_items(TransactItems=[{"ConditionCheck": {
                        "TableName": FAST, "Key": key, "ConditionExpression": "attribute_not_exists(pk)"}}])

        threads = [threading.Thread(target=bump) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        item = pair.client.get_item(TableName=FAST, Key=key, ConsistentRead=True)["Item"]
        assert item["running"] == {"N": "200"}
        assert fast_dynamodb.held_tables() == [FAST]
