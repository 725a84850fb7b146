"""CheckStandby: the standby's vCenter has every VM of the plan (a drill's: every VM it clones), and its own agent
will not fence it."""

from __future__ import annotations

from datetime import datetime

from dcwatch.config import Fencing
from dcwatch.errors import StandbyNotReady
from dcwatch.ports import Inventory, SiteLease, SiteLeases
from dcwatch.recovery.fencing import standby_agent_problem
from dcwatch.recovery.state import Clock, WorkflowState, utcnow


def check_standby(
    state: WorkflowState,
    inventory: Inventory,
    clock: Clock = utcnow,
    *,
    fencing: Fencing | None = None,
    leases: SiteLeases | None = None,
) -> WorkflowState:
    """The standby's vCenter answers with every VM of the plan, and (with site agents) the standby's own
    agent still reaches AWS, so it will not fence what this failover starts; `force` overrides the agent."""
    standby = state.plan.to
    # A drill's plan powers on clones it has yet to make: their sources, the standby VMs, must be there.
    drill = state.plan.drill
    wanted = list(drill.clones.values()) if drill else [vm for group in state.plan.groups for vm in group]
    found = inventory.power_states(wanted)
    missing = [vm for vm in wanted if vm not in found]
    if missing:
        raise StandbyNotReady(f"VMs missing in the vCenter of {standby}: {', '.join(missing)}")
    already_on = [vm for vm in wanted if found[vm] == "poweredOn"]
    detail = f"vCenter of {standby} answers; {len(wanted)} VMs present, {len(already_on)} already on"
    detail = f"vCenter of {standby} answers; the {len(wanted)} VMs to clone are present" if drill else detail
    if fencing is not None and leases is not None and standby in fencing.agents:
        detail += "; " + _standby_agent(state, leases.read(standby), fencing, clock())
    return state.note("CheckStandby", detail, clock)


def _standby_agent(state: WorkflowState, lease: SiteLease | None, fencing: Fencing, now: datetime) -> str:
    """What the standby's own agent means for this promotion, or StandbyNotReady (`standby_agent_problem`)."""
    standby = state.plan.to
    if lease is None:
        return f"no lease of {standby} on record: its agent never ran, nothing there fences it"
    problem = standby_agent_problem(standby, lease, fencing, now)
    if problem is None:
        return f"{standby}'s agent reaches AWS"
    if state.request.dry_run:
        return f"{problem}: a failover would be refused (unless forced)"
    if state.request.force:
        return f"{problem}: promoted anyway as the request forced it"
    raise StandbyNotReady(f"{problem}. Nothing was changed. To promote {standby} anyway, rerun with force: true")
