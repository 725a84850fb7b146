"""The evaluator's use case: one ProbeResult in, state updated, site decisions published.

Safe under EventBridge's at-least-once, unordered delivery: stale results are dropped by the
check's last-seen time, a site transition is a conditional write that only one evaluator wins,
and the workflow is started under the incident id, which Step Functions accepts once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from dcwatch.config import Config
from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.health import Role, SiteVerdict, advance, failover_decision, incident_id, site_verdict
from dcwatch.ports import EventPublisher, StateStore, WorkflowStarter
from dcwatch.recovery import default_reason


@dataclass(frozen=True)
class Evaluation:
    """What one result caused, for the handler's log line."""

    check_status: str | None
    site_change: SiteStatusChanged | None = None
    execution: str | None = None
    detection_s: float | None = None  # a site gone DOWN: from its first failed observation to the decision

    @property
    def stale(self) -> bool:
        return self.check_status is None


def evaluate(
    result: ProbeResult,
    config: Config,
    store: StateStore,
    publisher: EventPublisher,
    workflows: WorkflowStarter,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Evaluation:
    previous = store.get_check(result.site, result.check)
    state = advance(previous, result, config.thresholds)
    if state is None:
        # An exact redelivery may be Lambda's retry of a decision that failed half-way: decide again.
        if previous is not None and previous.last_observed_at == result.observed_at:
            return _decide_site(result, previous.status, config, store, publisher, workflows, clock)
        return Evaluation(None)
    if not store.put_check(state, previous.last_observed_at if previous else None):
        return Evaluation(None)
    if previous is not None and previous.status == state.status:
        return Evaluation(state.status)
    return _decide_site(result, state.status, config, store, publisher, workflows, clock)


def _decide_site(
    result: ProbeResult,
    check_status: str,
    config: Config,
    store: StateStore,
    publisher: EventPublisher,
    workflows: WorkflowStarter,
    clock: Callable[[], datetime],
) -> Evaluation:
    """Re-judge the result's site; on a change, act and announce, or give the change back and fail."""
    active = store.active_site(config.active_site)
    role: Role = "active" if result.site == active else "standby"
    verdict = site_verdict(result.site, role, store.site_checks(result.site))
    stored = store.site_status(result.site)
    if verdict.status == stored:
        return Evaluation(check_status)

    incident = incident_id(result.site, result.observed_at) if verdict.status == "DOWN" else None
    if not store.transition_site(result.site, stored, verdict.status, incident):
        return Evaluation(check_status)
    try:
        change, execution = _act(result, verdict, stored, role, incident, config, store, publisher, workflows, clock)
    except Exception:
        # Nothing may be lost: the retried delivery must find the site undecided and take the decision again.
        store.transition_site(result.site, verdict.status, stored, None)
        raise
    detection_s = None
    if change.status == "DOWN" and verdict.failing_since is not None:
        detection_s = max(0.0, (change.decided_at - verdict.failing_since).total_seconds())
    return Evaluation(check_status, change, execution, detection_s)


def _act(
    result: ProbeResult,
    verdict: SiteVerdict,
    stored: str,
    role: Role,
    incident: str | None,
    config: Config,
    store: StateStore,
    publisher: EventPublisher,
    workflows: WorkflowStarter,
    clock: Callable[[], datetime],
) -> tuple[SiteStatusChanged, str | None]:
    changed_at = result.observed_at
    decided_at = clock()

    action = f"none: {result.site} is UP again" if verdict.status == "UP" else ""
    execution = None
    if verdict.status == "DOWN":
        standby = config.other_site(result.site)
        decision = failover_decision(verdict, store.site_status(standby), store.site_checks(standby))
        action = (
            f"failover to {standby} started: {decision.reason}" if decision.start else f"no failover: {decision.reason}"
        )
        if decision.start and incident:
            execution = workflows.start(
                incident,
                {
                    "action": "failover",
                    "from": result.site,
                    "to": standby,
                    "reason": default_reason(result.site, changed_at) + "; " + verdict.explain(config.thresholds),
                    "dryRun": False,
                    "incidentId": incident,
                    "trigger": "automatic",
                },
            )
    change = SiteStatusChanged(
        site=result.site,
        status=verdict.status,
        previous=stored,  # type: ignore[arg-type]
        role=role,
        changed_at=changed_at,
        decided_at=decided_at,
        failed_checks=list(verdict.failed),
        threshold=config.thresholds.failures_to_down,
        incident_id=incident,
        action=action,
    )
    publisher.publish_site_status(change)
    return change, execution
