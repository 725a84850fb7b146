"""The two sites and the services they run: vCenter, checks, storage, priority groups, VMs, hooks, DNS records."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from dcwatch.config.checks import AnyCheck, VCenter
from dcwatch.config.conditions import parse_condition
from dcwatch.config.fields import (
    HEADERS_SECRET_DESCRIPTION,
    PRODUCTION_MODES,
    ConditionText,
    ConfigModel,
    Name,
    RecoveryMode,
    http_url,
)

# The namespace of incidents started by hand (`dcwatch.recovery.request`); the evaluator's start with the site's name.
MANUAL_PREFIX = "manual-"


class Site(ConfigModel):
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


class Hook(ConfigModel):
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
    modes: list[RecoveryMode] = Field(
        default=list(PRODUCTION_MODES),
        min_length=1,
        description="the recovery modes it runs in (its payload says which): the production modes by default, so "
        "a hook on production (a load balancer, a firewall) never runs in a drill; add `drill` to opt in",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> Hook:
        if (self.url is None) == (self.function is None):
            raise ValueError("a hook has exactly one of url (HTTP) or function (Lambda)")
        if self.headers_secret is not None and self.url is None:
            raise ValueError("headers_secret: only an HTTP hook (url) sends headers; a Lambda hook is invoked by IAM")
        if self.url is not None:
            http_url(self.url)
        return self


Readiness = Literal["guest", "power"]


class VmRef(ConfigModel):
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


class PriorityGroup(ConfigModel):
    """Settings of one priority group at the site it powers on at."""

    group: int = Field(ge=1, le=10)
    timeout_s: int | None = Field(
        default=None, ge=1, description="deadline for the group to be up (workflow.group_timeout_s if unset)"
    )
    pre_power_on: list[Hook] = Field(default=[], description="run before the group's first VM powers on")
    post_power_on: list[Hook] = Field(default=[], description="run once the group is up and its checks pass")


class Storage(ConfigModel):
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


class ServiceAtSite(ConfigModel):
    dns_values: list[str] = Field(min_length=1, description="record values while this site serves")
    checks: list[AnyCheck] = Field(min_length=1)
    vms: list[VmRef] = Field(default=[])


SetIdentifier = Annotated[str, Field(min_length=1, max_length=128, description="Route 53 SetIdentifier")]


class WeightedSet(ConfigModel):
    """One site's record set of a weighted record."""

    set_identifier: SetIdentifier
    weight: int = Field(default=100, ge=1, le=255, description="this site's weight while it serves; 0 while not")


class FailoverSets(ConfigModel):
    """The set identifiers of a failover record's two record sets; the roles stay, the values move."""

    primary: SetIdentifier = Field(description="the PRIMARY record set: the site that serves")
    secondary: SetIdentifier = Field(description="the SECONDARY record set: the other site")


ROUTINGS = ("simple", "weighted", "failover")


class DnsRecord(ConfigModel):
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


class Service(ConfigModel):
    name: Name
    dns: DnsRecord
    sites: dict[str, ServiceAtSite]
