"""Migration and failback: the leaving site shut down gracefully, last priority group first.

Guest shutdown through VMware Tools, and power-off for a guest that refuses or is still up at the
group's deadline; each VM's way down is recorded.
"""

from __future__ import annotations

from datetime import timedelta

from dcwatch.errors import ShutdownIncomplete
from dcwatch.ports import Inventory
from dcwatch.recovery.state import Clock, WorkflowState, utcnow


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
