"""Starting a recovery: take the failover lock, start the workflow under the lock's name, give the lock back
when the start fails. The evaluator's automatic failover and the CLI's manual starts both go through here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from dcwatch.ports import Lease, Leases, WorkflowStarter


@dataclass(frozen=True)
class Start:
    """What a start came to: the execution, or why nothing started."""

    execution: str | None = None
    holder: Lease | None = None  # the lock is held by another recovery: nothing started
    withdrawn: str = ""  # the check under the lock said no: why, nothing started


def start_recovery(
    workflows: WorkflowStarter,
    leases: Leases | None,
    name: str,
    request: dict[str, object],
    *,
    lease_s: int,
    now: datetime,
    leaving: str | None,
    under_lock: Callable[[], str] = lambda: "",
) -> Start:
    """Start the workflow as `name`, which owns the lock from its first step on. Taking the lock first refuses a
    busy one here rather than as a failed execution. `under_lock`: a last check, read once the lock is ours
    (why not to start, '' to go on). `leases` None: no lock to take (a CLI run without the locks table)."""
    if leases is not None:
        lease = leases.acquire(name, lease_s, now, leaving)
        if lease.owner != name:
            return Start(holder=lease)
        if withdrawn := under_lock():
            leases.release(name)
            return Start(withdrawn=withdrawn)
    try:
        execution = workflows.start(name, request)
    except Exception:
        if leases is not None:
            # The name is this start's alone, so this gives back only the lease taken just above.
            leases.release(name)
        raise
    return Start(execution)
