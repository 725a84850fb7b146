"""What recovery tells the operators and the audit log: success, failure, drill, stopped and approval
messages, and the audit record of an outcome."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from dcwatch.model import DRILL_RECORDS_IN_SYNC
from dcwatch.recovery.plan import describe_plan
from dcwatch.recovery.request import MODE_WORDS
from dcwatch.recovery.state import Clock, Gate, WorkflowState, utcnow
from dcwatch.subjects import alert_subject


def _elapsed(state: WorkflowState, clock: Clock) -> float:
    return (clock() - state.started_at).total_seconds()


def _timeline(state: WorkflowState) -> list[str]:
    return [
        f"  {e.at:%H:%M:%S} {e.step}" + (f" ({e.duration_s:.1f} s)" if e.started else "") + f": {e.detail}"
        for e in state.timeline
    ]


def success_message(state: WorkflowState, clock: Clock = utcnow) -> tuple[str, str]:
    """The subject alone says whether to act: `OK: ... no action needed` or `ACTION NEEDED: ...`."""
    request, progress = state.request, state.progress
    words = MODE_WORDS[request.mode]
    route = f"{request.from_site} -> {request.to}"
    failed = len(progress.hook_failures)
    if request.dry_run:
        subject = f"OK: DRY RUN {route}, nothing changed; no action needed"
        body = [f"Dry run: nothing was changed. This is what a {words} would do:", *describe_plan(state.plan)]
        body += [f"Storage: {state.storage}"] if state.storage else []
    elif request.mode == "drill":
        subject, body = drill_message(state)
    else:
        title = words.upper()
        if failed:
            subject = f"ACTION NEEDED: {title} DONE {route}, but {failed} hook(s) failed"
        else:
            subject = f"OK: {title} DONE {route}, services run at {request.to}; no action needed"
        body = [
            f"Services now run at {request.to}: every service check passed there and DNS answers with its addresses.",
            f"{request.from_site} stays out of service until failback.",
            f"Reason: {request.reason}",
            f"Recovery time (RTO, from the workflow's start to DNS verified): {_elapsed(state, clock):.1f} s",
            f"Fencing: {state.fencing or 'not done'}",
            f"Storage: {state.storage or 'no mirror configured'}",
            f"Powered on: {', '.join(progress.powered_on) or 'nothing (already on)'}",
        ]
        body += [f"Shut down at {request.from_site}: {_shutdown_summary(state)}"] if state.plan.shutdown else []
        if failed:
            body += [
                "Hooks that failed (set to continue), to be done by hand:",
                *[f"  {f}" for f in progress.hook_failures],
            ]
    body += [f"Report: {state.report_url}"] if state.report_url else []
    body += ["", f"Incident: {state.incident_id}", "Timeline (end time, duration, step):", *_timeline(state)]
    return alert_subject(subject), "\n".join(body)


def _shutdown_summary(state: WorkflowState) -> str:
    return "; ".join(f"{vm}: {how}" for vm, how in state.shutdown.how.items()) or "nothing"


def audit_record(state: WorkflowState, outcome: str, clock: Clock = utcnow) -> dict[str, Any]:
    return {
        "incidentId": state.incident_id,
        "runId": state.run_id,
        "outcome": outcome,
        "request": state.request.model_dump(mode="json", by_alias=True),
        "startedAt": state.started_at.isoformat(),
        "finishedAt": clock().isoformat(),
        "durationS": round(_elapsed(state, clock), 3),
        "poweredOn": state.progress.powered_on,
        "timeline": [e.model_dump(mode="json") for e in state.timeline],
        "fencing": state.fencing,
        "mode": state.request.mode,
        "services": state.plan.services,
        "groups": state.plan.groups,
        "shutdown": state.shutdown.how,
        "drill": _drill_record(state),
        "approval": state.approval.decision,
        "fenceProof": state.fence_proof.model_dump(mode="json", by_alias=True) if state.fence_proof else None,
        "fencingApprovedBy": state.fencing_approved_by,
        "storage": state.storage,
        "hookFailures": state.progress.hook_failures,
        "failedStep": state.failed_step,
        "error": state.error,
    }


def _drill_record(state: WorkflowState) -> dict[str, Any] | None:
    """What a drill did, with where it worked: its run, network and clones (clone -> standby VM)."""
    if state.plan.drill is None:
        return None
    where = state.plan.drill.model_dump(mode="json", include={"run", "network", "clones"})
    return where | state.drill.model_dump(mode="json", by_alias=True)


def _what_is_left(state: WorkflowState) -> list[str]:
    """Exactly what was done and what was not, from the progress the workflow carried to the failure."""
    progress, plan = state.progress, state.plan
    current = plan.groups[progress.group] if progress.group < len(plan.groups) else []
    started = [vm for vm in current if vm in progress.tasks and vm not in progress.powered_on]
    later = [vm for group in plan.groups[progress.group + 1 :] for vm in group]
    not_started = [vm for vm in current if vm not in progress.tasks and vm not in progress.powered_on] + later
    switched = bool(progress.dns_changes)
    records = ", ".join(r.name for r in plan.records)
    return [
        f"Up at {plan.to}: {', '.join(progress.powered_on) or 'nothing'}",
        f"Power-on started, not confirmed up: {', '.join(started) or 'none'}",
        f"Not powered on: {', '.join(not_started) or 'none'}",
        (f"DNS: UPSERT sent for {records}" if switched else f"DNS: not switched; {records} still at {plan.from_site}")
        + (" (INSYNC and verified)" if progress.dns_in_sync else ""),
        *(
            [f"DNS TTL lowered to {state.request.lower_ttl_s} s (values unchanged): restore it by hand if you stay"]
            if progress.ttl_changes and not switched
            else []
        ),
        f"Storage: {state.storage or 'not checked'}",
        f"Fencing: {state.fencing or 'not done'}",
        *[f"Hook failed (continued): {f}" for f in progress.hook_failures],
        f"Nothing was rolled back: what runs at {plan.to} keeps running. Fix the cause, then rerun the failover "
        "(steps already done are skipped) or fail back by hand.",
    ]


def failure_message(state: WorkflowState, clock: Clock = utcnow) -> tuple[str, str]:
    error = state.error or {}
    step = state.failed_step or "unknown step"
    cause = str(error.get("Cause", ""))
    if state.request.mode == "drill" or step == "RequestApproval":
        return stopped_message(state, step, readable_cause(cause))
    if error.get("Error") in ("LeaseHeld", "Superseded"):
        # Another recovery runs, or ran (a second trigger of the same outage): this one changed nothing.
        route = f"{state.plan.from_site} -> {state.plan.to}"
        why = "another recovery holds the lock" if error["Error"] == "LeaseHeld" else "production already moved"
        subject = f"OK: REFUSED {route}, {why}; no action needed"
        body = [f"This request changed nothing: {readable_cause(cause)}", f"Reason given: {state.request.reason}"]
        body += ["", f"Incident: {state.incident_id}", "Timeline (end time, duration, step):", *_timeline(state)]
        return alert_subject(subject), "\n".join(body)
    words = MODE_WORDS[state.request.mode]
    subject = f"ACTION NEEDED: {words} {state.plan.from_site} -> {state.plan.to} failed at {step}"
    body = [
        f"The failover stopped at step {step}: {error.get('Error', 'error')}",
        f"Cause: {readable_cause(cause)}",
        *_what_is_left(state),
        *([f"Shut down at {state.plan.from_site}: {_shutdown_summary(state)}"] if state.plan.shutdown else []),
        "",
        f"Incident: {state.incident_id}",
        "Done before the failure (end time, duration, step):",
        *_timeline(state),
    ]
    return alert_subject(subject), "\n".join(body)


def drill_message(state: WorkflowState) -> tuple[str, list[str]]:
    """A passed drill: its own timeline (snapshot, clones, power-on, verified, records in sync, cleaned up), and
    that production was never touched."""
    request, measured = state.request, state.drill.measured
    network = state.plan.drill.network if state.plan.drill else "?"
    proven = measured.get(DRILL_RECORDS_IN_SYNC, _elapsed_at(state, "CheckDns"))
    subject = f"OK: DRILL PASSED {request.from_site} -> {request.to}, clones proven in {proven:.1f} s"
    if state.drill.lease_problem:
        subject = f"ACTION NEEDED: DRILL PASSED {request.from_site} -> {request.to}, but it lost the lock"
    body = [
        f"Clones of the standby VMs of {', '.join(state.plan.services)} at {request.to} came up on the isolated "
        f"network {network}, passed their checks there and answered on the drill records. The standby VMs, "
        "production, its networks, its hooks and its DNS records were not touched.",
        f"Reason: {request.reason}",
        "Drill timeline (seconds from the start):",
        *[f"  {milestone}: {seconds:.1f} s" for milestone, seconds in measured.items()],
        f"Cleanup: {state.drill.cleanup or 'not done'}",
    ]
    body += (
        [f"Removed first, left by an earlier drill: {', '.join(state.drill.leftovers)}"]
        if state.drill.leftovers
        else []
    )
    body += [f"Lock: {state.drill.lease_problem}"] if state.drill.lease_problem else []
    return subject, body


def _elapsed_at(state: WorkflowState, step: str) -> float:
    """Seconds from the start to the last timeline entry of `step` (0 when it never ran)."""
    times = [e.at for e in state.timeline if e.step == step]
    return (times[-1] - state.started_at).total_seconds() if times else 0.0


def stopped_message(state: WorkflowState, step: str, cause: str) -> tuple[str, str]:
    """A drill that failed (cleaned up), or a recovery nobody approved: production as it was."""
    request, words = state.request, MODE_WORDS[state.request.mode]
    unproven = state.fence_proof is not None and not state.fence_proof.proven
    if step == "RequestApproval":
        gate = state.fence_approval if unproven else state.approval
        decision = gate.decision or {}
        if decision:
            cause = f"denied by {decision.get('by', '?')}: {decision.get('reason', '')}"
        elif (state.error or {}).get("Error") == "States.Timeout":
            cause = f"no answer within {gate.timeout_seconds} s"
        subject = f"OK: NOT APPROVED {words} {request.from_site} -> {request.to}, nothing was changed"
        lines = [f"The {words} was not approved: {cause}", "Nothing was changed; start it again to retry."]
        if unproven:
            assert state.fence_proof is not None
            subject = (
                f"ACTION NEEDED: NOT APPROVED {words} {request.from_site} -> {request.to}, "
                f"{request.from_site} not proven fenced"
            )
            lines = [
                state.fence_proof.summary,
                f"The promotion of {request.to} was not approved: {cause}",
                f"Nothing was powered on at {request.to} and DNS still points at {request.from_site}. Once "
                f"{request.from_site} is known not to serve (or is fenced by hand), start the {words} again.",
            ]
    elif state.drill.cleanup is not None and step != "CleanUpDrill":
        subject = f"ACTION NEEDED: DRILL FAILED at {step}, production untouched, drill cleaned up"
        lines = [f"The drill stopped at step {step}: {cause}", f"Cleanup: {state.drill.cleanup}"]
        lines += [f"Lock: {state.drill.lease_problem}"] if state.drill.lease_problem else []
    else:
        subject = f"ACTION NEEDED: drill cleanup incomplete after {step}"
        # After a failed step the cleanup's own error is in cleanupError; when the cleanup was the step, in error.
        cleanup_error = state.cleanup_error or (state.error if step == "CleanUpDrill" else None) or {}
        lines = [
            f"The drill stopped at step {step}: {cause}",
            f"Cleanup did not finish: {readable_cause(str(cleanup_error.get('Cause', ''))) or 'cause unknown'}",
            f"Remove the drill's clones at {request.to} (`dcwatch drill --cleanup`) and restore the drill records by "
            f"hand: {', '.join(r.name for r in state.plan.records)}. Production was not touched.",
        ]
    lines += ["", f"Incident: {state.incident_id}", "Timeline (end time, duration, step):", *_timeline(state)]
    return alert_subject(subject), "\n".join(lines)


def readable_cause(cause: str) -> str:
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def approval_request(state: WorkflowState, token: str, clock: Clock = utcnow, gate: Gate = "plan") -> tuple[str, str]:
    """The message that asks for approval: the plan (or why the failed site is not proven fenced), the
    deadline, the two commands that answer."""
    request, words = state.request, MODE_WORDS[state.request.mode]
    waits = state.fence_approval if gate == "fencing" else state.approval
    deadline = clock() + timedelta(seconds=waits.timeout_seconds)
    if gate == "fencing":
        proof = state.fence_proof
        subject = f"APPROVAL NEEDED: {words} {request.from_site} -> {request.to}, not proven fenced"
        lines = [
            proof.summary if proof else f"cannot prove {request.from_site} is fenced, approve to proceed anyway",
            f"Approving promotes {request.to} while {request.from_site} may still serve: if it does, both sites "
            "write the mirrored data. Make sure first that it cannot (its services, its storage, its agent's VM), "
            "or fence it by hand.",
            f"Reason of the {words}: {request.reason}",
            f"Nothing changes at {request.to} until it is approved; without an answer by "
            f"{deadline:%Y-%m-%d %H:%M:%S} UTC it stops.",
        ]
    else:
        subject = f"APPROVAL NEEDED: {words} {request.from_site} -> {request.to}"
        lines = [
            f"A {request.trigger} {words} from {request.from_site} to {request.to} waits for your decision.",
            f"Reason: {request.reason}",
            *(
                [
                    f"FORCED: {request.to} is promoted even beyond the storage mirror's data-loss window or against "
                    "its agent's report: data may be lost. A forced request always waits for this approval."
                ]
                if request.force
                else []
            ),
            f"Nothing changes until it is approved; without an answer by {deadline:%Y-%m-%d %H:%M:%S} UTC it stops.",
        ]
    lines += [
        "",
        "Approve:",
        f"  dcwatch approve --token {token} --reason '...'",
        "Deny:",
        f"  dcwatch deny --token {token} --reason '...'",
        "(with the stack outputs TableName and AuditTableName as --table and --audit-table, or as",
        "DCWATCH_TABLE_NAME and DCWATCH_AUDIT_TABLE_NAME: the answer is audited there), or the same from",
        'the console: the control function with {"action": "approve" or "deny", "token", "reason", "by"}.',
        "",
        "The plan:",
        *[f"  {line}" for line in describe_plan(state.plan)],
        "",
        f"Incident: {state.incident_id}",
    ]
    return alert_subject(subject), "\n".join(lines)
