"""A drill on clones: remove what an earlier drill left, note the drill records, present the replica's snapshot,
clone the standby VMs onto the isolated network, and clean exactly that up afterwards, after a failure too.

The standby VMs themselves are only ever the clones' sources: a drill never powers them on or changes them,
so it cannot touch production data, production networks, production hooks or the mirror."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from dcwatch.errors import DrillCleanupIncomplete, DrillCloneFailed, DrillCloneTimeout
from dcwatch.model import DRILL_RECORDS_IN_SYNC
from dcwatch.ports import Dns, DrillClone, DrillLab, HookRunner, Leases, Once
from dcwatch.recovery.plan import DrillPlan
from dcwatch.recovery.state import Clock, WorkflowState, run_now, utcnow
from dcwatch.recovery.steps.hooks import NoHooks, run_hooks
from dcwatch.recovery.waits import MAX_LOOKS, Sleep

CLONE_POLL_S = 1.0  # a clone task's state, read again inside CheckClones


def _drill(state: WorkflowState) -> DrillPlan:
    if state.plan.drill is None:
        raise ValueError(f"{state.incident_id} is a {state.plan.mode}, not a drill")
    return state.plan.drill


def _measure(state: WorkflowState) -> dict[str, float]:
    """Seconds from the start to each milestone the drill reached, read from its timeline."""

    def last(step: str, starts: str = "") -> datetime | None:
        times = [e.at for e in state.timeline if e.step == step and e.detail.startswith(starts)]
        return times[-1] if times else None

    reached = {
        "snapshot presented": last("Hook", "snapshot hook"),
        "clones ready": last("CheckClones"),
        "powered on": last("CheckGroup") if state.progress.all_groups_up else None,
        "verified": last("VerifyServices"),
        DRILL_RECORDS_IN_SYNC: last("CheckDns") if state.progress.dns_in_sync else None,
        "cleaned up": last("CleanUpDrill"),
    }
    return {name: round((at - state.started_at).total_seconds(), 3) for name, at in reached.items() if at is not None}


def prepare_drill(
    state: WorkflowState,
    lab: DrillLab,
    dns: Dns,
    clock: Clock = utcnow,
    *,
    hooks: HookRunner | None = None,
    once: Once = run_now,
) -> WorkflowState:
    """Remove earlier drills' clones, note the drill records, present the snapshot, start the clones."""
    drill, started = _drill(state), clock()
    leftovers = sorted(c.name for c in lab.clones() if c.run != drill.run)
    if leftovers:
        state.drill.leftovers = lab.destroy(leftovers)
        state.note("PrepareDrill", f"removed clones an earlier drill left: {', '.join(state.drill.leftovers)}", clock)
    state.drill.records_before = [
        r.model_copy(update={"values": dns.values(r.zone, r.name, r.type)}) for r in state.plan.records
    ]
    if drill.snapshot_hook is not None:
        extra = {"run": drill.run, "vms": list(drill.clones.values())}
        outcome = run_hooks(state, [drill.snapshot_hook], "snapshot", hooks or NoHooks(), once, clock, extra=extra)
        datastore = outcome[0].get("answer", {}).get("datastore") if outcome[0]["ok"] else None
        state.drill.datastore = str(datastore) if datastore else None
    state.drill.clone_tasks = once(
        state.key("clone", drill.run),
        lambda: lab.clone(
            drill.clones,
            drill.run,
            datastore=state.drill.datastore,
            folder=drill.folder,
            resource_pool=drill.resource_pool,
            network=drill.network,
        ),
    )
    state.drill.clone_deadline = started + timedelta(seconds=drill.clone_timeout_s)
    before = ", ".join(f"{r.name} {'/'.join(r.values) or 'absent'}" for r in state.drill.records_before)
    on = f" on datastore {state.drill.datastore}" if state.drill.datastore else ""
    detail = f"cloning {', '.join(drill.clones.values())}{on} as <vm>-drill-{drill.run}; drill records now: {before}"
    return state.note("PrepareDrill", detail, clock, started)


def check_clones(
    state: WorkflowState,
    lab: DrillLab,
    clock: Clock = utcnow,
    *,
    wait_until: datetime | None = None,
    sleep: Sleep = time.sleep,
) -> WorkflowState:
    """The clones are ready when every one is made and each of its NICs is on the drill network; none is
    powered on before. Waits inside until `wait_until` (None: one look), then leaves it to the state machine."""
    drill, started = _drill(state), clock()
    until = min(filter(None, [wait_until, state.drill.clone_deadline])) if wait_until else None
    for _ in range(MAX_LOOKS):
        made = _made(state, lab)
        fresh = [c for c in made if c not in state.drill.isolated]
        if fresh:
            lab.isolate(fresh, drill.network)
            state.drill.isolated += fresh
        if len(state.drill.isolated) == len(drill.clones):
            return _clones_ready(state, lab, clock, started)
        if state.drill.clone_deadline and clock() > state.drill.clone_deadline:
            waiting = sorted(set(drill.clones) - set(state.drill.isolated))
            raise DrillCloneTimeout(
                f"drill clones not made within drill.clone_timeout_s ({drill.clone_timeout_s} s): {', '.join(waiting)}"
            )
        if until is None or clock() >= until:
            return state
        sleep(min(CLONE_POLL_S, max(0.0, (until - clock()).total_seconds())))
    return state


def _made(state: WorkflowState, lab: DrillLab) -> list[str]:
    """The clones made so far, in the plan's order; a failed clone task fails the step."""
    tasks = state.drill.clone_tasks
    states = lab.task_states([t for t in tasks.values() if t]) if any(tasks.values()) else {}
    failed = {c: states[t].error for c, t in tasks.items() if t in states and states[t].state == "error"}
    if failed:
        raise DrillCloneFailed("drill clone failed: " + "; ".join(f"{c}: {e}" for c, e in sorted(failed.items())))
    pending = {c for c, t in tasks.items() if t and (t not in states or states[t].state != "success")}
    return [c for c in _drill(state).clones if c not in pending]


def _as_found(clone: DrillClone | None) -> str:
    return "missing" if clone is None else f"{clone.power}, on {', '.join(clone.networks) or 'no network'}"


def _clones_ready(state: WorkflowState, lab: DrillLab, clock: Clock, started: datetime) -> WorkflowState:
    """Read back what vCenter holds: every clone there, off, and on the drill network only."""
    drill = _drill(state)
    found = {c.name: c for c in lab.clones(drill.run)}
    wrong = [
        f"{name} ({_as_found(found.get(name))})"
        for name in drill.clones
        if (c := found.get(name)) is None or c.power == "poweredOn" or set(c.networks) - {drill.network}
    ]
    if wrong:
        raise DrillCloneFailed(f"drill clones not isolated on {drill.network}: {', '.join(wrong)}")
    state.drill.clones_ready = True
    detail = f"{len(drill.clones)} clones ready, off, every NIC on {drill.network}: {', '.join(drill.clones)}"
    return state.note("CheckClones", detail, clock, started)


def clean_up_drill(
    state: WorkflowState,
    lab: DrillLab,
    dns: Dns,
    clock: Clock = utcnow,
    *,
    hooks: HookRunner | None = None,
    once: Once = run_now,
) -> WorkflowState:
    """Restore the drill records, power off and destroy this drill's clones, then remove the snapshot; safe to
    run again. The clones are the drill's own, so they go whoever holds the lock now: no failover needs them."""
    drill, started = _drill(state), clock()
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
    made = sorted({c.name for c in lab.clones(drill.run)})
    destroyed = lab.destroy(made) if made else []
    left = sorted(c.name for c in lab.clones(drill.run))
    if left:
        raise DrillCleanupIncomplete(f"drill clones still at {state.plan.to}: {', '.join(left)}")
    if drill.snapshot_cleanup_hook is not None:
        extra = {"run": drill.run, "datastore": state.drill.datastore}
        run_hooks(
            state, [drill.snapshot_cleanup_hook], "snapshot-cleanup", hooks or NoHooks(), once, clock, extra=extra
        )
    records = [f"{r.name} restored" for r in restore] + [f"{r.name} removed" for r in remove]
    clones = f"{len(destroyed)} clone{'' if len(destroyed) == 1 else 's'}"
    state.drill.cleanup = f"destroyed {clones} ({', '.join(destroyed) or 'none made'}); " + (
        ", ".join(records) or "drill records untouched"
    )
    state.note("CleanUpDrill", state.drill.cleanup, clock, started)
    state.drill.measured = _measure(state)
    return state


def clean_up_drill_whatever_the_lock(
    state: WorkflowState,
    lab: DrillLab,
    dns: Dns,
    leases: Leases,
    ttl_s: int,
    clock: Clock = utcnow,
    *,
    hooks: HookRunner | None = None,
    once: Once = run_now,
) -> WorkflowState:
    """The cleanup always runs; a lock lost meanwhile is reported, not a reason to leave the drill behind."""
    if not leases.renew(state.owner, ttl_s, clock()):
        holder = leases.holder()
        other = holder.owner if holder is not None and holder.owner != state.owner else None
        state.drill.lease_problem = (
            f"the drill lost the lock {f'to {other}' if other else '(it expired)'} before its cleanup"
        )
    return clean_up_drill(state, lab, dns, clock, hooks=hooks, once=once)
