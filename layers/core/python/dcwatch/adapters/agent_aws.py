"""What a site agent does in AWS: its site's lease in the locks table, its reports on the bus, the
secrets it keeps in memory, each call bounded so that a renewal never hangs past its deadline.

Lease key: pk=site-lease#<site> in the locks table (IAM `dynamodb:LeadingKeys` pins an agent to it).
`expiresAt` is epoch seconds, rounded up (also the table's TTL attribute).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config as BotoConfig

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.adapters.dynamodb.table import from_item
from dcwatch.adapters.secrets import Credentials
from dcwatch.agent.report import SITE_AGENT_REPORT, SiteAgentReport, agent_source
from dcwatch.errors import DcwatchError, TransientError
from dcwatch.ports import SiteLease

SITE_LEASE_PREFIX = "site-lease#"
_ser = TypeSerializer()  # unlike `table.to_item`, the lease keeps None values as NULL


def site_lease_key(site: str) -> str:
    return f"{SITE_LEASE_PREFIX}{site}"


def bounded_client(service: str, timeout_s: float) -> Any:
    """A client whose call gives up within about 2 x 2 x timeout_s: connect and read bounded, one retry."""
    config = BotoConfig(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "max_attempts": 2},
        tcp_keepalive=True,
    )
    return boto3.client(service, config=config)  # type: ignore[call-overload]


class LeaseRefused(DcwatchError):
    """Another agent holds this site's lease and it has not expired."""

    def __init__(self, holder: SiteLease | None):
        self.holder = holder
        who = f"{holder.agent_id} until {holder.expires_at.isoformat()}" if holder else "(released meanwhile)"
        super().__init__(f"the site's lease is held by {who}")


class DynamoSiteLeases:
    """One site's lease: created, renewed or taken over (only once expired) by conditional writes."""

    def __init__(self, table_name: str, site: str, client: Any):
        self.table, self.site, self._client = table_name, site, client

    def renew(
        self, agent_id: str, ttl_s: float, now: datetime, *, sees_peer: bool, serving: bool, state: str
    ) -> SiteLease:
        expires = math.ceil(now.timestamp() + ttl_s)
        item = {
            "pk": site_lease_key(self.site),
            "site": self.site,
            "agentId": agent_id,
            "renewedAt": now.isoformat(),
            "expiresAt": expires,
            "seesPeer": sees_peer,
            "serving": serving,
            "state": state,
        }
        ddb = self._client
        try:
            with aws_call("dynamodb:PutItem"):
                ddb.put_item(
                    TableName=self.table,
                    Item={k: _ser.serialize(v) for k, v in item.items()},
                    ConditionExpression="attribute_not_exists(pk) OR (#site = :site AND "
                    "(agentId = :agent OR expiresAt < :now))",
                    ExpressionAttributeNames={"#site": "site"},
                    ExpressionAttributeValues={
                        ":site": {"S": self.site},
                        ":agent": {"S": agent_id},
                        ":now": {"N": str(math.floor(now.timestamp()))},
                    },
                )
        except ddb.exceptions.ConditionalCheckFailedException:
            raise LeaseRefused(self.read()) from None
        return SiteLease(self.site, agent_id, now, datetime.fromtimestamp(expires, UTC), sees_peer, serving, state)

    def read(self, site: str | None = None) -> SiteLease | None:
        return read_site_lease(self._client, self.table, site or self.site)


def read_site_lease(client: Any, table: str, site: str) -> SiteLease | None:
    with aws_call("dynamodb:GetItem"):
        item = client.get_item(TableName=table, Key={"pk": {"S": site_lease_key(site)}}, ConsistentRead=True).get(
            "Item"
        )
    if not item:
        return None
    data = from_item(item)
    return SiteLease(
        site=str(data["site"]),
        agent_id=str(data["agentId"]),
        renewed_at=datetime.fromisoformat(str(data["renewedAt"])),
        expires_at=datetime.fromtimestamp(int(data["expiresAt"]), UTC),
        sees_peer=bool(data.get("seesPeer", False)),
        serving=bool(data.get("serving", False)),
        state=str(data.get("state", "")),
    )


class SiteLeaseTable:
    """Every site agent's lease, read only: what the workflow's lease proof reads (a lazy default client)."""

    def __init__(self, table_name: str, client: Any | None = None):
        self.table = table_name
        self._client = LazyClient("dynamodb", client)

    def read(self, site: str) -> SiteLease | None:
        return read_site_lease(self._client(), self.table, site)


class AgentReportPublisher:
    """One PutEvents per report, no retry loop of its own: the next report follows within renew_s."""

    def __init__(self, bus_name: str, client: Any):
        self.bus_name, self._client = bus_name, client

    def publish(self, report: SiteAgentReport) -> None:
        entry = {
            "Source": agent_source(report.site),
            "DetailType": SITE_AGENT_REPORT,
            "Detail": report.model_dump_json(by_alias=True),
            "EventBusName": self.bus_name,
        }
        with aws_call("events:PutEvents"):
            answer = self._client.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            code = answer["Entries"][0].get("ErrorCode", "refused")
            raise TransientError(f"events:PutEvents refused the report: {code}")


class KeptSecrets:
    """Secrets read from Secrets Manager while AWS answers and kept in memory, so that an agent cut off
    from AWS can still authenticate its peer and log in to its vCenter. Nothing is written to disk."""

    def __init__(self, client: Any, clock: Callable[[], float], max_age_s: float = 300.0):
        self._client, self._clock, self._max_age_s = client, clock, max_age_s
        self._kept: dict[str, tuple[float, str]] = {}

    def get(self, secret_id: str) -> str:
        kept = self._kept.get(secret_id)
        if kept is not None and self._clock() - kept[0] < self._max_age_s:
            return kept[1]
        try:
            with aws_call("secretsmanager:GetSecretValue"):
                value = str(self._client.get_secret_value(SecretId=secret_id)["SecretString"])
        except Exception:
            if kept is not None:
                return kept[1]  # AWS is away: the last value read stays good
            raise
        self._kept[secret_id] = (self._clock(), value)
        return value


def credentials_from_text(text: str, where: str) -> Credentials:
    try:
        data = json.loads(text)
        return Credentials(str(data["username"]), str(data["password"]))
    except (ValueError, KeyError, TypeError):
        raise DcwatchError(f"{where} must be JSON with 'username' and 'password'") from None


def read_key_file(path: str) -> bytes:
    """The shared heartbeat key: the file's content, surrounding whitespace removed; at least 32 bytes."""
    try:
        key = Path(path).read_bytes().strip()
    except OSError as exc:
        raise DcwatchError(f"heartbeat key file {path}: {exc.strerror or exc}") from None
    if len(key) < 32:
        raise DcwatchError(f"heartbeat key file {path}: {len(key)} bytes, need at least 32 (e.g. openssl rand -hex 32)")
    return key
