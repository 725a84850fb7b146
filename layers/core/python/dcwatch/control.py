"""What operators change by hand: the automation switch, maintenance windows, acknowledgements. All audited."""

from __future__ import annotations

from datetime import datetime, timedelta

from dcwatch.config import Config, MaintenanceWindow
from dcwatch.decision import AutomationSwitch, describe_window
from dcwatch.ports import StateStore

AUTOMATION_AUDIT = "automation"
MAINTENANCE_AUDIT = "maintenance"
MAX_MAINTENANCE = timedelta(days=7)


def switch_automation(store: StateStore, enabled: bool, reason: str, by: str, now: datetime) -> AutomationSwitch:
    """Turn automatic failover on or off; the evaluator reads the switch before every failover it would start."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    previous = store.automation()
    switch = AutomationSwitch(enabled, reason.strip(), by, now)
    store.set_automation(switch)
    store.append_audit(
        AUTOMATION_AUDIT,
        {
            "kind": "automation",
            "enabled": enabled,
            "previouslyEnabled": previous.enabled,
            "reason": switch.reason,
            "by": by,
            "decidedAt": now,
            "explanation": f"{by} switched {switch.describe()}",
        },
    )
    return switch


def acknowledge(store: StateStore, incident_id: str, reason: str, by: str, now: datetime) -> str:
    """Let a failover held back by the cooldown start: a human has looked at it and agrees."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    last = store.last_failover()
    store.acknowledge(incident_id, by, reason.strip())
    previous = f"; the last failover was {last.incident} at {last.at.isoformat()}" if last else ""
    text = f"{by} acknowledged {incident_id}: a failover for it may start within the cooldown{previous}"
    store.append_audit(
        incident_id,
        {"kind": "acknowledgement", "by": by, "reason": reason.strip(), "decidedAt": now, "explanation": text},
    )
    return text


def open_maintenance(
    store: StateStore,
    config: Config,
    site: str,
    service: str | None,
    duration: timedelta,
    reason: str,
    by: str,
    now: datetime,
) -> MaintenanceWindow:
    """Open a window from now: a site window holds automatic failover of that site back, a service window
    leaves the service's checks out of the site's verdict. Refused, changing nothing, when it names an
    unknown site or service, has no reason, or is not between a second and a week long."""
    problems = []
    sites = [s.name for s in config.sites]
    if site not in sites:
        problems.append(f"unknown site {site!r}; known sites: {', '.join(sites)}")
    services = [s.name for s in config.services]
    if service is not None and service not in services:
        problems.append(f"unknown service {service!r}; known services: {', '.join(services)}")
    if not timedelta(seconds=1) <= duration <= MAX_MAINTENANCE:
        problems.append(f"a window lasts between 1 s and {MAX_MAINTENANCE.days} days, not {duration}")
    if len(reason.strip()) < 3:
        problems.append("a reason is required (--reason), for the audit trail")
    if problems:
        raise ValueError("maintenance window not opened: " + "; ".join(problems))
    window = MaintenanceWindow(site=site, service=service, start=now, end=now + duration, reason=reason.strip())
    store.open_maintenance(window)
    store.append_audit(
        MAINTENANCE_AUDIT,
        {
            "kind": "maintenance",
            "site": site,
            "service": service,
            "start": window.start,
            "end": window.end,
            "reason": window.reason,
            "by": by,
            "decidedAt": now,
            "explanation": f"{by} opened a maintenance window: {describe_window(window)}",
        },
    )
    return window
