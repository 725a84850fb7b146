"""The evaluator's alerts and decision records: subject, text and audit record of each change it announces
(sites, services, vCenters, vantage points, flapping checks) and of held-back failovers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dcwatch.config import Thresholds
from dcwatch.detection.announce import announce, duration
from dcwatch.detection.decision import Verdict
from dcwatch.model import CheckState, HeldBack, StoredStatus
from dcwatch.ports import AuditLog, Notifier
from dcwatch.subjects import alert_subject


@dataclass(frozen=True)
class Alert:
    """One change as the audit trail (`record`, under `audit_id`) and the operators (`subject`, `text`) get it."""

    audit_id: str
    subject: str
    text: str
    record: dict[str, object]


def send(audit: AuditLog, notifier: Notifier, alert: Alert) -> None:
    announce(audit, notifier, alert.audit_id, alert.subject, alert.text, alert.record)


def flapping_alert(state: CheckState, seen: list[CheckState], thresholds: Thresholds, now: datetime) -> Alert:
    """A check started flapping from a vantage point (`seen`), or settled everywhere (`seen` empty)."""
    t = thresholds
    if seen:
        where = ", ".join(sorted(c.vantage for c in seen))
        subject = alert_subject(f"FLAPPING {state.check} at {state.site}: no automatic action")
        text = (
            f"{state.check} at {state.site} changed between UP and DOWN {t.flap_changes} times or more within "
            f"{t.flap_window_s} s, seen from {where}; while it flaps, no failover starts automatically"
        )
    else:
        subject = alert_subject(f"SETTLED {state.check} at {state.site}: {state.status}")
        text = f"{state.check} at {state.site} changed fewer than {t.flap_changes} times within {t.flap_window_s} s"
    record: dict[str, object] = {"kind": "check-flapping", "site": state.site, "check": state.check}
    record |= {"vantage": state.vantage, "flapping": bool(seen), "status": state.status}
    record |= {"explanation": text, "decidedAt": now}
    return Alert(f"flapping-{state.site}", subject, text, record)


def vantage_alert(vantage: str, status: str, previous: str, now: datetime) -> Alert:
    if status == "ISOLATED":
        subject = alert_subject(f"ISOLATED vantage point {vantage}: its view is not counted")
        text = (
            f"{vantage} sees every critical check it runs fail while another vantage point sees one of them pass: "
            "the fault is on its side; its results count for no site until it sees the sites again"
        )
    else:
        subject = alert_subject(f"vantage point {vantage} sees the sites again")
        text = f"{vantage} is no longer isolated; its results count again"
    record: dict[str, object] = {"kind": "vantage", "vantage": vantage, "status": status, "previous": previous}
    return Alert(f"vantage-{vantage}", subject, text, record | {"explanation": text, "decidedAt": now})


def part_alert(
    site: str,
    service: str | None,
    status: str,
    stored: StoredStatus,
    explanation: str,
    now: datetime,
    alerted: bool,
    held: HeldBack | None,
) -> Alert:
    """A service at the active site (`service`), or its vCenter (None), gone DOWN or back."""
    took = duration(stored.since, now)
    if service is None:
        audit_id = f"vcenter-{site}"
        if status == "DOWN":
            subject = alert_subject(f"VCENTER DOWN at {site} (active): its services answer; no automatic action")
            text = (
                f"the vCenter of {site} is DOWN while its services answer: {explanation}. Production stays; "
                f"until it is back, a failover could not fence {site}'s VMs and nothing can be powered there."
            )
        else:
            subject = alert_subject(f"VCENTER RECOVERED at {site} after {took}")
            text = f"the vCenter of {site} is UP again after {took}: {explanation}"
        record: dict[str, object] = {"kind": "vcenter", "site": site, "status": status}
    else:
        audit_id = f"service-{service}@{site}"
        if status == "DOWN":
            subject = alert_subject(f"SERVICE DOWN {service} at {site}: no automatic action")
            text = f"{service} at {site} DOWN: {explanation}. A service alone never moves production."
        else:
            subject = alert_subject(f"SERVICE RECOVERED {service} at {site} after {took}")
            text = f"{service} at {site} UP again after {took}: {explanation}"
        record = {"kind": "service", "service": service, "site": site, "status": status}
    record |= {"previous": stored.status, "explanation": explanation, "decidedAt": now, "alerted": alerted}
    if held is not None:
        record["heldBack"] = held.text
    return Alert(audit_id, subject, text, record)


def site_alert(
    verdict: Verdict,
    stored: StoredStatus,
    explanation: str,
    incident: str | None,
    action: str,
    started: bool,
    changed_at: datetime,
    now: datetime,
) -> Alert:
    """A site gone DOWN (with the action taken) or RECOVERED (with the outage's duration)."""
    site, role = verdict.site, verdict.role
    if verdict.status == "DOWN":
        subject = alert_subject(f"DOWN {site} ({role}): {'failover started' if started else 'no failover'}")
        text = f"{site} ({role}) DOWN: {explanation}.\nAction: {action}\nIncident: {incident}"
    else:
        took = duration(stored.since, now)
        subject = alert_subject(f"RECOVERED {site} ({role}) after {took}")
        text = f"{site} ({role}) UP again after {took} DOWN: {explanation}.\nIncident: {incident}"
    record: dict[str, object] = {"kind": "site", "site": site, "role": role, "status": verdict.status}
    record |= {"previous": stored.status, "explanation": explanation, "action": action, "decidedAt": now}
    record |= {"changedAt": changed_at, "failedChecks": list(verdict.failed), "failingSince": verdict.failing_since}
    return Alert(incident or f"site-{site}", subject, text, record)


def failover_rejudged(
    site: str, action: str, explanation: str, previously: HeldBack | None, now: datetime
) -> dict[str, object]:
    """The record of a held-back failover judged again, its reason changed (or started)."""
    record: dict[str, object] = {"kind": "failover", "site": site, "action": action, "decidedAt": now}
    return record | {"explanation": explanation, "previouslyHeldBack": previously.text if previously else None}


def failover_dropped(site: str, now: datetime) -> dict[str, object]:
    text = f"{site} is no longer the active site: its held-back failover is dropped"
    return {"kind": "failover", "explanation": text, "decidedAt": now}
