"""The failover workflow's steps: each takes the workflow state and returns it, one step further.

Step Functions owns order, waits, retries and catches (see `statemachines/failover.asl.json`);
these functions own the decisions. Each is safe to run again: powered-on VMs are not powered on
twice, UPSERTs are idempotent, and every step appends what it did to the timeline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dcwatch.checks import PlannedCheck, service_checks
from dcwatch.config import Config
from dcwatch.errors import (
    DnsTimeout,
    FencingIncomplete,
    GroupTimeout,
    LeaseHeld,
    LeaseLost,
    PowerOnFailed,
    ServiceNotVerified,
    StandbyNotReady,
    TransientError,
    VcenterUnavailable,
)
from dcwatch.events import ProbeResult
from dcwatch.ports import Dns, Inventory, Leases, Notifier, StateStore
from dcwatch.recovery import MODE_WORDS, FailoverRequest, Record, RecoveryPlan, build_plan, describe_plan, parse_request

Clock = Callable[[], datetime]
Probe = Callable[[list[PlannedCheck], str], list[ProbeResult]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Camel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class TimelineEntry(_Camel):
    step: str
    at: datetime
    detail: str


class Progress(_Camel):
    group: int = 0
    group_ready: bool = Field(default=True, alias="groupReady")
    all_groups_up: bool = Field(default=False, alias="allGroupsUp")
    tasks: dict[str, str] = Field(default={}, description="task id by VM name, current group")
    group_deadline: datetime | None = Field(default=None, alias="groupDeadline")
    powered_on: list[str] = Field(default=[], alias="poweredOn")
    dns_changes: list[str] = Field(default=[], alias="dnsChanges")
    dns_deadline: datetime | None = Field(default=None, alias="dnsDeadline")
    dns_in_sync: bool = Field(default=False, alias="dnsInSync")


class ShutdownProgress(_Camel):
    """Migration and failback: the leaving site's groups, shut down last group first."""

    group: int = 0
    group_done: bool = Field(default=True, alias="groupDone")
    all_off: bool = Field(default=False, alias="allOff")
    deadline: datetime | None = None
    forced: bool = Field(default=False, description="the current group's stragglers were powered off")
    how: dict[str, str] = Field(default={}, description="how each VM went down: guest shutdown, powered off, ...")


class DrillProgress(_Camel):
    """What a drill found before it changed anything, so that its cleanup restores exactly that."""

    was_on: list[str] = Field(default=[], alias="wasOn", description="drill VMs already on: left on")
    records_before: list[Record] = Field(default=[], alias="recordsBefore", description="no values: absent")
    measured: dict[str, float] = Field(default={}, description="seconds from the start, per milestone")
    cleanup: str | None = None


class ApprovalGate(_Camel):
    required: bool = False
    timeout_seconds: int = Field(default=0, alias="timeoutSeconds")
    decision: dict[str, Any] | None = Field(default=None, description="what the operator answered")


class WorkflowState(_Camel):
    request: FailoverRequest
    plan: RecoveryPlan
    shutdown: ShutdownProgress = ShutdownProgress()
    drill: DrillProgress = DrillProgress()
    approval: ApprovalGate = ApprovalGate()
    incident_id: str = Field(alias="incidentId")
    poll_seconds: int = Field(alias="pollSeconds")
    started_at: datetime = Field(alias="startedAt")
    progress: Progress = Progress()
    timeline: list[TimelineEntry] = []
    error: dict[str, Any] | None = None
    failed_step: str | None = Field(default=None, alias="failedStep")
    fencing: str | None = Field(default=None, description="what fencing did, or why it was not possible")
    cleanup_error: dict[str, Any] | None = Field(default=None, alias="cleanupError", description="a drill's")

    def note(self, step: str, detail: str, clock: Clock) -> WorkflowState:
        self.timeline.append(TimelineEntry(step=step, at=clock(), detail=detail))
        return self

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def validate_request(
    raw: Any, config: Config, clock: Clock = utcnow, *, active_site: str | None = None
) -> WorkflowState:
    request = parse_request(raw, config, active_site)
    now = clock()
    incident = request.incident_id or f"manual-{request.from_site}-{now:%Y%m%dT%H%M%SZ}"
    gate = config.workflow.approval
    state = WorkflowState(
        request=request,
        plan=build_plan(config, request.from_site, request.to, request.mode),
        incident_id=incident,
        poll_seconds=config.workflow.poll_s,
        started_at=now,
        approval=ApprovalGate(required=request.mode in gate.modes, timeout_seconds=gate.timeout_s),
    )
    how = "dry run" if request.dry_run else request.trigger
    return state.note(
        "ValidateRequest",
        f"{how} {MODE_WORDS[request.mode]} {request.from_site} -> {request.to}: {request.reason}",
        clock,
    )


def acquire_lease(state: WorkflowState, leases: Leases, ttl_s: int, clock: Clock = utcnow) -> WorkflowState:
    """Take the single failover lock for this incident (the evaluator or the CLI may hold it already)."""
    lease = leases.acquire(state.incident_id, ttl_s, clock())
    if lease.owner != state.incident_id:
        raise LeaseHeld(
            f"another failover holds the lock: {lease.owner} until {lease.expires_at.isoformat()}; nothing was touched"
        )
    return state.note("AcquireLease", f"lock held by {state.incident_id} until {lease.expires_at.isoformat()}", clock)


def renew_lease(state: WorkflowState, leases: Leases, ttl_s: int, clock: Clock = utcnow) -> WorkflowState:
    if not leases.renew(state.incident_id, ttl_s, clock()):
        holder = leases.holder()
        raise LeaseLost(
            f"the lock is no longer held by {state.incident_id}" + (f" but by {holder.owner}" if holder else "")
        )
    return state


def release_lease(state: WorkflowState, leases: Leases, clock: Clock = utcnow) -> WorkflowState:
    released = leases.release(state.incident_id)
    return state.note("ReleaseLease", "lock released" if released else "lock was not held by this failover", clock)


def fence(
    state: WorkflowState, connect: Callable[[], AbstractContextManager[Inventory]], clock: Clock = utcnow
) -> WorkflowState:
    """Power off the failed site's VMs where its vCenter answers, so the two sites never both serve.

    Unreachable (the usual case when a site is down), the workflow proceeds on the quorum verdict and
    says so; reachable but with VMs still on, it raises and is retried, then stops for a human.
    """
    vms = state.plan.fence
    try:
        with connect() as inventory:
            before = inventory.power_states(vms)
            started = inventory.power_off(vms)
            still_on = sorted(vm for vm, power in inventory.power_states(vms).items() if power == "poweredOn")
    except (TransientError, VcenterUnavailable, OSError) as exc:
        state.fencing = f"fencing not possible: vCenter of {state.plan.from_site} unreachable ({exc})"
        return state.note("Fence", state.fencing + "; proceeding on the quorum verdict", clock)
    if still_on:
        raise FencingIncomplete(f"still powered on at {state.plan.from_site}: {', '.join(still_on)}")
    off_already = sorted(vm for vm in before if vm not in started)
    missing = sorted(set(vms) - set(before))
    state.fencing = f"fenced {state.plan.from_site}: powered off {', '.join(sorted(started)) or 'nothing'}"
    if off_already:
        state.fencing += f"; already off: {', '.join(off_already)}"
    if missing:
        state.fencing += f"; not found: {', '.join(missing)}"
    return state.note("Fence", state.fencing, clock)


def check_standby(state: WorkflowState, inventory: Inventory, clock: Clock = utcnow) -> WorkflowState:
    wanted = [vm for group in state.plan.groups for vm in group]
    found = inventory.power_states(wanted)
    missing = [vm for vm in wanted if vm not in found]
    if missing:
        raise StandbyNotReady(f"VMs missing in the vCenter of {state.plan.to}: {', '.join(missing)}")
    already_on = [vm for vm in wanted if found[vm] == "poweredOn"]
    detail = f"vCenter of {state.plan.to} answers; {len(wanted)} VMs present, {len(already_on)} already on"
    return state.note("CheckStandby", detail, clock)


def start_group(state: WorkflowState, inventory: Inventory, timeout_s: int, clock: Clock = utcnow) -> WorkflowState:
    progress = state.progress
    if progress.group >= len(state.plan.groups):
        progress.group_ready, progress.all_groups_up, progress.tasks = True, True, {}
        return state.note("StartGroup", f"no VMs to power on at {state.plan.to}", clock)
    vms = state.plan.groups[progress.group]
    states = inventory.power_states(vms)
    to_start = [vm for vm in vms if states.get(vm) != "poweredOn"]
    progress.tasks = inventory.power_on(to_start) if to_start else {}
    progress.group_ready = False
    progress.group_deadline = clock() + timedelta(seconds=timeout_s)
    skipped = f" ({len(vms) - len(to_start)} already on)" if len(to_start) < len(vms) else ""
    return state.note(
        "StartGroup", f"group {progress.group + 1}: power on {', '.join(to_start) or 'nothing'}{skipped}", clock
    )


def check_group(state: WorkflowState, inventory: Inventory, clock: Clock = utcnow) -> WorkflowState:
    progress = state.progress
    if progress.group >= len(state.plan.groups):
        progress.group_ready, progress.all_groups_up = True, True
        return state
    vms = state.plan.groups[progress.group]
    task_states = inventory.task_states(list(progress.tasks.values())) if progress.tasks else {}
    power = inventory.power_states(vms)
    # A failed task of a VM that is on anyway (e.g. a retried start raced the first) is no failure.
    failed = {
        vm: task_states[t].error
        for vm, t in progress.tasks.items()
        if t in task_states and task_states[t].state == "error" and power.get(vm) != "poweredOn"
    }
    if failed:
        raise PowerOnFailed("power-on failed: " + "; ".join(f"{vm}: {err}" for vm, err in sorted(failed.items())))
    waiting = [vm for vm in vms if power.get(vm) != "poweredOn"]
    waiting += [
        vm
        for vm, t in progress.tasks.items()
        if t in task_states and task_states[t].state not in ("success", "error") and vm not in waiting
    ]
    if waiting:
        if progress.group_deadline and clock() > progress.group_deadline:
            raise GroupTimeout(
                f"group {progress.group + 1} not up before its deadline: still waiting for {', '.join(sorted(waiting))}"
            )
        return state
    progress.powered_on += [vm for vm in vms if vm not in progress.powered_on]
    state.note("CheckGroup", f"group {progress.group + 1} up: {', '.join(vms)}", clock)
    progress.group += 1
    progress.group_ready = True
    progress.tasks = {}
    progress.all_groups_up = progress.group >= len(state.plan.groups)
    return state


def verify_services(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    checks = [c for c in service_checks(config, state.plan.to) if c.service in state.plan.services]
    results = probe(checks, f"verify-{state.incident_id}")
    failed = [f"{r.service}/{r.check}: {r.reason}" for r in results if not r.ok and r.critical]
    if failed:
        raise ServiceNotVerified(f"not serving at {state.plan.to}: " + "; ".join(failed))
    return state.note("VerifyServices", f"{len(results)} checks pass at {state.plan.to}", clock)


def switch_dns(state: WorkflowState, dns: Dns, timeout_s: int, clock: Clock = utcnow) -> WorkflowState:
    records = [r.as_values() for r in state.plan.records]
    state.progress.dns_changes = dns.upsert(records)
    state.progress.dns_deadline = clock() + timedelta(seconds=timeout_s)
    state.progress.dns_in_sync = False
    names = ", ".join(f"{r.name} -> {'/'.join(r.values)}" for r in records)
    return state.note("SwitchDns", f"UPSERT {names}", clock)


def check_dns(state: WorkflowState, dns: Dns, clock: Clock = utcnow) -> WorkflowState:
    if dns.in_sync(state.progress.dns_changes):
        state.progress.dns_in_sync = True
        return state.note("CheckDns", f"Route 53 changes INSYNC: {', '.join(state.progress.dns_changes)}", clock)
    if state.progress.dns_deadline and clock() > state.progress.dns_deadline:
        raise DnsTimeout(f"Route 53 changes not INSYNC before the deadline: {state.progress.dns_changes}")
    return state


def _elapsed(state: WorkflowState, clock: Clock) -> float:
    return (clock() - state.started_at).total_seconds()


def success_message(state: WorkflowState, clock: Clock = utcnow) -> tuple[str, str]:
    request = state.request
    words = MODE_WORDS[request.mode]
    if request.dry_run:
        subject = f"[dcwatch] DRY RUN {request.from_site} -> {request.to}: no action needed"
        body = [f"Dry run: nothing was changed. This is what a {words} would do:", *describe_plan(state.plan)]
    elif request.mode == "drill":
        subject, body = drill_message(state)
    else:
        title = words.upper()
        subject = f"[dcwatch] {title} DONE {request.from_site} -> {request.to}: services run at {request.to}"
        body = [
            f"Services now run at {request.to}; {request.from_site} stays out of service until failback.",
            f"Reason: {request.reason}",
            f"Recovery time (workflow): {_elapsed(state, clock):.1f} s",
            f"Fencing: {state.fencing or 'not done'}",
            f"Powered on: {', '.join(state.progress.powered_on) or 'nothing (already on)'}",
        ]
        body += [f"Shut down at {request.from_site}: {_shutdown_summary(state)}"] if state.plan.shutdown else []
    body += ["", f"Incident: {state.incident_id}", "Timeline:"]
    body += [f"  {e.at:%H:%M:%S} {e.step}: {e.detail}" for e in state.timeline]
    return subject[:100], "\n".join(body)


def _shutdown_summary(state: WorkflowState) -> str:
    return "; ".join(f"{vm}: {how}" for vm, how in state.shutdown.how.items()) or "nothing"


def notify(state: WorkflowState, notifier: Notifier, clock: Clock = utcnow) -> WorkflowState:
    subject, message = success_message(state, clock)
    message_id = notifier.publish(subject, message)
    return state.note("Notify", f"notification sent ({message_id})", clock)


def audit_record(state: WorkflowState, outcome: str, clock: Clock = utcnow) -> dict[str, Any]:
    return {
        "incidentId": state.incident_id,
        "outcome": outcome,
        "request": state.request.model_dump(mode="json", by_alias=True),
        "startedAt": state.started_at.isoformat(),
        "finishedAt": clock().isoformat(),
        "poweredOn": state.progress.powered_on,
        "timeline": [e.model_dump(mode="json") for e in state.timeline],
        "fencing": state.fencing,
        "mode": state.request.mode,
        "shutdown": state.shutdown.how,
        "drill": state.drill.model_dump(mode="json", by_alias=True) if state.request.mode == "drill" else None,
        "approval": state.approval.decision,
        "failedStep": state.failed_step,
        "error": state.error,
    }


def record_audit(state: WorkflowState, store: StateStore, clock: Clock = utcnow) -> WorkflowState:
    state.note("RecordAudit", "audit record written", clock)
    if state.request.dry_run or state.request.mode == "drill":
        outcome = "dry-run" if state.request.dry_run else "drill-passed"
        store.append_audit(state.incident_id, audit_record(state, outcome, clock))
        return state
    store.set_active_site(state.plan.to, state.incident_id)
    store.append_audit(state.incident_id, audit_record(state, "succeeded", clock))
    return state


def failure_message(state: WorkflowState, clock: Clock = utcnow) -> tuple[str, str]:
    error = state.error or {}
    step = state.failed_step or "unknown step"
    cause = str(error.get("Cause", ""))
    if state.request.mode == "drill" or step == "RequestApproval":
        return stopped_message(state, step, _readable_cause(cause))
    words = MODE_WORDS[state.request.mode]
    subject = f"[dcwatch] ACTION NEEDED: {words} {state.plan.from_site} -> {state.plan.to} failed at {step}"
    body = [
        f"The failover stopped at step {step}: {error.get('Error', 'error')}",
        f"Cause: {_readable_cause(cause)}",
        f"Powered on so far at {state.plan.to}: {', '.join(state.progress.powered_on) or 'nothing'}",
        f"DNS switched: {'yes' if state.progress.dns_in_sync else 'no'}",
        f"Fencing: {state.fencing or 'not done'}",
        *([f"Shut down at {state.plan.from_site}: {_shutdown_summary(state)}"] if state.plan.shutdown else []),
        "Nothing was rolled back. Check the standby, then rerun the failover by hand or fail back.",
        "",
        f"Incident: {state.incident_id}",
        "Done before the failure:",
        *[f"  {e.at:%H:%M:%S} {e.step}: {e.detail}" for e in state.timeline],
    ]
    return subject[:100], "\n".join(body)


def drill_message(state: WorkflowState) -> tuple[str, list[str]]:
    """A passed drill: how long the standby took to serve, and that production was never touched."""
    request, measured = state.request, state.drill.measured
    proven = measured.get("drill record in sync", _elapsed_at(state, "CheckDns"))
    subject = f"[dcwatch] DRILL PASSED {request.from_site} -> {request.to}: standby proven in {proven:.1f} s"
    body = [
        f"The standby copies of {', '.join(state.plan.services)} at {request.to} came up, passed their checks and "
        "answered on the drill records; production and its DNS records were not touched.",
        f"Reason: {request.reason}",
        *[f"  {milestone}: {seconds:.1f} s" for milestone, seconds in measured.items()],
        f"Cleanup: {state.drill.cleanup or 'not done'}",
    ]
    body += [f"Drill network (recorded): {state.plan.network}"] if state.plan.network else []
    return subject, body


def _elapsed_at(state: WorkflowState, step: str) -> float:
    """Seconds from the start to the last timeline entry of `step` (0 when it never ran)."""
    times = [e.at for e in state.timeline if e.step == step]
    return (times[-1] - state.started_at).total_seconds() if times else 0.0


def stopped_message(state: WorkflowState, step: str, cause: str) -> tuple[str, str]:
    """A drill that failed (cleaned up), or a recovery nobody approved: production as it was."""
    request, words = state.request, MODE_WORDS[state.request.mode]
    if step == "RequestApproval":
        decision = state.approval.decision or {}
        if decision:
            cause = f"denied by {decision.get('by', '?')}: {decision.get('reason', '')}"
        elif (state.error or {}).get("Error") == "States.Timeout":
            cause = f"no answer within {state.approval.timeout_seconds} s"
        subject = f"[dcwatch] NOT APPROVED: {words} {request.from_site} -> {request.to}: nothing was changed"
        lines = [f"The {words} was not approved: {cause}", "Nothing was changed; start it again to retry."]
    elif state.drill.cleanup is not None and step != "CleanUpDrill":
        subject = f"[dcwatch] DRILL FAILED at {step}: production untouched, drill cleaned up"
        lines = [f"The drill stopped at step {step}: {cause}", f"Cleanup: {state.drill.cleanup}"]
    else:
        subject = f"[dcwatch] ACTION NEEDED: drill cleanup incomplete after {step}"
        lines = [
            f"The drill stopped at step {step}: {cause}",
            f"Cleanup did not finish: {_readable_cause(str((state.cleanup_error or {}).get('Cause', '')))}",
            f"Power off at {request.to} what the drill powered on and restore the drill records by hand: "
            f"{', '.join(r.name for r in state.plan.records)}. Production was not touched.",
        ]
    lines += ["", f"Incident: {state.incident_id}", "Timeline:"]
    lines += [f"  {e.at:%H:%M:%S} {e.step}: {e.detail}" for e in state.timeline]
    return subject[:100], "\n".join(lines)


def _readable_cause(cause: str) -> str:
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def notify_failure(state: WorkflowState, notifier: Notifier, store: StateStore, clock: Clock = utcnow) -> WorkflowState:
    subject, message = failure_message(state, clock)
    notifier.publish(subject, message)
    state.note("NotifyFailure", f"failure at {state.failed_step} announced", clock)
    store.append_audit(state.incident_id, audit_record(state, "failed", clock))
    return state
