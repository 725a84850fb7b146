"""A recovery's timing read from its audit record: the bars of its Gantt chart, its RTO and its verdict.

RTO, as the report measures it: from the detection's start when the record carries one (a disaster failover the
evaluator started: the first failed probe of the streak that turned the site DOWN), else from the workflow's
start, to the moment the service records answered at the target site: the last `CheckDns` (Route 53 INSYNC and
the answers verified); for a drill, to its own records in sync (`drill.measured["drill records in sync"]`).
PASS: the recovery succeeded and, with a target, its RTO is within it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dcwatch.model import DRILL_RECORDS_IN_SYNC

SUCCEEDED = frozenset({"succeeded", "drill-passed", "dry-run"})

# Which phase each step belongs to: the bar's colour and the legend.
PHASES: dict[str, str] = {
    "Fence": "fencing",
    "ProveFenced": "fencing",
    "StartGroup": "groups",
    "CheckGroup": "groups",
    "LowerTtl": "dns",
    "SwitchDns": "dns",
    "CheckDns": "dns",
    "VerifyServices": "verification",
    "PrepareDrill": "drill",
    "CheckClones": "drill",
    "CleanUpDrill": "drill",
    "ShutdownGroup": "shutdown",
    "CheckShutdown": "shutdown",
    "Hook": "hooks",
}


@dataclass(frozen=True)
class Bar:
    """One step with a start: seconds from the chart's origin."""

    label: str
    phase: str
    start_s: float
    end_s: float
    detail: str

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Mark:
    """A step recorded without a start (an instant): drawn as a tick, not a bar."""

    label: str
    at_s: float
    detail: str


@dataclass(frozen=True)
class Timing:
    origin: datetime
    bars: list[Bar]
    marks: list[Mark]
    end_s: float  # the recovery's end, from the origin
    rto_s: float | None  # None: the records never answered at the target (or a dry run)
    rto_from: str  # "detection" or "workflow start"
    rto_to: str
    target_s: float | None
    succeeded: bool
    is_dry_run: bool = False

    @property
    def within_target(self) -> bool | None:
        if self.target_s is None or self.rto_s is None:
            return None
        return self.rto_s <= self.target_s

    @property
    def passed(self) -> bool:
        if not self.succeeded:
            return False
        if self.target_s is None:
            return True
        return self.within_target is True or (self.rto_s is None and self.is_dry_run)

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def why(self) -> str:
        """The verdict in one sentence."""
        if not self.succeeded:
            return "the recovery did not succeed"
        if self.target_s is None:
            return "succeeded (no RTO target set: workflow.rto_target_s)"
        if self.rto_s is None:
            return "succeeded; a dry run measures no RTO" if self.is_dry_run else "succeeded, but no RTO was measured"
        relation = "within" if self.within_target else "over"
        return f"succeeded, RTO {self.rto_s:.1f} s {relation} the target of {self.target_s:g} s"


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _label(entry: dict[str, Any]) -> str:
    """The step, with its priority group where it has one ("CheckGroup (group 2)")."""
    step, detail = str(entry.get("step", "?")), str(entry.get("detail", ""))
    if step in ("StartGroup", "CheckGroup") and detail.startswith("group "):
        return f"{step} ({detail.split(':')[0].split(' up')[0]})"
    return step


def timing(record: dict[str, Any], target_s: float | None = None) -> Timing:
    """The bars, the RTO and the verdict of one recovery record (`recovery.messages.audit_record`, with the
    optional `detection` that `reports.records.recovery_record` adds)."""
    started = _time(record.get("startedAt"))
    if started is None:
        raise ValueError(f"audit record of {record.get('incidentId', '?')} has no startedAt: not a recovery record")
    detection = record.get("detection") or {}
    since, decided = _time(detection.get("since")), _time(detection.get("at"))
    origin = min(started, since) if since else started

    def s(at: datetime) -> float:
        return round((at - origin).total_seconds(), 3)

    bars, marks = [], []
    if since and decided:
        bars.append(Bar("Detection", "detection", s(since), s(decided), f"{detection.get('site', '?')} DOWN"))
    for entry in record.get("timeline") or []:
        at, begun = _time(entry.get("at")), _time(entry.get("started"))
        if at is None:
            continue
        label, detail = _label(entry), str(entry.get("detail", ""))
        if begun is None:
            marks.append(Mark(label, s(at), detail))
        else:
            bars.append(Bar(label, PHASES.get(str(entry.get("step")), "other"), s(begun), s(at), detail))
    finished = _time(record.get("finishedAt")) or started
    mode, outcome = record.get("mode"), record.get("outcome")
    succeeded = outcome in SUCCEEDED or (outcome == "notify-failed" and not record.get("failedStep"))
    rto_end = _rto_end(record, started)
    rto_from = "detection" if since else "workflow start"
    rto_to = DRILL_RECORDS_IN_SYNC if mode == "drill" else "DNS in sync"
    return Timing(
        origin=origin,
        bars=bars,
        marks=marks,
        end_s=max([s(finished), *(b.end_s for b in bars), *(m.at_s for m in marks)]),
        rto_s=s(rto_end) - (s(since) if since else s(started)) if rto_end else None,
        rto_from=rto_from,
        rto_to=rto_to,
        target_s=target_s,
        succeeded=succeeded,
        is_dry_run=outcome == "dry-run",
    )


def _rto_end(record: dict[str, Any], started: datetime) -> datetime | None:
    """When the records answered at the target: a drill's measured milestone, else the last CheckDns."""
    if record.get("mode") == "drill":
        measured = (record.get("drill") or {}).get("measured") or {}
        if DRILL_RECORDS_IN_SYNC in measured:
            return started + timedelta(seconds=float(measured[DRILL_RECORDS_IN_SYNC]))
    in_sync = [_time(e.get("at")) for e in record.get("timeline") or [] if e.get("step") == "CheckDns"]
    return max((t for t in in_sync if t), default=None)
