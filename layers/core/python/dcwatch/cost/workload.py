"""What a deployment runs, as the bill counts it: vantage points and their checks, the probe schedule, each
check's Route 53 equivalent, the workflow's executions."""

from __future__ import annotations

from dataclasses import dataclass

from dcwatch.cost.assumptions import ASSUMED, Assumptions
from dcwatch.cost.prices import MONTH_S
from dcwatch.cost.transitions import Executions


@dataclass(frozen=True)
class VantageLoad:
    name: str
    in_vpc: bool
    checks_by_site: tuple[tuple[str, int], ...]
    public_checks: int  # of its checks, those reached over the internet (through the NAT inside the VPC)
    vcenter_sites: int = 0  # sites whose vCenter it logs in to (reads their secret)

    @property
    def checks(self) -> int:
        return sum(n for _, n in self.checks_by_site)


@dataclass(frozen=True)
class Route53Equivalent:
    """One check as a Route 53 health check, or why there is none."""

    check: str
    type: str | None  # HTTP, HTTPS, HTTP_STR_MATCH, HTTPS_STR_MATCH, TCP; None: Route 53 cannot check it
    note: str = ""

    @property
    def options(self) -> tuple[str, ...]:
        t = self.type or ""
        return tuple(o for o, on in (("HTTPS", t.startswith("HTTPS")), ("string matching", "STR_MATCH" in t)) if on)


@dataclass(frozen=True)
class Workload:
    name: str
    interval_s: int
    vantages: tuple[VantageLoad, ...]
    route53: tuple[Route53Equivalent, ...]
    check_metrics: bool
    sites: tuple[str, ...]
    secrets: int
    vpc_apis: tuple[str, ...]  # AWS APIs the functions inside the VPC call
    subnets: int
    alarms: int
    agents: int
    agent_renew_s: float
    executions: Executions
    source: str

    @property
    def checks(self) -> int:
        return sum(v.checks for v in self.vantages)

    @property
    def in_vpc(self) -> bool:
        return any(v.in_vpc for v in self.vantages) or bool(self.vpc_apis)


def schedule_period_s(interval_s: int) -> int:
    """The probe schedule's rate (infra `probe_rate_minutes`): once a minute at most, rounds inside."""
    return max(1, interval_s // 60) * 60


def rounds_per_month(interval_s: int) -> float:
    period = schedule_period_s(interval_s)
    return MONTH_S / (interval_s if interval_s < period else period)


def probe_invocation_s(interval_s: int, checks: int, a: Assumptions = ASSUMED) -> float:
    """A probe call sleeps between its rounds: billed from its start to its last round's end (mean over the
    start's offset within an interval: period - interval/2), plus the round itself."""
    period = schedule_period_s(interval_s)
    round_s = a.probe_round_base_s + a.probe_round_check_s * checks
    return round_s + (period - interval_s / 2 if interval_s < period else 0.0)
