"""Probe: run every positive check of both sites once and publish one ProbeResult per check."""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from dcwatch import runtime
from dcwatch.checks import plan_round, run_round
from dcwatch.observability import logger, metrics


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app = runtime.app()
    round_id = str(event.get("id") or uuid.uuid4())
    logger.append_keys(round_id=round_id, vantage=app.vantage)
    results = run_round(plan_round(app.config), app.run_check, vantage=app.vantage, round_id=round_id)
    published = app.events.publish_probe_results(results)
    for result in results:
        metrics.add_metric(name="CheckSucceeded", unit=MetricUnit.Count, value=1 if result.ok else 0)
        metrics.add_metric(name="CheckLatency", unit=MetricUnit.Milliseconds, value=result.latency_ms)
    failed = [f"{r.site}/{r.check}: {r.reason}" for r in results if not r.ok]
    logger.info("probe round", checks=len(results), failed=failed, published=published)
    return {"roundId": round_id, "checks": len(results), "failed": failed, "published": published}
