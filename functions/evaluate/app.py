"""Evaluate: each ProbeRound from the probe-rounds queue into check and site state, and maybe a failover;
and each site agent's SiteAgentReport into the state the lease proof and the partition and silence alerts read.

The queue is FIFO with one message group (`wiring.QueueSpec`): a batch comes only once the last one is done,
in order. A round that fails stops the batch; it and the rounds after it are reported back and retried.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from dcwatch import runtime
from dcwatch.agent.report import SiteAgentReportEvent
from dcwatch.detection.agent_watch import receive_agent_report
from dcwatch.detection.evaluator import evaluate_round
from dcwatch.detection.round_cache import RoundCache
from dcwatch.detection.trust import envelope_refusal
from dcwatch.events import EVENT_MAX_BYTES, REPLAY_FIELD, ProbeRound
from dcwatch.observability import logger, record_detection, record_refused, record_results_received, tracer

processor = SqsFifoPartialProcessor()


def refuse(record: SQSRecord, reason: str, **where: Any) -> dict[str, Any]:
    """A round the evaluator does not believe (`dcwatch.detection.trust`): logged with what it claimed, and dropped (not
    retried: no retry makes it true, and it would hold up the rounds queued behind it)."""
    logger.warning("probe round refused", reason=reason, message_id=record.message_id, **where)
    record_refused()
    return {**where, "refused": reason}


def judge(record: SQSRecord, cache: RoundCache) -> dict[str, Any]:
    """One queued EventBridge event: its ProbeRound judged, or refused and logged (`dcwatch.detection.trust`)."""
    body = record.body
    try:
        event = json.loads(body) if len(body) <= EVENT_MAX_BYTES else {}
        claimed = {"source": event.get("source"), "replay": event.get(REPLAY_FIELD)}
        refused = envelope_refusal(body, event)
        if refused:
            return refuse(record, refused, **claimed, bytes=len(body))
        probe_round = ProbeRound.model_validate(event["detail"])
    except (ValueError, KeyError, AttributeError) as exc:  # not JSON, not a ProbeRound (pydantic's is a ValueError)
        return refuse(record, f"not a ProbeRound: {exc}"[:2000], bytes=len(body))
    app = runtime.app()
    outcome = evaluate_round(
        probe_round, app.config, app.store, app.events, app.workflows, app.notifier, app.leases, cache=cache
    )
    decision = outcome.decision
    where: dict[str, Any] = {"site": outcome.site, "vantage": outcome.vantage, "round_id": outcome.round_id}
    where["chunk"] = outcome.chunk
    if outcome.pruned:
        logger.warning("check states pruned: the config no longer names them", pruned=list(outcome.pruned))
    if outcome.refused:
        return refuse(record, outcome.refused, **claimed, **where, started_at=probe_round.started_at.isoformat())
    record_results_received(probe_round.vantage, len(probe_round.results) - len(outcome.ignored))
    if outcome.stale:
        logger.info("round ignored: judged already (a duplicate, or an older round come late)", **where)
    if outcome.ignored:
        logger.warning("results ignored", ignored=list(outcome.ignored), **where)
    if decision.detection_s is not None and decision.site_change is not None:
        record_detection(decision.site_change.site, decision.detection_s)
    if decision.site_change:
        change = decision.site_change
        logger.warning(
            "site status changed",
            site=change.site,
            status=change.status,
            role=change.role,
            failed_checks=change.failed_checks,
            incident_id=change.incident_id,
            action=change.action,
            explanation=change.explanation,
            execution=decision.execution,
            detection_s=decision.detection_s,
        )
    logger.debug("round judged", results=outcome.results, written=outcome.written, **where)
    return {**where, "results": outcome.results, "written": outcome.written, "stale": outcome.stale}


_cache: RoundCache | None = None


def round_cache() -> RoundCache:
    """The sites' check states as this warm environment last saw them (checked against their generation on
    each invocation): a steady round reads one item per site, not every check state."""
    global _cache
    store = runtime.app().store
    if _cache is None or _cache.store is not store:
        _cache = RoundCache(store, runtime.app().config.topology)
    return _cache.begin()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cache = round_cache()
    record_handler = partial(judge, cache=cache)
    response = dict(
        process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
    )
    if response.get("batchItemFailures"):
        cache.forget()  # what failed may have been written half-way: read afresh
    return response


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@event_parser(model=SiteAgentReportEvent)
def agent_report(event: SiteAgentReportEvent, context: LambdaContext) -> dict[str, Any]:
    report = event.detail
    app = runtime.app()
    outcome = receive_agent_report(event.source, report, app.config, app.store, app.notifier, replay=event.replay_name)
    if outcome.refused:
        logger.warning("agent report refused", source=event.source, site=report.site, reason=outcome.refused)
    else:
        logger.info("agent report", site=report.site, state=report.state, serving=report.serving, kept=outcome.kept)
    return {"site": report.site, "kept": outcome.kept, "refused": outcome.refused}
