"""Scheduled drills: when one is held back, and the record and notice of a drill that was skipped.

The schedule (EventBridge Scheduler, `config.drill.schedule`) starts the workflow blind: it knows nothing of
the sites. ValidateRequest asks `HoldBack` before anything happens and raises `DrillHeldBack` with the reason;
the workflow's DrillSkipped state then records the skip and tells the operators (`drill_skipped`), once each.
A drill started by hand is never held back here: the operator decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dcwatch.config import Config
from dcwatch.config.schedule import Rate, next_fire, parse_expression
from dcwatch.detection.decision import describe_window
from dcwatch.ports import AuditLog, Controls, Leases, Notifier, Once, StatusStore
from dcwatch.recovery.messages import readable_cause
from dcwatch.recovery.request import manual_incident
from dcwatch.subjects import alert_subject

SKIPPED = "skipped"  # the audit outcome of a scheduled drill held back


@dataclass(frozen=True)
class HoldBack:
    """What may hold a scheduled drill back, read when it is due."""

    config: Config
    store: StatusStore  # the evaluator's record of each site
    controls: Controls  # automation, maintenance windows
    leases: Leases  # the failover lock

    def reasons(self, now: datetime) -> list[str]:
        """Every reason not to drill now, in words; none: it runs."""
        reasons = [
            f"{site.name} is {status} by the evaluator's record"
            for site in self.config.sites
            if (status := self.store.site_status(site.name)) == "DOWN"
        ]
        if (lease := self.leases.holder()) is not None and lease.expires_at > now:  # an expired one binds no one
            reasons.append(held_by(lease.owner, lease.expires_at))
        switch = self.controls.automation()
        if not switch.enabled:
            by = f" by {switch.changed_by}" if switch.changed_by else ""
            reasons.append(f"automation is off{by}" + (f": {switch.reason}" if switch.reason else ""))
        windows = [*self.config.maintenance, *self.controls.maintenance_windows()]
        reasons += [f"maintenance window open: {describe_window(w)}" for w in windows if w.covers(now)]
        return reasons


def held_by(owner: str, until: datetime) -> str:
    """The reason a scheduled drill gives way to the lock's holder."""
    return f"a recovery holds the failover lock ({owner} until {until.isoformat()})"


def skipped_record(raw: Any, execution: str, reason: str, at: datetime) -> dict[str, Any]:
    """The audit record of a skipped drill: its own incident (the execution's, manual namespace), no run."""
    request = raw if isinstance(raw, dict) else {}
    return {
        "incidentId": manual_incident(execution),
        "outcome": SKIPPED,
        "mode": "drill",
        "trigger": request.get("trigger", "scheduled"),
        "executionName": execution,
        "request": raw,
        "reason": reason,
        "startedAt": at.isoformat(),
        "finishedAt": at.isoformat(),
    }


def drill_skipped(
    raw: Any, execution: str, cause: str, at: datetime, store: AuditLog, notifier: Notifier, once: Once
) -> str:
    """Audit the skip, then announce it: each once per execution. The message id. `cause`: DrillHeldBack's,
    as Step Functions hands it on (the Lambda's error JSON)."""
    reason = readable_cause(cause)
    record = skipped_record(raw, execution, reason, at)
    key = f"drill-skipped/{execution}"
    once(f"{key}/audit", lambda: store.append_audit(record["incidentId"], record))
    subject = alert_subject("OK: scheduled drill skipped, " + reason.split(";")[0])
    lines = [
        f"The scheduled drill due at {at:%Y-%m-%d %H:%M:%S} UTC was skipped; nothing was changed.",
        f"Why: {reason}",
        "It runs again at its next scheduled time (`dcwatch drill --schedule-status`).",
        "",
        f"Incident: {record['incidentId']}",
    ]
    return once(f"{key}/notify", lambda: notifier.publish(subject, "\n".join(lines)))


def _mode(record: dict[str, Any]) -> str | None:
    request = record.get("request")
    return record.get("mode") or (request.get("mode") if isinstance(request, dict) else None)


def _trigger(record: dict[str, Any]) -> str | None:
    request = record.get("request")
    return record.get("trigger") or (request.get("trigger") if isinstance(request, dict) else None)


def drill_results(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drills' outcome records (passed, failed, skipped), newest first; decision records left out."""
    drills = [r for r in records if _mode(r) == "drill" and r.get("outcome") and r.get("startedAt")]
    return sorted(drills, key=lambda r: str(r["startedAt"]), reverse=True)


def schedule_status(config: Config, records: Iterable[dict[str, Any]], now: datetime, shown: int = 10) -> list[str]:
    """`dcwatch drill --schedule-status`: the schedule, its next run, the last drills' results."""
    schedule = config.drill.schedule if config.drill else None
    results = drill_results(records)
    if schedule is None:
        lines = ["no drill schedule: drill.schedule is not set in the config (drills run by hand only)"]
    else:
        expression = parse_expression(schedule.expression)
        scheduled = [r for r in results if _trigger(r) == "scheduled"]
        since = datetime.fromisoformat(str(scheduled[0]["startedAt"])) if scheduled else None
        at = next_fire(expression, schedule.time_zone, now, since)
        when = f"{at:%Y-%m-%d %H:%M} UTC" if at else "never (the expression matches no time in the next five years)"
        guessed = since is None and isinstance(expression, Rate)
        when += " (a period from now: no scheduled drill on record yet)" if guessed else ""
        lines = [
            f"schedule: {schedule.expression} ({schedule.time_zone}): {schedule.reason}",
            f"next run: {when}",
        ]
    lines.append(f"last drills ({min(shown, len(results))} of {len(results)}):" if results else "no drill on record")
    for r in results[:shown]:
        rto = f", {float(r['durationS']):.1f} s" if r.get("durationS") is not None else ""
        why = f": {r['reason']}" if r.get("outcome") == SKIPPED and r.get("reason") else ""
        lines.append(f"  {r['startedAt']}  {_trigger(r) or 'manual':9}  {r['outcome']}{rto}  {r['incidentId']}{why}")
    return lines
