"""The steps only some recovery modes take; the shared ones (power on, verify, DNS, notify) are in `workflow`.

- migration and failback shut the leaving site down gracefully, last priority group first: guest
  shutdown through VMware Tools, and power-off for a guest that refuses or is still up at the group's
  deadline, each VM's way down recorded;
- a drill notes what it is about to change, and its cleanup restores exactly that, after a failure too;
- the approval gate: the operator's answer comes back through Step Functions' task token.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from dcwatch.errors import DrillCleanupIncomplete, ShutdownIncomplete
from dcwatch.ports import Dns, Inventory, Leases, Notifier, Once
from dcwatch.recovery.request import MODE_WORDS, describe_plan
from dcwatch.recovery.workflow import Clock, WorkflowState, renew_lease, run_now, utcnow


def shutdown_group(state: WorkflowState, inventory: Inventory, timeout_s: int, clock: Clock = utcnow) -> WorkflowState:
    """Ask the guests of the next group to shut down; power off at once those whose Tools refuse."""
    progress, groups = state.shutdown, state.plan.shutdown
    if progress.group >= len(groups):
        progress.group_done, progress.all_off = True, True
        return state.note("ShutdownGroup", f"nothing to shut down at {state.plan.from_site}", clock)
    vms = groups[progress.group]
    power = inventory.power_states(vms)
    for vm in vms:
        if vm not in power:
            progress.how[vm] = "not found"
        elif power[vm] != "poweredOn":
            progress.how.setdefault(vm, "already off")
    running = [vm for vm in vms if power.get(vm) == "poweredOn"]
    refused = inventory.shutdown_guest(running) if running else {}
    if refused:
        inventory.power_off(list(refused))
        for vm, why in refused.items():
            progress.how[vm] = f"powered off: guest shutdown refused ({why})"
    progress.group_done, progress.forced = False, False
    progress.deadline = clock() + timedelta(seconds=timeout_s)
    asked = [vm for vm in running if vm not in refused]
    detail = f"shutdown {progress.group + 1} of {len(groups)}: guest shutdown of {', '.join(asked) or 'nothing'}"
    detail += f"; powered off (guest refused): {', '.join(sorted(refused))}" if refused else ""
    return state.note("ShutdownGroup", detail, clock)


def check_shutdown(state: WorkflowState, inventory: Inventory, timeout_s: int, clock: Clock = utcnow) -> WorkflowState:
    """The group is done when every VM is off; past the deadline the stragglers are powered off, once."""
    progress = state.shutdown
    if progress.group >= len(state.plan.shutdown):
        progress.group_done, progress.all_off = True, True
        return state
    vms = state.plan.shutdown[progress.group]
    still_on = sorted(vm for vm, power in inventory.power_states(vms).items() if power == "poweredOn")
    now = clock()
    if still_on:
        if progress.deadline is None or now <= progress.deadline:
            return state
        if progress.forced:
            raise ShutdownIncomplete(
                f"still powered on at {state.plan.from_site} after guest shutdown and power-off: {', '.join(still_on)}"
            )
        inventory.power_off(still_on)
        for vm in still_on:
            progress.how[vm] = f"powered off: guest still up after {timeout_s} s"
        progress.forced, progress.deadline = True, now + timedelta(seconds=timeout_s)
        return state.note("CheckShutdown", f"guest shutdown timed out, powering off {', '.join(still_on)}", clock)
    for vm in vms:
        progress.how.setdefault(vm, "guest shutdown")
    state.note("CheckShutdown", f"off: {', '.join(f'{vm} ({progress.how[vm]})' for vm in vms)}", clock)
    progress.group += 1
    progress.group_done, progress.forced, progress.deadline = True, False, None
    progress.all_off = progress.group >= len(state.plan.shutdown)
    return state


def _drill_vms(state: WorkflowState) -> list[str]:
    return [vm for group in state.plan.groups for vm in group]


def prepare_drill(state: WorkflowState, inventory: Inventory, dns: Dns, clock: Clock = utcnow) -> WorkflowState:
    """Note which drill VMs are on already (left on) and what the drill records hold (restored after)."""
    vms = _drill_vms(state)
    power = inventory.power_states(vms)
    state.drill.was_on = [vm for vm in vms if power.get(vm) == "poweredOn"]
    state.drill.records_before = [
        r.model_copy(update={"values": dns.values(r.zone, r.name, r.type)}) for r in state.plan.records
    ]
    before = ", ".join(f"{r.name} {'/'.join(r.values) or 'absent'}" for r in state.drill.records_before)
    detail = f"drill records now: {before}"
    detail += f"; already on, left on: {', '.join(state.drill.was_on)}" if state.drill.was_on else ""
    return state.note("PrepareDrill", detail, clock)


def _measure(state: WorkflowState) -> dict[str, float]:
    """Seconds from the start to each milestone the drill reached, from its timeline."""

    def last(step: str) -> datetime | None:
        times = [e.at for e in state.timeline if e.step == step]
        return times[-1] if times else None

    milestones = {
        "standby powered on": last("CheckGroup"),
        "services verified": last("VerifyServices"),
        "drill record in sync": last("CheckDns") if state.progress.dns_in_sync else None,
    }
    return {name: (at - state.started_at).total_seconds() for name, at in milestones.items() if at is not None}


def clean_up_drill(
    state: WorkflowState, inventory: Inventory, dns: Dns, clock: Clock = utcnow, *, keep_vms_for: str | None = None
) -> WorkflowState:
    """Restore the drill records, then power off what the drill powered on; safe to run again.

    `keep_vms_for`: another recovery holds the lock now and may be bringing up these very VMs: they stay on.
    """
    if not state.drill.measured:
        state.drill.measured = _measure(state)
    restore = [r for r in state.drill.records_before if r.values]
    remove = [
        r.model_copy(update={"values": now})
        for r in state.drill.records_before
        if not r.values and (now := dns.values(r.zone, r.name, r.type))
    ]
    if restore:
        dns.upsert([r.as_values() for r in restore])
    if remove:
        dns.delete([r.as_values() for r in remove])
    ours = [vm for vm in _drill_vms(state) if vm not in state.drill.was_on]
    on = [vm for vm, power in inventory.power_states(ours).items() if power == "poweredOn"]
    records = [f"{r.name} restored" for r in restore] + [f"{r.name} removed" for r in remove]
    if keep_vms_for and on:
        state.drill.cleanup = (
            f"{', '.join(records) or 'drill records untouched'}; left on for {keep_vms_for}, which holds the lock "
            f"now: {', '.join(sorted(on))} (power them off by hand once it no longer needs them)"
        )
        return state.note("CleanUpDrill", state.drill.cleanup, clock)
    if on:
        inventory.power_off(on)
    still_on = sorted(vm for vm, power in inventory.power_states(on).items() if power == "poweredOn")
    if still_on:
        raise DrillCleanupIncomplete(f"drill VMs still on at {state.plan.to}: {', '.join(still_on)}")
    state.drill.cleanup = f"powered off {', '.join(sorted(on)) or 'nothing'}; " + (
        ", ".join(records) or "drill records untouched"
    )
    return state.note("CleanUpDrill", state.drill.cleanup, clock)


def clean_up_drill_whatever_the_lock(
    state: WorkflowState, inventory: Inventory, dns: Dns, leases: Leases, ttl_s: int, clock: Clock = utcnow
) -> WorkflowState:
    """The cleanup always runs; a lock lost meanwhile is reported, not a reason to leave the drill behind.

    Only the drill's VMs wait for a human when another recovery holds the lock now (it may need them).
    """
    if leases.renew(state.owner, ttl_s, clock()):
        return clean_up_drill(state, inventory, dns, clock)
    holder = leases.holder()
    other = holder.owner if holder is not None and holder.owner != state.owner else None
    lost = f"to {other}" if other else "(it expired)"
    state.drill.lease_problem = f"the drill lost the lock {lost} before its cleanup"
    return clean_up_drill(state, inventory, dns, clock, keep_vms_for=other)


Gate = Literal["plan", "fencing"]


def approval_request(state: WorkflowState, token: str, clock: Clock = utcnow, gate: Gate = "plan") -> tuple[str, str]:
    """The message that asks for approval: the plan (or why the failed site is not proven fenced), the
    deadline, the two commands that answer."""
    request, words = state.request, MODE_WORDS[state.request.mode]
    waits = state.fence_approval if gate == "fencing" else state.approval
    deadline = clock() + timedelta(seconds=waits.timeout_seconds)
    if gate == "fencing":
        proof = state.fence_proof
        subject = f"[dcwatch] APPROVAL NEEDED: {words} {request.from_site} -> {request.to}, not proven fenced"
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
        subject = f"[dcwatch] APPROVAL NEEDED: {words} {request.from_site} -> {request.to}"
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
    return subject[:100], "\n".join(lines)


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
