"""The outcome: recorded in the audit log first, then announced (Notify, RecordAudit, NotifyFailure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcwatch.detection.announce import part_keys
from dcwatch.model import LastFailover
from dcwatch.ports import AuditLog, Notifier, Once, ReportStore
from dcwatch.recovery.messages import audit_record, failure_message, success_message
from dcwatch.recovery.state import Clock, WorkflowState, run_now, utcnow

# The report page of an audit record (`dcwatch.reports.render_report`, bound to the config's RTO target).
Render = Callable[[dict[str, Any]], str]


def report_key(state: WorkflowState) -> str:
    """Where a run's report is kept: by mode and incident, one object per run."""
    return f"reports/{state.request.mode}/{state.incident_id}/{state.run_id}.html"


def write_report(
    state: WorkflowState, record: dict[str, Any], reports: ReportStore | None, render: Render | None, once: Once
) -> WorkflowState:
    """The run's report page, once, from its audit record: linked from the notice that follows. A report that
    cannot be written is said in the timeline and changes nothing else: the recovery's outcome stands."""
    if reports is None or render is None:
        return state
    store = reports
    try:
        state.report_url = once(state.key("report"), lambda: store.put_report(report_key(state), render(record)))
    except Exception as exc:  # noqa: BLE001 - whatever the page or S3 did, the outcome is recorded and announced
        state.timeline[-1].detail += f"; report not written: {type(exc).__name__}: {exc}"
    return state


def notify(state: WorkflowState, notifier: Notifier, clock: Clock = utcnow, *, once: Once = run_now) -> WorkflowState:
    started = clock()
    subject, message = success_message(state, clock)
    message_id = once(state.key("notify"), lambda: notifier.publish(subject, message))
    return state.note("Notify", f"notification sent ({message_id}): {subject}", clock, started)


def record_audit(
    state: WorkflowState,
    store: AuditLog,
    clock: Clock = utcnow,
    *,
    once: Once = run_now,
    reports: ReportStore | None = None,
    render: Render | None = None,
) -> WorkflowState:
    """Before the notification: the outcome is recorded whatever becomes of the announcement. A recovery's
    record, the new active site and the cooldown's start are written together (`AuditLog.record_outcome`);
    then its report page, where the stack keeps them (`reports`). After a notification failed
    (`notifyError`), a record of that instead."""
    if state.notify_error is not None:
        return _record_notify_error(state, store, clock, once)
    state.note("RecordAudit", "audit record written", clock, clock())
    if state.request.dry_run or state.request.mode == "drill":
        outcome = "dry-run" if state.request.dry_run else "drill-passed"
        record = audit_record(state, outcome, clock)
        once(state.key("audit"), lambda: store.append_audit(state.incident_id, record))
        return write_report(state, record, reports, render, once)
    record = audit_record(state, "succeeded", clock)
    once(
        state.key("audit"),
        lambda: store.record_outcome(
            state.incident_id,
            record,
            active_site=state.plan.to,
            failover=LastFailover(state.incident_id, clock()),
            # Its vCenter and services were proven by this run; what the evaluator stored of them is from its last
            # turn as the active site (a failback's: the outage), and would stand until a check of them changes.
            fresh_conditions=part_keys(state.plan.to, state.plan.services),
        ),
    )
    return write_report(state, record, reports, render, once)


def _record_notify_error(state: WorkflowState, store: AuditLog, clock: Clock, once: Once) -> WorkflowState:
    step = "NotifyFailure" if state.failed_step else "Notify"
    state.note("RecordAudit", f"{step} failed after its retries: the outcome stands as recorded", clock, clock())
    record = {**audit_record(state, "notify-failed", clock), "notifyError": state.notify_error, "notifyStep": step}
    once(state.key("audit-notify-error", step), lambda: store.append_audit(state.incident_id, record))
    return state


def notify_failure(
    state: WorkflowState,
    notifier: Notifier,
    store: AuditLog,
    clock: Clock = utcnow,
    *,
    once: Once = run_now,
    reports: ReportStore | None = None,
    render: Render | None = None,
) -> WorkflowState:
    """Audit first, then announce: a failed publish (retried, then `notifyError`) never loses the record. A
    failure after the DNS switch moved production: the cooldown starts with it, as with a success. The report
    page goes between the two, so the notice links it."""
    subject, message = failure_message(state, clock)
    state.note("NotifyFailure", f"failure at {state.failed_step} announced", clock, clock())
    moved = bool(state.progress.dns_changes) and state.request.mode != "drill" and not state.request.dry_run
    record = audit_record(state, "failed", clock)
    failover = LastFailover(state.incident_id, clock()) if moved else None
    try:
        once(
            state.key("audit-failure", state.failed_step),
            lambda: store.record_outcome(state.incident_id, record, failover=failover),
        )
        write_report(state, record, reports, render, once)
    finally:  # announced even when the record cannot be written (yet): the retry writes it, publishing once
        message += f"\nReport: {state.report_url}" if state.report_url else ""
        once(state.key("notify-failure", state.failed_step), lambda: notifier.publish(subject, message))
    return state
