"""What the core needs from the outside world. Adapters implement these; tests use fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.health import CheckState


@dataclass(frozen=True)
class TaskState:
    """A vCenter task as last seen: queued, running, success or error."""

    state: str
    error: str = ""


class Inventory(Protocol):
    """One site's vCenter, as far as failover needs it."""

    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Power state by VM name; VMs that do not exist are absent."""
        ...

    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start power-on tasks; returns task id by VM name."""
        ...

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]: ...


@dataclass(frozen=True)
class RecordValues:
    zone: str
    name: str
    type: str
    ttl: int
    values: tuple[str, ...]


class Dns(Protocol):
    def upsert(self, records: Sequence[RecordValues]) -> list[str]:
        """UPSERT the records, one change batch per zone; returns the change ids."""
        ...

    def in_sync(self, change_ids: Sequence[str]) -> bool: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> str: ...


class EventPublisher(Protocol):
    def publish_probe_results(self, results: Sequence[ProbeResult]) -> int: ...

    def publish_site_status(self, event: SiteStatusChanged) -> None: ...


class StateStore(Protocol):
    def get_check(self, site: str, check: str) -> CheckState | None: ...

    def put_check(self, state: CheckState, expected_last_observed: object) -> bool:
        """Write if nobody wrote a newer result meanwhile; False when the write lost."""
        ...

    def site_checks(self, site: str) -> list[CheckState]: ...

    def site_status(self, site: str) -> str: ...

    def transition_site(self, site: str, previous: str, status: str, incident_id: str | None) -> bool:
        """Move the site from `previous` to `status`; False when another evaluator already did."""
        ...

    def active_site(self, default: str) -> str: ...

    def set_active_site(self, site: str, incident_id: str) -> None: ...

    def append_audit(self, incident_id: str, record: dict[str, object]) -> None: ...


class WorkflowStarter(Protocol):
    def start(self, name: str, payload: dict[str, object]) -> str:
        """Start the failover workflow once per name; returns the execution id."""
        ...
