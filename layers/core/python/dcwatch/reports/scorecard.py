"""The drill scorecard: the last drills side by side, their RTO as bars against the target line, pass or fail."""

from __future__ import annotations

from typing import Any

from dcwatch.reports.page import esc, page, ticks
from dcwatch.reports.timing import Timing, timing

CHART_H, LEFT, SLOT_W, TOP = 220, 50, 44, 20


def render_scorecard(records: list[dict[str, Any]], target_s: float | None = None) -> str:
    """The HTML page of the drills' audit records (oldest first, as `reports.drill_records` returns them)."""
    scored = [(r, timing(r, target_s)) for r in records]
    passed = sum(t.passed for _, t in scored)
    target = "no RTO target set (workflow.rto_target_s)" if target_s is None else f"RTO target {target_s:g} s"
    body = [
        "<header><h1>Drill scorecard</h1>",
        f'<p id="summary">{passed} of {len(scored)} drills passed · {esc(target)} · RTO measured from the start to '
        "the drill records in sync</p></header>",
        "<h2>RTO per drill</h2>",
        f'<div class="chart">{trend(scored, target_s)}</div>' if scored else "<p>No drill recorded yet.</p>",
        "<h2>Drills</h2>",
        _table(scored),
    ]
    return page("dcwatch drill scorecard", "\n".join(body))


def trend(scored: list[tuple[dict[str, Any], Timing]], target_s: float | None) -> str:
    """One `rect.bar` per drill (green passed, red failed; a stub where no RTO was measured), the target as a
    dashed line, the RTOs joined by a line."""
    top = max([t.rto_s or 0.0 for _, t in scored] + [target_s or 0.0, 1.0])
    axis = ticks(top, 5)
    top = axis[-1]
    width, height = LEFT + SLOT_W * len(scored) + 20, TOP + CHART_H + 40

    def y(seconds: float) -> float:
        return round(TOP + CHART_H - seconds / top * CHART_H, 1)

    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="RTO per drill, seconds">'
    ]
    for tick in axis:
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y(tick)}" x2="{width - 10}" y2="{y(tick)}"/>')
        parts.append(f'<text class="small" x="{LEFT - 6}" y="{y(tick) + 4}" text-anchor="end">{tick:g} s</text>')
    points = []
    for n, (record, t) in enumerate(scored):
        cx = LEFT + n * SLOT_W + SLOT_W / 2
        rto = t.rto_s or 0.0
        h = max(round(CHART_H - (y(rto) - TOP), 1), 2.0)
        css = "pass" if t.passed else "fail"
        shown = "not measured" if t.rto_s is None else f"{t.rto_s:.1f} s"
        parts.append(
            f'<rect class="bar {css}" x="{cx - SLOT_W * 0.3}" y="{TOP + CHART_H - h}" width="{SLOT_W * 0.6}" '
            f'height="{h}"><title>{esc(record.get("incidentId", "?"))}: {t.verdict}, RTO {shown}</title></rect>'
        )
        parts.append(
            f'<text class="small" x="{cx}" y="{TOP + CHART_H + 14}" text-anchor="middle">'
            f"{esc(str(record.get('startedAt', ''))[5:10])}</text>"
        )
        parts.append(f'<text class="small" x="{cx}" y="{TOP + CHART_H + 28}" text-anchor="middle">{t.verdict}</text>')
        if t.rto_s is not None:
            points.append(f"{cx},{y(rto)}")
    if len(points) > 1:
        parts.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="#1d2430" stroke-width="1.5"/>')
    if target_s is not None:
        parts.append(f'<line class="target" x1="{LEFT}" y1="{y(target_s)}" x2="{width - 10}" y2="{y(target_s)}"/>')
    parts.append("</svg>")
    return "".join(parts)


def _table(scored: list[tuple[dict[str, Any], Timing]]) -> str:
    if not scored:
        return "<p>Run one: <code>dcwatch drill --from SITE --to SITE --reason ...</code></p>"
    head = "<tr><th>started</th><th>incident</th><th>outcome</th><th>RTO</th><th>verdict</th><th>why</th></tr>"
    lines = []
    for record, t in reversed(scored):
        rto = "-" if t.rto_s is None else f"{t.rto_s:.1f} s"
        lines.append(
            f"<tr><td>{esc(record.get('startedAt', '?'))}</td><td>{esc(record.get('incidentId', '?'))}</td>"
            f"<td>{esc(record.get('outcome', '?'))}</td><td>{rto}</td>"
            f'<td><span class="verdict {t.verdict}">{t.verdict}</span></td><td>{esc(t.why)}</td></tr>'
        )
    return f"<table>{head}{''.join(lines)}</table>"
