"""One recovery's report: what was planned, how long each step took (an SVG Gantt chart), the RTO against the
target, who approved, what failed and the verdict."""

from __future__ import annotations

from typing import Any

from dcwatch.recovery.messages import readable_cause
from dcwatch.reports.page import esc, page, rows, ticks
from dcwatch.reports.timing import Timing, timing

MODE_TITLES = {"disaster": "Failover", "migration": "Migration", "failback": "Failback", "drill": "Drill"}
ROW_H, BAR_H, LABEL_W, CHART_W, TOP = 24, 16, 230, 760, 28


def render_report(record: dict[str, Any], target_s: float | None = None) -> str:
    """The HTML page of one recovery's audit record (`recovery.messages.audit_record`; `detection` optional, as
    `reports.recovery_record` adds it); `target_s`: the config's `workflow.rto_target_s`."""
    t = timing(record, target_s)
    request = record.get("request") or {}
    mode = str(record.get("mode") or request.get("mode") or "?")
    what = MODE_TITLES.get(mode, mode)
    route = f"{request.get('from', '?')} → {request.get('to', '?')}"
    title = f"{what} {route}: {t.verdict} ({record.get('incidentId', '?')})"
    body = [
        f"<header><h1>{esc(what)} {esc(route)}</h1>",
        f'<p><span class="verdict {t.verdict}" id="verdict">{t.verdict}</span><span class="why">{esc(t.why)}</span>'
        "</p></header>",
        "<h2>Recovery time</h2>",
        _rto(t),
        "<h2>Plan</h2>",
        _plan(record, request, mode),
        "<h2>Timeline</h2>",
        _legend(t),
        f'<div class="chart">{gantt(t)}</div>',
        "<h2>Steps</h2>",
        _steps(record),
        "<h2>Approval</h2>",
        _approval(record),
        "<h2>What failed</h2>",
        _failures(record),
        f"<footer>dcwatch report · incident {esc(record.get('incidentId', '?'))} · run {esc(record.get('runId', '?'))}"
        f" · started {esc(record.get('startedAt', '?'))} · finished {esc(record.get('finishedAt', '?'))}</footer>",
    ]
    return page(title, "\n".join(body))


def _rto(t: Timing) -> str:
    rto = "not measured" if t.rto_s is None else f"{t.rto_s:.1f} s"
    target = "none set (workflow.rto_target_s)" if t.target_s is None else f"{t.target_s:g} s"
    met = {True: "yes", False: "NO", None: "-"}[t.within_target]
    return rows(
        [
            ("RTO", rto),
            ("measured", f"from the {t.rto_from} to the {t.rto_to}"),
            ("target", target),
            ("within target", met),
            ("whole run", f"{t.end_s:.1f} s"),
        ]
    )


def _plan(record: dict[str, Any], request: dict[str, Any], mode: str) -> str:
    pairs: list[tuple[str, object]] = [
        ("mode", mode),
        ("from", request.get("from", "?")),
        ("to", request.get("to", "?")),
        ("trigger", request.get("trigger", "manual")),
        ("reason", request.get("reason", "")),
        ("outcome", record.get("outcome", "?")),
        ("services", ", ".join(record.get("services") or []) or "not recorded"),
    ]
    groups = record.get("groups")
    if groups:
        pairs += [(f"group {n}", ", ".join(vms) or "-") for n, vms in enumerate(groups, start=1)]
    pairs.append(("powered on", ", ".join(record.get("poweredOn") or []) or "nothing"))
    drill = record.get("drill")
    if drill:
        clones = drill.get("clones") or {}
        pairs += [
            ("drill run", drill.get("run", "?")),
            ("isolated network", drill.get("network", "?")),
            ("clones", ", ".join(f"{c} (of {vm})" for c, vm in clones.items()) or "none"),
            ("cleanup", drill.get("cleanup") or "not done"),
        ]
    for key, label in (("fencing", "fencing"), ("storage", "storage")):
        if record.get(key):
            pairs.append((label, record[key]))
    return rows(pairs)


def _legend(t: Timing) -> str:
    phases = dict.fromkeys(b.phase for b in t.bars)
    items = "".join(f'<span><i class="{esc(p)}"></i>{esc(p)}</span>' for p in phases)
    return f'<p class="legend">{items}<span>┆ RTO end</span>{"<span>┆ target (red)</span>" if t.target_s else ""}</p>'


def gantt(t: Timing) -> str:
    """One `rect.bar` per step with a start, on a time axis in seconds from the origin; instants as ticks."""
    span = max([t.end_s, t.rto_s or 0.0, t.target_s or 0.0, 1.0])
    axis = ticks(span)
    span = axis[-1] if axis else span
    scale = CHART_W / span
    rows_n = len(t.bars) + len(t.marks)
    height = TOP + rows_n * ROW_H + 30
    width = LABEL_W + CHART_W + 20

    def x(seconds: float) -> float:
        return round(LABEL_W + seconds * scale, 1)

    parts = [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of the steps, seconds from the start">'
    ]
    bottom = TOP + rows_n * ROW_H
    for tick in axis:
        parts.append(f'<line class="grid" x1="{x(tick)}" y1="{TOP - 6}" x2="{x(tick)}" y2="{bottom}"/>')
        parts.append(f'<text class="small" x="{x(tick)}" y="{bottom + 16}" text-anchor="middle">{tick:g}</text>')
    parts.append(f'<line class="axis" x1="{LABEL_W}" y1="{bottom}" x2="{x(span)}" y2="{bottom}"/>')
    parts.append(f'<text class="small" x="{x(span)}" y="{bottom + 28}" text-anchor="end">seconds from the start</text>')
    row = 0
    for bar in t.bars:
        y = TOP + row * ROW_H
        w = max(round(bar.duration_s * scale, 1), 2.0)
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 13}" text-anchor="end">{esc(bar.label)}</text>')
        parts.append(
            f'<rect class="bar {esc(bar.phase)}" x="{x(bar.start_s)}" y="{y + 2}" width="{w}" height="{BAR_H}" rx="2">'
            f"<title>{esc(bar.label)}: {bar.duration_s:.1f} s: {esc(bar.detail)}</title></rect>"
        )
        parts.append(f'<text class="small" x="{x(bar.start_s) + w + 4}" y="{y + 13}">{bar.duration_s:.1f} s</text>')
        row += 1
    for mark in t.marks:
        y = TOP + row * ROW_H
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + 13}" text-anchor="end">{esc(mark.label)}</text>')
        parts.append(
            f'<circle class="mark" cx="{x(mark.at_s)}" cy="{y + 10}" r="4"><title>{esc(mark.label)} at '
            f"{mark.at_s:.1f} s: {esc(mark.detail)}</title></circle>"
        )
        row += 1
    for seconds, css, text in (
        (t.rto_s, "rto", f"RTO {t.rto_s or 0:.1f} s"),
        (t.target_s, "target", f"target {t.target_s or 0:g} s"),
    ):
        if seconds is not None:
            parts.append(f'<line class="{css}" x1="{x(seconds)}" y1="{TOP - 10}" x2="{x(seconds)}" y2="{bottom}"/>')
            row_y = TOP - 14 if css == "rto" else TOP - 2 + rows_n * ROW_H - 4
            parts.append(f'<text class="small" x="{x(seconds) - 4}" y="{row_y}" text-anchor="end">{text}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _steps(record: dict[str, Any]) -> str:
    entries = record.get("timeline") or []
    if not entries:
        return "<p>No step recorded.</p>"
    head = "<tr><th>ended</th><th>step</th><th>took</th><th>what it did</th></tr>"
    body = "".join(
        f"<tr><td>{esc(str(e.get('at', ''))[11:19])}</td><td>{esc(e.get('step', '?'))}</td>"
        f"<td>{_took(e)}</td><td>{esc(e.get('detail', ''))}</td></tr>"
        for e in entries
    )
    return f"<table>{head}{body}</table>"


def _took(entry: dict[str, Any]) -> str:
    return f"{float(entry.get('duration_s') or 0):.1f} s" if entry.get("started") else "-"


def _approval(record: dict[str, Any]) -> str:
    lines = []
    decision = record.get("approval")
    if isinstance(decision, dict):
        answer = "approved" if decision.get("approved") else "denied"
        who = str(decision.get("by", "?")) + (f" ({decision['caller']})" if decision.get("caller") else "")
        lines.append(f"{answer} by {who} at {decision.get('at', '?')}: {decision.get('reason', '')}")
    if record.get("fencingApprovedBy"):
        lines.append(f"promotion without proof of fencing approved by {record['fencingApprovedBy']}")
    return _listed(lines, "No approval was asked for.")


def _failures(record: dict[str, Any]) -> str:
    lines = []
    if record.get("failedStep"):
        error = record.get("error") or {}
        cause = readable_cause(str(error.get("Cause", "")))
        lines.append(f"stopped at {record['failedStep']}: {error.get('Error', 'error')}: {cause}")
    lines += [f"hook failed (continued): {f}" for f in record.get("hookFailures") or []]
    drill = record.get("drill") or {}
    if drill.get("leaseProblem"):
        lines.append(f"lock: {drill['leaseProblem']}")
    if record.get("notifyError"):
        lines.append(f"notification failed at {record.get('notifyStep', '?')}: {record['notifyError']}")
    return _listed(lines, "Nothing failed.", "failures")


def _listed(lines: list[str], none: str, css: str = "") -> str:
    if not lines:
        return f"<p>{none}</p>"
    return f'<ul class="{css}">' + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>"
