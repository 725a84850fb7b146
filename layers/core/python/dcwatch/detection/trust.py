"""What the evaluator believes of a probe round: the one home of the rules that keep forged, replayed and
stale input from moving production.

Anyone allowed `events:PutEvents` on the bus could post a ProbeRound; the bus policy lets only each vantage
point's probe role put its own source (`events.probe_source`), and these rules hold even where that policy
does not (a moto bus, a role granted too much):

- the envelope: the source names the round's vantage point, it is no archive replay, it is no larger than
  PutEvents takes;
- the round: its vantage point and site are the topology's, it started within the live window;
- each result: a check that vantage point runs at that site, with the config's service and severity
  (`critical` is the config's word, never the event's), observed within the live window
  [now - RESULT_MAX_AGE_S, now + CLOCK_SKEW_S]. A result dated 2099 would make every genuine one after it
  look stale, and freeze its check.

A refused round changes nothing, not even its round mark; a refused result is left out of its round.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dcwatch.config import Config
from dcwatch.events import (
    CLOCK_SKEW_S,
    EVENT_MAX_BYTES,
    PROBE_ROUND,
    REPLAY_FIELD,
    RESULT_MAX_AGE_S,
    ProbeResult,
    ProbeRound,
    probe_source,
)


def envelope_refusal(body: str, event: Mapping[str, Any]) -> str:
    """Why a queued EventBridge event is no live ProbeRound of the vantage point it names ('' if it is)."""
    if len(body.encode()) > EVENT_MAX_BYTES:
        return f"oversized: {len(body.encode())} bytes, PutEvents takes at most {EVENT_MAX_BYTES}"
    if REPLAY_FIELD in event:
        return f"an archive replay ({REPLAY_FIELD} {event[REPLAY_FIELD]!r}) is never judged as live"
    if event.get("detail-type") != PROBE_ROUND:
        return f"detail-type {event.get('detail-type')!r} is not {PROBE_ROUND}"
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return "no ProbeRound in its detail"
    vantage = detail.get("vantage")
    if not isinstance(vantage, str) or event.get("source") != probe_source(vantage):
        return f"source {event.get('source')!r} does not speak for vantage point {vantage!r}"
    return ""


def outside_window(at: datetime, now: datetime) -> str:
    """Why `at` is no live time ('' if it is): a probe's observation, an agent's report."""
    if at > now + timedelta(seconds=CLOCK_SKEW_S):
        return f"future-dated: {at.isoformat()} is more than {CLOCK_SKEW_S} s ahead of {now.isoformat()}"
    if at < now - timedelta(seconds=RESULT_MAX_AGE_S):
        return f"too old: {at.isoformat()} is more than {RESULT_MAX_AGE_S} s before {now.isoformat()}"
    return ""


def round_refusal(probe_round: ProbeRound, config: Config, now: datetime) -> str:
    """Why the whole round is refused ('' if its results may be judged one by one)."""
    if probe_round.vantage not in config.vantage_points:
        return f"vantage {probe_round.vantage} is not one of {', '.join(config.vantage_points)}"
    sites = [s.name for s in config.sites]
    if probe_round.site not in sites:
        return f"site {probe_round.site} is not one of {', '.join(sites)}"
    return outside_window(probe_round.started_at, now)


def result_refusal(result: ProbeResult, config: Config, now: datetime) -> str:
    """Why one result of an accepted round is left out ('' if it is judged)."""
    where = f"{result.check} at {result.site} from {result.vantage}"
    if not config.topology.vantage(result.vantage).runs(result.site, result.check):
        return f"{result.vantage} does not run {result.check} at {result.site}"
    endpoint = config.topology.endpoint(result.site, result.check)
    claimed = (result.service, result.critical)
    if claimed != (endpoint.service, endpoint.critical):
        return (
            f"{where} claims service {result.service!r}, critical {result.critical}: "
            f"the config says {endpoint.service!r}, critical {endpoint.critical}"
        )
    late = outside_window(result.observed_at, now)
    return f"{where} {late}" if late else ""
