"""The HTML report and the drill scorecard, rendered from recovery records that really ran."""

from __future__ import annotations

import re
from datetime import datetime

from dcwatch.reports import drill_records, recovery_record, render_report, render_scorecard, timing
from tests.unit.recoveries import ran_failover

BAR = re.compile(r'<rect class="bar[ "]')


def with_start(record):
    return [e for e in record["timeline"] if e["started"]]


def test_the_chart_holds_one_bar_per_step_with_a_start_and_each_priority_group_is_labelled():
    record = ran_failover()
    html = render_report(record)
    assert len(BAR.findall(html)) == len(with_start(record))
    assert all(f"CheckGroup (group {n})" in html for n in (1, 2, 3))
    assert 'class="bar fencing"' in html and 'class="bar dns"' in html and 'class="bar verification"' in html


def test_the_rto_runs_from_the_workflow_start_to_dns_in_sync_and_passes_within_the_target():
    record = ran_failover()
    check_dns = [e for e in record["timeline"] if e["step"] == "CheckDns"][-1]
    t = timing(record, target_s=60)
    since_start = datetime.fromisoformat(check_dns["at"]) - datetime.fromisoformat(record["startedAt"])
    assert t.rto_s == since_start.total_seconds() == 16.5
    assert (t.verdict, t.rto_from) == ("PASS", "workflow start")
    assert timing(record, target_s=10).verdict == "FAIL"
    assert "over the target of 10 s" in render_report(record, target_s=10)


def test_with_the_evaluators_down_decision_the_rto_starts_at_detection_and_detection_gets_its_bar():
    record = ran_failover() | {"mode": "disaster"}
    down = {
        "kind": "site",
        "site": "dc-a",
        "status": "DOWN",
        "failingSince": "2026-11-25T02:59:50+00:00",
        "decidedAt": "2026-11-25 03:00:00+00:00",
    }
    chosen = recovery_record([down, record])
    assert chosen is not None
    t = timing(chosen)
    assert t.bars[0].label == "Detection" and t.bars[0].duration_s == 10.0
    assert t.rto_s == 27.0 and t.rto_from == "detection"  # 10.5 s before the workflow's start, +16.5 s
    assert len(BAR.findall(render_report(chosen))) == len(with_start(record)) + 1


def test_a_failed_recovery_is_a_fail_naming_the_step_its_cause_and_the_hooks_that_failed():
    record = ran_failover() | {
        "outcome": "failed",
        "failedStep": "CheckGroup",
        "error": {"Error": "GroupTimeout", "Cause": '{"errorMessage": "group 2 not up: shop-web-b1"}'},
        "hookFailures": ["post-group 1: notify-cmdb exited 2"],
    }
    html = render_report(record, target_s=600)
    assert 'id="verdict">FAIL<' in html
    assert "stopped at CheckGroup: GroupTimeout: group 2 not up: shop-web-b1" in html
    assert "hook failed (continued): post-group 1: notify-cmdb exited 2" in html


def test_who_approved_is_shown():
    record = ran_failover() | {"approval": {"approved": True, "by": "alice", "reason": "go", "at": "03:00"}}
    assert "approved by alice at 03:00: go" in render_report(record)


def test_every_text_from_the_record_is_escaped():
    html = render_report(ran_failover(reason="<script>alert(1)</script> & co"))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html


def test_the_page_loads_nothing_its_policy_forbids_everything_but_inline_style():
    html = render_report(ran_failover())
    assert "default-src 'none'; style-src 'unsafe-inline'; img-src data:" in html
    assert not re.search(r"(src|href)\s*=|url\(|https?://", html)


def drill(started: str, in_sync_s: float | None, outcome: str = "drill-passed") -> dict:
    measured = {} if in_sync_s is None else {"drill records in sync": in_sync_s}
    return {
        "incidentId": f"manual-drill-{started}",
        "mode": "drill",
        "outcome": outcome,
        "startedAt": f"2026-{started}T03:00:00+00:00",
        "finishedAt": f"2026-{started}T03:05:00+00:00",
        "timeline": [],
        "drill": {"measured": measured},
    }


def test_the_scorecard_shows_each_drills_rto_against_the_target_oldest_first():
    records = [drill("03-01", 80.0), drill("01-01", 50.0), drill("02-01", None, "failed"), {"kind": "site"}]
    chosen = drill_records(records, last=20)
    assert [r["startedAt"][:10] for r in chosen] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    html = render_scorecard(chosen, target_s=60)
    assert len(BAR.findall(html)) == 3
    assert [m for m in re.findall(r'class="bar (pass|fail)"', html)] == ["pass", "fail", "fail"]
    assert "1 of 3 drills passed" in html and 'class="target"' in html
    assert "over the target of 60 s" in html


def test_the_scorecard_keeps_only_the_last_drills_and_leaves_dry_runs_out():
    records = [drill(f"01-{d:02d}", 10.0) for d in range(1, 26)] + [drill("12-31", 1.0, "dry-run")]
    assert [r["startedAt"][8:10] for r in drill_records(records, last=3)] == ["23", "24", "25"]
