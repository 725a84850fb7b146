"""The audit trail in its own append-only table (retained, never updated): the `AuditLog` port.

Keys: pk=<incident or subject> sk=<time>#<uuid> (two writers at the same instant never collide).

Read back by incident (a Query) or by time: there is no index by time, so `entries_since` is a Scan whose filter
only trims what comes back: it reads (and costs) the whole table, 0.5 read units per 4 KB, in pages of 1 MB, at
most `MAX_SCAN_PAGES` of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dcwatch.adapters.aws import aws_call
from dcwatch.adapters.dynamodb.status import active_site_item, condition_item_key, last_failover_item
from dcwatch.adapters.dynamodb.table import TRANSACTION_ITEMS, Table, from_item, to_item
from dcwatch.model import LastFailover
from dcwatch.ports import AuditEntry, AuditPage

MAX_SCAN_PAGES = 100  # 100 MB of audit records: years of a pair of sites (a record is 0.5 to 5 KB)


def _entry(item: dict[str, Any]) -> AuditEntry:
    data = from_item(item)
    at = datetime.fromisoformat(str(data["sk"]).split("#", 1)[0])
    return AuditEntry(str(data["pk"]), at, json.loads(data["record"]))


SCAN_PAGES = 50  # a Scan page is at most 1 MB: the bound holds whatever max_items says


class DynamoAuditLog(Table):
    def append_audit(self, incident_id: str, record: dict[str, object]) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(**self._audit_put(incident_id, record))

    def record_outcome(
        self,
        incident_id: str,
        record: dict[str, object],
        *,
        active_site: str | None = None,
        failover: LastFailover | None = None,
        fresh_conditions: Sequence[str] = (),
    ) -> None:
        items = [active_site_item(active_site, incident_id)] if active_site is not None else []
        if failover is not None:
            items.append(last_failover_item(failover))
        # A transaction holds 100 writes: the conditions beyond it are deleted right after (a crash between the
        # two leaves them to be judged again when their checks next change, as before).
        room = max(0, TRANSACTION_ITEMS - 1 - len(items))
        keys = [condition_item_key(key) for key in fresh_conditions]
        self._with_audit(items, (incident_id, record), deletes=keys[:room])
        if keys[room:]:
            self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys[room:]], "fresh conditions")

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        with aws_call("dynamodb:Query"):
            items = self._client().query(
                TableName=self.audit_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_item({":pk": incident_id}),
                ConsistentRead=True,
            )["Items"]
        return [json.loads(from_item(i)["record"]) for i in items]

    def entries(self, incident_id: str) -> list[AuditEntry]:
        with aws_call("dynamodb:Query"):
            pages = (
                self._client()
                .get_paginator("query")
                .paginate(
                    TableName=self.audit_table,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues=to_item({":pk": incident_id}),
                    ConsistentRead=True,
                )
            )
            return [_entry(item) for page in pages for item in page["Items"]]

    def entries_since(self, since: datetime | None, max_pages: int = MAX_SCAN_PAGES) -> AuditPage:
        """A Scan, eventually consistent (half the read units; a record written a second ago may be missing),
        filtered on the time that starts each sort key."""
        args: dict[str, Any] = {"TableName": self.audit_table}
        if since is not None:
            args["FilterExpression"] = "sk >= :since"
            args["ExpressionAttributeValues"] = to_item({":since": since.astimezone(UTC).isoformat()})
        found: list[AuditEntry] = []
        with aws_call("dynamodb:Scan"):
            for n, page in enumerate(self._client().get_paginator("scan").paginate(**args)):
                if n == max_pages:
                    return AuditPage(found, complete=False)
                found += [_entry(item) for item in page["Items"]]
        return AuditPage(found)

    def scan_audit(self, max_items: int) -> list[dict[str, Any]]:
        """Up to `max_items` records of the whole audit table, in no order: a bounded Scan (the table is keyed by
        incident; nothing indexes it by kind or time), for summaries such as the drill scorecard."""
        return [dict(entry.record) for entry in self.entries_since(None, max_pages=SCAN_PAGES).entries[:max_items]]
