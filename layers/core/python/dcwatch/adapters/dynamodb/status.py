"""Conditions, the active site and the last failover in the state table: the `StatusStore` port.

Keys: pk=CONDITION#<key> sk=CONDITION (site, service, vantage point); pk=CONTROL sk=ACTIVE_SITE, sk=LAST_FAILOVER.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dcwatch.adapters.aws import aws_call
from dcwatch.adapters.dynamodb.table import Table, parse_time, to_item
from dcwatch.model import HeldBack, LastFailover, StoredStatus

CONDITION_SK = "CONDITION"


def condition_pk(key: str) -> str:
    return f"CONDITION#{key}"


def condition_item_key(key: str) -> dict[str, Any]:
    """A condition's key as DynamoDB takes it (typed), for a transaction's Delete."""
    return to_item({"pk": condition_pk(key), "sk": CONDITION_SK})


def active_site_item(site: str, incident_id: str) -> dict[str, Any]:
    changed = datetime.now(UTC).isoformat()
    return to_item(
        {"pk": "CONTROL", "sk": "ACTIVE_SITE", "site": site, "incidentId": incident_id, "changedAt": changed}
    )


def last_failover_item(failover: LastFailover) -> dict[str, Any]:
    return to_item(
        {"pk": "CONTROL", "sk": "LAST_FAILOVER", "incidentId": failover.incident, "at": failover.at.isoformat()}
    )


class DynamoStatusStore(Table):
    def condition(self, key: str, default: str) -> StoredStatus:
        data = self._get(condition_pk(key), CONDITION_SK)
        if data is None:
            return StoredStatus(default)
        return StoredStatus(
            status=str(data["status"]),
            since=parse_time(data.get("since")),
            incident_id=data.get("incidentId"),
            blocked=HeldBack.parse(data["blocked"]) if data.get("blocked") else None,
            alerted=bool(data.get("alerted", False)),
            version=int(data.get("version", 0)),
        )

    def site_status(self, site: str) -> str:
        return self.condition(f"site/{site}", "UP").status

    def change_condition(self, key: str, previous: StoredStatus, new: StoredStatus) -> bool:
        ddb = self._client()
        item = {
            "pk": condition_pk(key),
            "sk": CONDITION_SK,
            "status": new.status,
            "since": new.since.isoformat() if new.since else None,
            "incidentId": new.incident_id,
            "blocked": new.blocked.text if new.blocked else None,
            "alerted": new.alerted,
            "version": new.version,
            "changedAt": datetime.now(UTC).isoformat(),
        }
        condition = "attribute_not_exists(pk)" if previous.version == 0 else "version = :previous"
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item=to_item(item),
                    ConditionExpression=condition,
                    **(
                        {"ExpressionAttributeValues": to_item({":previous": previous.version})}
                        if previous.version
                        else {}
                    ),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def active_site(self, default: str) -> str:
        data = self._get("CONTROL", "ACTIVE_SITE")
        return str(data["site"]) if data else default

    def set_active_site(self, site: str, incident_id: str) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(TableName=self.table, Item=active_site_item(site, incident_id))

    def last_failover(self) -> LastFailover | None:
        data = self._get("CONTROL", "LAST_FAILOVER")
        return LastFailover(data["incidentId"], datetime.fromisoformat(data["at"])) if data else None

    def record_failover(self, failover: LastFailover) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(TableName=self.table, Item=last_failover_item(failover))
