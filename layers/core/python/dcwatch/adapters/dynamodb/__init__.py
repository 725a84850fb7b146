"""dcwatch state in DynamoDB, one module per port: check states (`checks`), conditions and the active site
(`status`), operators' controls (`controls`), the audit trail in its own append-only table (`audit`), agents'
reports (`agent_reports`), all on the state table's plumbing (`table`); the failover lock in the locks table
(`leases`). `DynamoStateStore` is all of the state table's ports in one.
"""

from dcwatch.adapters.dynamodb.leases import DynamoLeases
from dcwatch.adapters.dynamodb.store import DynamoStateStore

__all__ = ["DynamoLeases", "DynamoStateStore"]
