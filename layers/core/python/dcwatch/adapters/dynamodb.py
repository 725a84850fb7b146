"""dcwatch state in DynamoDB: check and site state and the active site in the state table, the audit
trail in its own append-only table (retained, never updated).

State keys: pk=SITE#<site> with sk=CHECK#<check> or sk=STATUS; pk=CONTROL sk=ACTIVE_SITE.
Audit keys: pk=<incident> sk=<time>#<n>.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from itertools import count
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.health import CheckState

_ser, _de = TypeSerializer(), TypeDeserializer()
_sequence = count()


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _check_from(item: dict[str, Any]) -> CheckState:
    data = _plain(item)
    seen, since = data.get("lastObservedAt"), data.get("failingSince")
    return CheckState(
        site=data["site"],
        check=data["check"],
        service=data.get("service"),
        critical=bool(data.get("critical", True)),
        status=data.get("status", "UNKNOWN"),
        failures=int(data.get("failures", 0)),
        successes=int(data.get("successes", 0)),
        last_observed_at=datetime.fromisoformat(seen) if seen else None,
        reason=data.get("reason", ""),
        failing_since=datetime.fromisoformat(since) if since else None,
    )


class DynamoStateStore:
    def __init__(self, table_name: str, audit_table_name: str, client: Any | None = None):
        self.table = table_name
        self.audit_table = audit_table_name
        self._client = LazyClient("dynamodb", client)

    def get_check(self, site: str, check: str) -> CheckState | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(
                    TableName=self.table, Key=_item({"pk": f"SITE#{site}", "sk": f"CHECK#{check}"}), ConsistentRead=True
                )
                .get("Item")
            )
        return _check_from(item) if item else None

    def put_check(self, state: CheckState, expected_last_observed: object) -> bool:
        ddb = self._client()
        condition = "attribute_not_exists(pk)" if expected_last_observed is None else "lastObservedAt = :expected"
        values = {} if expected_last_observed is None else {":expected": {"S": expected_last_observed.isoformat()}}  # type: ignore[attr-defined]
        item = _item(
            {
                "pk": f"SITE#{state.site}",
                "sk": f"CHECK#{state.check}",
                "site": state.site,
                "check": state.check,
                "service": state.service,
                "critical": state.critical,
                "status": state.status,
                "failures": state.failures,
                "successes": state.successes,
                "lastObservedAt": state.last_observed_at.isoformat() if state.last_observed_at else None,
                "reason": state.reason,
                "failingSince": state.failing_since.isoformat() if state.failing_since else None,
            }
        )
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def site_checks(self, site: str) -> list[CheckState]:
        with aws_call("dynamodb:Query"):
            pages = (
                self._client()
                .get_paginator("query")
                .paginate(
                    TableName=self.table,
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                    ExpressionAttributeValues=_item({":pk": f"SITE#{site}", ":prefix": "CHECK#"}),
                    ConsistentRead=True,
                )
            )
            return [_check_from(item) for page in pages for item in page["Items"]]

    def site_status(self, site: str) -> str:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(TableName=self.table, Key=_item({"pk": f"SITE#{site}", "sk": "STATUS"}), ConsistentRead=True)
                .get("Item")
            )
        return str(_plain(item)["status"]) if item else "UP"

    def transition_site(self, site: str, previous: str, status: str, incident_id: str | None) -> bool:
        ddb = self._client()
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item=_item(
                        {
                            "pk": f"SITE#{site}",
                            "sk": "STATUS",
                            "status": status,
                            "incidentId": incident_id,
                            "changedAt": datetime.now(UTC).isoformat(),
                        }
                    ),
                    ConditionExpression="attribute_not_exists(pk) OR #s = :previous",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":previous": {"S": previous}},
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def active_site(self, default: str) -> str:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(TableName=self.table, Key=_item({"pk": "CONTROL", "sk": "ACTIVE_SITE"}), ConsistentRead=True)
                .get("Item")
            )
        return str(_plain(item)["site"]) if item else default

    def set_active_site(self, site: str, incident_id: str) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(
                TableName=self.table,
                Item=_item(
                    {
                        "pk": "CONTROL",
                        "sk": "ACTIVE_SITE",
                        "site": site,
                        "incidentId": incident_id,
                        "changedAt": datetime.now(UTC).isoformat(),
                    }
                ),
            )

    def append_audit(self, incident_id: str, record: dict[str, object]) -> None:
        sk = f"{datetime.now(UTC).isoformat()}#{next(_sequence):06d}"
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(
                TableName=self.audit_table,
                Item=_item({"pk": incident_id, "sk": sk, "record": json.dumps(record, default=str)}),
                ConditionExpression="attribute_not_exists(pk)",
            )

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        with aws_call("dynamodb:Query"):
            items = self._client().query(
                TableName=self.audit_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=_item({":pk": incident_id}),
                ConsistentRead=True,
            )["Items"]
        return [json.loads(_plain(i)["record"]) for i in items]
