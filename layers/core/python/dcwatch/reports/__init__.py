"""Reports people look at: one self-contained HTML page per recovery (its plan, its steps as an SVG Gantt chart,
its RTO against the target, who approved, what failed, PASS or FAIL) and the drill scorecard. Pure: audit
records in, HTML out; nothing loaded from anywhere when the page opens."""

from dcwatch.reports.records import drill_records, recovery_record
from dcwatch.reports.report import render_report
from dcwatch.reports.scorecard import render_scorecard
from dcwatch.reports.timing import Timing, timing

__all__ = ["Timing", "drill_records", "recovery_record", "render_report", "render_scorecard", "timing"]
