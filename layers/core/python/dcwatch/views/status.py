"""`dcwatch status`: where production runs and what is wrong, in one screen, from what the ports read now.

Pure: a `Reading` (the state table's conditions and check states, the controls, the lock, the running
executions, the audit records of the last failover and drill) in, a `StatusView` out, with its exit code.

Needs attention (exit 1): production is not well or something is in flight: the active site or one of its
services or vCenter not UP, a critical check failing at the active site, automation off, the failover lock held,
a workflow running. Shown but not counted (exit 0, under `warnings`): the standby site's troubles (after a
failover the site left is DOWN until someone fails back: known, alerted, and not production), checks failing
that are not critical, open maintenance windows (planned by the operators themselves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dcwatch.config import MaintenanceWindow
from dcwatch.detection.decision import describe_window
from dcwatch.model import DRILL_RECORDS_IN_SYNC, AutomationSwitch, CheckState, LastFailover, StoredStatus
from dcwatch.ports import AuditEntry, Lease, RunningExecution
from dcwatch.views.history import is_recovery, kind_of, rto_s

SITE_CHECKS = "(site)"  # the row of a site's own checks (its vCenter, its infrastructure): no service
NOT_PROBED = "-"  # a vantage point that runs none of a row's checks (aws-public and a private vCenter)
MAX_FAILING = 5  # failing checks shown per site; the rest counted
MAX_SERVICES = 12  # service rows per site; the rest, when all UP, counted


@dataclass(frozen=True)
class SiteReading:
    """One site as the state table holds it: the evaluator's condition of it, its check states from every
    vantage point, and (for the active site, the only one the evaluator judges part by part) its services'."""

    name: str
    condition: StoredStatus
    checks: Sequence[CheckState] = ()
    services: Sequence[str] = ()  # the config's services at the site; else those its check states name
    service_conditions: Mapping[str, StoredStatus] = field(default_factory=dict)  # "(site)": its vCenter


@dataclass(frozen=True)
class Reading:
    now: datetime
    active_site: str | None  # None: no failover recorded and no config to name it
    sites: Sequence[SiteReading]
    automation: AutomationSwitch
    lock: Lease | None
    windows: Sequence[MaintenanceWindow]  # the config's and the operators'
    workflows: Sequence[RunningExecution] | None  # None: not read (no state machine named)
    last_failover: LastFailover | None
    audit: Sequence[AuditEntry] | None  # the last failover's records and the trail the last drill is found in


@dataclass(frozen=True)
class Failing:
    check: str
    vantage: str
    reason: str
    since: datetime | None
    critical: bool
    status: str

    def to_json(self) -> dict[str, Any]:
        since = self.since.isoformat() if self.since else None
        return {"check": self.check, "vantage": self.vantage, "reason": self.reason, "since": since} | {
            "critical": self.critical,
            "status": self.status,
        }


@dataclass(frozen=True)
class SiteView:
    name: str
    role: str  # active, standby, or "" when the active site is unknown
    status: str
    since: datetime | None
    incident: str | None
    vantages: list[str]
    services: dict[str, dict[str, str]]  # service (or SITE_CHECKS) -> vantage -> state
    service_status: dict[str, str]  # the evaluator's stored conditions of the active site's parts
    failing: list[Failing]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "role": self.role,
            "since": self.since.isoformat() if self.since else None,
            "incidentId": self.incident,
            "services": {name: states for name, states in self.services.items() if name != SITE_CHECKS},
            "siteChecks": self.services.get(SITE_CHECKS, {}),
            "serviceStatus": self.service_status,
            "failing": [f.to_json() for f in self.failing],
        }


def part_state(checks: Sequence[CheckState]) -> str:
    """A service (or a site's own checks) from one vantage point: DOWN when a critical check is, FLAPPING, WARN
    when only checks that are not critical fail, UP when every check is, UNKNOWN before results."""
    if any(c.critical and c.status == "DOWN" for c in checks):
        return "DOWN"
    if any(c.flapping for c in checks):
        return "FLAPPING"
    if any(c.status == "DOWN" for c in checks):
        return "WARN"
    return "UP" if checks and all(c.status == "UP" for c in checks) else "UNKNOWN"


def _site_view(reading: SiteReading, role: str) -> SiteView:
    vantages = sorted({c.vantage for c in reading.checks})
    names = list(dict.fromkeys([*reading.services, *sorted({c.service for c in reading.checks if c.service})]))
    rows: dict[str, dict[str, str]] = {}
    for name in [*names, SITE_CHECKS]:
        service = None if name == SITE_CHECKS else name
        mine = [c for c in reading.checks if c.service == service]
        if mine or service is not None:
            seen_by = {c.vantage for c in mine}
            rows[name] = {
                v: part_state([c for c in mine if c.vantage == v]) if v in seen_by else NOT_PROBED for v in vantages
            }
    failing = [
        Failing(c.check, c.vantage, c.reason, c.failing_since, c.critical, c.status)
        for c in reading.checks
        if c.status == "DOWN" or c.failing_since is not None
    ]
    failing.sort(key=lambda f: (not f.critical, f.since is None, f.since.timestamp() if f.since else 0.0, f.check))
    condition = reading.condition
    return SiteView(
        reading.name,
        role,
        condition.status,
        condition.since,
        condition.incident_id,
        vantages,
        rows,
        {name: stored.status for name, stored in reading.service_conditions.items()},
        failing,
    )


@dataclass(frozen=True)
class StatusView:
    now: datetime
    active_site: str | None
    sites: list[SiteView]
    automation: AutomationSwitch
    lock: Lease | None
    maintenance: list[MaintenanceWindow]
    workflow: RunningExecution | None
    workflows_read: bool
    running: int
    last_failover: dict[str, Any] | None
    last_drill: dict[str, Any] | None
    audit_read: bool
    attention: list[str]
    warnings: list[str]

    @property
    def healthy(self) -> bool:
        return not self.attention

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1

    def to_json(self) -> dict[str, Any]:
        switch = self.automation
        workflow = self.workflow
        return {
            "at": self.now.isoformat(),
            "activeSite": self.active_site,
            "healthy": self.healthy,
            "attention": self.attention,
            "warnings": self.warnings,
            "sites": {site.name: site.to_json() for site in self.sites},
            "automation": {
                "on": switch.enabled,
                "reason": switch.reason or None,
                "by": switch.changed_by or None,
                "at": switch.changed_at.isoformat() if switch.changed_at else None,
            },
            "lock": {
                "owner": self.lock.owner,
                "expiresAt": self.lock.expires_at.isoformat(),
                "leaving": self.lock.leaving,
            }
            if self.lock
            else None,
            "maintenance": [
                {"site": w.site, "service": w.service, "start": w.start.isoformat(), "end": w.end.isoformat()}
                | {"weekly": w.weekly, "reason": w.reason}
                for w in self.maintenance
            ],
            "workflow": {
                "execution": workflow.name,
                "mode": workflow.mode,
                "step": workflow.step,
                "startedAt": workflow.started_at.isoformat(),
                "stepSince": workflow.step_at.isoformat() if workflow.step_at else None,
                "running": self.running,
            }
            if workflow
            else None,
            "lastFailover": self.last_failover,
            "lastDrill": self.last_drill,
        }

    def text(self) -> list[str]:
        """Readable at 3 a.m.: the verdict and what needs attention first, then site by site, then the rest."""
        return _text(self)


def _open_windows(windows: Sequence[MaintenanceWindow], now: datetime) -> list[MaintenanceWindow]:
    return [w for w in windows if w.covers(now)]


def _recoveries(entries: Sequence[AuditEntry], kind: str) -> list[AuditEntry]:
    return sorted((e for e in entries if is_recovery(e.record) and kind_of(e.record) == kind), key=lambda e: e.at)


def _last_failover(reading: Reading) -> dict[str, Any] | None:
    """The cooldown's record (`LAST_FAILOVER`) names the incident, its audit record the route, outcome and RTO.
    Without that record (no failover ever moved production), the newest failover the trail holds, if any."""
    pointer = reading.last_failover
    failovers = [e for e in _recoveries(reading.audit or [], "failover") if e.record.get("outcome") != "dry-run"]
    if pointer is not None:
        mine = [e for e in failovers if e.id == pointer.incident]
        chosen, incident, at = (mine[-1] if mine else None), pointer.incident, pointer.at
    elif failovers:
        chosen = failovers[-1]
        incident, at = chosen.id, chosen.at
    else:
        return None
    record = chosen.record if chosen else {}
    request = record.get("request")
    return {
        "incidentId": incident,
        "at": at.isoformat(),
        "to": request.get("to") if isinstance(request, dict) else None,
        "mode": record.get("mode"),
        "outcome": record.get("outcome"),
        "rtoS": rto_s(record, [e.record for e in reading.audit or [] if e.id == incident]) if record else None,
    }


def _last_drill(reading: Reading) -> dict[str, Any] | None:
    drills = _recoveries(reading.audit or [], "drill")
    if not drills:
        return None
    last = drills[-1]
    measured = (last.record.get("drill") or {}).get("measured") or {}
    return {
        "incidentId": last.id,
        "at": last.at.isoformat(),
        "outcome": last.record.get("outcome"),
        "rtoS": rto_s(last.record),
        "cleanedUpS": measured.get("cleaned up"),
        "failedStep": last.record.get("failedStep"),
    }


def _judge(view_sites: list[SiteView], reading: Reading) -> tuple[list[str], list[str]]:
    attention: list[str] = []
    warnings: list[str] = []
    if reading.active_site is None:
        attention.append("active site unknown: no failover recorded; --config names the configured one")
    for site in view_sites:
        production = site.role != "standby"
        counted = attention if production else warnings
        if site.status != "UP":
            since = f" since {site.since:%Y-%m-%d %H:%M:%S}Z" if site.since else ""
            counted.append(f"{site.name} ({site.role or 'site'}) {site.status}{since}")
        for name, status in site.service_status.items():
            if status != "UP":
                counted.append(f"{'vCenter' if name == SITE_CHECKS else name} at {site.name} {status}")
        critical = [f for f in site.failing if f.critical and f.status == "DOWN"]
        if critical:
            counted.append(f"{len(critical)} critical checks failing at {site.name}")
        minor = [f for f in site.failing if not (f.critical and f.status == "DOWN")]
        if minor:
            warnings.append(f"{len(minor)} other checks failing or starting to at {site.name}")
    if not reading.automation.enabled:
        attention.append(f"automation off: {reading.automation.reason or 'no reason recorded'}")
    lock = reading.lock
    if lock is not None and lock.expires_at > reading.now:
        attention.append(f"failover lock held by {lock.owner}")
    if reading.workflows:
        attention.append(f"{len(reading.workflows)} recovery workflow running")
    for window in _open_windows(reading.windows, reading.now):
        warnings.append(f"maintenance open: {describe_window(window)}")
    if reading.workflows is None:
        warnings.append("workflow not read: no --state-machine-arn (or DCWATCH_STATE_MACHINE_ARN)")
    if reading.audit is None:
        warnings.append("last failover and drill not read: no --audit-table (or DCWATCH_AUDIT_TABLE_NAME)")
    return attention, warnings


def status_view(reading: Reading) -> StatusView:
    def role(name: str) -> str:
        return "" if reading.active_site is None else "active" if name == reading.active_site else "standby"

    # The active site first: production is what 3 a.m. asks about.
    ordered = sorted(reading.sites, key=lambda s: (s.name != reading.active_site, s.name))
    sites = [_site_view(s, role(s.name)) for s in ordered]
    attention, warnings = _judge(sites, reading)
    lock = reading.lock if reading.lock is not None and reading.lock.expires_at > reading.now else None
    workflows = sorted(reading.workflows or [], key=lambda w: w.started_at)
    return StatusView(
        now=reading.now,
        active_site=reading.active_site,
        sites=sites,
        automation=reading.automation,
        lock=lock,
        maintenance=_open_windows(reading.windows, reading.now),
        workflow=workflows[-1] if workflows else None,
        workflows_read=reading.workflows is not None,
        running=len(workflows),
        last_failover=_last_failover(reading),
        last_drill=_last_drill(reading),
        audit_read=reading.audit is not None,
        attention=attention,
        warnings=warnings,
    )


def _when(at: datetime | None, now: datetime) -> str:
    """`03:00:12Z (4 min ago)`; the date too when it was not today."""
    if at is None:
        return "?"
    seconds = max(0, int((now - at).total_seconds()))
    ago = f"{seconds} s" if seconds < 120 else f"{seconds // 60} min" if seconds < 7200 else f"{seconds // 3600} h"
    stamp = f"{at:%H:%M:%S}Z" if at.date() == now.date() else f"{at:%Y-%m-%d %H:%M}Z"
    return f"{stamp} ({ago} ago)"


def _site_lines(site: SiteView, now: datetime) -> list[str]:
    role = f" ({site.role})" if site.role else ""
    since = f" since {_when(site.since, now)}" if site.since and site.status != "UP" else ""
    incident = f" [{site.incident}]" if site.incident and site.status != "UP" else ""
    lines = [f"{site.name}{role} {site.status}{since}{incident}"]
    width = max([len(name) for name in site.services] + [8])
    if site.vantages:
        lines.append((f"  {'':<{width}}  " + "  ".join(f"{v:<10}" for v in site.vantages)).rstrip())
    rows = list(site.services.items())
    troubled = [
        (n, s) for n, s in rows if any(v != "UP" for v in s.values()) or site.service_status.get(n, "UP") != "UP"
    ]
    shown = rows if len(rows) <= MAX_SERVICES else troubled[:MAX_SERVICES]
    for name, states in shown:
        judged = site.service_status.get(name)
        note = f"  judged {judged}" if judged and judged != "UP" else ""
        cells = "  ".join(f"{states.get(v, '-'):<10}" for v in site.vantages) or "no results yet"
        lines.append(f"  {name:<{width}}  {cells}".rstrip() + note)
    if len(shown) < len(rows):
        lines.append(f"  ... and {len(rows) - len(shown)} more, all UP")
    if site.failing:
        lines.append(f"  failing ({len(site.failing)}):")
        for f in site.failing[:MAX_FAILING]:
            word = f.status if f.status == "DOWN" else "failing"
            mark = "" if f.critical else " (not critical)"
            if f.since is None and not f.reason:  # DOWN, passing again: hysteresis holds it until it settles
                lines.append(f"    {word} {f.check}@{f.vantage}{mark}: passes again, UP after successes_to_up in a row")
                continue
            lines.append(f"    {word} {f.check}@{f.vantage}{mark} since {_when(f.since, now)}: {f.reason or '?'}")
        if len(site.failing) > MAX_FAILING:
            lines.append(f"    ... and {len(site.failing) - MAX_FAILING} more (--json lists all)")
    return lines


def _text(view: StatusView) -> list[str]:
    now = view.now
    verdict = "ALL WELL" if view.healthy else f"NEEDS ATTENTION ({len(view.attention)})"
    lines = [f"dcwatch status at {now:%Y-%m-%d %H:%M:%S}Z: {verdict}"]
    lines += [f"  ! {a}" for a in view.attention] + [f"  - {w}" for w in view.warnings]
    lines.append(f"production runs at {view.active_site or 'an unknown site'}")
    for site in view.sites:
        lines += _site_lines(site, now)
    switch = view.automation
    lines.append(f"automation: {'on' if switch.enabled else 'OFF'}" + _switched(switch, now))
    lock = view.lock
    leaving = f", leaving {lock.leaving}" if lock and lock.leaving else ""
    lines.append(f"lock: held by {lock.owner} until {_when(lock.expires_at, now)}{leaving}" if lock else "lock: free")
    if view.maintenance:
        lines += [f"maintenance: {describe_window(w)}" for w in view.maintenance]
    else:
        lines.append("maintenance: none open")
    lines.append(_workflow_line(view))
    lines.append("last failover: " + _failover_line(view.last_failover, view.audit_read, now))
    lines.append("last drill: " + _drill_line(view.last_drill, view.audit_read, now))
    return lines


def _switched(switch: AutomationSwitch, now: datetime) -> str:
    if switch.changed_at is None:
        return " (never switched)"
    return f" since {_when(switch.changed_at, now)} by {switch.changed_by or 'unknown'}: {switch.reason}"


def _workflow_line(view: StatusView) -> str:
    if not view.workflows_read:
        return "workflow: not read (no --state-machine-arn)"
    w = view.workflow
    if w is None:
        return "workflow: none running"
    more = f" (+{view.running - 1} more running)" if view.running > 1 else ""
    step = f"at {w.step} since {_when(w.step_at, view.now)}" if w.step else "not yet in a state"
    return f"workflow: {w.name} ({w.mode or '?'}) {step}, started {_when(w.started_at, view.now)}{more}"


def _failover_line(last: dict[str, Any] | None, read: bool, now: datetime) -> str:
    if last is None:
        return "none recorded" if read else "not read (no --audit-table)"
    rto = f", RTO {last['rtoS']:.1f} s" if last.get("rtoS") is not None else ""
    to = f" to {last['to']}" if last.get("to") else ""
    outcome = f": {last['outcome']}" if last.get("outcome") else ""
    return f"{last['incidentId']}{to} at {_when(datetime.fromisoformat(last['at']), now)}{outcome}{rto}"


def _drill_line(last: dict[str, Any] | None, read: bool, now: datetime) -> str:
    if last is None:
        return "none recorded" if read else "not read (no --audit-table)"
    rto = f", proven in {last['rtoS']:.1f} s ({DRILL_RECORDS_IN_SYNC})" if last.get("rtoS") is not None else ""
    failed = f" at {last['failedStep']}" if last.get("failedStep") else ""
    cleaned = f", cleaned up at {last['cleanedUpS']:.1f} s" if last.get("cleanedUpS") is not None else ""
    when = _when(datetime.fromisoformat(last["at"]), now)
    return f"{last['incidentId']} at {when}: {last['outcome']}{failed}{rto}{cleaned}"
