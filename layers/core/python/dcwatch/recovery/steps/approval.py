"""The approval gates: the operator's answer comes back through Step Functions' task token."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dcwatch.ports import Leases, Notifier, Once
from dcwatch.recovery.messages import approval_request
from dcwatch.recovery.state import Clock, Gate, WorkflowState, run_now, utcnow
from dcwatch.recovery.steps.lease import renew_lease


def request_approval(
    state: WorkflowState,
    token: str,
    notifier: Notifier,
    clock: Clock = utcnow,
    *,
    once: Once = run_now,
    gate: Gate = "plan",
) -> str:
    """One approval message per gate and run: a retried invocation returns the first message's id, sends no second."""
    subject, message = approval_request(state, token, clock, gate)
    key = state.key("approval-request") if gate == "plan" else state.key("fencing-approval-request")
    return once(key, lambda: notifier.publish(subject, message))


def approval_answer(approved: bool, by: str, reason: str, at: datetime, caller: str | None = None) -> dict[str, Any]:
    """What `dcwatch approve|deny` sends back through the task token: `by` as typed, `caller` as AWS knows it."""
    return {"approved": approved, "by": by, "caller": caller, "reason": reason, "at": at.isoformat()}


def awaits_fencing_approval(state: WorkflowState) -> bool:
    """At (or past) the gate for an unproven fence: it comes after the plan's gate, so it is the latest."""
    return state.fence_proof is not None and not state.fence_proof.proven


def approved(state: WorkflowState, leases: Leases, ttl_s: int, clock: Clock = utcnow) -> WorkflowState:
    """After the wait: the lock is renewed (the wait may have been long) and the approval recorded."""
    state = renew_lease(state, leases, ttl_s, clock)
    if awaits_fencing_approval(state):
        decision = state.fence_approval.decision or {}
        by, why = _who(decision), decision.get("reason", "")
        reasons = "; ".join(state.fence_proof.reasons) if state.fence_proof else ""
        state.fencing = f"not proven fenced ({reasons}): promoted as approved by {by}: {why}"
        detail = (
            f"approved by {by}: {why}; promoting {state.plan.to} although {state.plan.from_site} is not proven fenced"
        )
        return state.note("ApprovedWithoutFenceProof", detail, clock)
    decision = state.approval.decision or {}
    return state.note("Approved", f"approved by {_who(decision)}: {decision.get('reason', '')}", clock)


def _who(decision: dict[str, Any]) -> str:
    """`by` as the operator typed it, and the caller as AWS named it (the CLI's; None from the console)."""
    by, caller = decision.get("by", "?"), decision.get("caller")
    return f"{by} ({caller})" if caller else str(by)
