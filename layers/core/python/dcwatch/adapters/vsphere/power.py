"""Per-VM calls to vCenter, many in flight at once, and the power tasks they start: what vCenter refused, named
once the others were started."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyVmomi import vim, vmodl

from dcwatch.errors import DcwatchError, TransientError

# Per-VM calls (PowerOnVM_Task, ...) in flight at once on one session: each is a round trip to vCenter, which
# queues the tasks itself; pyVmomi's stub gives each concurrent call a connection of its own from its pool.
MAX_CALLS_IN_FLIGHT = 8


def call_each(calls: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Every call (one per VM), at most MAX_CALLS_IN_FLIGHT at once: what it returned, or the fault vCenter
    answered (a `vmodl.MethodFault`), by key. All have ended when this returns; one that failed otherwise (the
    connection) is raised then."""
    if len(calls) <= 1:
        return {key: _answer(call) for key, call in calls.items()}
    with ThreadPoolExecutor(max_workers=min(MAX_CALLS_IN_FLIGHT, len(calls)), thread_name_prefix="vcenter") as pool:
        futures = {key: pool.submit(_answer, call) for key, call in calls.items()}
    return {key: future.result() for key, future in futures.items()}


def fault_text(fault: Any) -> str:
    """What vCenter said, or the fault's name where it said nothing."""
    return getattr(fault, "msg", "") or type(fault).__name__


def _answer(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except vmodl.MethodFault as fault:
        return fault


def start_each(
    calls: Mapping[str, Callable[[], Any]], what: str, *, already: str, error: type[DcwatchError]
) -> dict[str, str]:
    """A task per VM, started many at once (`call_each`): task id by VM. The VMs vCenter refuses are named (as
    `error`) once the others were started; one found in the power state `already` meanwhile is no refusal."""
    tasks, refused, gone = {}, {}, []
    for name, answer in call_each(calls).items():
        if not isinstance(answer, vmodl.MethodFault):
            tasks[name] = str(answer._moId)
        elif isinstance(answer, vmodl.fault.ManagedObjectNotFound):
            gone.append(name)  # unregistered or re-registered since it was looked up: found again by name
        elif not (isinstance(answer, vim.fault.InvalidPowerState) and str(answer.existingState) == already):
            refused[name] = fault_text(answer)
    if refused:
        started = f"; started meanwhile: {', '.join(sorted(tasks))}" if tasks else ""
        why = "; ".join(f"{vm}: {why}" for vm, why in sorted(refused.items()))
        raise error(f"vCenter refused to {what} {why}{started}")
    if gone:
        raise TransientError(f"vCenter no longer knows {', '.join(sorted(gone))} (to {what}); looked up again")
    return tasks
