"""The config file's top level, `Config`, with its small sections (thresholds, probe, automation, maintenance,
alerts, network). The larger sections have their own modules: checks, sites, workflow, fencing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AwareDatetime, Field, model_validator

from dcwatch.config.checks import HttpCheck
from dcwatch.config.fencing import TRUST_QUORUM_WARNING, Fencing
from dcwatch.config.fields import ConfigModel, Name, fields_named, unbuilt_default
from dcwatch.config.hooks import recovery_hooks
from dcwatch.config.sites import Hook, Service, ServiceAtSite, Site
from dcwatch.config.validation import config_problems
from dcwatch.config.workflow import Drill, Workflow

if TYPE_CHECKING:
    from dcwatch.topology import Topology


RULE_PATTERN = r"^(all|any|at_least [1-9][0-9]*)$"
DEFAULT_QUORUM = 2


class Thresholds(ConfigModel):
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


class Probe(ConfigModel):
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


class Automation(ConfigModel):
    """Automatic failover; the on/off switch itself lives in DynamoDB (`dcwatch automation on|off`)."""

    cooldown_s: int = Field(
        default=3600,
        ge=0,
        description="after a failover, a second automatic one within this many seconds waits for `dcwatch ack`",
    )


class MaintenanceWindow(ConfigModel):
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


class Alerts(ConfigModel):
    email: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(default=[])


class Reports(ConfigModel):
    """The recovery reports the workflow writes to the stack's report bucket: kept as evidence (ISO 27001's
    drills), never deleted by anyone but the lifecycle."""

    retention_days: int = Field(
        default=400, ge=1, le=36500, description="a report is deleted this many days after it was written"
    )
    lock_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="Object Lock (governance mode) holds each report this many days against any deletion; "
        "unset: no Object Lock, the bucket policy alone denies deletes. At most retention_days",
    )

    @model_validator(mode="after")
    def _lock_within_retention(self) -> Reports:
        if self.lock_days is not None and self.lock_days > self.retention_days:
            raise ValueError(
                f"lock_days {self.lock_days} outlasts retention_days {self.retention_days}: "
                "the lifecycle could not delete a report still locked"
            )
        return self


class Network(ConfigModel):
    """The VPC whose route to the sites (VPN or Direct Connect) a second probe uses for private endpoints."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$", description="VPC id, e.g. vpc-0123456789abcdef0")
    subnet_ids: list[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]] = Field(
        min_length=1, max_length=16, description="private subnets with a route to both sites, ideally in two AZs"
    )
    security_group_ids: list[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")]] = Field(
        min_length=1, max_length=5, description="security groups allowing outbound HTTPS to vCenters and services"
    )


REGION_PATTERN = r"^[a-z]{2,4}(-[a-z]+)+-[0-9]{1,2}$"
Region = Annotated[str, Field(pattern=REGION_PATTERN, description="AWS region, e.g. eu-west-1")]


class Config(ConfigModel):
    name: Name = Field(description="deployment name; prefixes every AWS resource")
    active_site: str
    sites: list[Site] = Field(min_length=2, max_length=2)
    services: list[Service] = Field(min_length=1)
    thresholds: Thresholds = unbuilt_default(Thresholds)
    probe: Probe = unbuilt_default(Probe)
    workflow: Workflow = unbuilt_default(Workflow)
    alerts: Alerts = unbuilt_default(Alerts)
    reports: Reports = unbuilt_default(Reports)
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
        if problems := config_problems(self):
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
        return recovery_hooks(self)

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
