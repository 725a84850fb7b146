"""Power on the standby by priority group: dependencies in order, the group's and each VM's hooks, and the
checks of the services a group completes; CheckGroup waits inside on vCenter's watch."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from dcwatch.config import Config
from dcwatch.config.hooks import GroupHooks
from dcwatch.errors import GroupTimeout, PowerOnFailed
from dcwatch.ports import GuestState, HookRunner, Inventory, Observed, Once, Watch
from dcwatch.recovery.plan import GroupPlan
from dcwatch.recovery.state import Clock, Probe, WorkflowState, run_now, utcnow
from dcwatch.recovery.steps.hooks import NoHooks, run_hooks
from dcwatch.recovery.steps.verify import plan_checks
from dcwatch.recovery.waits import MAX_LOOKS, Sleep, wait_for

SERVICE_POLL_S = 1.0  # a group's failing service checks, run again inside CheckGroup


def _start_wave(state: WorkflowState, inventory: Inventory, hooks: HookRunner, once: Once, clock: Clock) -> list[str]:
    """Power on the VMs of the group whose dependencies are up and that have not been started yet."""
    progress = state.progress
    detail = state.plan.group(progress.group)
    vms = state.plan.groups[progress.group]
    due = [
        vm for vm in vms if vm not in progress.tasks and all(dep in progress.ready for dep in detail.after.get(vm, []))
    ]
    if not due:
        return []
    power = inventory.power_states(due)
    to_start = [vm for vm in due if power.get(vm) != "poweredOn"]
    for vm in to_start:
        run_hooks(state, detail.vm_pre_hooks.get(vm, []), "pre-power-on", hooks, once, clock, vm=vm)
    wave = progress.waves
    tasks = (
        once(state.key("power-on", progress.group + 1, wave), lambda: inventory.power_on(to_start)) if to_start else {}
    )
    progress.waves += 1
    progress.tasks = {**progress.tasks, **{vm: "" for vm in due}, **tasks}
    return to_start


def start_group(
    state: WorkflowState,
    inventory: Inventory,
    timeout_s: int | None = None,
    clock: Clock = utcnow,
    *,
    hooks: HookRunner | None = None,
    once: Once = run_now,
) -> WorkflowState:
    """Promote the storage (before group 1), run the group's pre hooks, power on the VMs free to start."""
    progress, runner = state.progress, hooks or NoHooks()
    started = clock()
    if progress.group >= len(state.plan.groups):
        progress.group_ready, progress.all_groups_up, progress.tasks = True, True, {}
        return state.note("StartGroup", f"no VMs to power on at {state.plan.to}", clock)
    storage = state.plan.storage
    if progress.group == 0 and storage and storage.promote_hook and not progress.promoted:
        run_hooks(state, [storage.promote_hook], "promote", runner, once, clock)
        progress.promoted = True
    detail = state.plan.group(progress.group)
    vms = state.plan.groups[progress.group]
    progress.tasks, progress.ready, progress.waves = {}, [], 0
    progress.group_ready = False
    progress.group_started_at = started
    progress.group_deadline = started + timedelta(seconds=timeout_s or detail.timeout_s)
    run_hooks(state, detail.pre_hooks, "pre-power-on", runner, once, clock)
    to_start = _start_wave(state, inventory, runner, once, clock)
    already = [vm for vm in progress.tasks if vm not in to_start]
    waiting = [vm for vm in vms if vm not in progress.tasks]
    detail_text = f"group {progress.group + 1}: power on {', '.join(to_start) or 'nothing'}"
    if already:
        detail_text += f" ({len(already)} already on)"
    if waiting:
        detail_text += f"; waiting for their dependencies: {', '.join(waiting)}"
    return state.note("StartGroup", detail_text, clock, started)


def _is_up(vm: str, guest: GuestState | None, detail: GroupPlan) -> bool:
    """Booted as far as vCenter can tell, or, for an appliance marked power-only, running."""
    return guest is not None and (guest.up or (vm in detail.power_only and guest.power == "poweredOn"))


def _not_up(vm: str, state: WorkflowState, guests: Mapping[str, GuestState]) -> str:
    """Why one VM of the current group is not up yet, in the operator's words."""
    detail = state.plan.group(state.progress.group)
    if vm not in state.progress.tasks:
        deps = [d for d in detail.after.get(vm, []) if d not in state.progress.ready]
        return f"{vm} (not started: waits for {', '.join(deps)})"
    guest = guests.get(vm)
    if guest is None:
        return f"{vm} (not found)"
    if guest.power != "poweredOn":
        return f"{vm} ({guest.power})"
    return f"{vm} (on, no VMware Tools heartbeat and no IP yet)"


@dataclass(frozen=True)
class _Pending:
    """What keeps the current group from being up: started VMs not up yet (with their power-on tasks), checks."""

    tasks: dict[str, str]
    failing: list[str]


def _look_at_group(
    state: WorkflowState,
    inventory: Inventory,
    clock: Clock,
    config: Config | None,
    probe: Probe | None,
    runner: HookRunner,
    once: Once,
    seen: Observed | None = None,
) -> _Pending | None:
    """One look at the current group: VMs up are noted (their post hooks run), dependents are started, and
    once every VM is up, the checks of the services the group completes run. None: the group is up.

    `seen`: what the wait on the VMs pending at the last look saw as it ended (read from vCenter if None)."""
    progress = state.progress
    number, detail = progress.group + 1, state.plan.group(progress.group)
    vms = state.plan.groups[progress.group]
    if seen is None:
        task_ids = [t for t in progress.tasks.values() if t]
        seen = Observed(inventory.guest_states(vms), inventory.task_states(task_ids) if task_ids else {})
    task_states, guests = seen.tasks, seen.guests
    # A failed task of a VM that is on anyway (e.g. a retried start raced the first) is no failure.
    failed = {
        vm: task_states[t].error
        for vm, t in progress.tasks.items()
        if t in task_states and task_states[t].state == "error" and guests.get(vm, GuestState("")).power != "poweredOn"
    }
    if failed:
        raise PowerOnFailed(
            f"group {number}: power-on failed: " + "; ".join(f"{vm}: {err}" for vm, err in sorted(failed.items()))
        )
    for vm in [vm for vm in vms if vm in progress.tasks and vm not in progress.ready]:
        if _is_up(vm, guests.get(vm), detail):
            run_hooks(state, detail.vm_post_hooks.get(vm, []), "post-power-on", runner, once, clock, vm=vm)
            progress.ready.append(vm)
            if vm not in progress.powered_on:
                progress.powered_on.append(vm)
    if started := _start_wave(state, inventory, runner, once, clock):
        state.note("StartGroup", f"group {number}: power on {', '.join(started)} (their dependencies are up)", clock)
    waiting = [vm for vm in vms if vm not in progress.ready]
    failing: list[str] = []
    if not waiting and detail.services and config is not None and probe is not None:
        results = probe(plan_checks(config, state.plan, detail.services), f"group{number}-{state.incident_id}")
        failing = [f"{r.service}/{r.check}: {r.reason}" for r in results if not r.ok and r.critical]
    if waiting or failing:
        if progress.group_deadline and clock() > progress.group_deadline:
            why = [f"waiting for {', '.join(_not_up(vm, state, guests) for vm in waiting)}"] if waiting else []
            why += [f"service checks failing: {'; '.join(failing)}"] if failing else []
            raise GroupTimeout(f"group {number} not up before its deadline ({detail.timeout_s} s): {'; '.join(why)}")
        return _Pending({vm: progress.tasks[vm] for vm in waiting if vm in progress.tasks}, failing)
    run_hooks(state, detail.post_hooks, "post-power-on", runner, once, clock)
    checked = f"; checks of {', '.join(detail.services)} pass" if detail.services and probe is not None else ""
    state.note("CheckGroup", f"group {number} up: {', '.join(vms)}{checked}", clock, progress.group_started_at)
    progress.group += 1
    progress.group_ready = True
    progress.tasks, progress.ready = {}, []
    progress.all_groups_up = progress.group >= len(state.plan.groups)
    return None


def _worth_a_look(detail: GroupPlan, pending: _Pending, seen: Observed) -> bool:
    """The group's wait ends: every started VM is up, a power-on failed, or a VM others wait for came up."""
    up = {vm for vm in pending.tasks if _is_up(vm, seen.guests.get(vm), detail)}
    if len(up) == len(pending.tasks):
        return True
    awaited = {dep for deps in detail.after.values() for dep in deps}
    failed = any(
        (task := seen.tasks.get(t)) is not None and task.state == "error" and vm not in up
        for vm, t in pending.tasks.items()
    )
    return failed or bool(up & awaited)


def _hooks_left_s(state: WorkflowState) -> float:
    """The longest the hooks still due in the current group may take: kept free of the step's wait."""
    progress, detail = state.progress, state.plan.group(state.progress.group)
    hooks = GroupHooks(post=detail.post_hooks, vm_pre=detail.vm_pre_hooks, vm_post=detail.vm_post_hooks)
    return sum(h.timeout_s for h in hooks.check_group(ready=progress.ready, started=progress.tasks))


def check_group(
    state: WorkflowState,
    inventory: Inventory,
    clock: Clock = utcnow,
    *,
    config: Config | None = None,
    probe: Probe | None = None,
    hooks: HookRunner | None = None,
    once: Once = run_now,
    wait_until: datetime | None = None,
    sleep: Sleep = time.sleep,
) -> WorkflowState:
    """The group is up when every VM runs with a green Tools heartbeat or an IP, dependents started in
    order, and the checks of the services this group completes pass; then its post hooks run.

    Until `wait_until` (None: one look) the step waits for that inside: on the VMs through the inventory's
    watch, so it looks again as they come up; on failing service checks by polling them every
    SERVICE_POLL_S. Past it, the group is left pending for the state machine's loop."""
    progress, runner = state.progress, hooks or NoHooks()
    if progress.group >= len(state.plan.groups):
        progress.group_ready, progress.all_groups_up = True, True
        return state
    detail = state.plan.group(progress.group)
    until = wait_until - timedelta(seconds=_hooks_left_s(state)) if wait_until else None
    if until and progress.group_deadline:
        until = min(until, progress.group_deadline)
    seen: Observed | None = None
    with ExitStack() as watching:
        watch: Watch[Observed] | None = None
        watched: set[str] = set()
        for _ in range(MAX_LOOKS):
            started = {vm: t for vm, t in progress.tasks.items() if vm not in progress.ready}
            if until is not None and started and not set(started) <= watched:
                # One watch on the VMs started and not up yet, from the first look on; a new one per wave only.
                watching.close()
                watch = watching.enter_context(inventory.watch(list(started), [t for t in started.values() if t]))
                watched, seen = set(started), watch.current()
            pending = _look_at_group(state, inventory, clock, config, probe, runner, once, seen)
            if pending is None or until is None or clock() >= until:
                return state
            if watch is not None and pending.tasks and set(pending.tasks) <= watched:
                seen = wait_for(watch, partial(_worth_a_look, detail, pending), until, clock)
            elif not pending.tasks:
                seen = None
                sleep(min(SERVICE_POLL_S, (until - clock()).total_seconds()))
    return state
