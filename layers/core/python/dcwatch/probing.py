"""The probe's round loop: one scheduled invocation runs the rounds that fit its period, each aligned to the
interval and bounded by the time left; results the bus refuses are counted lost, and the next round runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from dcwatch.config import Config
from dcwatch.detection.checks import PlannedCheck, plan_round, round_times
from dcwatch.errors import EntriesRefused
from dcwatch.events import ProbeResult
from dcwatch.observability import logger, record_probe_results, record_results_lost
from dcwatch.ports import EventPublisher

# Kept free at the end of the invocation: a round never runs into the function's timeout.
SAFETY_MARGIN_S = 2.0
# A round gets at most this share of the interval: the next one starts on time.
ROUND_SHARE = 0.9


class Prober(Protocol):
    def __call__(
        self, checks: list[PlannedCheck], round_id: str, deadline_s: float | None = None, vantage: str | None = None
    ) -> list[ProbeResult]: ...


@dataclass(frozen=True)
class Round:
    round_id: str
    checks: int
    failed: list[str]
    published: int
    lost: int

    def dump(self) -> dict[str, Any]:
        return {
            "roundId": self.round_id,
            "checks": self.checks,
            "failed": self.failed,
            "published": self.published,
            "lost": self.lost,
        }


def run_rounds(
    config: Config,
    *,
    vantage: str,
    invocation: str,
    period_s: float,
    remaining_s: Callable[[], float],
    probe: Prober,
    events: EventPublisher,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Round]:
    """The rounds of one invocation, from `vantage` (only the checks its placement reaches); `remaining_s` is
    the invocation's time left (the Lambda context's)."""
    interval = config.probe.interval_s
    checks = plan_round(config, vantage)
    rounds: list[Round] = []
    for n, at in enumerate(round_times(clock(), period_s, interval)):
        sleep(max(0.0, min(at - clock(), remaining_s() - SAFETY_MARGIN_S)))
        deadline_s = min(interval * ROUND_SHARE, remaining_s() - SAFETY_MARGIN_S)
        if deadline_s <= 0:
            logger.warning("rounds left out: no time left in this invocation", rounds_done=n)
            break
        rounds.append(_round(config, f"{invocation}-{n}", checks, deadline_s, vantage, probe, events))
    return rounds


def _round(
    config: Config,
    round_id: str,
    checks: list[PlannedCheck],
    deadline_s: float,
    vantage: str,
    probe: Prober,
    events: EventPublisher,
) -> Round:
    results = probe(checks, round_id, deadline_s=deadline_s, vantage=vantage)
    try:
        published, lost = events.publish_probe_results(results), 0
    except EntriesRefused as refused:
        published, lost = refused.sent, refused.lost
        logger.error("probe results lost", round_id=round_id, vantage=vantage, lost=lost, errors=refused.errors)
        record_results_lost(vantage, lost)
    record_probe_results(results, per_check=config.probe.check_metrics)
    failed = [f"{r.site}/{r.check}: {r.reason}" for r in results if not r.ok]
    logger.info("probe round", round_id=round_id, vantage=vantage, checks=len(results), failed=failed)
    return Round(round_id, len(results), failed, published, lost)
