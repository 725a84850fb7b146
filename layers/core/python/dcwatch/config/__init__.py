"""The one config file: sites, services, DNS records, recovery groups, thresholds, alerts.

Everything here is plain typed data. `load_config` turns a YAML file into a `Config` or raises
`ConfigError` listing every problem by its path in the file, so an operator can fix them all at once.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import urlparse

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dcwatch.config.conditions import parse_condition

if TYPE_CHECKING:
    from dcwatch.topology import Topology

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="lower-case, digits, '-'")]


# Every model of the core builds its validator when it first validates (`defer_build`), not at import: a cold
# start builds those of the config and of the event it parses, not all of them (`python -m bench.imports`).
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


M = TypeVar("M", bound=BaseModel)


def unbuilt_default(model: type[M]) -> M:
    """A model's default value, made without building its validator (every field of it has a valid default)."""
    return model.model_construct()


# Where an endpoint answers from: the internet, or only over the sites' VPN/Direct Connect (from the VPC).
Reach = Literal["public", "private"]
REACH_DESCRIPTION = (
    "public: answers on the internet; private: only over the VPN/Direct Connect into the site, "
    "so only code inside `network` reaches it"
)


CONFIG_FOLDER = "config_folder"  # validation context: the folder of the file being loaded


def _beside_config(value: str | None, info: ValidationInfo) -> str | None:
    """A relative path names a file beside the config file (wherever it is read from): the synth ships the
    files beside the config file with it, so a function reads them at the same relative place in Lambda."""
    folder = (info.context or {}).get(CONFIG_FOLDER)
    if value is None or folder is None or Path(value).is_absolute():
        return value
    return str(Path(folder) / value)


CaFile = Annotated[str | None, AfterValidator(_beside_config)]
CA_FILE_DESCRIPTION = (
    "extra CA bundle (PEM) to trust besides the system's, e.g. a private CA; a relative path is relative to the "
    "config file, and ships with it to Lambda"
)


def _http_url(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"expected an http(s) URL with a host, got {value!r}")
    return value


class VcenterProbe(_Model):
    """What the vCenter check proves besides a working login, all read in one session per round."""

    hosts: bool = Field(default=True, description="every host connected and not unexpectedly in maintenance")
    expected_maintenance: list[str] = Field(default=[], description="hosts allowed to be in maintenance mode")
    critical_vms: list[str] = Field(default=[], description="VMs that must run, with VMware Tools heartbeat green")
    datastore_min_free_pct: float = Field(default=10.0, ge=0, le=100, description="below this a datastore fails")
    alarms: bool = Field(default=True, description="report triggered vCenter alarms as warnings")


class VCenter(_Model):
    """How to reach a site's vCenter; the credentials stay in Secrets Manager."""

    url: str = Field(description="SDK endpoint, e.g. https://vcenter.dc-a.example/sdk")
    credentials_secret: str = Field(
        min_length=1,
        description="Secrets Manager secret id holding JSON {username, password}",
    )
    datacenter: str | None = Field(
        default=None,
        description="inventory path of the site's datacenter, e.g. DC-A; the vCenter check judges only it "
        "(the whole vCenter if unset)",
    )
    verify_tls: bool = True
    ca_file: CaFile = Field(default=None, description=CA_FILE_DESCRIPTION)
    timeout_s: float = Field(default=5.0, gt=0, le=60, description="login and inventory read, per round")
    probe: VcenterProbe = unbuilt_default(VcenterProbe)
    reach: Reach = Field(default="private", description=REACH_DESCRIPTION + " (a vCenter is private unless you say so)")

    _check_url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))


Severity = Literal["critical", "warning"]
VCENTER_PREFIX = "vcenter"


class _Check(_Model):
    name: Name
    timeout_s: float = Field(default=3.0, gt=0, le=30, description="the check fails with reason 'timeout' after this")
    severity: Severity = Field(default="critical", description="critical checks decide site and service status")
    reach: Reach | None = Field(
        default=None,
        description=REACH_DESCRIPTION + "; unset: private for a site's own checks (storage, gateways), "
        "public for a service's checks",
    )

    @property
    def critical(self) -> bool:
        return self.severity == "critical"


def _parse_condition(text: str) -> str:
    parse_condition(text)
    return text


# Validated one by one, so that an error names the entry: `...checks[0].conditions[1]`.
ConditionText = Annotated[str, AfterValidator(_parse_condition)]


HEADERS_SECRET_DESCRIPTION = (
    "Secrets Manager secret id holding a JSON object of header names to values (e.g. Authorization), sent with "
    "the request on top of `headers`: the token stays out of this file"
)


class HttpCheck(_Check):
    """A positive HTTP(S) check: the service proves it works by answering as expected."""

    kind: Literal["http"] = "http"
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    headers: dict[str, str] = Field(default={}, description="sent with the request; no tokens here: see headers_secret")
    headers_secret: str | None = Field(default=None, min_length=1, description=HEADERS_SECRET_DESCRIPTION)
    body: str | None = Field(default=None, description="request body (POST)")
    expect_status: list[int] = Field(default=[200], min_length=1)
    body_contains: str | None = None
    body_regex: str | None = None
    conditions: list[ConditionText] = Field(
        default=[], description="e.g. '[STATUS] == 200', '[BODY].status == UP', '[RESPONSE_TIME] < 500'"
    )
    verify_tls: bool = Field(default=True, description="refuse invalid certificates (on unless you say so)")
    ca_file: CaFile = Field(default=None, description=CA_FILE_DESCRIPTION)
    follow_redirects: bool = Field(default=False, description="off: a redirect is the answer that is checked")

    _check_url = field_validator("url")(classmethod(lambda cls, v: _http_url(v)))

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class TlsCheck(_Check):
    """The certificate a TLS endpoint presents: valid, and not about to expire."""

    kind: Literal["tls"]
    host: str
    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, description="SNI and name to verify (host if unset)")
    warn_days: int = Field(default=21, ge=0, description="fewer days left: a warning")
    critical_days: int = Field(default=7, ge=0, description="fewer days left: a failure")
    ca_file: CaFile = Field(default=None, description=CA_FILE_DESCRIPTION)


class TcpCheck(_Check):
    """Something accepts connections on host:port, and optionally greets with the expected banner."""

    kind: Literal["tcp"]
    host: str
    port: int = Field(ge=1, le=65535)
    banner: str | None = Field(default=None, description="regular expression the first line must match")


class DnsCheck(_Check):
    """A name resolves through the given resolver to the expected answers."""

    kind: Literal["dns"]
    query: str = Field(description="the name to resolve, e.g. shop.hosting.example.")
    resolver: str = Field(description="resolver address, 'ip' or 'ip:port'")
    record_type: Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS"] = "A"
    expect: list[str] = Field(default=[], description="answers that must all be present (any when empty)")


def _check_kind(value: Any) -> str:
    kind = value.get("kind", "http") if isinstance(value, dict) else getattr(value, "kind", "http")
    return str(kind)


AnyCheck = Annotated[
    Annotated[HttpCheck, Tag("http")]
    | Annotated[TlsCheck, Tag("tls")]
    | Annotated[TcpCheck, Tag("tcp")]
    | Annotated[DnsCheck, Tag("dns")],
    Discriminator(
        _check_kind, custom_error_type="check_kind", custom_error_message="kind must be http, tls, tcp or dns"
    ),
]


# The namespace of incidents started by hand (`dcwatch.recovery.request`); the evaluator's start with the site's name.
MANUAL_PREFIX = "manual-"


class Site(_Model):
    name: Name
    vcenter: VCenter
    checks: list[AnyCheck] = Field(default=[], description="site infrastructure: storage mirror, DNS, gateways")
    groups: list[PriorityGroup] = Field(default=[], description="timeouts and hooks of priority groups at this site")
    storage: Storage | None = Field(default=None, description="checked (and promoted) by a failover to this site")

    @field_validator("name")
    @classmethod
    def _not_manual(cls, name: str) -> str:
        if name.startswith(MANUAL_PREFIX):
            raise ValueError(
                f"a site's name may not start with {MANUAL_PREFIX!r}: its incidents would fall into the namespace of "
                "recoveries started by hand"
            )
        return name

    def priority_group(self, number: int) -> PriorityGroup:
        return next((g for g in self.groups if g.group == number), PriorityGroup(group=number))


class Hook(_Model):
    """A call around a power-on: an HTTP request or a Lambda function, bounded in time, with a declared
    behaviour when it fails (`stop` the workflow, or `continue` and report it)."""

    name: Name
    url: str | None = Field(default=None, description="HTTP hook: the URL called")
    method: Literal["GET", "POST", "PUT"] = "POST"
    expect_status: list[int] = Field(default=[200], min_length=1, description="HTTP hook: answers that count as done")
    headers_secret: str | None = Field(
        default=None, min_length=1, description="HTTP hook: its authentication; " + HEADERS_SECRET_DESCRIPTION
    )
    function: str | None = Field(
        default=None, min_length=1, description="Lambda hook: the function's name or ARN, invoked synchronously"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="the hook fails past this")
    on_failure: Literal["stop", "continue"] = Field(
        default="stop", description="stop: the workflow stops here for a human; continue: reported, workflow goes on"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Hook:
        if (self.url is None) == (self.function is None):
            raise ValueError("a hook has exactly one of url (HTTP) or function (Lambda)")
        if self.headers_secret is not None and self.url is None:
            raise ValueError("headers_secret: only an HTTP hook (url) sends headers; a Lambda hook is invoked by IAM")
        if self.url is not None:
            _http_url(self.url)
        return self


Readiness = Literal["guest", "power"]


class VmRef(_Model):
    name: str = Field(min_length=1)
    group: int = Field(default=1, ge=1, le=10, description="priority group; lower powers on first")
    after: list[str] = Field(
        default=[], description="VMs of the same group and site that must be up before this one powers on"
    )
    ready: Readiness = Field(
        default="guest",
        description="guest: up when VMware Tools' heartbeat is green or the guest reports an IP; "
        "power: up when powered on (appliances without VMware Tools)",
    )
    pre_power_on: list[Hook] = Field(default=[], description="run before this VM powers on")
    post_power_on: list[Hook] = Field(default=[], description="run once this VM is up")


class PriorityGroup(_Model):
    """Settings of one priority group at the site it powers on at."""

    group: int = Field(ge=1, le=10)
    timeout_s: int | None = Field(
        default=None, ge=1, description="deadline for the group to be up (workflow.group_timeout_s if unset)"
    )
    pre_power_on: list[Hook] = Field(default=[], description="run before the group's first VM powers on")
    post_power_on: list[Hook] = Field(default=[], description="run once the group is up and its checks pass")


class Storage(_Model):
    """The storage mirror of a site, as the failover to this site checks and promotes it."""

    check: Name = Field(description="the site check (sites[].checks, http) that reads this site's mirror status")
    max_lag_s: int = Field(ge=0, description="the allowed data-loss window: a larger replication lag refuses failover")
    lag: str = Field(
        default="[BODY].mirror.lag_seconds", description="where the mirror status answer says the lag in seconds"
    )
    promote_hook: Hook | None = Field(
        default=None, description="promotes this site's copy to read-write, after fencing, before group 1 powers on"
    )
    fenced_when: ConditionText | None = Field(
        default=None,
        description="a condition on this site's mirror check that holds when the OTHER site's volumes are "
        "offline or demoted, e.g. `[BODY].mirror.peer_state == offline`: a failover to this site takes it "
        "as the proof that the failed site cannot serve (its SAN's own quorum witness took them offline)",
    )

    @field_validator("lag")
    @classmethod
    def _lag_placeholder(cls, value: str) -> str:
        parse_condition(f"{value} <= 0")
        return value


class ServiceAtSite(_Model):
    dns_values: list[str] = Field(min_length=1, description="record values while this site serves")
    checks: list[AnyCheck] = Field(min_length=1)
    vms: list[VmRef] = Field(default=[])


SetIdentifier = Annotated[str, Field(min_length=1, max_length=128, description="Route 53 SetIdentifier")]


class WeightedSet(_Model):
    """One site's record set of a weighted record."""

    set_identifier: SetIdentifier
    weight: int = Field(default=100, ge=1, le=255, description="this site's weight while it serves; 0 while not")


class FailoverSets(_Model):
    """The set identifiers of a failover record's two record sets; the roles stay, the values move."""

    primary: SetIdentifier = Field(description="the PRIMARY record set: the site that serves")
    secondary: SetIdentifier = Field(description="the SECONDARY record set: the other site")


ROUTINGS = ("simple", "weighted", "failover")


class DnsRecord(_Model):
    zone: str = Field(description="hosted zone name, e.g. example.com.")
    name: str = Field(description="record name, e.g. shop.example.com.")
    type: Literal["A", "AAAA", "CNAME"] = "A"
    ttl: int = Field(default=60, ge=1, le=86400)
    routing: Literal["simple", "weighted", "failover"] = Field(
        default="simple", description="Route 53 routing policy of the record"
    )
    weighted: dict[str, WeightedSet] | None = Field(
        default=None, description="routing weighted: the record set of each site, by site name"
    )
    failover: FailoverSets | None = Field(default=None, description="routing failover: the two set identifiers")

    @field_validator("zone", "name")
    @classmethod
    def _fqdn(cls, value: str) -> str:
        return value if value.endswith(".") else value + "."

    @model_validator(mode="after")
    def _name_in_zone(self) -> DnsRecord:
        if not (self.name == self.zone or self.name.endswith("." + self.zone)):
            raise ValueError(f"record {self.name} is not inside zone {self.zone}")
        return self


class Service(_Model):
    name: Name
    dns: DnsRecord
    sites: dict[str, ServiceAtSite]


RULE_PATTERN = r"^(all|any|at_least [1-9][0-9]*)$"
DEFAULT_QUORUM = 2


class Thresholds(_Model):
    """How probe results become decisions; docs/decision.md explains each knob."""

    failures_to_down: int = Field(default=3, ge=1, description="consecutive failures before DOWN")
    successes_to_up: int = Field(default=2, ge=1, description="consecutive successes before UP")
    flap_changes: int = Field(
        default=4, ge=2, description="this many UP/DOWN changes of one check within flap_window_s: FLAPPING"
    )
    flap_window_s: int = Field(default=3600, ge=1, description="the window flap_changes are counted in")
    quorum: int | None = Field(
        default=None,
        ge=1,
        description=f"vantage points that must see a site DOWN before it is DOWN (default {DEFAULT_QUORUM}); "
        "at most the number of vantage points",
    )
    allow_single_vantage: bool = Field(
        default=False, description="accept quorum 1: one vantage point's view alone may move production"
    )
    site_rule: str = Field(
        default="all",
        pattern=RULE_PATTERN,
        description="how many of a site's critical checks must be DOWN (from one vantage point) for the site: "
        "all, any or 'at_least N'",
    )
    service_rule: str = Field(
        default="all", pattern=RULE_PATTERN, description="the same for one service's critical checks"
    )

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else DEFAULT_QUORUM


class Probe(_Model):
    interval_s: int = Field(default=60, ge=1, description="seconds between probe rounds")
    vantage: str = Field(default="aws", description="name of the place the probes run from")
    vantages: list[Name] = Field(
        default=[],
        description="optional, a check of what you expect: the vantage points the deployment runs (aws-public; "
        "aws-vpc with a network; aws-<region> with a secondary region); anything else is a config error. "
        "The local runtime simulates each one",
    )
    check_metrics: bool = Field(
        default=True,
        description="also publish latency and success per check, not only per site "
        "(two custom CloudWatch metrics per check: consider turning off for thousands of checks)",
    )


RecoveryMode = Literal["disaster", "migration", "drill", "failback"]
RECOVERY_MODES: tuple[RecoveryMode, ...] = ("disaster", "migration", "drill", "failback")


class Approval(_Model):
    """An operator's approve/deny before a mode changes anything (Step Functions waitForTaskToken)."""

    modes: list[RecoveryMode] = Field(default=[], description="the modes that wait for approval; none by default")
    timeout_s: int = Field(
        default=900,
        ge=1,
        le=1800,
        description="no answer within this long: the workflow stops, nothing changed "
        "(at most 1800: the whole workflow is bounded by an hour)",
    )


# Every workflow step Lambda's timeout; hooks run inside StartGroup and CheckGroup, one after the other,
# and must leave the step this much for its own work (vCenter session, power-ons, idempotency records).
STEP_TIMEOUT_S = 60
STEP_OWN_WORK_S = 15
# The failover state machine's TimeoutSeconds in failover.asl.json (a test keeps them equal): raised per config to
# its longest possible run (`workflow_timeout_s`), never lowered; the other steps' own work is given this margin.
WORKFLOW_TIMEOUT_S = 3600
WORKFLOW_STEPS_MARGIN_S = 10 * STEP_TIMEOUT_S


class Workflow(_Model):
    poll_s: int = Field(
        default=5,
        ge=1,
        description="the state machine's wait between two CheckGroup or CheckDns steps, once one step's wait "
        "(step_wait_s) did not see the group up or DNS in sync",
    )
    step_wait_s: int = Field(
        default=20,
        ge=0,
        le=STEP_TIMEOUT_S - STEP_OWN_WORK_S,
        description="how long CheckGroup and CheckDns wait inside one invocation for the group to come up or DNS "
        "to be in sync, seeing it as it happens (0: look once); below the step Lambda's timeout",
    )
    group_timeout_s: int = Field(default=600, ge=1, description="deadline for one priority group")
    dns_timeout_s: int = Field(default=300, ge=1, description="deadline for Route 53 INSYNC")
    shutdown_timeout_s: int = Field(
        default=300,
        ge=1,
        description="migration and failback: how long one group's guests may take to shut down before "
        "their VMs are powered off",
    )
    approval: Approval = unbuilt_default(Approval)
    lease_s: int = Field(
        default=900,
        ge=30,
        description="the failover lock's lease, renewed before each priority group and before the DNS switch; "
        "must outlast group_timeout_s and dns_timeout_s",
    )

    @model_validator(mode="after")
    def _lease_outlasts_waits(self) -> Workflow:
        waits = [self.group_timeout_s, self.dns_timeout_s, self.shutdown_timeout_s]
        waits += [self.approval.timeout_s] if self.approval.modes else []
        longest = max(waits) + LEASE_MARGIN_S
        if self.lease_s < longest:
            raise ValueError(
                f"lease_s {self.lease_s} must be at least the longest wait between renewals plus "
                f"{LEASE_MARGIN_S} s ({longest}): the lock would expire while the workflow still runs"
            )
        return self


LEASE_MARGIN_S = 60


class Automation(_Model):
    """Automatic failover; the on/off switch itself lives in DynamoDB (`dcwatch automation on|off`)."""

    cooldown_s: int = Field(
        default=3600,
        ge=0,
        description="after a failover, a second automatic one within this many seconds waits for `dcwatch ack`",
    )


class MaintenanceWindow(_Model):
    """While a window is open: a site window stops automatic failover of that site; a service window
    leaves that service's checks out of the site's verdict (they are expected to fail)."""

    site: str
    service: str | None = Field(default=None, description="only this service; the whole site when unset")
    start: AwareDatetime = Field(description="ISO 8601 with offset, e.g. 2026-11-28T22:00:00Z")
    end: AwareDatetime
    weekly: bool = Field(default=False, description="repeat every 7 days from start")
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        if self.weekly and self.end - self.start >= timedelta(days=7):
            raise ValueError("a weekly window must be shorter than a week")
        return self

    def covers(self, at: datetime) -> bool:
        if at < self.start:
            return False
        if not self.weekly:
            return at < self.end
        return (at - self.start) % timedelta(days=7) < self.end - self.start


class Alerts(_Model):
    email: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default=[])


class Network(_Model):
    """The VPC whose route to the sites (VPN or Direct Connect) a second probe uses for private endpoints."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$", description="VPC id, e.g. vpc-0123456789abcdef0")
    subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        min_length=1, max_length=16, description="private subnets with a route to both sites, ideally in two AZs"
    )
    security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(
        min_length=1, max_length=5, description="security groups allowing outbound HTTPS to vCenters and services"
    )


class DrillService(_Model):
    name: Name = Field(description="a service of `services`: its standby copies are powered on in a drill")
    dns: DnsRecord = Field(
        description="the drill record, pointed at the standby copy during the drill and "
        "restored after it; never a production record"
    )


class Drill(_Model):
    """What a drill proves: the standby copies of these services, reached through their drill records only."""

    services: list[DrillService] = Field(min_length=1)
    network: str | None = Field(
        default=None,
        description="the isolated network (port group) the drill copies are attached to at the standby; "
        "recorded in the plan and the audit, not configured by dcwatch",
    )


class SiteAgent(_Model):
    """The site agent of one site: where it listens for its peer's heartbeats and how it fences its site."""

    listen: str = Field(description="host:port the agent's heartbeat server binds, e.g. 10.1.0.5:7440")
    url: str | None = Field(
        default=None, description="how the peer agent reaches this one over the inter-site link (http://<listen>)"
    )
    power_off_vms: bool = Field(default=True, description="a fence powers off the site's service VMs")
    fence_hook: Hook | None = Field(
        default=None, description="called by a fence (payload mode: fence, site, reason), e.g. to take volumes offline"
    )
    vcenter_credentials_file: str | None = Field(
        default=None,
        description="JSON {username, password} on the agent's VM, so that a fence needs no AWS; else the site's "
        "vcenter.credentials_secret, read while AWS answers and kept in memory",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    _check_url = field_validator("url")(classmethod(lambda cls, v: v if v is None else _http_url(v)))

    @property
    def peer_url(self) -> str:
        return self.url or f"http://{self.listen}"


class Fencing(_Model):
    """The site agents' lease and self-fencing (see docs/deploy.md, "Site agents"): a site cut off from AWS
    and from its peer fences itself at lease_ttl_s - margin_s after its last renewal; AWS may act on an
    expired lease no earlier than lease_ttl_s + margin_s after it."""

    renew_s: float = Field(default=5.0, gt=0, description="seconds between lease renewals and heartbeats")
    lease_ttl_s: float = Field(default=30.0, gt=0, description="a lease not renewed for this long has expired")
    margin_s: float = Field(default=10.0, gt=0, description="allowance for clock error and delivery")
    max_skew_s: float = Field(
        default=5.0, gt=0, description="a heartbeat sent further than this in the past or future is refused"
    )
    secret_file: str | None = Field(
        default=None, description="file on the agent's VM holding the shared heartbeat key (recommended)"
    )
    secret_id: str | None = Field(
        default=None, min_length=1, description="or: the Secrets Manager secret holding the shared heartbeat key"
    )
    agents: dict[str, SiteAgent] = Field(
        default={}, description="one agent per site, by site name; none: no lease proof, no self-fencing"
    )
    trust_quorum: bool = Field(
        default=False,
        description="promote the standby on the quorum verdict alone when no proof says the failed site is "
        "fenced, instead of asking a human: a cut path from AWS then runs both sites at once (warned about)",
    )
    proof_waits: int = Field(
        default=6,
        ge=0,
        le=20,
        description="how many times the workflow waits for the failed site's lease to expire (and the standby's "
        "agent to confirm it lost that site) before it asks a human to approve an unproven promotion",
    )

    @property
    def fence_after_s(self) -> float:
        """The agent fences this long after its last renewal (and last answered heartbeat)."""
        return self.lease_ttl_s - self.margin_s

    @property
    def act_after_s(self) -> float:
        """AWS may act on an expired lease no earlier than this long after the last renewal it recorded."""
        return self.lease_ttl_s + self.margin_s

    @property
    def proof_wait_budget_s(self) -> float:
        """The longest the workflow can wait for the lease proof: each wait lasts at most until the lease
        could have expired and the standby's next report is in."""
        return self.proof_waits * (self.act_after_s + self.renew_s + PROOF_REPORT_SLACK_S)


# A wait for the lease proof also covers the delivery of the standby agent's next report.
PROOF_REPORT_SLACK_S = 2.0
TRUST_QUORUM_WARNING = (
    "fencing.trust_quorum is on: when no proof says the failed site is fenced (its vCenter powered its VMs off, "
    "its lease expired and the standby's agent lost it, or its storage is offline), the workflow promotes the "
    "standby on the quorum verdict alone; if only the paths from AWS to that site are cut, both sites then "
    "serve and write the mirrored data at once"
)


REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$"
Region = Annotated[str, Field(pattern=REGION_PATTERN, description="AWS region, e.g. eu-west-1")]


class Config(_Model):
    name: Name = Field(description="deployment name; prefixes every AWS resource")
    active_site: str
    sites: list[Site] = Field(min_length=2, max_length=2)
    services: list[Service] = Field(min_length=1)
    thresholds: Thresholds = unbuilt_default(Thresholds)
    probe: Probe = unbuilt_default(Probe)
    workflow: Workflow = unbuilt_default(Workflow)
    alerts: Alerts = unbuilt_default(Alerts)
    automation: Automation = unbuilt_default(Automation)
    maintenance: list[MaintenanceWindow] = Field(default=[], description="planned work: no automatic action")
    tags: dict[str, str] = Field(default={}, description="tags on every AWS resource, e.g. owner and cost centre")
    network: Network | None = Field(
        default=None, description="when set, a second probe runs inside this VPC (vantage aws-vpc)"
    )
    secondary_region: Region | None = Field(
        default=None, description="when set, a third probe runs in this region (vantage aws-<region>)"
    )
    drill: Drill | None = Field(default=None, description="what `mode: drill` powers on and switches")
    fencing: Fencing | None = Field(default=None, description="the site agents: their lease, heartbeats and fences")

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        problems = _cross_problems(self.model_dump())
        problems = problems or _decision_problems(self) + _drill_problems(self) + _hook_budget_problems(self)
        problems = problems or _fencing_problems(self) + _secret_problems(self)
        if not problems:
            from dcwatch.topology import topology_problems  # the topology is computed from a valid config

            problems = topology_problems(self, self.topology)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @cached_property
    def topology(self) -> Topology:
        """Who runs where and reaches what (`dcwatch.topology`), computed once per loaded config."""
        from dcwatch.topology import topology

        return topology(self)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Config:
        """A copy computes its own topology: the cached one may describe sections `update` replaced."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("topology", None)
        return copied

    @property
    def vantage_points(self) -> list[str]:
        """Where probes run from: the decision needs results from more than one of them to move production."""
        return self.topology.vantage_names

    @property
    def warnings(self) -> dict[str, str]:
        """Valid but dangerous settings, said loudly by `dcwatch config validate` and the synth, by the id the
        synth annotates them under: `fencing.trust_quorum`, which allows promotion without a fencing proof."""
        trusting = self.fencing is not None and self.fencing.trust_quorum
        return {"dcwatch:trustQuorum": TRUST_QUORUM_WARNING} if trusting else {}

    def critical_checks(self, site: str, service: str | None = None) -> int:
        """How many critical checks decide the site (its vCenter included), or one service at it."""
        at = [a for svc, a in self.services_at(site) if service in (None, svc.name)]
        count = sum(c.critical for a in at for c in a.checks)
        return count if service else count + 1 + sum(c.critical for c in self.site(site).checks)

    def site(self, name: str) -> Site:
        for site in self.sites:
            if site.name == name:
                return site
        raise KeyError(f"unknown site {name!r}; known: {[s.name for s in self.sites]}")

    def other_site(self, name: str) -> str:
        self.site(name)
        return next(s.name for s in self.sites if s.name != name)

    def services_at(self, site: str) -> Iterator[tuple[Service, ServiceAtSite]]:
        for service in self.services:
            yield service, service.sites[site]

    @property
    def recovery_hooks(self) -> list[Hook]:
        """Every hook a recovery may run: the groups' and the VMs' at each site, and the storage promotions."""
        hooks = [h for site in self.sites for g in site.groups for h in [*g.pre_power_on, *g.post_power_on]]
        hooks += [h for s in self.services for at in s.sites.values() for vm in at.vms for h in vm.pre_power_on]
        hooks += [h for s in self.services for at in s.sites.values() for vm in at.vms for h in vm.post_power_on]
        return hooks + [s.storage.promote_hook for s in self.sites if s.storage and s.storage.promote_hook]

    @property
    def ca_files(self) -> list[tuple[str, str]]:
        """Every `ca_file` as (where the config names it, the path): the synth ships them with the config."""
        return [(where, str(path)) for where, path in fields_named(self.model_dump(), "ca_file") if path]

    def check_headers_secrets(self, site: str | None = None) -> list[str]:
        """The `headers_secret`s the checks (of one site, or of both) send, each once."""
        sites = [self.site(site)] if site else self.sites
        checks = [c for s in sites for c in s.checks] + [
            c for s in sites for _, a in self.services_at(s.name) for c in a.checks
        ]
        return list(dict.fromkeys(c.headers_secret for c in checks if isinstance(c, HttpCheck) and c.headers_secret))


def _cross_problems(data: Any) -> list[str]:
    """Problems between fields, read from plain data so they are found even when some fields are invalid."""

    def items(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    data = mapping(data)
    names = [mapping(s).get("name") for s in items(data.get("sites"))]
    problems: list[str] = []
    if len(set(names)) != len(names):
        problems.append(f"sites: names must differ, got {names}")
    if "active_site" in data and data["active_site"] not in names:
        problems.append(f"active_site: {data['active_site']!r} is not one of the sites {names}")
    services = [mapping(s) for s in items(data.get("services"))]
    seen: set[Any] = set()
    for i, service in enumerate(services):
        where = f"services[{i}]"
        if service.get("name") in seen:
            problems.append(f"{where}.name: duplicate service {service.get('name')!r}")
        seen.add(service.get("name"))
        at_sites = mapping(service.get("sites"))
        if sorted(map(str, at_sites)) != sorted(map(str, names)):
            problems.append(f"{where}.sites: needs exactly the sites {sorted(map(str, names))}, got {sorted(at_sites)}")
        problems += _routing_problems(f"{where}.dns", mapping(service.get("dns")), names)
        record_type = mapping(service.get("dns")).get("type", "A")
        for site_name, at_site in at_sites.items():
            for value in items(mapping(at_site).get("dns_values")):
                if isinstance(value, str) and (error := _dns_value_error(record_type, value)):
                    problems.append(f"{where}.sites.{site_name}.dns_values: {error}")
    for site in names:
        at = [mapping(mapping(svc.get("sites")).get(str(site))) for svc in services]
        vm_names = [mapping(vm).get("name") for a in at for vm in items(a.get("vms"))]
        dupes = sorted({n for n in vm_names if vm_names.count(n) > 1 and isinstance(n, str)})
        if dupes:
            problems.append(f"services: VM names repeat at site {site}: {dupes}")
        site_doc = next((mapping(x) for x in items(data.get("sites")) if mapping(x).get("name") == site), {})
        check_names = [mapping(c).get("name") for a in [*at, site_doc] for c in items(a.get("checks"))]
        dupes = sorted({n for n in check_names if check_names.count(n) > 1 and isinstance(n, str)})
        if dupes:
            problems.append(f"checks: names repeat at site {site}: {dupes}")
        reserved = sorted(n for n in check_names if isinstance(n, str) and n.startswith(VCENTER_PREFIX))
        if reserved:
            problems.append(f"checks: names starting with {VCENTER_PREFIX!r} belong to the vCenter check: {reserved}")
    problems += _recovery_problems(data, names, services)
    service_names = [s.get("name") for s in services]
    for i, window in enumerate(mapping(w) for w in items(data.get("maintenance"))):
        if "site" in window and window["site"] not in names:
            problems.append(f"maintenance[{i}].site: {window['site']!r} is not one of the sites {names}")
        if window.get("service") is not None and window["service"] not in service_names:
            problems.append(
                f"maintenance[{i}].service: {window['service']!r} is not one of the services {service_names}"
            )
    return problems


def _recovery_problems(data: dict[str, Any], sites: list[Any], services: list[dict[str, Any]]) -> list[str]:
    """Dependencies inside a priority group (known VMs of the same group and site, no cycle), group settings,
    and the storage mirror check each site's failover reads."""

    def items(value: Any) -> list[Any]:
        return value if isinstance(value, list) else []

    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    problems: list[str] = []
    for site in sites:
        where: dict[str, str] = {}  # VM name -> its path in the file
        group: dict[str, Any] = {}
        after: dict[str, list[Any]] = {}
        for i, service in enumerate(services):
            for j, vm in enumerate(items(mapping(mapping(service.get("sites")).get(site)).get("vms"))):
                if isinstance(vm, dict) and isinstance(vm.get("name"), str):
                    where[vm["name"]] = f"services[{i}].sites.{site}.vms[{j}]"
                    group[vm["name"]] = vm.get("group", 1)
                    after[vm["name"]] = items(vm.get("after"))
        for vm, needs in after.items():
            for other in needs:
                if other not in group:
                    problems.append(f"{where[vm]}.after: unknown VM {other!r} at site {site}")
                elif group[other] != group[vm]:
                    problems.append(
                        f"{where[vm]}.after: {other!r} is in group {group[other]}, not in group {group[vm]}; "
                        "a later group already waits for every earlier one"
                    )
        cycle = _dependency_cycle({vm: [o for o in needs if o in group] for vm, needs in after.items()})
        if cycle:
            problems.append(f"{where[cycle[0]]}.after: dependency cycle {' -> '.join(cycle)}")
    lease = mapping(data.get("workflow")).get("lease_s", 900)
    for i, site_doc in enumerate(items(data.get("sites"))):
        if not isinstance(site_doc, dict):
            continue
        numbers = [g.get("group") for g in site_doc.get("groups") or [] if isinstance(g, dict)]
        if len(set(numbers)) != len(numbers):
            problems.append(f"sites[{i}].groups: each group may be listed once, got {numbers}")
        for j, settings in enumerate(g for g in site_doc.get("groups") or [] if isinstance(g, dict)):
            timeout = settings.get("timeout_s")
            if isinstance(timeout, int) and isinstance(lease, int) and timeout + LEASE_MARGIN_S > lease:
                problems.append(
                    f"sites[{i}].groups[{j}].timeout_s: {timeout} s plus {LEASE_MARGIN_S} s exceeds workflow.lease_s "
                    f"{lease}: the lock would expire while the group is still awaited"
                )
        storage = site_doc.get("storage")
        if isinstance(storage, dict) and "check" in storage:
            kinds = {c.get("name"): c.get("kind", "http") for c in site_doc.get("checks") or [] if isinstance(c, dict)}
            if storage["check"] not in kinds:
                problems.append(
                    f"sites[{i}].storage.check: {storage['check']!r} is not a check of site "
                    f"{site_doc.get('name')} (sites[{i}].checks: {sorted(map(str, kinds))})"
                )
            elif kinds[storage["check"]] != "http":
                problems.append(
                    f"sites[{i}].storage.check: {storage['check']!r} must be an http check (the mirror status)"
                )
    return problems


def _dependency_cycle(after: dict[str, list[str]]) -> list[str]:
    """One cycle of the dependency graph, as a path back to its start ([] when there is none)."""
    done: set[str] = set()

    def visit(vm: str, path: list[str]) -> list[str]:
        if vm in path:
            return path[path.index(vm) :] + [vm]
        if vm in done:
            return []
        for other in after.get(vm, []):
            if found := visit(other, [*path, vm]):
                return found
        done.add(vm)
        return []

    for start in sorted(after):
        if cycle := visit(start, []):
            return cycle
    return []


def rule_minimum(rule: str) -> int:
    """The fewest DOWN checks a rule needs: 'all' and 'any' need one at least, 'at_least N' needs N."""
    return int(rule.split()[1]) if rule.startswith("at_least") else 1


def _decision_problems(config: Config) -> list[str]:
    """Decision knobs that could never hold, or would move production on too little evidence."""
    problems = []
    t, vantages = config.thresholds, config.vantage_points
    if t.quorum is not None and t.quorum > len(vantages):
        problems.append(
            f"thresholds.quorum: {t.quorum} exceeds the {len(vantages)} vantage points ({', '.join(vantages)}): "
            "no site could ever be DOWN"
        )
    if t.effective_quorum == 1 and not t.allow_single_vantage:
        problems.append(
            "thresholds.quorum: 1 lets a single vantage point move production, "
            "set thresholds.allow_single_vantage: true to accept that"
        )
    for site in config.sites:
        if rule_minimum(t.site_rule) > (have := config.critical_checks(site.name)):
            problems.append(f"thresholds.site_rule: {t.site_rule!r} but site {site.name} has {have} critical checks")
        for service in config.services:
            if rule_minimum(t.service_rule) > (have := config.critical_checks(site.name, service.name)):
                problems.append(
                    f"thresholds.service_rule: {t.service_rule!r} but service {service.name} has {have} critical "
                    f"checks at {site.name}"
                )
    return problems


def fields_named(data: Any, key: str, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every field called `key` in plain config data, with its path as the operator reads the file."""
    if isinstance(data, dict):
        for name, value in data.items():
            where = f"{path}.{name}" if path else str(name)
            if name == key:
                yield where, value
            else:
                yield from fields_named(value, key, where)
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from fields_named(value, key, f"{path}[{i}]")


def _secret_problems(config: Config) -> list[str]:
    """A `headers_secret` that is the vCenter's login or the agents' heartbeat key would send it to an HTTP
    endpoint as headers: refused, whatever the endpoint."""
    kept = {s.vcenter.credentials_secret: f"sites.{s.name}.vcenter.credentials_secret" for s in config.sites}
    if config.fencing is not None and config.fencing.secret_id is not None:
        kept[config.fencing.secret_id] = "fencing.secret_id"
    return [
        f"{where}: {secret!r} is the secret of {kept[secret]} (sent as headers it would leave): "
        "give the headers a secret of their own"
        for where, secret in fields_named(config.model_dump(), "headers_secret")
        if secret in kept
    ]


def _fencing_problems(config: Config) -> list[str]:
    """Agent timings that leave no time to fence before AWS may act, agents that do not match the sites, and a
    lease proof the failover lock would not outlast."""
    f = config.fencing
    if f is None:
        return []
    problems = []
    sites = sorted(s.name for s in config.sites)
    if f.agents and sorted(f.agents) != sites:
        problems.append(f"fencing.agents: needs exactly one agent per site {sites}, got {sorted(f.agents)}")
    if f.margin_s >= f.lease_ttl_s:
        problems.append(
            f"fencing.margin_s: {f.margin_s:g} must be less than lease_ttl_s {f.lease_ttl_s:g}: "
            "the agent fences at lease_ttl_s - margin_s after its last renewal"
        )
    elif f.renew_s * 3 > f.fence_after_s:
        problems.append(
            f"fencing.renew_s: {f.renew_s:g} x 3 exceeds lease_ttl_s - margin_s ({f.lease_ttl_s:g} - {f.margin_s:g} = "
            f"{f.fence_after_s:g}): the agent needs three renewals before it would fence"
        )
    if f.agents and (f.secret_file is None) == (f.secret_id is None):
        problems.append("fencing.secret_file: give exactly one of secret_file or secret_id (the shared heartbeat key)")
    for site, agent in sorted(f.agents.items()):
        if not agent.power_off_vms and agent.fence_hook is None:
            problems.append(
                f"fencing.agents.{site}: power_off_vms is off and there is no fence_hook: a fence would stop nothing"
            )
    listens = [a.listen for a in f.agents.values()]
    if len(set(listens)) != len(listens):
        problems.append(f"fencing.agents: the agents must listen on different addresses, got {listens}")
    budget = f.proof_wait_budget_s + LEASE_MARGIN_S
    if f.agents and config.workflow.lease_s < budget:
        problems.append(
            f"fencing.proof_waits: {f.proof_waits} waits of up to {f.act_after_s + f.renew_s + PROOF_REPORT_SLACK_S:g} "
            f"s for the lease proof need workflow.lease_s of at least {budget:g} (the failover lock would expire "
            f"while the workflow waits), got {config.workflow.lease_s}"
        )
    return problems


def _drill_problems(config: Config) -> list[str]:
    """A drill that would touch production, or name what does not exist."""
    if config.drill is None:
        return []
    services = {s.name: s for s in config.services}
    production = {s.dns.name: s.name for s in config.services}
    problems, seen = [], set()
    for i, drill in enumerate(config.drill.services):
        where = f"drill.services[{i}]"
        if drill.name not in services:
            problems.append(f"{where}.name: {drill.name!r} is not one of the services {sorted(services)}")
        elif drill.dns.type != services[drill.name].dns.type:
            problems.append(
                f"{where}.dns.type: {drill.dns.type} but the service's record is {services[drill.name].dns.type}: "
                "the drill record takes the standby's dns_values"
            )
        if drill.dns.routing != "simple":
            problems.append(
                f"{where}.dns.routing: {drill.dns.routing} but a drill record is a simple record "
                "(it is restored to what it held before the drill)"
            )
        if drill.dns.name in production:
            problems.append(
                f"{where}.dns.name: {drill.dns.name} is the production record of service "
                f"{production[drill.dns.name]}; a drill never touches production"
            )
        if drill.dns.name in seen:
            problems.append(f"{where}.dns.name: {drill.dns.name} is named twice")
        seen.add(drill.dns.name)
    return problems


def _routing_problems(where: str, record: dict[str, Any], sites: list[Any]) -> list[str]:
    """A routing policy without its record sets, or with record sets of another policy."""
    routing = record.get("routing", "simple")
    if routing not in ROUTINGS:
        return []
    problems = [
        f"{where}.{other}: only a {other} record has {other} record sets, this one is routing {routing}"
        for other in ("weighted", "failover")
        if other != routing and record.get(other) is not None
    ]
    given = record.get(routing) if routing != "simple" else None
    if routing == "weighted":
        if not isinstance(given, dict):
            return [
                *problems,
                f"{where}.weighted: routing weighted needs a record set per site {sites}, "
                "each with set_identifier and weight",
            ]
        if sorted(map(str, given)) != sorted(map(str, sites)):
            problems.append(f"{where}.weighted: needs exactly the sites {sorted(map(str, sites))}, got {sorted(given)}")
        ids = [s.get("set_identifier") for s in given.values() if isinstance(s, dict)]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}.weighted: each site needs its own set_identifier, got {ids}")
    elif routing == "failover":
        if not isinstance(given, dict):
            return [
                *problems,
                f"{where}.failover: routing failover needs the set identifiers {{primary: ..., secondary: ...}}",
            ]
        if given.get("primary") is not None and given.get("primary") == given.get("secondary"):
            problems.append(f"{where}.failover: primary and secondary are both {given.get('primary')!r}")
    return problems


_EMPTY = ServiceAtSite.model_construct(dns_values=[], checks=[], vms=[])


def _hook_budget_problems(config: Config) -> list[str]:
    """The hooks one StartGroup or CheckGroup call may run, back to back, must fit in the step's Lambda."""
    budget = STEP_TIMEOUT_S - STEP_OWN_WORK_S
    problems = []
    for i, site in enumerate(config.sites):
        vms = [
            (f"services[{k}].sites.{site.name}.vms[{m}]", vm)
            for k, service in enumerate(config.services)
            if site.name in service.sites
            for m, vm in enumerate(service.sites[site.name].vms)
        ]
        numbers = sorted({vm.group for _, vm in vms})
        for number in numbers:
            j = next((j for j, g in enumerate(site.groups) if g.group == number), None)
            settings = site.priority_group(number)
            group_path = f"sites[{i}].groups[{j}]"
            members = [(path, vm) for path, vm in vms if vm.group == number]
            pre = [
                (f"{path}.pre_power_on[{h}]", hook, vm)
                for path, vm in members
                for h, hook in enumerate(vm.pre_power_on)
            ]
            start = [(f"{group_path}.pre_power_on[{h}]", hook) for h, hook in enumerate(settings.pre_power_on)]
            start += [(path, hook) for path, hook, _ in pre]
            if number == numbers[0] and site.storage is not None and site.storage.promote_hook is not None:
                start.insert(0, (f"sites[{i}].storage.promote_hook", site.storage.promote_hook))
            check = [
                (f"{path}.post_power_on[{h}]", hook) for path, vm in members for h, hook in enumerate(vm.post_power_on)
            ]
            check += [(f"{group_path}.post_power_on[{h}]", hook) for h, hook in enumerate(settings.post_power_on)]
            # VMs that wait for others power on from CheckGroup, their pre hooks with them.
            check += [(path, hook) for path, hook, vm in pre if vm.after]
            for step, hooks in (("StartGroup", start), ("CheckGroup", check)):
                total = sum(hook.timeout_s for _, hook in hooks)
                if total > budget:
                    longest = max(hooks, key=lambda item: item[1].timeout_s)[0]
                    listed = ", ".join(f"{hook.name} {hook.timeout_s:g} s" for _, hook in hooks)
                    problems.append(
                        f"{longest}.timeout_s: the hooks one {step} step runs for group {number} at {site.name} "
                        f"may take {total:g} s together ({listed}), more than the {budget} s a step Lambda "
                        f"({STEP_TIMEOUT_S} s, {STEP_OWN_WORK_S} s kept for its own work) leaves them; lower their "
                        "timeout_s or spread the hooks over groups"
                    )
    return problems


def longest_run(config: Config) -> tuple[int, str]:
    """A recovery's longest possible run, its waits at their timeouts (seconds), and its sum in words, by knob:
    approvals, the TTL wait, the leaving site's shutdown groups, the standby's groups, DNS."""
    w = config.workflow
    longest: tuple[int, str] = (0, "")
    for standby in config.sites:
        leaving = config.other_site(standby.name)
        groups = {vm.group for s in config.services if standby.name in s.sites for vm in s.sites[standby.name].vms}
        shut = {vm.group for s in config.services if leaving in s.sites for vm in s.sites[leaving].vms}
        power_on = sum(standby.priority_group(n).timeout_s or w.group_timeout_s for n in groups)
        ttl = max((s.dns.ttl for s in config.services), default=0)
        own: dict[RecoveryMode, list[tuple[str, int]]] = {
            "disaster": [("approval.timeout_s (fencing not proven)", w.approval.timeout_s)],
            "migration": [
                ("the TTL wait", ttl),
                (f"shutdown_timeout_s x {len(shut)}", w.shutdown_timeout_s * len(shut)),
            ],
        }
        own["failback"] = own["migration"]
        for mode, waits in own.items():
            parts = [("approval.timeout_s", w.approval.timeout_s)] if mode in w.approval.modes else []
            parts += [*waits, (f"{len(groups)} groups' timeout_s", power_on), ("dns_timeout_s", w.dns_timeout_s)]
            total = sum(s for _, s in parts)
            if total > longest[0]:
                words = " + ".join(f"{name} {s}" for name, s in parts if s)
                longest = (total, f"a {mode} to {standby.name}: {words}")
    return longest


def workflow_timeout_s(config: Config) -> int:
    """The failover state machine's TimeoutSeconds for `config`: past it, Step Functions stops a run wherever it
    stands (half the groups up, DNS not switched), so it must outlast the longest run the config allows."""
    return max(WORKFLOW_TIMEOUT_S, longest_run(config)[0] + WORKFLOW_STEPS_MARGIN_S)


def _dns_value_error(record_type: str, value: str) -> str | None:
    try:
        if record_type == "A":
            ipaddress.IPv4Address(value)
        elif record_type == "AAAA":
            ipaddress.IPv6Address(value)
    except ValueError:
        return f"{value!r} is not a valid {record_type} value"
    return None


class ConfigError(Exception):
    """A config file that cannot be used; `problems` lists (path, message) for every error."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems
        super().__init__("\n".join(f"{file}: {path}: {msg}" for path, msg in problems))


CHECK_KINDS = ("http", "tls", "tcp", "dns")


def _loc(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as the operator reads the file: `services[0].sites.dc-a.checks[1].url`."""
    path = ""
    for i, part in enumerate(loc):
        check_tag = part in CHECK_KINDS and i >= 2 and isinstance(loc[i - 1], int) and loc[i - 2] == "checks"
        if isinstance(part, int):
            path += f"[{part}]"
        elif check_tag or part in ("function-after", "tagged-union") or "[" in str(part):
            continue
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def parse_config(data: Any, file: str = "<config>", folder: Path | None = None) -> Config:
    """`folder`: where relative paths in the config (`ca_file`) are; the current directory if None."""
    try:
        return Config.model_validate(data, context={CONFIG_FOLDER: folder} if folder is not None else None)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for err in exc.errors():
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "value_error" and not err["loc"]:
                for part in message.split("; "):
                    path, _, msg = part.partition(": ")
                    problems.append((path, msg))
            else:
                problems.append((_loc(err["loc"]), message))
        if not any(err["type"] == "value_error" and not err["loc"] for err in exc.errors()):
            problems += [tuple(p.partition(": ")[::2]) for p in _cross_problems(data)]  # type: ignore[misc]
        raise ConfigError(file, problems) from None


def _read_yaml(text: str, checked: bool) -> Any:
    """`yaml.safe_load`; for a `checked` file through libyaml where PyYAML has it (a tenth of the time, at
    every cold start). libyaml accepts a little the Python loader refuses (a tab after `key:`), so only a file
    the Python loader read before goes that way; one libyaml refuses is read again by the Python loader."""
    fast = getattr(yaml, "CSafeLoader", None)
    if checked and fast is not None:
        try:
            return yaml.load(text, Loader=fast)  # noqa: S506 - CSafeLoader is the safe loader
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def load_config(path: str | Path, *, checked: bool = False) -> Config:
    """`checked`: the file passed `load_config` before (the synth's, which the config layer ships; the local
    runtime's), so it may be read the fast way; the validation is the same."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [("(file)", exc.strerror or str(exc))]) from None
    try:
        data = _read_yaml(text, checked)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise ConfigError(file, [(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    if not isinstance(data, dict):
        raise ConfigError(file, [("(top level)", "expected a mapping of settings")])
    return parse_config(data, file, Path(path).parent)


def config_schema() -> dict[str, Any]:
    return Config.model_json_schema()
