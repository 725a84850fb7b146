"""Disaster: fence the failed site through its vCenter, or prove otherwise that it cannot serve
(its lease, the standby agent's report, the standby's storage; `recovery.fencing` weighs them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime

from dcwatch.config import Config
from dcwatch.errors import FencingIncomplete, TransientError, VcenterUnavailable
from dcwatch.ports import AgentReportStore, Inventory, Observed, SiteLeases
from dcwatch.recovery.fencing import StorageOutcome, prove, vcenter_proof, vcenter_reason
from dcwatch.recovery.messages import readable_cause
from dcwatch.recovery.state import Clock, Probe, WorkflowState, utcnow
from dcwatch.recovery.steps.storage import probe_mirror
from dcwatch.recovery.waits import wait_for


def fence(
    state: WorkflowState,
    connect: Callable[[], AbstractContextManager[Inventory]],
    clock: Clock = utcnow,
    *,
    wait_until: datetime | None = None,
) -> WorkflowState:
    """Power off the failed site's VMs through its vCenter: proof (a) that the two sites never both serve.

    The power-offs run side by side, and the step waits for them until `wait_until` (None: one look), so
    that VMs vCenter is still powering off are not a fence to retry. Any fault raises. A vCenter no TCP
    connection reaches (`VcenterUnreachable`, the usual case when a site is down) or one that refuses us
    (`VcenterRefused`) goes on to `ProveFenced`, which seeks the other proofs; once connected, a fault or
    VMs still on are retried first: they may still run.
    """
    vms = state.plan.fence
    with connect() as inventory:
        try:
            before = inventory.power_states(vms)
            started = inventory.power_off(vms)
            still_on = _still_on(inventory, sorted(before), started, wait_until, clock)
        except (TransientError, VcenterUnavailable, OSError) as exc:
            # It answered, so its VMs may still run: retried, then the other proofs or a human decide.
            raise TransientError(
                f"vCenter of {state.plan.from_site} answered but fencing failed midway ({exc}); VMs may still be on"
            ) from exc
    if still_on:
        raise FencingIncomplete(f"still powered on at {state.plan.from_site}: {', '.join(still_on)}")
    off_already = sorted(vm for vm in before if vm not in started)
    missing = sorted(set(vms) - set(before))
    state.fencing = f"fenced {state.plan.from_site}: powered off {', '.join(sorted(started)) or 'nothing'}"
    if off_already:
        state.fencing += f"; already off: {', '.join(off_already)}"
    if missing:
        state.fencing += f"; not found: {', '.join(missing)}"
    state.fence_proof = vcenter_proof(state.plan.from_site, sorted(started), off_already, missing)
    return state.note("Fence", state.fencing, clock)


def _still_on(
    inventory: Inventory, vms: list[str], tasks: Mapping[str, str], until: datetime | None, clock: Clock
) -> list[str]:
    """The VMs still on; those whose power-off tasks are still running are waited for until `until` (None: not)."""
    on = sorted(vm for vm, power in inventory.power_states(vms).items() if power == "poweredOn")
    if not on or until is None:
        return on
    with inventory.watch(on, [tasks[vm] for vm in on if vm in tasks]) as watch:
        seen = wait_for(watch, _powered_off, until, clock)
    return sorted(vm for vm, guest in seen.guests.items() if guest.power == "poweredOn")


def _powered_off(seen: Observed) -> bool:
    """The fence's wait ends: every VM is off, or every power-off task has ended (what is on then stays on)."""
    if all(guest.power != "poweredOn" for guest in seen.guests.values()):
        return True
    return all(task.state in ("success", "error") for task in seen.tasks.values())


def prove_fenced(
    state: WorkflowState,
    config: Config,
    leases: SiteLeases,
    store: AgentReportStore,
    probe: Probe,
    clock: Clock = utcnow,
) -> WorkflowState:
    """After a Fence that did not power the failed site off: proof (b) from its lease and the standby agent's
    latest report, or (c) from the standby's storage; else a wait (bounded by `fencing.proof_waits`) while
    the lease could still expire, then the approval gate with every reason."""
    started, failed, standby = clock(), state.plan.from_site, state.plan.to
    previous = state.fence_proof
    error = state.fence_error or {}
    vcenter = vcenter_reason(failed, error, readable_cause(str(error.get("Cause", ""))))
    settings = config.fencing
    agents = settings is not None and bool(settings.agents)
    fenced_when = state.plan.storage.fenced_when if state.plan.storage else None
    storage = None
    if fenced_when is not None:
        result, where = probe_mirror(state, config, probe, fenced_when)
        storage = StorageOutcome(where, fenced_when, result.ok, result.reason)
    proof = prove(
        failed,
        standby,
        fencing=settings,
        vcenter=vcenter,
        lease=leases.read(failed) if agents else None,
        report=store.agent_report(standby) if agents else None,
        storage=storage,
        attempts=previous.attempts if previous else 0,
        now=clock(),
    )
    state.fence_proof = proof
    if proof.proven:
        state.fencing = proof.summary if proof.kind == "trust_quorum" else f"proven fenced: {proof.summary}"
    elif proof.wait_seconds:
        state.fencing = None
        return state.note("ProveFenced", f"{proof.summary}: looking again in {proof.wait_seconds} s", clock, started)
    else:
        state.fencing = proof.summary
    return state.note("ProveFenced", state.fencing, clock, started)
