"""The state table's plumbing, shared by the adapters of its ports: items to and from DynamoDB's types,
consistent reads, conditional updates, batch writes, and the audited transaction (an audit record in the audit
table with the changes it records in the state table, both or neither)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import TransientError
from dcwatch.ports import Audited

_ser, _de = TypeSerializer(), TypeDeserializer()
BATCH_WRITE = 25  # BatchWriteItem's limit
TRANSACTION_ITEMS = 100  # TransactWriteItems' limit
BATCH_ATTEMPTS = 4


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Table:
    """The state table and the audit table through one client; each port's adapter adds its items."""

    def __init__(self, table_name: str, audit_table_name: str, client: Any | None = None):
        self.table = table_name
        self.audit_table = audit_table_name
        self._client = LazyClient("dynamodb", client)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(TableName=self.table, Key=to_item({"pk": pk, "sk": sk}), ConsistentRead=True)
                .get("Item")
            )
        return from_item(item) if item else None

    def _put(self, values: dict[str, Any], audit: Audited | None = None) -> None:
        """With `audit`, one transaction: an operator's change never lands without its audit record, nor the record
        without the change."""
        if audit is None:
            with aws_call("dynamodb:PutItem"):
                self._client().put_item(TableName=self.table, Item=to_item(values))
            return
        self._with_audit([to_item(values)], audit)

    def _with_audit(self, items: list[dict[str, Any]], audit: Audited, deletes: Sequence[dict[str, Any]] = ()) -> None:
        """One transaction: the audit record never lands without the changes it records, nor they without it.
        `items` are put, `deletes` (keys) deleted, in the state table."""
        writes = [{"Put": self._audit_put(*audit)}, *({"Put": {"TableName": self.table, "Item": i}} for i in items)]
        writes += [{"Delete": {"TableName": self.table, "Key": key}} for key in deletes]
        with aws_call("dynamodb:TransactWriteItems"):
            self._client().transact_write_items(TransactItems=writes)

    def _audit_put(self, incident_id: str, record: dict[str, object]) -> dict[str, Any]:
        sk = f"{datetime.now(UTC).isoformat()}#{uuid.uuid4().hex}"
        return {
            "TableName": self.audit_table,
            "Item": to_item({"pk": incident_id, "sk": sk, "record": json.dumps(record, default=str)}),
            "ConditionExpression": "attribute_not_exists(pk)",
        }

    def _update_if(self, key: dict[str, Any], update: str, condition: str, values: dict[str, Any]) -> bool:
        ddb = self._client()
        try:
            with aws_call("dynamodb:UpdateItem"):
                ddb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _batch_write(self, requests: list[dict[str, Any]], left: str) -> None:
        for n in range(0, len(requests), BATCH_WRITE):
            pending = {self.table: requests[n : n + BATCH_WRITE]}
            for attempt in range(BATCH_ATTEMPTS):
                with aws_call("dynamodb:BatchWriteItem"):
                    pending = self._client().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            if pending:
                raise TransientError(f"dynamodb:BatchWriteItem left {len(pending[self.table])} {left}")
