"""The latest report of each site's agent, in the state table: the `AgentReportStore` port.

Keys: pk=AGENT#<site> sk=REPORT.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dcwatch.adapters.aws import aws_call
from dcwatch.adapters.dynamodb.table import Table, to_item
from dcwatch.agent.report import SiteAgentReport


class DynamoAgentReports(Table):
    def agent_report(self, site: str) -> SiteAgentReport | None:
        data = self._get(f"AGENT#{site}", "REPORT")
        return SiteAgentReport.model_validate_json(data["report"]) if data else None

    def put_agent_report(self, report: SiteAgentReport) -> bool:
        """Conditional on the send time (epoch ms), so a report delivered late never replaces a newer one."""
        ddb = self._client()
        sent_ms = round(report.sent_at.timestamp() * 1000)
        item = {
            "pk": f"AGENT#{report.site}",
            "sk": "REPORT",
            "sentAtMs": sent_ms,
            "report": report.model_dump_json(by_alias=True),
            "storedAt": datetime.now(UTC).isoformat(),
        }
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(pk) OR sentAtMs < :sent",
                    ExpressionAttributeValues=to_item({":sent": sent_ms}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True
