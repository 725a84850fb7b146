"""The whole state table as one adapter: every port of it, for the callers that wire them all (the runtime)."""

from __future__ import annotations

from dcwatch.adapters.dynamodb.agent_reports import DynamoAgentReports
from dcwatch.adapters.dynamodb.audit import DynamoAuditLog
from dcwatch.adapters.dynamodb.checks import DynamoCheckStore
from dcwatch.adapters.dynamodb.controls import DynamoControls
from dcwatch.adapters.dynamodb.status import DynamoStatusStore


class DynamoStateStore(DynamoCheckStore, DynamoStatusStore, DynamoControls, DynamoAuditLog, DynamoAgentReports):
    """`ports.StateStore` over the state and audit tables: each port's adapter, on one client."""
