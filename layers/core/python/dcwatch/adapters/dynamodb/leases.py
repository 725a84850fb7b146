"""The failover lock in the locks table: the `Leases` port.

Key: pk=failover.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.adapters.dynamodb.table import from_item, to_item
from dcwatch.ports import Lease

LOCK = "failover"


class DynamoLeases:
    """The single failover lock as a lease in the locks table: conditional writes decide who holds it.

    `expiresAt` is epoch seconds, also the table's TTL attribute (DynamoDB deletes long-expired leases);
    an expired lease may be taken over at once, whether or not DynamoDB has deleted it yet.
    """

    def __init__(self, table_name: str, client: Any | None = None, name: str = LOCK):
        self.table, self.name = table_name, name
        self._client = LazyClient("dynamodb", client)

    def acquire(self, owner: str, ttl_s: int, now: datetime, leaving: str | None = None) -> Lease:
        ddb = self._client()
        expires = int(now.timestamp()) + ttl_s
        item = {"pk": self.name, "owner": owner, "expiresAt": expires, "acquiredAt": now.isoformat()}
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item=to_item(item | ({"leaving": leaving} if leaving else {})),
                    ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=to_item({":now": int(now.timestamp()), ":owner": owner}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            held = self.holder()
            # Released between our write and our read: report it as just expired, the caller retries later.
            return held or Lease("(released meanwhile)", now)
        return Lease(owner, datetime.fromtimestamp(expires, UTC), leaving)

    def renew(self, owner: str, ttl_s: int, now: datetime) -> bool:
        ddb = self._client()
        try:
            with aws_call("dynamodb:UpdateItem"):
                ddb.update_item(
                    TableName=self.table,
                    Key=to_item({"pk": self.name}),
                    UpdateExpression="SET expiresAt = :expires",
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=to_item({":expires": int(now.timestamp()) + ttl_s, ":owner": owner}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release(self, owner: str) -> bool:
        ddb = self._client()
        try:
            with aws_call("dynamodb:DeleteItem"):
                ddb.delete_item(
                    TableName=self.table,
                    Key=to_item({"pk": self.name}),
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=to_item({":owner": owner}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def holder(self) -> Lease | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(TableName=self.table, Key=to_item({"pk": self.name}), ConsistentRead=True)
                .get("Item")
            )
        if not item:
            return None
        data = from_item(item)
        leaving = str(data["leaving"]) if data.get("leaving") else None
        return Lease(str(data["owner"]), datetime.fromtimestamp(int(data["expiresAt"]), UTC), leaving)
