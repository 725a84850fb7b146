"""moto's server, with DynamoDB's conditional writes made atomic and its queries read from one partition, as
they are in DynamoDB.

moto checks a write's condition and then applies it without a lock, so two threads of its server can
both pass `attribute_not_exists(pk)` and both take the failover lock (seen under load: two holders of
eight contenders). Every lease here is a conditional write, so the local runtime runs moto through this
module: `python -m dcwatch.local.moto_server -H 127.0.0.1 -p PORT`, the same arguments as moto's own.

moto's Query sorts every item of the table to pick one partition's (moto 5.2: `Table.all_items`), so a
Query costs the whole table; and moto 5.2 serializes a read's answer through its generic, model-driven
serializer, about 2 ms per item here: 7 s for one site's 3,000 check states at 1,000 checks from 3 vantage
points, which the evaluator reads once per batch. Here a Query on the table's own key reads its partition
alone, and a read's answer (Query, Scan, GetItem, BatchGetItem) is written as the JSON moto already holds;
the answers are the same (a test compares them). `bench.evaluation` runs its moto with the same fixes, for
both designs.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import moto.server
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import dynamo_json_dump
from moto.dynamodb.responses import DynamoHandler, DynamoResult
from moto.server import main

# One lock for every table: writes are short, and a transaction may span tables.
_WRITES = threading.RLock()
WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def _atomic(write: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(write)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _WRITES:
            return write(*args, **kwargs)

    return locked


def make_writes_atomic() -> None:
    """Idempotent: a write already wrapped is left as it is."""
    for name in WRITES:
        write = getattr(DynamoDBBackend, name)
        if not getattr(write, "dcwatch_atomic", False):
            locked = _atomic(write)
            locked.dcwatch_atomic = True  # type: ignore[attr-defined]
            setattr(DynamoDBBackend, name, locked)


_QUERYING = threading.local()  # the partition this thread's Query reads, while it runs
INDEX_NAME_ARG = 6  # Table.query(hash_key, range_comparison, range_objs, limit, start, forward, projection, index_name


def _partition_query(query: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(query)
    def partitioned(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index = kwargs.get("index_name", args[INDEX_NAME_ARG] if len(args) > INDEX_NAME_ARG else None)
        if index is not None or not self.range_key_attr:
            return query(self, hash_key, *args, **kwargs)
        _QUERYING.hash_key = hash_key
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            _QUERYING.hash_key = None

    return partitioned


def _partition_items(all_items: Callable[[Table], list[Any]]) -> Callable[[Table], list[Any]]:
    @functools.wraps(all_items)
    def items(self: Table) -> list[Any]:
        key = getattr(_QUERYING, "hash_key", None)
        if key is None:
            return all_items(self)
        partition = self.items.get(key, {})
        return sorted(partition.values(), key=lambda item: item.range_key)

    return items


READS = frozenset({"Query", "Scan", "GetItem", "BatchGetItem"})
JSON_1_0 = "application/x-amz-json-1.0"


def _plain_reads(serialized: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(serialized)
    def plain(self: DynamoHandler, action_result: Any) -> Any:
        if not (isinstance(action_result, DynamoResult) and isinstance(action_result.result, dict)):
            return serialized(self, action_result)
        if self._get_action() not in READS:
            return serialized(self, action_result)
        headers = {"Content-Type": JSON_1_0, **self.response_headers, "status": 200}
        return 200, headers, dynamo_json_dump(action_result.result)

    return plain


def make_reads_fast() -> None:
    """Idempotent: a Query on a table's own hash key reads that partition's items only, and a read's answer is
    written as plain JSON."""
    if getattr(Table.query, "dcwatch_partitioned", False):
        return
    query, all_items = _partition_query(Table.query), _partition_items(Table.all_items)
    query.dcwatch_partitioned = True  # type: ignore[attr-defined]
    Table.query, Table.all_items = query, all_items  # type: ignore[method-assign,assignment]
    DynamoHandler.serialized = _plain_reads(DynamoHandler.serialized)  # type: ignore[method-assign]


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """moto's own handler exits on SIGINT too; Ctrl-C reaches the terminal's whole process group, and the runtime
    stops its moto itself (SIGTERM), after the parts that still talk to it."""
    if signum == signal.SIGTERM:
        sys.exit(0)


if __name__ == "__main__":
    moto.server.signal_handler = _stop_on_sigterm  # moto's main installs it for SIGINT and SIGTERM
    make_writes_atomic()
    make_reads_fast()
    main()
