"""The audit trail, readable: one line per record with its kind, outcome and RTO (`dcwatch history`), and one
incident whole with its explanation, its steps and who acted (`dcwatch history show ID`). Pure: audit entries
in, views out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from dcwatch.ports import AuditEntry
from dcwatch.reports.records import with_detection
from dcwatch.reports.timing import timing

Kind = Literal["incident", "failover", "drill", "automation", "approval", "maintenance"]
KINDS: tuple[Kind, ...] = ("incident", "failover", "drill", "automation", "approval", "maintenance")
# The evaluator's and the agents' decision records: what was judged, not what was done about it.
_DECISIONS = {
    "site",
    "service",
    "vcenter",
    "vantage",
    "check-flapping",
    "partition",
    "agent",
    "failover",
    "site fenced",
}


def _mode(record: Mapping[str, Any]) -> str | None:
    """A recovery's mode: its own, or its request's (the records of ended or unchecked executions carry only that)."""
    request = record.get("request")
    mode = record.get("mode") or (request.get("mode") if isinstance(request, dict) else None)
    return str(mode) if mode else None


def is_recovery(record: Mapping[str, Any]) -> bool:
    """A record the workflow (or the function that saw its execution end) wrote about one run."""
    return "outcome" in record and "kind" not in record


def kind_of(record: Mapping[str, Any]) -> Kind:
    """Which `--kind` a record answers to: recoveries by mode, operators' actions by theirs, the rest incidents."""
    kind = record.get("kind")
    if kind == "drill" or (is_recovery(record) and _mode(record) == "drill"):
        return "drill"
    if is_recovery(record):
        return "failover"
    if kind in ("approval", "acknowledgement"):
        return "approval"
    if kind in ("automation", "maintenance"):
        return kind  # type: ignore[return-value]
    return "incident"


def rto_s(record: Mapping[str, Any], incident: Iterable[Mapping[str, Any]] = ()) -> float | None:
    """A recovery's RTO as its report measures it (`reports.timing`): from the detection's start (its incident's
    DOWN decision, among the `incident`'s records) or else the workflow's start, to DNS in sync; a drill's to its
    drill records in sync. None when it has none (it never got there, or a record without its times)."""
    if not is_recovery(record) or record.get("outcome") not in ("succeeded", "drill-passed"):
        return None
    try:
        return timing(with_detection(record, incident)).rto_s
    except ValueError:  # a record from before the workflow stamped its start
        return None


def outcome_of(record: Mapping[str, Any]) -> str:
    """One word or two for the line: a recovery's outcome, a decision's status, an operator's act."""
    kind = record.get("kind")
    if is_recovery(record):
        return str(record["outcome"])
    if kind == "automation":
        return "on" if record.get("enabled") else "off"
    if kind == "approval":
        return "approved" if record.get("approved") else "denied"
    if kind == "acknowledgement":
        return "acknowledged"
    if kind == "maintenance":
        return "opened"
    if kind == "site fenced":
        return "fenced"
    status = record.get("status")
    return str(status) if status else str(record.get("action") or kind or "recorded")


def _route(record: Mapping[str, Any]) -> str:
    request = record.get("request")
    if not isinstance(request, dict):
        return ""
    return f"{request.get('from', '?')} -> {request.get('to', '?')}"


def summary_of(record: Mapping[str, Any]) -> str:
    """What happened, in one line: the route and reason of a recovery, the explanation of anything else."""
    if is_recovery(record):
        request = record.get("request")
        reason = request.get("reason", "") if isinstance(request, dict) else ""
        where = f" at {record['failedStep']}" if record.get("failedStep") else ""
        mode = _mode(record) or "recovery"
        return f"{mode} {_route(record)}{where}" + (f": {reason}" if reason else "")
    explanation = str(record.get("explanation") or record.get("reason") or "")
    by = record.get("by")
    subject = record.get("site") or record.get("vantage") or ""
    text = explanation if explanation else f"{record.get('kind', 'record')} {subject}".strip()
    return f"{by}: {text}" if by and not text.startswith(str(by)) else text


@dataclass(frozen=True)
class HistoryLine:
    """One audit record as `dcwatch history` shows it; `id` is its incident or subject (`history show ID`)."""

    id: str
    kind: Kind
    at: datetime
    outcome: str
    rto_s: float | None
    summary: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "rtoS": self.rto_s,
            "summary": self.summary,
        }

    def text(self) -> str:
        rto = f" RTO {self.rto_s:.1f} s" if self.rto_s is not None else ""
        return f"{self.at:%Y-%m-%d %H:%M:%S}Z {self.kind:<10} {self.outcome}{rto}  {self.id}  {self.summary}"


def history(
    entries: Sequence[AuditEntry], *, since: datetime | None = None, kinds: Sequence[str] = ()
) -> list[HistoryLine]:
    """The entries at or after `since`, of `kinds` (every kind when empty), oldest first: read top to bottom as
    it happened, the latest just above the prompt."""
    by_incident: dict[str, list[Mapping[str, Any]]] = {}
    for e in entries:
        by_incident.setdefault(e.id, []).append(e.record)

    def rto_of(entry: AuditEntry) -> float | None:
        return rto_s(entry.record, by_incident[entry.id])

    lines = [
        HistoryLine(
            e.id,
            kind_of(e.record),
            e.at,
            outcome_of(e.record),
            rto_s(e.record, by_incident[e.id]),
            summary_of(e.record),
        )
        for e in entries
        if since is None or e.at >= since
    ]
    return sorted((line for line in lines if not kinds or line.kind in kinds), key=lambda line: line.at)


@dataclass(frozen=True)
class Step:
    """One timeline entry of a recovery: when it began (or ended, when its start is not known), how long, what."""

    at: datetime
    duration_s: float
    step: str
    detail: str

    def text(self) -> str:
        return f"{self.at:%H:%M:%S} {self.duration_s:6.1f} s  {self.step}: {self.detail}"


@dataclass(frozen=True)
class IncidentView:
    """One incident (or subject) whole: every record under its id, the explanations, the steps, who acted."""

    id: str
    lines: list[HistoryLine]
    explanations: list[str]
    steps: list[Step]
    actors: list[str]
    records: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "events": [line.to_json() for line in self.lines],
            "explanations": self.explanations,
            "timeline": [
                {"at": s.at.isoformat(), "durationS": s.duration_s, "step": s.step, "detail": s.detail}
                for s in self.steps
            ],
            "actors": self.actors,
            "records": self.records,
        }

    def text(self) -> list[str]:
        out = [f"{self.id}: {len(self.lines)} audit records", *(f"  {line.text()}" for line in self.lines)]
        if self.explanations:
            out += ["explanation:", *(f"  {e}" for e in self.explanations)]
        if self.steps:
            out += ["timeline (start, duration, step: detail):"]
            out += [f"  {s.text()}" for s in self.steps]
        out += ["who acted:", *(f"  {a}" for a in self.actors)] if self.actors else ["who acted: nobody by hand"]
        return out


_TRIGGERS = {"manual": "started by hand", "automatic": "started by the evaluator", "scheduled": "started on schedule"}


def _actors(record: Mapping[str, Any]) -> list[str]:
    """Who acted, as the record names them: operators (`by`, and the AWS identity `caller`), approvals given to
    the workflow, the fencing approved by hand."""
    found = []
    if record.get("by"):
        caller = f" (as {record['caller']})" if record.get("caller") else ""
        found.append(f"{record['by']}{caller}: {record.get('kind', 'action')}: {record.get('reason', '')}".rstrip(": "))
    approval = record.get("approval")
    if isinstance(approval, dict) and approval.get("by"):
        word = "approved" if approval.get("approved") else "denied"
        found.append(f"{approval['by']} {word} the plan at {approval.get('at', '?')}: {approval.get('reason', '')}")
    if record.get("fencingApprovedBy"):
        found.append(f"{record['fencingApprovedBy']} approved the promotion without a fencing proof")
    request = record.get("request")
    if isinstance(request, dict) and request.get("trigger"):
        found.append(_TRIGGERS.get(str(request["trigger"]), f"started: {request['trigger']}"))
    return found


def timeline_steps(record: Mapping[str, Any]) -> list[Step]:
    """The steps of a recovery's timeline: its audit record's, or its workflow state's (the same entries)."""
    steps = []
    for entry in record.get("timeline") or []:
        ended = datetime.fromisoformat(entry["at"])
        began = datetime.fromisoformat(entry["started"]) if entry.get("started") else ended
        steps.append(Step(began, float(entry.get("duration_s") or 0.0), str(entry["step"]), str(entry["detail"])))
    return steps


def incident(incident_id: str, entries: Sequence[AuditEntry]) -> IncidentView:
    """Every record under `incident_id`, oldest first: the evaluator's decision (its explanation), the
    recovery's run (its steps), the operators' acts (who)."""
    ordered = sorted(entries, key=lambda e: e.at)
    explanations, steps, actors = [], [], []
    for entry in ordered:
        record = entry.record
        if record.get("explanation"):
            explanations.append(f"{entry.at:%H:%M:%S} {record['explanation']}")
        if record.get("heldBack"):
            explanations.append(f"  held back: {record['heldBack']}")
        if is_recovery(record) and record.get("error"):
            error = record["error"]
            cause = error.get("Cause", "") if isinstance(error, dict) else record.get("cause") or ""
            name = error.get("Error", "error") if isinstance(error, dict) else error
            explanations.append(f"{entry.at:%H:%M:%S} {record['outcome']}: {name}: {cause}".rstrip(": "))
        steps += timeline_steps(record)
        actors += [a for a in _actors(record) if a not in actors]
    return IncidentView(
        incident_id,
        history(ordered),
        explanations,
        sorted(steps, key=lambda s: s.at),
        actors,
        [dict(e.record) for e in ordered],
    )
