"""What the core needs from the outside world. Adapters implement these; tests use fakes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from dcwatch.agent.report import SiteAgentReport
from dcwatch.config import Hook, MaintenanceWindow
from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.model import AutomationSwitch, CheckState, LastFailover, RoundMark, StoredStatus


@dataclass(frozen=True)
class TaskState:
    """A vCenter task as last seen: queued, running, success or error."""

    state: str
    error: str = ""


@dataclass(frozen=True)
class GuestState:
    """What vCenter knows of a VM's guest: powered on, VMware Tools' heartbeat, the IP the guest reports."""

    power: str
    heartbeat: str = "gray"
    ip: str = ""

    @property
    def up(self) -> bool:
        """Booted as far as vCenter can tell: on, with a green Tools heartbeat or an IP address."""
        return self.power == "poweredOn" and (self.heartbeat == "green" or bool(self.ip))


@dataclass(frozen=True)
class Observed:
    """What a wait on a priority group sees: its VMs' guests and their power-on tasks, by VM name and task id."""

    guests: Mapping[str, GuestState] = field(default_factory=dict)
    tasks: Mapping[str, TaskState] = field(default_factory=dict)


W = TypeVar("W", covariant=True)

# An audit record to write with the change it records: (its incident, the record).
Audited = tuple[str, dict[str, object]]


class Watch(Protocol[W]):
    """Something a step waits on inside its invocation: seen now, then again as soon as it changes."""

    def current(self) -> W:
        """What is seen now, without waiting."""
        ...

    def changed(self, timeout_s: float) -> W:
        """What is seen after the next change, or after `timeout_s` without one (it may return early)."""
        ...


class Inventory(Protocol):
    """One site's vCenter, as far as failover needs it."""

    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Power state by VM name; VMs that do not exist are absent."""
        ...

    def guest_states(self, vm_names: Sequence[str]) -> dict[str, GuestState]:
        """Power and guest state by VM name; VMs that do not exist are absent."""
        ...

    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start power-on tasks; returns task id by VM name."""
        ...

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]: ...

    def power_off(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start power-off tasks of the VMs that are on; returns task id by VM name."""
        ...

    def shutdown_guest(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Ask each VM's guest OS to shut down (through VMware Tools); returns the VMs that refused, with why."""
        ...

    def watch(self, vm_names: Sequence[str], task_ids: Sequence[str]) -> AbstractContextManager[Watch[Observed]]:
        """The guests of `vm_names` and the tasks `task_ids`, told as they change (VMs that do not exist are absent)."""
        ...


@dataclass(frozen=True)
class DrillClone:
    """A VM a drill made: its name (`<vm>-drill-<run>`), the standby VM it copies, the drill run that made it,
    its power state and the networks its NICs are on."""

    name: str
    original: str
    run: str
    power: str = "poweredOff"
    networks: tuple[str, ...] = ()


class DrillLab(Protocol):
    """One site's vCenter, as a drill needs it: point-in-time clones of standby VMs, isolated, found again by
    name and mark, destroyed. The standby VMs themselves are only read (as the clones' sources)."""

    def clone(
        self,
        clones: Mapping[str, str],
        run: str,
        *,
        datastore: str | None = None,
        folder: str | None = None,
        resource_pool: str | None = None,
        network: str | None = None,
    ) -> dict[str, str]:
        """Start one CloneVM_Task per clone name (key) of its standby VM (value), powered off, marked as a clone
        of drill `run`, its NICs made on `network`; returns the task id by clone name. A clone that exists
        already gets no task."""
        ...

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]: ...

    def isolate(self, clones: Sequence[str], network: str) -> None:
        """Move every NIC of each clone to `network` (ReconfigVM_Task), and wait for it; raises if one fails."""
        ...

    def clones(self, run: str | None = None) -> list[DrillClone]:
        """The drill clones at this site, of `run` or of every run: VMs both named and marked as drill clones."""
        ...

    def destroy(self, clones: Sequence[str]) -> list[str]:
        """Power off and destroy these drill clones, refusing any VM not marked as one; returns those destroyed."""
        ...


@dataclass(frozen=True)
class RecordValues:
    """One Route 53 record set; weighted and failover ones carry their set identifier and weight or role."""

    zone: str
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    set_identifier: str | None = None
    weight: int | None = None
    failover: str | None = None


class Dns(Protocol):
    def upsert(self, records: Sequence[RecordValues]) -> list[str]:
        """UPSERT the records, one change batch per zone; returns the change ids."""
        ...

    def in_sync(self, change_ids: Sequence[str]) -> bool: ...

    def values(self, zone: str, name: str, record_type: str) -> list[str]:
        """The values Route 53 answers with now, by the record's routing; empty when it does not exist."""
        ...

    def record_sets(self, zone: str, name: str, record_type: str) -> list[RecordValues]:
        """Every record set of the name and type now (one for a simple record)."""
        ...

    def delete(self, records: Sequence[RecordValues]) -> list[str]:
        """Delete the records (as they are now); returns the change ids."""
        ...

    def answers(self, zone: str, name: str, record_type: str) -> list[str]:
        """What a resolver is answered for the name now (Route 53: TestDNSAnswer)."""
        ...


@dataclass(frozen=True)
class HookResult:
    ok: bool
    detail: str
    answer: Mapping[str, Any] = field(default_factory=dict)  # what the hook answered, when it was a JSON object


class HookRunner(Protocol):
    def run(self, hook: Hook, payload: Mapping[str, Any]) -> HookResult:
        """Call the hook with `payload` within its timeout; never raises for the hook's own failure."""
        ...


T = TypeVar("T")


class Once(Protocol):
    """Runs an action once per key: a retried or re-delivered step gets the first run's result back."""

    def __call__(self, key: str, action: Callable[[], T]) -> T: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> str: ...


class ReportStore(Protocol):
    def put_report(self, key: str, html: str) -> str:
        """Keeps one recovery's report page under `key`, once; where people open it (a URL)."""
        ...


class EventPublisher(Protocol):
    def publish_probe_results(self, results: Sequence[ProbeResult]) -> int:
        """A probe round's results as ProbeRound events (`events.probe_rounds`); returns the results sent."""
        ...

    def publish_site_status(self, event: SiteStatusChanged) -> None: ...


class CheckStore(Protocol):
    """The check states of each site, per vantage point, and the marks of the rounds judged (see `model.RoundMark`).

    What the evaluator reads once per round and writes back in batches."""

    def get_check(self, site: str, check: str, vantage: str) -> CheckState | None: ...

    def put_check(self, state: CheckState, expected_last_observed: object) -> bool:
        """Write if nobody wrote a newer result meanwhile; False when the write lost."""
        ...

    def record_pass(self, result: ProbeResult) -> bool:
        """A passing result for a check that is steady (see `health.is_steady`) and older than the result:
        only its time and success count move. False, changing nothing, for any other state, a late or a
        duplicate result: the caller then takes the full path. One write instead of a read and a write
        for most results of a healthy pair of sites."""
        ...

    def site_checks(self, site: str) -> list[CheckState]:
        """Every check of the site, from every vantage point."""
        ...

    def site_snapshot(self, site: str) -> tuple[list[CheckState], dict[str, RoundMark]]: ...

    def put_checks(self, states: list[CheckState]) -> None: ...

    def delete_checks(self, states: list[CheckState]) -> None: ...

    def mark_round(self, site: str, vantage: str, started_at: datetime, chunk: int, chunks: int) -> bool:
        """False: that chunk, or a newer round, is marked already."""
        ...

    def generation(self, site: str) -> str | None:
        """The site's generation: a token every writer of its check states and marks changes first (one item)."""
        ...

    def claim_generation(self, site: str, expected: str | None) -> str | None:
        """A new generation for the site, if it is still `expected`; None when another writer changed it."""
        ...


class StatusStore(Protocol):
    """What has been judged and decided: each condition, the active site, the last failover."""

    def condition(self, key: str, default: str) -> StoredStatus:
        """The stored condition under `key` ("site/dc-a", "service/shop@dc-a", "vantage/aws-vpc")."""
        ...

    def change_condition(self, key: str, previous: StoredStatus, new: StoredStatus) -> bool:
        """Replace `previous` by `new`; False when another evaluator changed it first."""
        ...

    def site_status(self, site: str) -> str:
        """The evaluator's recorded status of a site: UP until it records a change (it writes changes only)."""
        ...

    def active_site(self, default: str) -> str: ...

    def set_active_site(self, site: str, incident_id: str) -> None: ...

    def last_failover(self) -> LastFailover | None: ...

    def record_failover(self, failover: LastFailover) -> None: ...


class Controls(Protocol):
    """What operators set by hand: the automation switch, maintenance windows, acknowledgements."""

    def automation(self) -> AutomationSwitch: ...

    def set_automation(self, switch: AutomationSwitch, audit: Audited | None = None) -> None:
        """With `audit` (incident, record): the switch and its audit record land together, or neither does."""
        ...

    def maintenance_windows(self) -> list[MaintenanceWindow]:
        """Windows operators opened by hand (`dcwatch maintenance open`), besides the config's."""
        ...

    def open_maintenance(self, window: MaintenanceWindow, audit: Audited | None = None) -> None: ...

    def acknowledged(self, incident_id: str) -> bool: ...

    def acknowledge(self, incident_id: str, by: str, reason: str, audit: Audited | None = None) -> None: ...


class AuditLog(Protocol):
    """The append-only record of every decision and action."""

    def append_audit(self, incident_id: str, record: dict[str, object]) -> None: ...

    def record_outcome(
        self,
        incident_id: str,
        record: dict[str, object],
        *,
        active_site: str | None = None,
        failover: LastFailover | None = None,
        fresh_conditions: Sequence[str] = (),
    ) -> None:
        """The audit record with the change it records (the active site; the cooldown's start), both or neither.
        `fresh_conditions`: stored conditions that start afresh with the change (deleted with it): the parts of a
        site that becomes active, judged last in its previous turn as the active site."""
        ...


@dataclass(frozen=True)
class AuditEntry:
    """One audit record as stored: under its incident or subject (`id`), at the time it was written."""

    id: str
    at: datetime
    record: Mapping[str, Any]


@dataclass(frozen=True)
class AuditPage:
    """What a bounded read of the audit trail found; `complete` False when it stopped at its bound."""

    entries: list[AuditEntry]
    complete: bool = True


class AuditReader(Protocol):
    """The audit trail, read back (`dcwatch status`, `dcwatch history`)."""

    def entries(self, incident_id: str) -> list[AuditEntry]:
        """Every record under one incident or subject, oldest first."""
        ...

    def entries_since(self, since: datetime | None) -> AuditPage:
        """Every record written at or after `since` (all of them for None), up to the reader's bound."""
        ...


class AgentReportStore(Protocol):
    """The latest report of each site's agent."""

    def agent_report(self, site: str) -> SiteAgentReport | None:
        """The latest report of the site's agent the evaluator stored (by the time the agent sent it)."""
        ...

    def put_agent_report(self, report: SiteAgentReport) -> bool:
        """Keep `report` as the site's latest unless a later one is kept already; False then."""
        ...


class StateStore(CheckStore, StatusStore, Controls, AuditLog, AgentReportStore, Protocol):
    """The whole state table, as one adapter implements it. Users take the ports they need."""


@dataclass(frozen=True)
class SiteLease:
    """A site agent's lease as its agent last renewed it (pk `site-lease#<site>` in the locks table)."""

    site: str
    agent_id: str
    renewed_at: datetime
    expires_at: datetime
    sees_peer: bool
    serving: bool
    state: str = ""

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class SiteLeases(Protocol):
    def read(self, site: str) -> SiteLease | None:
        """The site's lease as its agent last wrote it, read consistently; None when it never wrote one."""
        ...


@dataclass(frozen=True)
class Lease:
    """The single failover lock: held by `owner` (an incident id) until `expires_at`, unless renewed.

    `leaving`: the site a failover, migration or failback holding it moves production away from (None for a
    drill, which never touches production): that site failing meanwhile is the recovery's own doing."""

    owner: str
    expires_at: datetime
    leaving: str | None = None


class Leases(Protocol):
    def acquire(self, owner: str, ttl_s: int, now: datetime, leaving: str | None = None) -> Lease:
        """Take the lock if free, expired or already ours; returns whoever holds it afterwards."""
        ...

    def renew(self, owner: str, ttl_s: int, now: datetime) -> bool:
        """Extend our lease; False when it is not (or no longer) ours."""
        ...

    def release(self, owner: str) -> bool:
        """Give the lock back; only its owner can, so False for anyone else."""
        ...

    def holder(self) -> Lease | None: ...


@dataclass(frozen=True)
class RunningExecution:
    """A recovery workflow running now, and the state it last entered (its execution history's last
    `StateEntered`)."""

    name: str
    started_at: datetime
    mode: str = ""
    step: str = ""
    step_at: datetime | None = None


class Executions(Protocol):
    def running(self) -> list[RunningExecution]:
        """The workflow's RUNNING executions (in practice one: the failover lock admits one recovery)."""
        ...


class WorkflowStarter(Protocol):
    def start(self, name: str, payload: dict[str, object]) -> str:
        """Start the failover workflow once per name; returns the execution id."""
        ...
