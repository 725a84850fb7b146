"""The outcome: recorded in the audit log first, then announced (Notify, RecordAudit, NotifyFailure)."""

from __future__ import annotations

from dcwatch.model import LastFailover
from dcwatch.ports import AuditLog, Notifier, Once
from dcwatch.recovery.messages import audit_record, failure_message, success_message
from dcwatch.recovery.state import Clock, WorkflowState, run_now, utcnow


def notify(state: WorkflowState, notifier: Notifier, clock: Clock = utcnow, *, once: Once = run_now) -> WorkflowState:
    started = clock()
    subject, message = success_message(state, clock)
    message_id = once(state.key("notify"), lambda: notifier.publish(subject, message))
    return state.note("Notify", f"notification sent ({message_id}): {subject}", clock, started)


def record_audit(
    state: WorkflowState, store: AuditLog, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    """Before the notification: the outcome is recorded whatever becomes of the announcement. A recovery's
    record, the new active site and the cooldown's start are written together (`AuditLog.record_outcome`).
    After a notification failed (`notifyError`), a record of that instead."""
    if state.notify_error is not None:
        return _record_notify_error(state, store, clock, once)
    state.note("RecordAudit", "audit record written", clock, clock())
    if state.request.dry_run or state.request.mode == "drill":
        outcome = "dry-run" if state.request.dry_run else "drill-passed"
        once(state.key("audit"), lambda: store.append_audit(state.incident_id, audit_record(state, outcome, clock)))
        return state
    once(
        state.key("audit"),
        lambda: store.record_outcome(
            state.incident_id,
            audit_record(state, "succeeded", clock),
            active_site=state.plan.to,
            failover=LastFailover(state.incident_id, clock()),
        ),
    )
    return state


def _record_notify_error(state: WorkflowState, store: AuditLog, clock: Clock, once: Once) -> WorkflowState:
    step = "NotifyFailure" if state.failed_step else "Notify"
    state.note("RecordAudit", f"{step} failed after its retries: the outcome stands as recorded", clock, clock())
    record = {**audit_record(state, "notify-failed", clock), "notifyError": state.notify_error, "notifyStep": step}
    once(state.key("audit-notify-error", step), lambda: store.append_audit(state.incident_id, record))
    return state


def notify_failure(
    state: WorkflowState, notifier: Notifier, store: AuditLog, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    """Audit first, then announce: a failed publish (retried, then `notifyError`) never loses the record. A
    failure after the DNS switch moved production: the cooldown starts with it, as with a success."""
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
    finally:  # announced even when the record cannot be written (yet): the retry writes it, publishing once
        once(state.key("notify-failure", state.failed_step), lambda: notifier.publish(subject, message))
    return state
