"""moto's server, with DynamoDB's conditional writes made atomic as they are in DynamoDB.

moto checks a write's condition and then applies it without a lock, so two threads of its server can
both pass `attribute_not_exists(pk)` and both take the failover lock (seen under load: two holders of
eight contenders). Every lease here is a conditional write, so the local runtime runs moto through this
module: `python -m dcwatch.local.moto_server -H 127.0.0.1 -p PORT`, the same arguments as moto's own.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
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


if __name__ == "__main__":
    make_writes_atomic()
    main()
