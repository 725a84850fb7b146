"""In-memory stand-ins for the ports, for unit tests of the domain. They keep the ports' promises:
conditional writes lose when someone wrote first, tasks finish when told to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dcwatch.events import ProbeResult, SiteStatusChanged
from dcwatch.health import CheckState
from dcwatch.ports import RecordValues, TaskState


class FakeInventory:
    def __init__(self, vms: dict[str, str]):
        self.vms = dict(vms)
        self.tasks: dict[str, tuple[str, str]] = {}
        self.power_on_calls: list[list[str]] = []
        self.fail: dict[str, str] = {}
        self.instant = True

    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        return {n: self.vms[n] for n in vm_names if n in self.vms}

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

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        return {t: TaskState(self.tasks[t][1], self.fail.get(self.tasks[t][0], "")) for t in task_ids}


class FakeDns:
    def __init__(self, pending_polls: int = 0):
        self.records: dict[str, tuple[str, ...]] = {}
        self.upserts: list[list[RecordValues]] = []
        self.pending_polls = pending_polls

    def upsert(self, records: Sequence[RecordValues]) -> list[str]:
        self.upserts.append(list(records))
        for record in records:
            self.records[record.name] = record.values
        return [f"change-{len(self.upserts)}"]

    def in_sync(self, change_ids: Sequence[str]) -> bool:
        if self.pending_polls:
            self.pending_polls -= 1
            return False
        return True


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> str:
        self.sent.append((subject, message))
        return f"msg-{len(self.sent)}"


class FakeStore:
    def __init__(self) -> None:
        self.checks: dict[tuple[str, str], CheckState] = {}
        self.sites: dict[str, str] = {}
        self.active: str | None = None
        self.audits: dict[str, list[dict[str, object]]] = {}

    def get_check(self, site: str, check: str) -> CheckState | None:
        return self.checks.get((site, check))

    def put_check(self, state: CheckState, expected_last_observed: object) -> bool:
        current = self.checks.get((state.site, state.check))
        if (current.last_observed_at if current else None) != expected_last_observed:
            return False
        self.checks[(state.site, state.check)] = state
        return True

    def site_checks(self, site: str) -> list[CheckState]:
        return [c for (s, _), c in self.checks.items() if s == site]

    def site_status(self, site: str) -> str:
        return self.sites.get(site, "UP")

    def transition_site(self, site: str, previous: str, status: str, incident_id: str | None) -> bool:
        if self.site_status(site) != previous:
            return False
        self.sites[site] = status
        return True

    def active_site(self, default: str) -> str:
        return self.active or default

    def set_active_site(self, site: str, incident_id: str) -> None:
        self.active = site

    def append_audit(self, incident_id: str, record: dict[str, object]) -> None:
        self.audits.setdefault(incident_id, []).append(record)


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
