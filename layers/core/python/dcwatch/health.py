"""Turning probe results into check, site and failover decisions. Pure: values in, values out.

Rules of the walking skeleton:
- a check goes DOWN after `failures_to_down` consecutive failures, back UP after
  `successes_to_up` consecutive successes; results older than the last one seen change nothing;
- the active site is DOWN when every one of its critical checks is DOWN; the standby is judged
  only on its infrastructure (vCenter parts, site checks), since its services are expected to be off;
- a failover starts only for the active site, and only while the standby is UP with its vCenter
  login (check `vcenter`) proven by its latest result: the workflow needs that vCenter to power on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

from dcwatch.checks import VCENTER_CHECK
from dcwatch.config import Thresholds
from dcwatch.events import ProbeResult

CheckStatus = Literal["UNKNOWN", "UP", "DOWN"]
Role = Literal["active", "standby"]


@dataclass(frozen=True)
class CheckState:
    site: str
    check: str
    service: str | None
    critical: bool
    status: CheckStatus = "UNKNOWN"
    failures: int = 0
    successes: int = 0
    last_observed_at: datetime | None = None
    reason: str = ""
    failing_since: datetime | None = None  # the first failure of the current streak; None while passing

    @property
    def is_infrastructure(self) -> bool:
        return self.service is None


def advance(state: CheckState | None, result: ProbeResult, thresholds: Thresholds) -> CheckState | None:
    """The check's state after `result`, or None when the result is a duplicate or arrived late."""
    if state is None:
        state = CheckState(result.site, result.check, result.service, result.critical)
    if state.last_observed_at is not None and result.observed_at <= state.last_observed_at:
        return None
    failing_since: datetime | None = None
    if result.ok:
        successes, failures = state.successes + 1, 0
        status = "UP" if state.status == "UP" or successes >= thresholds.successes_to_up else state.status
        if state.status == "UNKNOWN":
            status = "UP"
    else:
        successes, failures = 0, state.failures + 1
        status = "DOWN" if failures >= thresholds.failures_to_down else state.status
        failing_since = (state.failing_since if state.failures else None) or result.observed_at
    return replace(
        state,
        critical=result.critical,
        status=status,
        failures=failures,
        successes=successes,
        last_observed_at=result.observed_at,
        reason=result.reason,
        failing_since=failing_since,
    )


@dataclass(frozen=True)
class SiteVerdict:
    site: str
    role: Role
    status: Literal["UP", "DOWN"]
    considered: tuple[str, ...]
    failed: tuple[str, ...]
    # When the last of the failed checks began failing: from then on the whole site was seen failing.
    failing_since: datetime | None = None

    def explain(self, thresholds: Thresholds) -> str:
        return (
            f"{self.site} ({self.role}): {len(self.failed)} of {len(self.considered)} critical checks DOWN "
            f"after {thresholds.failures_to_down} consecutive failures each"
        )


def site_verdict(site: str, role: Role, checks: list[CheckState]) -> SiteVerdict:
    considered = [c for c in checks if c.site == site and c.critical and (role == "active" or c.is_infrastructure)]
    failed = [c for c in considered if c.status == "DOWN"]
    down = bool(considered) and len(failed) == len(considered)
    return SiteVerdict(
        site,
        role,
        "DOWN" if down else "UP",
        tuple(sorted(c.check for c in considered)),
        tuple(sorted(f"{c.check}: {c.reason}" if c.reason else c.check for c in failed)),
        max((c.failing_since for c in failed if c.failing_since), default=None),
    )


@dataclass(frozen=True)
class FailoverDecision:
    start: bool
    reason: str


def failover_decision(verdict: SiteVerdict, standby_status: str, standby_checks: list[CheckState]) -> FailoverDecision:
    if verdict.status != "DOWN":
        return FailoverDecision(False, f"{verdict.site} is not DOWN")
    if verdict.role != "active":
        return FailoverDecision(False, f"{verdict.site} is the standby; nothing to fail over")
    # UP is not enough: a standby vCenter failing right now, below the threshold, proves nothing.
    proven = [c for c in standby_checks if c.check == VCENTER_CHECK and c.status == "UP" and c.failures == 0]
    if standby_status != "UP" or not proven:
        return FailoverDecision(False, "standby is not proven healthy; failover needs a human decision")
    return FailoverDecision(True, f"active site DOWN, standby UP ({', '.join(c.check for c in proven)} passing)")


def incident_id(site: str, at: datetime) -> str:
    """Names the incident and its workflow execution, so a second start is refused by Step Functions."""
    return f"{site}-down-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
