"""The failover workflow's steps: each takes the workflow state and returns it, one step further.

Step Functions owns order, waits, retries and catches (see `statemachines/failover.asl.json`);
these functions own the decisions. Each is safe to run again: powered-on VMs are not powered on
twice, UPSERTs are idempotent, and every step appends what it did to the timeline.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field

from dcwatch.config import Config, Fencing, Hook, HttpCheck, unbuilt_default
from dcwatch.detection.checks import PlannedCheck, service_checks
from dcwatch.errors import (
    DnsTimeout,
    FencingIncomplete,
    GroupTimeout,
    HookFailed,
    LeaseHeld,
    LeaseLost,
    MirrorNotCaughtUp,
    PowerOnFailed,
    ServiceNotVerified,
    StandbyNotReady,
    StorageNotSafe,
    Superseded,
    TransientError,
    VcenterUnavailable,
)
from dcwatch.events import ProbeResult
from dcwatch.model import LastFailover
from dcwatch.ports import (
    Dns,
    GuestState,
    HookResult,
    HookRunner,
    Inventory,
    Leases,
    Notifier,
    Observed,
    Once,
    SiteLease,
    SiteLeases,
    StateStore,
    Watch,
)
from dcwatch.recovery.fencing import (
    FenceProof,
    StorageOutcome,
    prove,
    standby_agent_problem,
    vcenter_proof,
    vcenter_reason,
)
from dcwatch.recovery.request import (
    MANUAL_PREFIX,
    MODE_WORDS,
    FailoverRequest,
    GroupPlan,
    Origin,
    Record,
    RecoveryPlan,
    build_plan,
    describe_plan,
    leaving_site,
    manual_incident,
    parse_request,
)
from dcwatch.recovery.waits import MAX_LOOKS, Polled, Sleep, wait_for

Clock = Callable[[], datetime]
Probe = Callable[[list[PlannedCheck], str], list[ProbeResult]]
SERVICE_POLL_S = 1.0  # a group's failing service checks, run again inside CheckGroup
DNS_POLL_S = 1.0  # Route 53's change status, asked again inside CheckDns (GetChange allows 5 requests/s)


def utcnow() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")


def run_now(key: str, action: Callable[[], T]) -> T:
    """No memory of earlier runs: for dry runs of the steps and tests that do not retry."""
    return action()


class NoHooks:
    def run(self, hook: Hook, payload: Any) -> HookResult:
        return HookResult(False, "no hook runner available in this step")


class _Camel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class TimelineEntry(_Camel):
    step: str
    at: datetime = Field(description="when the step ended")
    detail: str
    started: datetime | None = Field(default=None, description="when the step began (its first attempt)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float:
        return round((self.at - self.started).total_seconds(), 3) if self.started else 0.0


class Progress(_Camel):
    group: int = 0
    group_ready: bool = Field(default=True, alias="groupReady")
    all_groups_up: bool = Field(default=False, alias="allGroupsUp")
    tasks: dict[str, str] = Field(default={}, description="task id by VM name, current group")
    group_deadline: datetime | None = Field(default=None, alias="groupDeadline")
    powered_on: list[str] = Field(default=[], alias="poweredOn")
    dns_changes: list[str] = Field(default=[], alias="dnsChanges")
    dns_deadline: datetime | None = Field(default=None, alias="dnsDeadline")
    dns_in_sync: bool = Field(
        default=False, alias="dnsInSync", description="changes INSYNC and the answers verified: DNS is done"
    )
    dns_started_at: datetime | None = Field(default=None, alias="dnsStartedAt")
    ready: list[str] = Field(default=[], description="VMs of the current group that are up")
    group_started_at: datetime | None = Field(default=None, alias="groupStartedAt")
    waves: int = Field(default=0, description="power-on batches issued in the current group")
    promoted: bool = False
    hook_failures: list[str] = Field(default=[], alias="hookFailures", description="failed hooks set to continue")
    ttl_expires_at: datetime | None = Field(default=None, alias="ttlExpiresAt", description="old TTLs run out")
    ttl_wait_s: int = Field(default=0, alias="ttlWaitSeconds", description="until then: the Wait before shutdown")
    ttl_changes: list[str] = Field(default=[], alias="ttlChanges", description="the TTL lowering, values unchanged")


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
    lease_problem: str | None = Field(default=None, alias="leaseProblem", description="the lock, lost meanwhile")


class ApprovalGate(_Camel):
    required: bool = False
    timeout_seconds: int = Field(default=0, alias="timeoutSeconds")
    decision: dict[str, Any] | None = Field(default=None, description="what the operator answered")


class WorkflowState(_Camel):
    request: FailoverRequest
    plan: RecoveryPlan
    shutdown: ShutdownProgress = unbuilt_default(ShutdownProgress)
    drill: DrillProgress = unbuilt_default(DrillProgress)
    approval: ApprovalGate = unbuilt_default(ApprovalGate)
    incident_id: str = Field(alias="incidentId")
    poll_seconds: int = Field(alias="pollSeconds")
    started_at: datetime = Field(alias="startedAt")
    progress: Progress = unbuilt_default(Progress)
    timeline: list[TimelineEntry] = []
    error: dict[str, Any] | None = None
    failed_step: str | None = Field(default=None, alias="failedStep")
    fencing: str | None = Field(default=None, description="what fencing did, or why it was not possible")
    fence_error: dict[str, Any] | None = Field(
        default=None, alias="fenceError", description="why the Fence step did not power the failed site off"
    )
    fence_proof: FenceProof | None = Field(
        default=None, alias="fenceProof", description="that the failed site cannot serve, or why it is not proven"
    )
    fence_approval: ApprovalGate = Field(
        default=unbuilt_default(ApprovalGate),
        alias="fenceApproval",
        description="a human's answer when fencing is not proven",
    )
    cleanup_error: dict[str, Any] | None = Field(default=None, alias="cleanupError", description="a drill's")
    notify_error: dict[str, Any] | None = Field(
        default=None, alias="notifyError", description="why the outcome's notification failed after its retries"
    )
    storage: str | None = Field(default=None, description="what the storage check found")
    run_id: str = Field(default="", alias="runId", description="this execution's key for steps that act once")
    lease_owner: str = Field(
        default="", alias="leaseOwner", description="who holds the lock for this execution: its execution name"
    )

    def note(self, step: str, detail: str, clock: Clock, started: datetime | None = None) -> WorkflowState:
        self.timeline.append(TimelineEntry(step=step, at=clock(), detail=detail, started=started))
        return self

    def stamp_started(self, begun: datetime, since: int = 0) -> None:
        """Entries the running step added without a start of their own began when the step did."""
        for entry in self.timeline[since:]:
            if entry.started is None:
                entry.started = begun

    def key(self, *parts: object) -> str:
        """The idempotency key of one action of this run: a retry finds it, a new execution does not."""
        return "/".join([self.run_id or self.incident_id, *map(str, parts)])

    @property
    def fencing_approved_by(self) -> str | None:
        """Who approved promoting the standby although the failed site was not proven fenced."""
        decision = self.fence_approval.decision or {}
        return str(decision.get("by", "?")) if decision.get("approved") is True else None

    @property
    def owner(self) -> str:
        """The lock holder's name: unique per execution, so two executions never both hold the lock."""
        return self.lease_owner or self.run_id or self.incident_id

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def validate_request(
    raw: Any,
    config: Config,
    clock: Clock = utcnow,
    *,
    active_site: str | None = None,
    site_status: Callable[[str], str] | None = None,
    execution: str | None = None,
    origin: Origin | None = None,
) -> WorkflowState:
    """The accepted request and its plan; `execution` (the Step Functions execution name) owns the lock.

    A forced request (data loss accepted, the standby's agent overridden) waits for a human's approval."""
    request = parse_request(raw, config, active_site, site_status, origin)
    now = clock()
    name = execution or (origin.execution if origin else None)
    incident = request.incident_id or (
        manual_incident(name) if name else f"{MANUAL_PREFIX}{request.from_site}-{now:%Y%m%dT%H%M%SZ}"
    )
    gate = config.workflow.approval
    run_id = f"{incident}-{uuid.uuid4().hex[:12]}"
    forced = request.force and not request.dry_run
    state = WorkflowState(
        request=request,
        plan=build_plan(config, request.from_site, request.to, request.mode),
        incident_id=incident,
        poll_seconds=config.workflow.poll_s,
        started_at=now,
        approval=ApprovalGate(required=request.mode in gate.modes or forced, timeout_seconds=gate.timeout_s),
        fence_approval=ApprovalGate(timeout_seconds=gate.timeout_s),
        run_id=run_id,
        lease_owner=name or run_id,
    )
    how = "dry run" if request.dry_run else request.trigger
    detail = f"{how} {MODE_WORDS[request.mode]} {request.from_site} -> {request.to}: {request.reason}"
    detail += "; forced: it waits for a human's approval" if forced else ""
    return state.note("ValidateRequest", detail, clock)


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
    store: StateStore,
    probe: Probe,
    clock: Clock = utcnow,
) -> WorkflowState:
    """After a Fence that did not power the failed site off: proof (b) from its lease and the standby agent's
    latest report, or (c) from the standby's storage; else a wait (bounded by `fencing.proof_waits`) while
    the lease could still expire, then the approval gate with every reason."""
    started, failed, standby = clock(), state.plan.from_site, state.plan.to
    previous = state.fence_proof
    error = state.fence_error or {}
    vcenter = vcenter_reason(failed, error, _readable_cause(str(error.get("Cause", ""))))
    settings = config.fencing
    agents = settings is not None and bool(settings.agents)
    fenced_when = state.plan.storage.fenced_when if state.plan.storage else None
    storage = None
    if fenced_when is not None:
        result, where = _probe_mirror(state, config, probe, fenced_when)
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
    wanted = [vm for group in state.plan.groups for vm in group]
    found = inventory.power_states(wanted)
    missing = [vm for vm in wanted if vm not in found]
    if missing:
        raise StandbyNotReady(f"VMs missing in the vCenter of {standby}: {', '.join(missing)}")
    already_on = [vm for vm in wanted if found[vm] == "poweredOn"]
    detail = f"vCenter of {standby} answers; {len(wanted)} VMs present, {len(already_on)} already on"
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


def _probe_mirror(state: WorkflowState, config: Config, probe: Probe, condition: str) -> tuple[ProbeResult, str]:
    """The standby's mirror status check with one more condition, so the reason names what is wrong."""
    storage = state.plan.storage
    assert storage is not None
    check = next(c for c in config.site(storage.site).checks if c.name == storage.check)
    assert isinstance(check, HttpCheck)  # the config refuses any other kind
    spec = check.model_copy(update={"conditions": [*check.conditions, condition]})
    planned = PlannedCheck(storage.site, check.name, None, True, check.timeout_s, spec)
    (result,) = probe([planned], f"storage-{state.incident_id}")
    return result, f"storage mirror {check.name} at {storage.site}"


def check_storage(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    """Refuse to promote a standby whose mirror is out of sync beyond the data-loss window, unless forced.

    Reads the mirror through the site's own mirror status check, with the window added as one more
    condition, so the reason names what is wrong (`[BODY].mirror.lag_seconds <= 30: got 900`).
    """
    started, storage = clock(), state.plan.storage
    if storage is None:
        return state.note("CheckStorage", f"no storage mirror configured at {state.plan.to}: nothing to check", clock)
    result, where = _probe_mirror(state, config, probe, f"{storage.lag} <= {storage.max_lag_s}")
    if result.ok:
        state.storage = f"{where} in sync, at most {storage.max_lag_s} s behind"
    elif state.request.force:
        state.storage = (
            f"{where} NOT safe ({result.reason}); promoted anyway as the request forced it: data may be lost"
        )
    elif state.request.dry_run:
        state.storage = f"{where} NOT safe ({result.reason}): a failover would be refused (unless forced)"
    else:
        raise StorageNotSafe(
            f"{where} not safe to promote: {result.reason}; the allowed data-loss window is {storage.max_lag_s} s. "
            "Nothing was changed. To accept the data loss, rerun the failover with force: true"
        )
    return state.note("CheckStorage", state.storage, clock, started)


def check_mirror_synced(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    """Migration, failback: with the leaving site off, the mirror must have caught up (lag 0) before the
    standby is promoted: a planned move loses no data, so `force` does not apply here."""
    started, storage = clock(), state.plan.storage
    if storage is None:
        return state.note("CheckMirrorSynced", f"no storage mirror configured at {state.plan.to}", clock)
    result, where = _probe_mirror(state, config, probe, f"{storage.lag} == 0")
    if not result.ok:
        raise MirrorNotCaughtUp(
            f"{where} has not caught up after {state.plan.from_site} was shut down: {result.reason}. "
            f"A {MODE_WORDS[state.request.mode]} promises no data loss, so {state.plan.to} was not promoted "
            f"(force does not apply). {state.plan.from_site} is off: start it again, or wait for the mirror "
            "and rerun"
        )
    state.storage = f"{where} in sync, caught up (lag 0) after {state.plan.from_site} was shut down"
    return state.note("CheckMirrorSynced", state.storage, clock, started)


def _call_hook(runner: HookRunner, hook: Hook, payload: dict[str, Any]) -> dict[str, Any]:
    return asdict(runner.run(hook, payload))


def _run_hooks(
    state: WorkflowState,
    hooks: list[Hook],
    when: str,
    runner: HookRunner,
    once: Once,
    clock: Clock,
    *,
    vm: str | None = None,
) -> None:
    """Each hook once per run; its outcome goes to the timeline; a failed `stop` hook stops the workflow."""
    group = state.progress.group + 1
    target = vm or (f"group {group}" if when != "promote" else f"storage at {state.plan.to}")
    for hook in hooks:
        started = clock()
        payload = {
            "incidentId": state.incident_id,
            "when": when,
            "from": state.plan.from_site,
            "to": state.plan.to,
            "group": group,
            "vm": vm,
            "hook": hook.name,
        }
        outcome = once(state.key("hook", when, group, vm or "-", hook.name), partial(_call_hook, runner, hook, payload))
        text = f"{when} hook {hook.name} ({target}): {outcome['detail']}"
        if outcome["ok"]:
            state.note("Hook", text, clock, started)
        elif hook.on_failure == "continue":
            state.progress.hook_failures.append(text)
            state.note("Hook", f"FAILED {text}; continuing (on_failure: continue)", clock, started)
        else:
            raise HookFailed(f"{text}; stopping (on_failure: stop)")


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
        _run_hooks(state, detail.vm_pre_hooks.get(vm, []), "pre-power-on", hooks, once, clock, vm=vm)
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
        _run_hooks(state, [storage.promote_hook], "promote", runner, once, clock)
        progress.promoted = True
    detail = state.plan.group(progress.group)
    vms = state.plan.groups[progress.group]
    progress.tasks, progress.ready, progress.waves = {}, [], 0
    progress.group_ready = False
    progress.group_started_at = started
    progress.group_deadline = started + timedelta(seconds=timeout_s or detail.timeout_s)
    _run_hooks(state, detail.pre_hooks, "pre-power-on", runner, once, clock)
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
            _run_hooks(state, detail.vm_post_hooks.get(vm, []), "post-power-on", runner, once, clock, vm=vm)
            progress.ready.append(vm)
            if vm not in progress.powered_on:
                progress.powered_on.append(vm)
    if started := _start_wave(state, inventory, runner, once, clock):
        state.note("StartGroup", f"group {number}: power on {', '.join(started)} (their dependencies are up)", clock)
    waiting = [vm for vm in vms if vm not in progress.ready]
    failing: list[str] = []
    if not waiting and detail.services and config is not None and probe is not None:
        results = probe(service_checks(config, state.plan.to, detail.services), f"group{number}-{state.incident_id}")
        failing = [f"{r.service}/{r.check}: {r.reason}" for r in results if not r.ok and r.critical]
    if waiting or failing:
        if progress.group_deadline and clock() > progress.group_deadline:
            why = [f"waiting for {', '.join(_not_up(vm, state, guests) for vm in waiting)}"] if waiting else []
            why += [f"service checks failing: {'; '.join(failing)}"] if failing else []
            raise GroupTimeout(f"group {number} not up before its deadline ({detail.timeout_s} s): {'; '.join(why)}")
        return _Pending({vm: progress.tasks[vm] for vm in waiting if vm in progress.tasks}, failing)
    _run_hooks(state, detail.post_hooks, "post-power-on", runner, once, clock)
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
    vms = state.plan.groups[progress.group]
    hooks = [h for vm in vms if vm not in progress.ready for h in detail.vm_post_hooks.get(vm, [])]
    hooks += [h for vm in vms if vm not in progress.tasks for h in detail.vm_pre_hooks.get(vm, [])]
    return sum(h.timeout_s for h in [*hooks, *detail.post_hooks])


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


def verify_services(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    checks = [c for c in service_checks(config, state.plan.to) if c.service in state.plan.services]
    results = probe(checks, f"verify-{state.incident_id}")
    failed = [f"{r.service}/{r.check}: {r.reason}" for r in results if not r.ok and r.critical]
    if failed:
        raise ServiceNotVerified(f"not serving at {state.plan.to}: " + "; ".join(failed))
    return state.note("VerifyServices", f"{len(results)} checks pass at {state.plan.to}", clock)


def switch_dns(
    state: WorkflowState, dns: Dns, timeout_s: int, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    records = [s for r in state.plan.records for s in r.record_sets()]
    started = clock()
    state.progress.dns_changes = once(state.key("switch-dns"), lambda: dns.upsert(records))
    state.progress.dns_started_at = started
    state.progress.dns_deadline = started + timedelta(seconds=timeout_s)
    state.progress.dns_in_sync = False
    names = ", ".join(r.describe() for r in state.plan.records)
    return state.note("SwitchDns", f"UPSERT {names}", clock, started)


def _look_at_dns(state: WorkflowState, dns: Dns, clock: Clock) -> bool:
    """Route 53 reports the changes INSYNC and answers every name with the standby's values; past the
    deadline, DnsTimeout says which of the two is missing."""
    progress = state.progress
    late = progress.dns_deadline is not None and clock() > progress.dns_deadline
    if not dns.in_sync(progress.dns_changes):
        if late:
            raise DnsTimeout(f"Route 53 changes not INSYNC before the deadline: {progress.dns_changes}")
        return False
    wrong = {}
    for record in state.plan.records:
        answers = dns.answers(record.zone, record.name, record.type)
        if sorted(answers) != sorted(record.values):
            wrong[record.name] = answers
    if wrong and late:
        raise DnsTimeout(
            "Route 53 changes INSYNC but the answers differ before the deadline: "
            + "; ".join(f"{name} answers {', '.join(got) or 'nothing'}" for name, got in sorted(wrong.items()))
        )
    return not wrong


def check_dns(
    state: WorkflowState,
    dns: Dns,
    clock: Clock = utcnow,
    *,
    wait_until: datetime | None = None,
    sleep: Sleep = time.sleep,
) -> WorkflowState:
    """Done when Route 53 reports the changes INSYNC and answers every name with the standby's values;
    until `wait_until` (None: one look) the step polls that every DNS_POLL_S inside."""
    progress = state.progress
    until = wait_until or clock()
    if progress.dns_deadline:
        until = min(until, progress.dns_deadline)
    if not wait_for(Polled(partial(_look_at_dns, state, dns, clock), DNS_POLL_S, sleep), bool, until, clock):
        return state
    progress.dns_in_sync = True
    answered = ", ".join(f"{r.name} answers {'/'.join(r.values)}" for r in state.plan.records)
    return state.note(
        "CheckDns",
        f"Route 53 changes INSYNC ({', '.join(progress.dns_changes)}); verified: {answered}",
        clock,
        progress.dns_started_at,
    )


def lower_ttl(
    state: WorkflowState, dns: Dns, ttl_s: int, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    """Before a planned migration or failback: the records keep their values with a short TTL, so that
    resolvers drop the old answers soon after the switch. The workflow then waits `ttlWaitSeconds`,
    until the longest old TTL has run out, before it shuts anything down."""
    started = clock()
    lowered, longest = [], 0
    for record in state.plan.records:
        if record.ttl <= ttl_s:
            continue
        sets = dns.record_sets(record.zone, record.name, record.type)
        if not sets:
            continue  # nothing cached to expire: the switch creates it
        lowered += [replace(s, ttl=ttl_s) for s in sets]
        longest = max(longest, record.ttl)
    progress = state.progress
    if not lowered:
        progress.ttl_wait_s = 0
        return state.note("LowerTtl", f"every record's TTL is {ttl_s} s or less already", clock, started)
    progress.ttl_changes = once(state.key("lower-ttl", ttl_s), lambda: dns.upsert(lowered))
    progress.ttl_expires_at = started + timedelta(seconds=longest)
    progress.ttl_wait_s = longest
    names = ", ".join(dict.fromkeys(r.name for r in lowered))
    return state.note(
        "LowerTtl",
        f"TTL of {names} lowered to {ttl_s} s; caches hold the old answers until "
        f"{progress.ttl_expires_at:%H:%M:%S} UTC: waiting {longest} s before the shutdown",
        clock,
        started,
    )


def _elapsed(state: WorkflowState, clock: Clock) -> float:
    return (clock() - state.started_at).total_seconds()


def _timeline(state: WorkflowState) -> list[str]:
    return [
        f"  {e.at:%H:%M:%S} {e.step}" + (f" ({e.duration_s:.1f} s)" if e.started else "") + f": {e.detail}"
        for e in state.timeline
    ]


def success_message(state: WorkflowState, clock: Clock = utcnow) -> tuple[str, str]:
    """The subject alone says whether to act: `OK: ... no action needed` or `ACTION NEEDED: ...`."""
    request, progress = state.request, state.progress
    words = MODE_WORDS[request.mode]
    route = f"{request.from_site} -> {request.to}"
    failed = len(progress.hook_failures)
    if request.dry_run:
        subject = f"[dcwatch] OK: DRY RUN {route}, nothing changed; no action needed"
        body = [f"Dry run: nothing was changed. This is what a {words} would do:", *describe_plan(state.plan)]
        body += [f"Storage: {state.storage}"] if state.storage else []
    elif request.mode == "drill":
        subject, body = drill_message(state)
    else:
        title = words.upper()
        if failed:
            subject = f"[dcwatch] ACTION NEEDED: {title} DONE {route}, but {failed} hook(s) failed"
        else:
            subject = f"[dcwatch] OK: {title} DONE {route}, services run at {request.to}; no action needed"
        body = [
            f"Services now run at {request.to}: every service check passed there and DNS answers with its addresses.",
            f"{request.from_site} stays out of service until failback.",
            f"Reason: {request.reason}",
            f"Recovery time (RTO, from the workflow's start to DNS verified): {_elapsed(state, clock):.1f} s",
            f"Fencing: {state.fencing or 'not done'}",
            f"Storage: {state.storage or 'no mirror configured'}",
            f"Powered on: {', '.join(progress.powered_on) or 'nothing (already on)'}",
        ]
        body += [f"Shut down at {request.from_site}: {_shutdown_summary(state)}"] if state.plan.shutdown else []
        if failed:
            body += [
                "Hooks that failed (set to continue), to be done by hand:",
                *[f"  {f}" for f in progress.hook_failures],
            ]
    body += ["", f"Incident: {state.incident_id}", "Timeline (end time, duration, step):", *_timeline(state)]
    return subject[:100], "\n".join(body)


def _shutdown_summary(state: WorkflowState) -> str:
    return "; ".join(f"{vm}: {how}" for vm, how in state.shutdown.how.items()) or "nothing"


def notify(state: WorkflowState, notifier: Notifier, clock: Clock = utcnow, *, once: Once = run_now) -> WorkflowState:
    started = clock()
    subject, message = success_message(state, clock)
    message_id = once(state.key("notify"), lambda: notifier.publish(subject, message))
    return state.note("Notify", f"notification sent ({message_id}): {subject}", clock, started)


def audit_record(state: WorkflowState, outcome: str, clock: Clock = utcnow) -> dict[str, Any]:
    return {
        "incidentId": state.incident_id,
        "runId": state.run_id,
        "outcome": outcome,
        "request": state.request.model_dump(mode="json", by_alias=True),
        "startedAt": state.started_at.isoformat(),
        "finishedAt": clock().isoformat(),
        "durationS": round(_elapsed(state, clock), 3),
        "poweredOn": state.progress.powered_on,
        "timeline": [e.model_dump(mode="json") for e in state.timeline],
        "fencing": state.fencing,
        "mode": state.request.mode,
        "shutdown": state.shutdown.how,
        "drill": state.drill.model_dump(mode="json", by_alias=True) if state.request.mode == "drill" else None,
        "approval": state.approval.decision,
        "fenceProof": state.fence_proof.model_dump(mode="json", by_alias=True) if state.fence_proof else None,
        "fencingApprovedBy": state.fencing_approved_by,
        "storage": state.storage,
        "hookFailures": state.progress.hook_failures,
        "failedStep": state.failed_step,
        "error": state.error,
    }


def record_audit(
    state: WorkflowState, store: StateStore, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    """Before the notification: the outcome is recorded whatever becomes of the announcement. A recovery's
    record, the new active site and the cooldown's start are written together (`StateStore.record_outcome`).
    After a notification failed (`notifyError`), a record of that instead."""
    if state.notify_error is not None:
        return _record_notify_error(state, store, clock, once)
    state.note("RecordAudit", "audit record written", clock, clock())
    if state.request.dry_run or state.request.mode == "drill":
        outcome = "dry-run" if state.request.dry_run else "drill-passed"
        once(state.key("audit"), lambda: store.append_audit(state.incident_id, audit_record(state, outcome, clock)))
        return state
    once(
        state.key("audit"),
        lambda: store.record_outcome(
            state.incident_id,
            audit_record(state, "succeeded", clock),
            active_site=state.plan.to,
            failover=LastFailover(state.incident_id, clock()),
        ),
    )
    return state


def _record_notify_error(state: WorkflowState, store: StateStore, clock: Clock, once: Once) -> WorkflowState:
    step = "NotifyFailure" if state.failed_step else "Notify"
    state.note("RecordAudit", f"{step} failed after its retries: the outcome stands as recorded", clock, clock())
    record = {**audit_record(state, "notify-failed", clock), "notifyError": state.notify_error, "notifyStep": step}
    once(state.key("audit-notify-error", step), lambda: store.append_audit(state.incident_id, record))
    return state


def _what_is_left(state: WorkflowState) -> list[str]:
    """Exactly what was done and what was not, from the progress the workflow carried to the failure."""
    progress, plan = state.progress, state.plan
    current = plan.groups[progress.group] if progress.group < len(plan.groups) else []
    started = [vm for vm in current if vm in progress.tasks and vm not in progress.powered_on]
    later = [vm for group in plan.groups[progress.group + 1 :] for vm in group]
    not_started = [vm for vm in current if vm not in progress.tasks and vm not in progress.powered_on] + later
    switched = bool(progress.dns_changes)
    records = ", ".join(r.name for r in plan.records)
    return [
        f"Up at {plan.to}: {', '.join(progress.powered_on) or 'nothing'}",
        f"Power-on started, not confirmed up: {', '.join(started) or 'none'}",
        f"Not powered on: {', '.join(not_started) or 'none'}",
        (f"DNS: UPSERT sent for {records}" if switched else f"DNS: not switched; {records} still at {plan.from_site}")
        + (" (INSYNC and verified)" if progress.dns_in_sync else ""),
        *(
            [f"DNS TTL lowered to {state.request.lower_ttl_s} s (values unchanged): restore it by hand if you stay"]
            if progress.ttl_changes and not switched
            else []
        ),
        f"Storage: {state.storage or 'not checked'}",
        f"Fencing: {state.fencing or 'not done'}",
        *[f"Hook failed (continued): {f}" for f in progress.hook_failures],
        f"Nothing was rolled back: what runs at {plan.to} keeps running. Fix the cause, then rerun the failover "
        "(steps already done are skipped) or fail back by hand.",
    ]


def failure_message(state: WorkflowState, clock: Clock = utcnow) -> tuple[str, str]:
    error = state.error or {}
    step = state.failed_step or "unknown step"
    cause = str(error.get("Cause", ""))
    if state.request.mode == "drill" or step == "RequestApproval":
        return stopped_message(state, step, _readable_cause(cause))
    if error.get("Error") in ("LeaseHeld", "Superseded"):
        # Another recovery runs, or ran (a second trigger of the same outage): this one changed nothing.
        route = f"{state.plan.from_site} -> {state.plan.to}"
        why = "another recovery holds the lock" if error["Error"] == "LeaseHeld" else "production already moved"
        subject = f"[dcwatch] OK: REFUSED {route}, {why}; no action needed"
        body = [f"This request changed nothing: {_readable_cause(cause)}", f"Reason given: {state.request.reason}"]
        body += ["", f"Incident: {state.incident_id}", "Timeline (end time, duration, step):", *_timeline(state)]
        return subject[:100], "\n".join(body)
    words = MODE_WORDS[state.request.mode]
    subject = f"[dcwatch] ACTION NEEDED: {words} {state.plan.from_site} -> {state.plan.to} failed at {step}"
    body = [
        f"The failover stopped at step {step}: {error.get('Error', 'error')}",
        f"Cause: {_readable_cause(cause)}",
        *_what_is_left(state),
        *([f"Shut down at {state.plan.from_site}: {_shutdown_summary(state)}"] if state.plan.shutdown else []),
        "",
        f"Incident: {state.incident_id}",
        "Done before the failure (end time, duration, step):",
        *_timeline(state),
    ]
    return subject[:100], "\n".join(body)


def drill_message(state: WorkflowState) -> tuple[str, list[str]]:
    """A passed drill: how long the standby took to serve, and that production was never touched."""
    request, measured = state.request, state.drill.measured
    proven = measured.get("drill record in sync", _elapsed_at(state, "CheckDns"))
    subject = f"[dcwatch] OK: DRILL PASSED {request.from_site} -> {request.to}, standby proven in {proven:.1f} s"
    if state.drill.lease_problem:
        subject = f"[dcwatch] ACTION NEEDED: DRILL PASSED {request.from_site} -> {request.to}, but it lost the lock"
    body = [
        f"The standby copies of {', '.join(state.plan.services)} at {request.to} came up, passed their checks and "
        "answered on the drill records; production and its DNS records were not touched.",
        f"Reason: {request.reason}",
        *[f"  {milestone}: {seconds:.1f} s" for milestone, seconds in measured.items()],
        f"Cleanup: {state.drill.cleanup or 'not done'}",
    ]
    body += [f"Lock: {state.drill.lease_problem}"] if state.drill.lease_problem else []
    body += [f"Drill network (recorded): {state.plan.network}"] if state.plan.network else []
    return subject, body


def _elapsed_at(state: WorkflowState, step: str) -> float:
    """Seconds from the start to the last timeline entry of `step` (0 when it never ran)."""
    times = [e.at for e in state.timeline if e.step == step]
    return (times[-1] - state.started_at).total_seconds() if times else 0.0


def stopped_message(state: WorkflowState, step: str, cause: str) -> tuple[str, str]:
    """A drill that failed (cleaned up), or a recovery nobody approved: production as it was."""
    request, words = state.request, MODE_WORDS[state.request.mode]
    unproven = state.fence_proof is not None and not state.fence_proof.proven
    if step == "RequestApproval":
        gate = state.fence_approval if unproven else state.approval
        decision = gate.decision or {}
        if decision:
            cause = f"denied by {decision.get('by', '?')}: {decision.get('reason', '')}"
        elif (state.error or {}).get("Error") == "States.Timeout":
            cause = f"no answer within {gate.timeout_seconds} s"
        subject = f"[dcwatch] OK: NOT APPROVED {words} {request.from_site} -> {request.to}, nothing was changed"
        lines = [f"The {words} was not approved: {cause}", "Nothing was changed; start it again to retry."]
        if unproven:
            assert state.fence_proof is not None
            subject = (
                f"[dcwatch] ACTION NEEDED: NOT APPROVED {words} {request.from_site} -> {request.to}, "
                f"{request.from_site} not proven fenced"
            )
            lines = [
                state.fence_proof.summary,
                f"The promotion of {request.to} was not approved: {cause}",
                f"Nothing was powered on at {request.to} and DNS still points at {request.from_site}. Once "
                f"{request.from_site} is known not to serve (or is fenced by hand), start the {words} again.",
            ]
    elif state.drill.cleanup is not None and step != "CleanUpDrill":
        subject = f"[dcwatch] ACTION NEEDED: DRILL FAILED at {step}, production untouched, drill cleaned up"
        lines = [f"The drill stopped at step {step}: {cause}", f"Cleanup: {state.drill.cleanup}"]
        lines += [f"Lock: {state.drill.lease_problem}"] if state.drill.lease_problem else []
    else:
        subject = f"[dcwatch] ACTION NEEDED: drill cleanup incomplete after {step}"
        # After a failed step the cleanup's own error is in cleanupError; when the cleanup was the step, in error.
        cleanup_error = state.cleanup_error or (state.error if step == "CleanUpDrill" else None) or {}
        lines = [
            f"The drill stopped at step {step}: {cause}",
            f"Cleanup did not finish: {_readable_cause(str(cleanup_error.get('Cause', ''))) or 'cause unknown'}",
            f"Power off at {request.to} what the drill powered on and restore the drill records by hand: "
            f"{', '.join(r.name for r in state.plan.records)}. Production was not touched.",
        ]
    lines += ["", f"Incident: {state.incident_id}", "Timeline (end time, duration, step):", *_timeline(state)]
    return subject[:100], "\n".join(lines)


def _readable_cause(cause: str) -> str:
    try:
        parsed = json.loads(cause)
    except ValueError:
        return cause
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        return str(parsed["errorMessage"])
    return cause


def notify_failure(
    state: WorkflowState, notifier: Notifier, store: StateStore, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    """Audit first, then announce: a failed publish (retried, then `notifyError`) never loses the record. A
    failure after the DNS switch moved production: the cooldown starts with it, as with a success."""
    subject, message = failure_message(state, clock)
    state.note("NotifyFailure", f"failure at {state.failed_step} announced", clock, clock())
    moved = bool(state.progress.dns_changes) and state.request.mode != "drill" and not state.request.dry_run
    record = audit_record(state, "failed", clock)
    failover = LastFailover(state.incident_id, clock()) if moved else None
    try:
        once(
            state.key("audit-failure", state.failed_step),
            lambda: store.record_outcome(state.incident_id, record, failover=failover),
        )
    finally:  # announced even when the record cannot be written (yet): the retry writes it, publishing once
        once(state.key("notify-failure", state.failed_step), lambda: notifier.publish(subject, message))
    return state
