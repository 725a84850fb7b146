"""Probe: run every positive check of both sites and publish one ProbeResult per check.

The schedule fires at most once a minute; for shorter `probe.interval_s` one invocation runs
several rounds, aligned to the interval, each bounded by a deadline that fits the interval. Results
the bus keeps refusing are logged and counted as lost, and the next round runs all the same.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dcwatch import runtime
from dcwatch.adapters.eventbridge import EntriesRefused
from dcwatch.detection.checks import plan_round, round_times
from dcwatch.observability import logger, record_probe_results, record_results_lost, tracer

SAFETY_MARGIN_S = 2.0


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = runtime.app()
    interval = app.config.probe.interval_s
    invocation = str(event.get("id") or uuid.uuid4())
    # The local runtime simulates every vantage point with one function and names the one it plays.
    vantage = str(event.get("vantage") or app.vantage)
    checks = plan_round(app.config, vantage)  # only what this vantage point's placement reaches
    rounds = []
    for n, at in enumerate(round_times(time.time(), app.settings.schedule_period_s, interval)):
        remaining_s = context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
        time.sleep(max(0.0, min(at - time.time(), remaining_s)))
        deadline_s = min(interval * 0.9, context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S)
        if deadline_s <= 0:
            logger.warning("rounds left out: no time left in this invocation", rounds_done=n)
            break
        round_id = f"{invocation}-{n}"
        results = app.probe(checks, round_id, deadline_s=deadline_s, vantage=vantage)
        try:
            published, lost = app.events.publish_probe_results(results), 0
        except EntriesRefused as refused:
            published, lost = refused.sent, refused.lost
            logger.error("probe results lost", round_id=round_id, vantage=vantage, lost=lost, errors=refused.errors)
            record_results_lost(vantage, lost)
        record_probe_results(results, per_check=app.config.probe.check_metrics)
        failed = [f"{r.site}/{r.check}: {r.reason}" for r in results if not r.ok]
        logger.info("probe round", round_id=round_id, vantage=vantage, checks=len(results), failed=failed)
        rounds.append(
            {"roundId": round_id, "checks": len(results), "failed": failed, "published": published, "lost": lost}
        )
    return {"rounds": rounds, "lost": sum(r["lost"] for r in rounds)}
