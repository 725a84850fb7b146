"""A drill: note what it is about to change, and clean up exactly that afterwards, after a failure too."""

from __future__ import annotations

from datetime import datetime

from dcwatch.errors import DrillCleanupIncomplete
from dcwatch.ports import Dns, Inventory, Leases
from dcwatch.recovery.state import Clock, WorkflowState, utcnow


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
