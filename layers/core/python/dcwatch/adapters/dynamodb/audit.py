"""The audit trail in its own append-only table (retained, never updated): the `AuditLog` port.

Keys: pk=<incident or subject> sk=<time>#<uuid> (two writers at the same instant never collide).
"""

from __future__ import annotations

import json
from typing import Any

from dcwatch.adapters.aws import aws_call
from dcwatch.adapters.dynamodb.status import active_site_item, last_failover_item
from dcwatch.adapters.dynamodb.table import Table, from_item, to_item
from dcwatch.model import LastFailover


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
    ) -> None:
        items = [active_site_item(active_site, incident_id)] if active_site is not None else []
        if failover is not None:
            items.append(last_failover_item(failover))
        self._with_audit(items, (incident_id, record))

    def records(self, max_pages: int = 100) -> list[dict[str, Any]]:
        """Every record of the table (a Scan, at most `max_pages` pages of 1 MB): the audit is small, kept for
        reading back (`dcwatch drill --schedule-status`)."""
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        for _ in range(max_pages):
            with aws_call("dynamodb:Scan"):
                page = self._client().scan(
                    TableName=self.audit_table, ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {})
                )
            found += [json.loads(from_item(i)["record"]) for i in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return found

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        with aws_call("dynamodb:Query"):
            items = self._client().query(
                TableName=self.audit_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=to_item({":pk": incident_id}),
                ConsistentRead=True,
            )["Items"]
        return [json.loads(from_item(i)["record"]) for i in items]
