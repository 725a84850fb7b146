"""Probe: run every positive check of both sites and publish one ProbeResult per check.

The schedule fires at most once a minute; for shorter `probe.interval_s` one invocation runs several
rounds (`dcwatch.probing`). The handler names the invocation and the vantage point, and reports the rounds.
"""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dcwatch import runtime
from dcwatch.observability import logger, tracer
from dcwatch.probing import run_rounds


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = runtime.app()
    rounds = run_rounds(
        app.config,
        # The local runtime simulates every vantage point with one function and names the one it plays.
        vantage=str(event.get("vantage") or app.vantage),
        invocation=str(event.get("id") or uuid.uuid4()),
        period_s=app.settings.schedule_period_s,
        remaining_s=lambda: context.get_remaining_time_in_millis() / 1000,
        probe=app.probe,
        events=app.events,
    )
    return {"rounds": [r.dump() for r in rounds], "lost": sum(r.lost for r in rounds)}
