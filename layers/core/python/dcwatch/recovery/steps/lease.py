"""The failover lock: taken for one execution, renewed before each long stretch, released at the end."""

from __future__ import annotations

from collections.abc import Callable

from dcwatch.errors import DrillHeldBack, LeaseHeld, LeaseLost, Superseded
from dcwatch.ports import Leases
from dcwatch.recovery.request import leaving_site
from dcwatch.recovery.scheduled import held_by
from dcwatch.recovery.state import Clock, WorkflowState, utcnow


def acquire_lease(
    state: WorkflowState,
    leases: Leases,
    ttl_s: int,
    clock: Clock = utcnow,
    *,
    active_site: Callable[[], str] | None = None,
) -> WorkflowState:
    """Take the single failover lock for this execution (the evaluator or the CLI may hold it for it already).

    ValidateRequest ran before the lock was ours: a recovery that held it meanwhile may have moved production
    away from this request's site. So, under the lock, the site it leaves must still be the active one."""
    leaving = leaving_site(state.request.mode, state.plan.from_site)
    lease = leases.acquire(state.owner, ttl_s, clock(), leaving)
    if lease.owner != state.owner:
        if state.request.trigger == "scheduled":
            # ValidateRequest's hold-back check found the lock free; a recovery took it since: a skip, not a fault.
            raise DrillHeldBack(held_by(lease.owner, lease.expires_at))
        raise LeaseHeld(
            f"another failover holds the lock: {lease.owner} until {lease.expires_at.isoformat()}; nothing was touched"
        )
    if leaving is not None and active_site is not None and (active := active_site()) != leaving:
        leases.release(state.owner)
        raise Superseded(
            f"production already runs at {active}, not at {leaving}: another recovery moved it after this request "
            "was accepted; nothing was touched"
        )
    return state.note("AcquireLease", f"lock held by {state.owner} until {lease.expires_at.isoformat()}", clock)


def renew_lease(state: WorkflowState, leases: Leases, ttl_s: int, clock: Clock = utcnow) -> WorkflowState:
    if not leases.renew(state.owner, ttl_s, clock()):
        holder = leases.holder()
        raise LeaseLost(f"the lock is no longer held by {state.owner}" + (f" but by {holder.owner}" if holder else ""))
    return state


def release_lease(state: WorkflowState, leases: Leases, clock: Clock = utcnow) -> WorkflowState:
    released = leases.release(state.owner)
    return state.note("ReleaseLease", "lock released" if released else "lock was not held by this failover", clock)
