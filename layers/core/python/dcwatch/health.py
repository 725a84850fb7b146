"""One check seen from one vantage point: its state after each probe result. Pure: values in, values out.

- a check goes DOWN after `failures_to_down` consecutive failures, back UP after `successes_to_up`
  consecutive successes (hysteresis); results older than the last one seen change nothing;
- it is FLAPPING while it changed between UP and DOWN `flap_changes` times within `flap_window_s`.

Site, service and failover decisions built on these states live in `dcwatch.decision`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from dcwatch.config import Thresholds
from dcwatch.events import ProbeResult

CheckStatus = Literal["UNKNOWN", "UP", "DOWN"]


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
    vantage: str = ""
    changes: tuple[datetime, ...] = ()  # when it changed between UP and DOWN, within the flap window
    flapping: bool = False
    # when the streak's first failure was known (its start plus its latency): whatever it met was there by then
    failure_known_at: datetime | None = None

    @property
    def label(self) -> str:
        """How decision records name it: `shop-home@aws-vpc`."""
        return f"{self.check}@{self.vantage}"

    @property
    def is_infrastructure(self) -> bool:
        return self.service is None


def is_steady(state: CheckState) -> bool:
    """UP, not failing, no UP/DOWN change within the flap window: a pass can change nothing but its time."""
    calm = not state.flapping and not state.changes and not state.reason
    return state.status == "UP" and state.failures == 0 and calm


def advance(state: CheckState | None, result: ProbeResult, thresholds: Thresholds) -> CheckState | None:
    """The check's state after `result`, or None when the result is a duplicate or arrived late."""
    if state is None:
        state = CheckState(result.site, result.check, result.service, result.critical, vantage=result.vantage)
    if state.last_observed_at is not None and result.observed_at <= state.last_observed_at:
        return None
    failing_since: datetime | None = None
    failure_known_at: datetime | None = None
    if result.ok:
        successes, failures = state.successes + 1, 0
        status = "UP" if state.status == "UP" or successes >= thresholds.successes_to_up else state.status
        if state.status == "UNKNOWN":
            status = "UP"
    else:
        successes, failures = 0, state.failures + 1
        status = "DOWN" if failures >= thresholds.failures_to_down else state.status
        failing_since = (state.failing_since if state.failures else None) or result.observed_at
        known = result.observed_at + timedelta(milliseconds=result.latency_ms)
        failure_known_at = (state.failure_known_at if state.failures else None) or known
    changes = state.changes
    if status != state.status and state.status != "UNKNOWN":
        changes = (*changes, result.observed_at)
    window_start = result.observed_at - timedelta(seconds=thresholds.flap_window_s)
    changes = tuple(t for t in changes if t > window_start)
    return replace(
        state,
        changes=changes,
        flapping=len(changes) >= thresholds.flap_changes,
        critical=result.critical,
        status=status,
        failures=failures,
        successes=successes,
        last_observed_at=result.observed_at,
        reason=result.reason,
        failing_since=failing_since,
        failure_known_at=failure_known_at,
    )


def incident_id(site: str, at: datetime) -> str:
    """Names the incident and its workflow execution, so a second start is refused by Step Functions."""
    return f"{site}-down-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}"
