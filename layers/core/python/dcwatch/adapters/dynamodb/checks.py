"""Check states, round marks and each site's generation in the state table: the `CheckStore` port.

Keys: pk=SITE#<site> sk=CHECK#<check>#<vantage>, sk=ROUND#<vantage> (the latest round judged), and sk=GEN (the
generation of the two: a warm evaluator reads one item to know its copy of them is current).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from dcwatch.adapters.aws import aws_call
from dcwatch.adapters.dynamodb.table import Table, from_item, to_item
from dcwatch.detection.health import refreshed
from dcwatch.events import ProbeResult
from dcwatch.model import CheckState, RoundMark

GENERATION = "GEN"  # sort key of a site's generation item, beside its CHECK# states and ROUND# marks


def _check_from(item: dict[str, Any]) -> CheckState:
    data = from_item(item)
    seen, since, known = data.get("lastObservedAt"), data.get("failingSince"), data.get("failureKnownAt")
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
        failure_known_at=datetime.fromisoformat(known) if known else None,
        vantage=data.get("vantage", ""),
        changes=tuple(datetime.fromisoformat(t) for t in data.get("changes", [])),
        flapping=bool(data.get("flapping", False)),
    )


def _check_item(state: CheckState) -> dict[str, Any]:
    return to_item(
        {
            "pk": f"SITE#{state.site}",
            "sk": f"CHECK#{state.check}#{state.vantage}",
            "site": state.site,
            "vantage": state.vantage,
            "changes": [t.isoformat() for t in state.changes] or None,
            "flapping": state.flapping,
            "check": state.check,
            "service": state.service,
            "critical": state.critical,
            "status": state.status,
            "failures": state.failures,
            "successes": state.successes,
            "lastObservedAt": state.last_observed_at.isoformat() if state.last_observed_at else None,
            "reason": state.reason,
            "failingSince": state.failing_since.isoformat() if state.failing_since else None,
            "failureKnownAt": state.failure_known_at.isoformat() if state.failure_known_at else None,
        }
    )


class DynamoCheckStore(Table):
    def get_check(self, site: str, check: str, vantage: str) -> CheckState | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(
                    TableName=self.table,
                    Key=to_item({"pk": f"SITE#{site}", "sk": f"CHECK#{check}#{vantage}"}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        return _check_from(item) if item else None

    def put_check(self, state: CheckState, expected_last_observed: object) -> bool:
        ddb = self._client()
        condition = "attribute_not_exists(pk)" if expected_last_observed is None else "lastObservedAt = :expected"
        values = {} if expected_last_observed is None else {":expected": {"S": expected_last_observed.isoformat()}}  # type: ignore[attr-defined]
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item=_check_item(state),
                    ConditionExpression=condition,
                    **({"ExpressionAttributeValues": values} if values else {}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def put_checks(self, states: list[CheckState]) -> None:
        """Many check states in BatchWriteItem calls of 25, unconditionally: the round evaluator is their one
        writer (its queue delivers one message group at a time). What DynamoDB leaves unprocessed is resent."""
        self._batch_write([{"PutRequest": {"Item": _check_item(state)}} for state in states], "check states unwritten")

    def delete_checks(self, states: list[CheckState]) -> None:
        """Delete check states the config no longer names (the round evaluator prunes them)."""
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in map(_check_item, states)]
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys], "check states undeleted")

    def site_snapshot(self, site: str) -> tuple[list[CheckState], dict[str, RoundMark]]:
        """The site's check states and its latest round marks, in one Query (paginated past 1 MB); steady
        checks dated by their vantage point's last whole round (`health.refreshed`)."""
        with aws_call("dynamodb:Query"):
            pages = (
                self._client()
                .get_paginator("query")
                .paginate(
                    TableName=self.table,
                    KeyConditionExpression="pk = :pk",
                    ExpressionAttributeValues=to_item({":pk": f"SITE#{site}"}),
                    ConsistentRead=True,
                )
            )
            items = [item for page in pages for item in page["Items"]]
        marks = {}
        for item in items:
            if item["sk"]["S"].startswith("ROUND#"):
                data = from_item(item)
                vantage = str(data["sk"]).removeprefix("ROUND#")
                seen = frozenset(int(n) for n in data.get("seen", set()))
                marks[vantage] = RoundMark(
                    vantage, datetime.fromisoformat(data["startedAt"]), int(data["chunks"]), seen
                )
        checks = [_check_from(i) for i in items if i["sk"]["S"].startswith("CHECK#")]
        return [refreshed(c, marks.get(c.vantage)) for c in checks], marks

    def generation(self, site: str) -> str | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(
                    TableName=self.table,
                    Key=to_item({"pk": f"SITE#{site}", "sk": GENERATION}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        return str(item["gen"]["S"]) if item else None

    def claim_generation(self, site: str, expected: str | None) -> str | None:
        """One conditional update: the new generation only where the item still holds `expected`."""
        new = uuid.uuid4().hex
        key = to_item({"pk": f"SITE#{site}", "sk": GENERATION})
        if expected is None:
            claimed = self._update_if(key, "SET gen = :new", "attribute_not_exists(pk)", to_item({":new": new}))
        else:
            values = to_item({":new": new, ":expected": expected})
            claimed = self._update_if(key, "SET gen = :new", "gen = :expected", values)
        return new if claimed else None

    def mark_round(self, site: str, vantage: str, started_at: datetime, chunk: int, chunks: int) -> bool:
        """Record a judged chunk; False when it was judged already (a newer round, or this chunk, is marked)."""
        key = to_item({"pk": f"SITE#{site}", "sk": f"ROUND#{vantage}"})
        at = started_at.isoformat()
        newer = to_item({":at": at, ":chunks": chunks, ":seen": {chunk}})
        if self._update_if(
            key,
            "SET startedAt = :at, chunks = :chunks, seen = :seen",
            "attribute_not_exists(pk) OR startedAt < :at",
            newer,
        ):
            return True
        same = to_item({":at": at, ":seen": {chunk}, ":chunk": chunk})
        return self._update_if(key, "ADD seen :seen", "startedAt = :at AND NOT contains(seen, :chunk)", same)

    def record_pass(self, result: ProbeResult) -> bool:
        """`health.is_steady` as a condition: one conditional update, no read."""
        ddb = self._client()
        try:
            with aws_call("dynamodb:UpdateItem"):
                ddb.update_item(
                    TableName=self.table,
                    Key=to_item({"pk": f"SITE#{result.site}", "sk": f"CHECK#{result.check}#{result.vantage}"}),
                    UpdateExpression="SET #at = :at, #critical = :critical ADD #successes :one",
                    ConditionExpression=(
                        "#status = :up AND #failures = :zero AND #flapping = :false AND #at < :at "
                        "AND attribute_not_exists(#changes) AND (attribute_not_exists(#reason) OR #reason = :empty)"
                    ),
                    ExpressionAttributeNames={
                        f"#{name}": name
                        for name in ("status", "failures", "flapping", "changes", "reason", "critical", "successes")
                    }
                    | {"#at": "lastObservedAt"},
                    ExpressionAttributeValues=to_item(
                        {
                            ":at": result.observed_at.isoformat(),
                            ":critical": result.critical,
                            ":one": 1,
                            ":up": "UP",
                            ":zero": 0,
                            ":false": False,
                            ":empty": "",
                        }
                    ),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def site_checks(self, site: str) -> list[CheckState]:
        return self.site_snapshot(site)[0]

    def sites(self) -> list[str]:
        """The sites the state table holds check states of: for a reader without the config. A Scan of the
        keys alone (it still reads every item: the table holds a few items per check and vantage point)."""
        with aws_call("dynamodb:Scan"):
            pages = (
                self._client()
                .get_paginator("scan")
                .paginate(
                    TableName=self.table,
                    ProjectionExpression="pk",
                    FilterExpression="begins_with(pk, :site)",
                    ExpressionAttributeValues=to_item({":site": "SITE#"}),
                )
            )
            return sorted({item["pk"]["S"].removeprefix("SITE#") for page in pages for item in page["Items"]})
