"""One check seen from one vantage point: its state after each probe result. Pure: values in, values out.

- a check goes DOWN after `failures_to_down` consecutive failures, back UP after `successes_to_up`
  consecutive successes (hysteresis); results older than the last one seen change nothing;
- it is FLAPPING while it changed between UP and DOWN `flap_changes` times within `flap_window_s`.

Site, service and failover decisions built on these states live in `dcwatch.detection.decision`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dcwatch.config import Thresholds
from dcwatch.events import ProbeResult
from dcwatch.model import CheckState, RoundMark


def is_steady(state: CheckState) -> bool:
    """UP, not failing, no UP/DOWN change within the flap window: a pass can change nothing but its time."""
    calm = not state.flapping and not state.changes and not state.reason
    return state.status == "UP" and state.failures == 0 and calm


def is_settled_down(state: CheckState) -> bool:
    """DOWN, failing, not flapping: another failure for the same reason changes nothing but its time and count
    (the count matters only up to the threshold, which a DOWN check has met)."""
    return state.status == "DOWN" and state.failures > 0 and not state.flapping


def repeats(previous: CheckState, state: CheckState) -> bool:
    """Whether `state` (after one more result) only repeats `previous`: a steady check passing again, or a
    settled DOWN one failing again for the same reason. The round evaluator does not write those."""
    if is_steady(previous) and is_steady(state):
        return True
    same_failure = state.reason == previous.reason and state.failing_since == previous.failing_since
    return is_settled_down(previous) and is_settled_down(state) and same_failure


def refreshed(state: CheckState, mark: RoundMark | None) -> CheckState:
    """A check as of its vantage point's last whole round, where its result there only repeated its state
    (see RoundMark): a steady check passed again, a settled DOWN one failed again.

    Dated at the round's start, at or before the result itself: a freshness test may wait a round longer,
    never less. A check whose result changed it in that round was written, so it is already as recent.
    """
    if mark is None or not mark.whole or not (is_steady(state) or is_settled_down(state)):
        return state
    if state.last_observed_at is not None and state.last_observed_at >= mark.started_at:
        return state
    return replace(state, last_observed_at=mark.started_at)


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
