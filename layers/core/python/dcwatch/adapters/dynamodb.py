"""dcwatch state in DynamoDB: check states, conditions and controls in the state table, the audit
trail in its own append-only table (retained, never updated), the failover lock in the locks table.

State keys: pk=SITE#<site> sk=CHECK#<check>#<vantage>, sk=ROUND#<vantage> (the latest round judged), and
sk=GEN (the generation of the two: a warm evaluator reads one item to know its copy of them is current);
pk=CONDITION#<key> sk=CONDITION (site, service, vantage point);
pk=CONTROL with sk=ACTIVE_SITE, AUTOMATION, LAST_FAILOVER or MAINTENANCE#<site>#<service|*>#<start>;
pk=ACK#<incident> sk=ACK; pk=AGENT#<site> sk=REPORT (the latest report of the site's agent).
Audit keys: pk=<incident or subject> sk=<time>#<uuid> (two writers at the same instant never collide).
Lock key: pk=failover.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.agent.report import SiteAgentReport
from dcwatch.config import MaintenanceWindow
from dcwatch.detection.decision import AutomationSwitch, LastFailover
from dcwatch.detection.health import CheckState, RoundMark, refreshed
from dcwatch.detection.holds import HeldBack
from dcwatch.errors import TransientError
from dcwatch.events import ProbeResult
from dcwatch.ports import Audited, Condition, Lease

_ser, _de = TypeSerializer(), TypeDeserializer()
BATCH_WRITE = 25  # BatchWriteItem's limit
BATCH_ATTEMPTS = 4
GENERATION = "GEN"  # sort key of a site's generation item, beside its CHECK# states and ROUND# marks


def _item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in values.items() if v is not None}


def _active_site_item(site: str, incident_id: str) -> dict[str, Any]:
    changed = datetime.now(UTC).isoformat()
    return _item({"pk": "CONTROL", "sk": "ACTIVE_SITE", "site": site, "incidentId": incident_id, "changedAt": changed})


def _last_failover_item(failover: LastFailover) -> dict[str, Any]:
    return _item(
        {"pk": "CONTROL", "sk": "LAST_FAILOVER", "incidentId": failover.incident, "at": failover.at.isoformat()}
    )


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def _check_from(item: dict[str, Any]) -> CheckState:
    data = _plain(item)
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
    return _item(
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


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class DynamoStateStore:
    def __init__(self, table_name: str, audit_table_name: str, client: Any | None = None):
        self.table = table_name
        self.audit_table = audit_table_name
        self._client = LazyClient("dynamodb", client)

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(TableName=self.table, Key=_item({"pk": pk, "sk": sk}), ConsistentRead=True)
                .get("Item")
            )
        return _plain(item) if item else None

    def _put(self, values: dict[str, Any], audit: Audited | None = None) -> None:
        """With `audit`, one transaction: an operator's change never lands without its audit record, nor the record
        without the change."""
        if audit is None:
            with aws_call("dynamodb:PutItem"):
                self._client().put_item(TableName=self.table, Item=_item(values))
            return
        self._with_audit([_item(values)], audit)

    def _with_audit(self, items: list[dict[str, Any]], audit: Audited) -> None:
        """One transaction: the audit record never lands without the changes it records, nor they without it."""
        puts = [{"Put": self._audit_put(*audit)}, *({"Put": {"TableName": self.table, "Item": i}} for i in items)]
        with aws_call("dynamodb:TransactWriteItems"):
            self._client().transact_write_items(TransactItems=puts)

    def get_check(self, site: str, check: str, vantage: str) -> CheckState | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(
                    TableName=self.table,
                    Key=_item({"pk": f"SITE#{site}", "sk": f"CHECK#{check}#{vantage}"}),
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
        self._batch_write([{"PutRequest": {"Item": _check_item(state)}} for state in states], "unwritten")

    def delete_checks(self, states: list[CheckState]) -> None:
        """Delete check states the config no longer names (the round evaluator prunes them)."""
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in map(_check_item, states)]
        self._batch_write([{"DeleteRequest": {"Key": key}} for key in keys], "undeleted")

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
                raise TransientError(f"dynamodb:BatchWriteItem left {len(pending[self.table])} check states {left}")

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
                    ExpressionAttributeValues=_item({":pk": f"SITE#{site}"}),
                    ConsistentRead=True,
                )
            )
            items = [item for page in pages for item in page["Items"]]
        marks = {}
        for item in items:
            if item["sk"]["S"].startswith("ROUND#"):
                data = _plain(item)
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
                    Key=_item({"pk": f"SITE#{site}", "sk": GENERATION}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        return str(item["gen"]["S"]) if item else None

    def claim_generation(self, site: str, expected: str | None) -> str | None:
        """One conditional update: the new generation only where the item still holds `expected`."""
        new = uuid.uuid4().hex
        key = _item({"pk": f"SITE#{site}", "sk": GENERATION})
        if expected is None:
            claimed = self._update_if(key, "SET gen = :new", "attribute_not_exists(pk)", _item({":new": new}))
        else:
            values = _item({":new": new, ":expected": expected})
            claimed = self._update_if(key, "SET gen = :new", "gen = :expected", values)
        return new if claimed else None

    def mark_round(self, site: str, vantage: str, started_at: datetime, chunk: int, chunks: int) -> bool:
        """Record a judged chunk; False when it was judged already (a newer round, or this chunk, is marked)."""
        key = _item({"pk": f"SITE#{site}", "sk": f"ROUND#{vantage}"})
        at = started_at.isoformat()
        newer = _item({":at": at, ":chunks": chunks, ":seen": {chunk}})
        if self._update_if(
            key,
            "SET startedAt = :at, chunks = :chunks, seen = :seen",
            "attribute_not_exists(pk) OR startedAt < :at",
            newer,
        ):
            return True
        same = _item({":at": at, ":seen": {chunk}, ":chunk": chunk})
        return self._update_if(key, "ADD seen :seen", "startedAt = :at AND NOT contains(seen, :chunk)", same)

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

    def record_pass(self, result: ProbeResult) -> bool:
        """`health.is_steady` as a condition: one conditional update, no read."""
        ddb = self._client()
        try:
            with aws_call("dynamodb:UpdateItem"):
                ddb.update_item(
                    TableName=self.table,
                    Key=_item({"pk": f"SITE#{result.site}", "sk": f"CHECK#{result.check}#{result.vantage}"}),
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
                    ExpressionAttributeValues=_item(
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

    def condition(self, key: str, default: str) -> Condition:
        data = self._get(f"CONDITION#{key}", "CONDITION")
        if data is None:
            return Condition(default)
        return Condition(
            status=str(data["status"]),
            since=_time(data.get("since")),
            incident_id=data.get("incidentId"),
            blocked=HeldBack.parse(data["blocked"]) if data.get("blocked") else None,
            alerted=bool(data.get("alerted", False)),
            version=int(data.get("version", 0)),
        )

    def site_status(self, site: str) -> str:
        return self.condition(f"site/{site}", "UP").status

    def change_condition(self, key: str, previous: Condition, new: Condition) -> bool:
        ddb = self._client()
        item = {
            "pk": f"CONDITION#{key}",
            "sk": "CONDITION",
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
                    Item=_item(item),
                    ConditionExpression=condition,
                    **(
                        {"ExpressionAttributeValues": _item({":previous": previous.version})}
                        if previous.version
                        else {}
                    ),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def automation(self) -> AutomationSwitch:
        data = self._get("CONTROL", "AUTOMATION")
        if data is None:
            return AutomationSwitch()
        return AutomationSwitch(
            enabled=bool(data["enabled"]),
            reason=data.get("reason", ""),
            changed_by=data.get("changedBy", ""),
            changed_at=_time(data.get("changedAt")),
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
                ExpressionAttributeValues=_item({":pk": "CONTROL", ":prefix": "MAINTENANCE#"}),
                ConsistentRead=True,
            )["Items"]
        fields = ("site", "service", "start", "end", "reason")
        return [MaintenanceWindow.model_validate({k: _plain(i).get(k) for k in fields}) for i in items]

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

    def last_failover(self) -> LastFailover | None:
        data = self._get("CONTROL", "LAST_FAILOVER")
        return LastFailover(data["incidentId"], datetime.fromisoformat(data["at"])) if data else None

    def record_failover(self, failover: LastFailover) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(TableName=self.table, Item=_last_failover_item(failover))

    def acknowledged(self, incident_id: str) -> bool:
        return self._get(f"ACK#{incident_id}", "ACK") is not None

    def acknowledge(self, incident_id: str, by: str, reason: str, audit: Audited | None = None) -> None:
        at = datetime.now(UTC).isoformat()
        self._put({"pk": f"ACK#{incident_id}", "sk": "ACK", "by": by, "reason": reason, "at": at}, audit)

    def active_site(self, default: str) -> str:
        data = self._get("CONTROL", "ACTIVE_SITE")
        return str(data["site"]) if data else default

    def set_active_site(self, site: str, incident_id: str) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(TableName=self.table, Item=_active_site_item(site, incident_id))

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
                    Item=_item(item),
                    ConditionExpression="attribute_not_exists(pk) OR sentAtMs < :sent",
                    ExpressionAttributeValues=_item({":sent": sent_ms}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def append_audit(self, incident_id: str, record: dict[str, object]) -> None:
        with aws_call("dynamodb:PutItem"):
            self._client().put_item(**self._audit_put(incident_id, record))

    def _audit_put(self, incident_id: str, record: dict[str, object]) -> dict[str, Any]:
        sk = f"{datetime.now(UTC).isoformat()}#{uuid.uuid4().hex}"
        return {
            "TableName": self.audit_table,
            "Item": _item({"pk": incident_id, "sk": sk, "record": json.dumps(record, default=str)}),
            "ConditionExpression": "attribute_not_exists(pk)",
        }

    def record_outcome(
        self,
        incident_id: str,
        record: dict[str, object],
        *,
        active_site: str | None = None,
        failover: LastFailover | None = None,
    ) -> None:
        items = [_active_site_item(active_site, incident_id)] if active_site is not None else []
        if failover is not None:
            items.append(_last_failover_item(failover))
        self._with_audit(items, (incident_id, record))

    def audit(self, incident_id: str) -> list[dict[str, Any]]:
        with aws_call("dynamodb:Query"):
            items = self._client().query(
                TableName=self.audit_table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=_item({":pk": incident_id}),
                ConsistentRead=True,
            )["Items"]
        return [json.loads(_plain(i)["record"]) for i in items]


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
                    Item=_item(item | ({"leaving": leaving} if leaving else {})),
                    ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now OR #owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=_item({":now": int(now.timestamp()), ":owner": owner}),
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
                    Key=_item({"pk": self.name}),
                    UpdateExpression="SET expiresAt = :expires",
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=_item({":expires": int(now.timestamp()) + ttl_s, ":owner": owner}),
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
                    Key=_item({"pk": self.name}),
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=_item({":owner": owner}),
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def holder(self) -> Lease | None:
        with aws_call("dynamodb:GetItem"):
            item = (
                self._client()
                .get_item(TableName=self.table, Key=_item({"pk": self.name}), ConsistentRead=True)
                .get("Item")
            )
        if not item:
            return None
        data = _plain(item)
        leaving = str(data["leaving"]) if data.get("leaving") else None
        return Lease(str(data["owner"]), datetime.fromtimestamp(int(data["expiresAt"]), UTC), leaving)
