"""In-memory stand-ins for the ports, for unit tests of the domain. They keep the ports' promises:
conditional writes lose when someone wrote first, tasks finish when told to."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from dcwatch.agent.report import SiteAgentReport
from dcwatch.config import Hook, MaintenanceWindow
from dcwatch.detection.health import is_steady, refreshed
from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.model import AutomationSwitch, CheckState, LastFailover, RoundMark, StoredStatus
from dcwatch.ports import (
    Audited,
    DrillClone,
    GuestState,
    HookResult,
    Lease,
    Observed,
    RecordValues,
    SiteLease,
    TaskState,
)
from dcwatch.routing import answered_values

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FakeInventory:
    """With a `clock`, a guest reports its IP `boot_s[vm]` after its VM powered on, and a watch lets the clock run
    to the next such moment (or its timeout), as vCenter's WaitForUpdatesEx answers when a property changes."""

    def __init__(self, vms: dict[str, str], clock: Clock | None = None):
        self.vms = dict(vms)
        self.tasks: dict[str, tuple[str, str]] = {}
        self.power_on_calls: list[list[str]] = []
        self.fail: dict[str, str] = {}
        self.instant = True
        self.no_guest: set[str] = set()  # powered on, but their guest never reports (no Tools, no IP)
        self.clock = clock
        self.boot_s: dict[str, float] = {}
        self.powered_at: dict[str, datetime] = {}
        self.watches: list[list[str]] = []
        self.power_off_s: float | None = None  # with a clock: how long a power-off task runs
        self.off_at: dict[str, tuple[datetime, str]] = {}  # VM -> when its running power-off task ends, the task

    def _settle(self) -> None:
        """Power-off tasks whose time has come end: their VMs are off."""
        for name, (at, task) in list(self.off_at.items()):
            if self.clock is not None and self.clock() >= at:
                self.vms[name], self.tasks[task] = "poweredOff", (name, "success")
                del self.off_at[name]

    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        self._settle()
        return {n: self.vms[n] for n in vm_names if n in self.vms}

    def boots_at(self, name: str) -> datetime | None:
        """When the guest reports its IP: None while off or without a guest; a VM on from the start has booted."""
        if name in self.no_guest or self.vms.get(name) != "poweredOn":
            return None
        on = self.powered_at.get(name)
        return on + timedelta(seconds=self.boot_s.get(name, 0)) if on else EPOCH

    def _booted(self, name: str) -> bool:
        at = self.boots_at(name)
        return at is not None and (self.clock is None or self.clock() >= at)

    def guest_states(self, vm_names: Sequence[str]) -> dict[str, GuestState]:
        return {
            n: GuestState(power, "gray", "192.0.2.99" if self._booted(n) else "")
            for n, power in self.power_states(vm_names).items()
        }

    @contextmanager
    def watch(self, vm_names: Sequence[str], task_ids: Sequence[str]) -> Iterator[FakeWatch]:
        self.watches.append(list(vm_names))
        yield FakeWatch(self, list(vm_names), list(task_ids))

    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        self.power_on_calls.append(list(vm_names))
        ids = {}
        for name in vm_names:
            task = f"task-{len(self.tasks) + 1}"
            ids[name] = task
            self.tasks[task] = (name, "running")
            if self.instant:
                self.finish(task)
        return ids

    def finish(self, task: str) -> None:
        name, _ = self.tasks[task]
        if name in self.fail:
            self.tasks[task] = (name, "error")
        else:
            self.tasks[task] = (name, "success")
            self.vms[name] = "poweredOn"
            if self.clock is not None:
                self.powered_at[name] = self.clock()

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        self._settle()
        return {t: TaskState(self.tasks[t][1], self.fail.get(self.tasks[t][0], "")) for t in task_ids}

    def power_off(self, vm_names: Sequence[str]) -> dict[str, str]:
        ids = {}
        for name in vm_names:
            if self.vms.get(name) == "poweredOn" and name not in self.off_at:
                ids[name] = f"task-{len(self.tasks) + 1}"
                self.tasks[ids[name]] = (name, "success" if self.instant else "running")
                if self.power_off_s is not None and self.clock is not None:
                    self.tasks[ids[name]] = (name, "running")
                    self.off_at[name] = (self.clock() + timedelta(seconds=self.power_off_s), ids[name])
                elif self.instant:
                    self.vms[name] = "poweredOff"
        return ids


class FakeDrillLab(FakeInventory):
    """A vCenter with drill clones: a clone is a VM of its own (powered off, on the original's network until
    isolated), marked with its run and original. `changes` records every change made to a VM by name."""

    def __init__(self, vms: dict[str, str], clock: Clock | None = None, networks: dict[str, str] | None = None):
        super().__init__(vms, clock)
        self.networks = {vm: "VM Network" for vm in vms} | dict(networks or {})
        self.marks: dict[str, tuple[str, str]] = {}  # clone -> (run, original)
        self.clone_calls: list[dict[str, Any]] = []
        self.clone_fail: dict[str, str] = {}  # standby VM -> why its clone fails
        self.clone_errors: dict[str, str] = {}  # task -> its error
        self.slow_clones = 0  # clone tasks still running on the next reads

    def clone(self, clones: Mapping[str, str], run: str, **where: str | None) -> dict[str, str]:
        self.clone_calls.append({"clones": dict(clones), "run": run, **where})
        ids = {}
        for name, original in clones.items():
            if name in self.vms:
                continue
            task = f"clone-{len(self.tasks) + 1}"
            ids[name] = task
            failed = original in self.clone_fail
            self.tasks[task] = (name, "error" if failed else "running" if self.slow_clones else "success")
            self.clone_errors[task] = self.clone_fail.get(original, "")
            if not failed:
                self.vms[name], self.networks[name] = "poweredOff", self.networks.get(original, "VM Network")
                self.marks[name] = (run, original)
        return ids

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        if self.slow_clones:
            self.slow_clones -= 1
        else:
            self.tasks = {t: (n, "success" if s == "running" else s) for t, (n, s) in self.tasks.items()}
        states = super().task_states(task_ids)
        return {t: TaskState(s.state, self.clone_errors.get(t, s.error)) for t, s in states.items()}

    def isolate(self, clones: Sequence[str], network: str) -> None:
        for name in clones:
            self.networks[name] = network

    def clones(self, run: str | None = None) -> list[DrillClone]:
        return [
            DrillClone(name, original, made_by, self.vms[name], (self.networks[name],))
            for name, (made_by, original) in sorted(self.marks.items())
            if name in self.vms and (run is None or made_by == run)
        ]

    def destroy(self, clones: Sequence[str]) -> list[str]:
        if unmarked := [c for c in clones if c in self.vms and c not in self.marks]:
            raise ValueError(f"not drill clones: {unmarked}")
        gone = [c for c in clones if c in self.vms and c not in self.stuck_clones]
        for name in gone:
            del self.vms[name], self.marks[name]
        return gone

    stuck_clones: frozenset[str] = frozenset()


class FakeWatch:
    def __init__(self, inventory: FakeInventory, vm_names: list[str], task_ids: list[str]):
        self.inventory, self.vm_names, self.task_ids = inventory, vm_names, task_ids
        self.waited: list[float] = []

    def current(self) -> Observed:
        return Observed(self.inventory.guest_states(self.vm_names), self.inventory.task_states(self.task_ids))

    def changed(self, timeout_s: float) -> Observed:
        clock = self.inventory.clock
        assert clock is not None, "a FakeInventory that is watched needs a clock"
        boots = [self.inventory.boots_at(vm) for vm in self.vm_names]
        boots += [at for vm, (at, _) in self.inventory.off_at.items() if vm in self.vm_names]
        later = [at for at in boots if at is not None and at > clock()]
        clock.now = min([*later, clock() + timedelta(seconds=timeout_s)])
        return self.current()


class FakeDns:
    def __init__(self, pending_polls: int = 0):
        self.records: dict[str, tuple[str, ...]] = {}
        self.sets: dict[tuple[str, str | None], RecordValues] = {}
        self.upserts: list[list[RecordValues]] = []
        self.pending_polls = pending_polls

    def upsert(self, records: Sequence[RecordValues]) -> list[str]:
        self.upserts.append(list(records))
        for record in records:
            self.sets[(record.name, record.set_identifier)] = record
            self.records[record.name] = tuple(answered_values(self.record_sets("", record.name, record.type)))
        return [f"change-{len(self.upserts)}"]

    def record_sets(self, zone: str, name: str, record_type: str) -> list[RecordValues]:
        return [r for (n, _), r in self.sets.items() if n == name]

    def in_sync(self, change_ids: Sequence[str]) -> bool:
        if self.pending_polls:
            self.pending_polls -= 1
            return False
        return True

    def answers(self, zone: str, name: str, record_type: str) -> list[str]:
        return list(self.records.get(name, ()))

    def values(self, zone: str, name: str, record_type: str) -> list[str]:
        return list(self.records.get(name, ()))


class ZoneDns(FakeDns):
    """Records that can be deleted: what a drill's cleanup does to records that did not exist before."""

    def values(self, zone: str, name: str, record_type: str) -> list[str]:
        return list(self.records.get(name, ()))

    def delete(self, records: Sequence[RecordValues]) -> list[str]:
        for record in records:
            del self.records[record.name]
            self.sets = {key: kept for key, kept in self.sets.items() if key[0] != record.name}
        return ["change-delete"]


class FakeHooks:
    """Answers each hook by name: ok unless listed in `failing` (with its detail)."""

    def __init__(self, failing: Mapping[str, str] | None = None) -> None:
        self.failing = dict(failing or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def run(self, hook: Hook, payload: Mapping[str, Any]) -> HookResult:
        self.calls.append((hook.name, dict(payload)))
        if hook.name in self.failing:
            return HookResult(False, self.failing[hook.name])
        return HookResult(True, "status 200", self.answers.get(hook.name, {}))

    answers: Mapping[str, Mapping[str, Any]] = {}


T = TypeVar("T")


class FakeOnce:
    """Remembers each key's result, as the idempotency table does."""

    def __init__(self) -> None:
        self.results: dict[str, Any] = {}

    def __call__(self, key: str, action: Callable[[], T]) -> T:
        if key not in self.results:
            self.results[key] = action()
        return self.results[key]  # type: ignore[no-any-return]


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> str:
        self.sent.append((subject, message))
        return f"msg-{len(self.sent)}"


class FakeStore:
    def __init__(self) -> None:
        self.checks: dict[tuple[str, str, str], CheckState] = {}
        self.conditions: dict[str, StoredStatus] = {}
        self.active: str | None = None
        self.audits: dict[str, list[dict[str, object]]] = {}
        self.switch = AutomationSwitch()
        self.failover: LastFailover | None = None
        self.acks: set[str] = set()
        self.windows: list[MaintenanceWindow] = []
        self.reports: dict[str, SiteAgentReport] = {}
        self.marks: dict[tuple[str, str], RoundMark] = {}
        self.snapshots = 0  # site_snapshot reads
        self.generations: dict[str, str] = {}
        self.generation_reads = 0

    def get_check(self, site: str, check: str, vantage: str) -> CheckState | None:
        return self.checks.get((site, check, vantage))

    def put_check(self, state: CheckState, expected_last_observed: object) -> bool:
        key = (state.site, state.check, state.vantage)
        current = self.checks.get(key)
        if (current.last_observed_at if current else None) != expected_last_observed:
            return False
        self.checks[key] = state
        return True

    def record_pass(self, result: ProbeResult) -> bool:
        key = (result.site, result.check, result.vantage)
        current = self.checks.get(key)
        if current is None or not is_steady(current) or current.last_observed_at is None:
            return False
        if result.observed_at <= current.last_observed_at:
            return False
        self.checks[key] = replace(
            current, last_observed_at=result.observed_at, successes=current.successes + 1, critical=result.critical
        )
        return True

    def site_checks(self, site: str) -> list[CheckState]:
        return self.site_snapshot(site)[0]

    def site_snapshot(self, site: str) -> tuple[list[CheckState], dict[str, RoundMark]]:
        self.snapshots += 1
        marks = {v: m for (s, v), m in self.marks.items() if s == site}
        checks = [refreshed(c, marks.get(c.vantage)) for (s, _, _), c in self.checks.items() if s == site]
        return checks, marks

    def put_checks(self, states: list[CheckState]) -> None:
        for state in states:
            self.checks[(state.site, state.check, state.vantage)] = state

    def delete_checks(self, states: list[CheckState]) -> None:
        for state in states:
            self.checks.pop((state.site, state.check, state.vantage), None)

    def mark_round(self, site: str, vantage: str, started_at: datetime, chunk: int, chunks: int) -> bool:
        mark = self.marks.get((site, vantage))
        if mark is not None and mark.judged(started_at, chunk):
            return False
        self.marks[(site, vantage)] = RoundMark.after(mark, vantage, started_at, chunk, chunks)
        return True

    def generation(self, site: str) -> str | None:
        self.generation_reads += 1
        return self.generations.get(site)

    def claim_generation(self, site: str, expected: str | None) -> str | None:
        if self.generations.get(site) != expected:
            return None
        self.generations[site] = f"{site}-{len(self.generations)}-{self.generation_reads}-{id(object())}"
        return self.generations[site]

    def condition(self, key: str, default: str) -> StoredStatus:
        return self.conditions.get(key, StoredStatus(default))

    def change_condition(self, key: str, previous: StoredStatus, new: StoredStatus) -> bool:
        if self.conditions.get(key, StoredStatus(previous.status)).version != previous.version:
            return False
        self.conditions[key] = new
        return True

    def site_status(self, site: str) -> str:
        return self.condition(f"site/{site}", "UP").status

    def active_site(self, default: str) -> str:
        return self.active or default

    def set_active_site(self, site: str, incident_id: str) -> None:
        self.active = site

    def automation(self) -> AutomationSwitch:
        return self.switch

    def set_automation(self, switch: AutomationSwitch, audit: Audited | None = None) -> None:
        self.switch = switch
        self._audit(audit)

    def _audit(self, audit: Audited | None) -> None:
        if audit is not None:
            self.append_audit(*audit)

    def maintenance_windows(self) -> list[MaintenanceWindow]:
        return list(self.windows)

    def open_maintenance(self, window: MaintenanceWindow, audit: Audited | None = None) -> None:
        self.windows.append(window)
        self._audit(audit)

    def last_failover(self) -> LastFailover | None:
        return self.failover

    def record_failover(self, failover: LastFailover) -> None:
        self.failover = failover

    def acknowledged(self, incident_id: str) -> bool:
        return incident_id in self.acks

    def acknowledge(self, incident_id: str, by: str, reason: str, audit: Audited | None = None) -> None:
        self.acks.add(incident_id)
        self._audit(audit)

    def append_audit(self, incident_id: str, record: dict[str, object]) -> None:
        self.audits.setdefault(incident_id, []).append(record)

    def record_outcome(
        self,
        incident_id: str,
        record: dict[str, object],
        *,
        active_site: str | None = None,
        failover: LastFailover | None = None,
        fresh_conditions: Sequence[str] = (),
    ) -> None:
        self.append_audit(incident_id, record)
        if active_site is not None:
            self.set_active_site(active_site, incident_id)
        if failover is not None:
            self.record_failover(failover)
        for key in fresh_conditions:
            self.conditions.pop(key, None)

    def records(self, kind: str) -> list[dict[str, object]]:
        return [r for records in self.audits.values() for r in records if r.get("kind") == kind]

    def agent_report(self, site: str) -> SiteAgentReport | None:
        return self.reports.get(site)

    def put_agent_report(self, report: SiteAgentReport) -> bool:
        kept = self.reports.get(report.site)
        if kept is not None and kept.sent_at >= report.sent_at:
            return False
        self.reports[report.site] = report
        return True


class FakeSiteLeases:
    """Site agents' leases as their agents last wrote them."""

    def __init__(self, leases: Mapping[str, SiteLease] | None = None) -> None:
        self.leases = dict(leases or {})

    def read(self, site: str) -> SiteLease | None:
        return self.leases.get(site)


class FakeLeases:
    """The lock's promises: one holder, expiry, owner-only renew and release."""

    def __init__(self) -> None:
        self.lease: Lease | None = None
        self.acquired: list[str] = []

    def acquire(self, owner: str, ttl_s: int, now: datetime, leaving: str | None = None) -> Lease:
        if self.lease is None or self.lease.expires_at < now or self.lease.owner == owner:
            self.lease = Lease(owner, now + timedelta(seconds=ttl_s), leaving)
            self.acquired.append(owner)
        return self.lease

    def renew(self, owner: str, ttl_s: int, now: datetime) -> bool:
        if self.lease is None or self.lease.owner != owner:
            return False
        self.lease = Lease(owner, now + timedelta(seconds=ttl_s), self.lease.leaving)
        return True

    def release(self, owner: str) -> bool:
        if self.lease is None or self.lease.owner != owner:
            return False
        self.lease = None
        return True

    def holder(self) -> Lease | None:
        return self.lease


class FakePublisher:
    def __init__(self) -> None:
        self.site_changes: list[SiteStatusChanged] = []
        self.results: list[ProbeResult] = []

    def publish_probe_results(self, results: Sequence[ProbeResult]) -> int:
        self.results.extend(results)
        return len(results)

    def publish_site_status(self, event: SiteStatusChanged) -> None:
        self.site_changes.append(event)


class FakeWorkflows:
    def __init__(self) -> None:
        self.started: dict[str, dict[str, object]] = {}

    def start(self, name: str, payload: dict[str, object]) -> str:
        self.started.setdefault(name, payload)
        return f"arn:execution:{name}"


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
