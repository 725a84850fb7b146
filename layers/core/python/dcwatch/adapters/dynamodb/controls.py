"""What operators set by hand, in the state table: the `Controls` port, each change with its audit record.

Keys: pk=CONTROL sk=AUTOMATION, sk=MAINTENANCE#<site>#<service|*>#<start>; pk=ACK#<incident> sk=ACK.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dcwatch.adapters.aws import aws_call
from dcwatch.adapters.dynamodb.table import Table, from_item, parse_time, to_item
from dcwatch.config import MaintenanceWindow
from dcwatch.model import AutomationSwitch
from dcwatch.ports import Audited


class DynamoControls(Table):
    def automation(self) -> AutomationSwitch:
        data = self._get("CONTROL", "AUTOMATION")
        if data is None:
            return AutomationSwitch()
        return AutomationSwitch(
            enabled=bool(data["enabled"]),
            reason=data.get("reason", ""),
            changed_by=data.get("changedBy", ""),
            changed_at=parse_time(data.get("changedAt")),
        )

    def set_automation(self, switch: AutomationSwitch, audit: Audited | None = None) -> None:
        self._put(
            {
                "pk": "CONTROL",
                "sk": "AUTOMATION",
                "enabled": switch.enabled,
                "reason": switch.reason,
                "changedBy": switch.changed_by,
                "changedAt": switch.changed_at.isoformat() if switch.changed_at else None,
            },
            audit,
        )

    def maintenance_windows(self) -> list[MaintenanceWindow]:
        with aws_call("dynamodb:Query"):
            items = self._client().query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues=to_item({":pk": "CONTROL", ":prefix": "MAINTENANCE#"}),
                ConsistentRead=True,
            )["Items"]
        fields = ("site", "service", "start", "end", "reason")
        return [MaintenanceWindow.model_validate({k: from_item(i).get(k) for k in fields}) for i in items]

    def open_maintenance(self, window: MaintenanceWindow, audit: Audited | None = None) -> None:
        """Kept a day past its end for the record; DynamoDB's TTL removes it after that."""
        what = window.service or "*"
        self._put(
            {
                "pk": "CONTROL",
                "sk": f"MAINTENANCE#{window.site}#{what}#{window.start.isoformat()}",
                "site": window.site,
                "service": window.service,
                "start": window.start.isoformat(),
                "end": window.end.isoformat(),
                "reason": window.reason,
                "expiresAt": int(window.end.timestamp()) + 86400,
            },
            audit,
        )

    def acknowledged(self, incident_id: str) -> bool:
        return self._get(f"ACK#{incident_id}", "ACK") is not None

    def acknowledge(self, incident_id: str, by: str, reason: str, audit: Audited | None = None) -> None:
        at = datetime.now(UTC).isoformat()
        self._put({"pk": f"ACK#{incident_id}", "sk": "ACK", "by": by, "reason": reason, "at": at}, audit)
