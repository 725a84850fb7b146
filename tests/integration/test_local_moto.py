"""The local runtime's moto keeps DynamoDB's promise that a conditional write is atomic: of many threads
racing for the failover lock, exactly one wins. moto alone does not keep it, which is why
`dcwatch.local.moto_server` exists; the first test fails the day moto does, and the wrapper can go."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as moto_table
from moto.dynamodb.responses import DynamoHandler

from dcwatch.adapters.dynamodb import DynamoLeases
from dcwatch.local import moto_server
from dcwatch.local.cloud import create_tables
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
CONTENDERS = 8


@pytest.fixture
def slow_conditions(monkeypatch):
    """moto evaluates a condition between reading the item and writing it: a short sleep there widens the
    window that a thread switch under load opens, so the race shows on every run, not on one in many."""
    build = moto_table.get_filter_expression

    def slow(*args, **kwargs):
        time.sleep(0.02)
        return build(*args, **kwargs)

    monkeypatch.setattr(moto_table, "get_filter_expression", slow)
    moto_credentials(monkeypatch)
    with mock_aws():
        yield create_tables(boto3.client("dynamodb"), "race")["Locks"]


@pytest.fixture
def atomic_writes(monkeypatch):
    """`make_writes_atomic` for this test only (monkeypatch puts moto's own writes back afterwards)."""
    for name in moto_server.WRITES:
        monkeypatch.setattr(DynamoDBBackend, name, getattr(DynamoDBBackend, name))
    moto_server.make_writes_atomic()


def race_for_the_lock(table: str) -> list[str]:
    """Every contender acquires at once, each with its own client; the owners that believed they won."""
    start = threading.Barrier(CONTENDERS)
    winners: list[str] = []

    def contend(n: int) -> None:
        leases, owner = DynamoLeases(table, boto3.client("dynamodb")), f"execution-{n}"
        start.wait(timeout=10)
        if leases.acquire(owner, 60, T0).owner == owner:
            winners.append(owner)

    threads = [threading.Thread(target=contend, args=(n,)) for n in range(CONTENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return winners


def test_moto_alone_lets_racing_conditional_writes_both_win(slow_conditions):
    assert len(race_for_the_lock(slow_conditions)) > 1


def test_the_local_runtimes_moto_lets_exactly_one_of_racing_acquirers_take_the_lock(slow_conditions, atomic_writes):
    winners = race_for_the_lock(slow_conditions)
    holder = DynamoLeases(slow_conditions).holder()
    assert holder is not None and winners == [holder.owner]


RICH = {
    "pk": {"S": "A"},
    "sk": {"S": "ROUND#v"},
    "n": {"N": "1.5"},
    "ns": {"NS": ["0", "1"]},
    "ss": {"SS": ["x", "y"]},
    "b": {"B": b"\x00\xff"},
    "flag": {"BOOL": True},
    "none": {"NULL": True},
    "list": {"L": [{"S": "a"}, {"N": "2"}]},
    "map": {"M": {"k": {"S": "v"}}},
}


def read_every_way(ddb, table: str) -> list:
    """A partition whole, in pages, backwards, by sort-key prefix, another partition, a scan, a get and a batch
    get: what each answered."""
    answers: list = []
    for extra in (
        {},
        {"Limit": 3},
        {"ScanIndexForward": False},
    ):
        pages = ddb.get_paginator("query").paginate(
            TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "A"}}, **extra
        )
        answers.append([i["sk"]["S"] for page in pages for i in page["Items"]])
    prefix = ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :p)",
        ExpressionAttributeValues={":pk": {"S": "A"}, ":p": {"S": "CHECK#"}},
    )
    answers.append([i["sk"]["S"] for i in prefix["Items"]])
    other = ddb.query(TableName=table, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "B"}})
    answers.append([i["sk"]["S"] for i in other["Items"]])
    answers.append(ddb.scan(TableName=table)["Items"])
    answers.append(ddb.get_item(TableName=table, Key={"pk": RICH["pk"], "sk": RICH["sk"]})["Item"])
    answers.append(ddb.get_item(TableName=table, Key={"pk": {"S": "none"}, "sk": {"S": "none"}}).get("Item"))
    batch = ddb.batch_get_item(RequestItems={table: {"Keys": [{"pk": RICH["pk"], "sk": RICH["sk"]}]}})
    answers.append(batch["Responses"][table])
    return answers


def test_the_local_runtimes_moto_answers_reads_exactly_as_moto_does(monkeypatch):
    # Given a table with two partitions, filled in no particular order
    moto_credentials(monkeypatch)
    with mock_aws():
        ddb = boto3.client("dynamodb")
        table = create_tables(ddb, "query")["State"]
        for n in (7, 2, 9, 0, 5, 1, 8):
            for pk in ("A", "B"):
                ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": f"CHECK#{n}"}})
        ddb.put_item(TableName=table, Item=RICH)
        # When the same reads run on moto's own Query and serializer, and on the local runtime's
        by_moto = read_every_way(ddb, table)
        monkeypatch.setattr(moto_table.Table, "query", moto_table.Table.query)
        monkeypatch.setattr(moto_table.Table, "all_items", moto_table.Table.all_items)
        monkeypatch.setattr(DynamoHandler, "serialized", DynamoHandler.serialized)
        moto_server.make_reads_fast()
        fast = read_every_way(ddb, table)
    # Then they answer alike, every type of attribute included
    assert fast == by_moto
    assert by_moto[-3] == RICH
    assert by_moto[0] == [f"CHECK#{n}" for n in (0, 1, 2, 5, 7, 8, 9)] + ["ROUND#v"]
    assert by_moto[4] == [f"CHECK#{n}" for n in (0, 1, 2, 5, 7, 8, 9)]
