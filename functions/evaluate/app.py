"""Evaluate: one ProbeResult from the bus into check and site state, and maybe a failover; and each site
agent's SiteAgentReport into the state the lease proof and the partition and silence alerts read."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.parser.envelopes import EventBridgeEnvelope
from aws_lambda_powertools.utilities.typing import LambdaContext

from dcwatch import runtime
from dcwatch.agent.report import SiteAgentReportEvent
from dcwatch.evaluator import evaluate, receive_agent_report
from dcwatch.events import ProbeResult
from dcwatch.observability import logger, record_detection, record_result_received, tracer


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=ProbeResult, envelope=EventBridgeEnvelope)
def handler(result: ProbeResult, context: LambdaContext) -> dict[str, Any]:
    record_result_received(result.vantage)
    app = runtime.app()
    outcome = evaluate(result, app.config, app.store, app.events, app.workflows, app.notifier, app.leases)
    if outcome.detection_s is not None:
        record_detection(result.site, outcome.detection_s)
    if outcome.ignored:
        logger.warning("result ignored", site=result.site, check=result.check, reason=outcome.ignored)
    elif outcome.stale:
        logger.info("result ignored: duplicate or older than the last one seen", site=result.site, check=result.check)
    elif outcome.site_change:
        change = outcome.site_change
        logger.warning(
            "site status changed",
            site=change.site,
            status=change.status,
            role=change.role,
            failed_checks=change.failed_checks,
            incident_id=change.incident_id,
            action=change.action,
            explanation=change.explanation,
            execution=outcome.execution,
            detection_s=outcome.detection_s,
        )
    return {
        "site": result.site,
        "check": result.check,
        "checkStatus": outcome.check_status,
        "siteStatus": outcome.site_change.status if outcome.site_change else None,
        "execution": outcome.execution,
    }


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=SiteAgentReportEvent)
def agent_report(event: SiteAgentReportEvent, context: LambdaContext) -> dict[str, Any]:
    report = event.detail
    app = runtime.app()
    outcome = receive_agent_report(event.source, report, app.config, app.store, app.notifier)
    if outcome.refused:
        logger.warning("agent report refused", source=event.source, site=report.site, reason=outcome.refused)
    else:
        logger.info("agent report", site=report.site, state=report.state, serving=report.serving, kept=outcome.kept)
    return {"site": report.site, "kept": outcome.kept, "refused": outcome.refused}
