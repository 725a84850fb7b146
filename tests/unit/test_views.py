"""`dcwatch status` and `history` as pure views: what needs attention, what is only shown, how records read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dcwatch.model import AutomationSwitch, CheckState, LastFailover, StoredStatus
from dcwatch.ports import AuditEntry, Lease, RunningExecution
from dcwatch.views.history import history, incident, kind_of, rto_s
from dcwatch.views.status import MAX_FAILING, Reading, SiteReading, part_state, status_view

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def check(site="dc-a", name="shop-home", status="UP", vantage="aws-home", critical=True, **more):
    return CheckState(site, name, "shop", critical, status, vantage=vantage, **more)


def reading(**changes):
    base = {
        "now": NOW,
        "active_site": "dc-a",
        "sites": [SiteReading("dc-a", StoredStatus("UP"), [check()]), SiteReading("dc-b", StoredStatus("UP"), [])],
        "automation": AutomationSwitch(),
        "lock": None,
        "windows": [],
        "workflows": [],
        "last_failover": None,
        "audit": [],
    }
    return Reading(**(base | changes))


def test_a_healthy_pair_is_all_well():
    view = status_view(reading())
    assert view.exit_code == 0 and view.attention == []
    assert view.text()[0] == "dcwatch status at 2026-11-25 03:00:00Z: ALL WELL"


def test_the_standby_site_down_is_shown_but_production_is_well():
    """After a failover the site left stays DOWN until failback: known and alerted, not production."""
    down = SiteReading("dc-b", StoredStatus("DOWN", NOW), [check("dc-b", status="DOWN", reason="refused")])
    view = status_view(reading(sites=[SiteReading("dc-a", StoredStatus("UP"), [check()]), down]))
    assert view.exit_code == 0
    assert any(w.startswith("dc-b (standby) DOWN") for w in view.warnings)


def test_what_needs_attention_each_alone():
    held = Lease("dc-a-down-1", NOW + timedelta(minutes=5))
    running = [RunningExecution("manual-x", NOW, "migration", "PowerOnGroup", NOW)]
    cases = {
        "active site down": reading(sites=[SiteReading("dc-a", StoredStatus("DOWN", NOW), [])]),
        "automation off": reading(automation=AutomationSwitch(False, "migration", "alice", NOW)),
        "lock held": reading(lock=held),
        "workflow running": reading(workflows=running),
        "critical check failing": reading(sites=[SiteReading("dc-a", StoredStatus("UP"), [check(status="DOWN")])]),
    }
    for case, given in cases.items():
        assert status_view(given).exit_code == 1, case
    assert status_view(reading(lock=Lease("old", NOW - timedelta(seconds=1)))).exit_code == 0, "an expired lease"


def test_a_service_is_down_from_a_vantage_point_when_a_critical_check_is():
    assert part_state([check(status="DOWN"), check(name="b")]) == "DOWN"
    assert part_state([check(status="DOWN", critical=False), check(name="b")]) == "WARN"
    assert part_state([check(), check(name="b", status="UNKNOWN")]) == "UNKNOWN"
    assert part_state([]) == "UNKNOWN"


def test_a_vantage_point_that_runs_none_of_a_rows_checks_shows_a_dash_not_unknown():
    """aws-public cannot reach a private vCenter: its (site) cell is no state at all, not one to worry about."""
    vcenter = CheckState("dc-a", "vcenter", None, True, "UP", vantage="aws-vpc")
    checks = [check(vantage="aws-public"), check(vantage="aws-vpc"), vcenter]
    (site, _) = status_view(reading(sites=[SiteReading("dc-a", StoredStatus("UP"), checks), STANDBY])).sites
    assert site.services["shop"] == {"aws-public": "UP", "aws-vpc": "UP"}
    assert site.services["(site)"] == {"aws-public": "-", "aws-vpc": "UP"}


STANDBY = SiteReading("dc-b", StoredStatus("UP"), [])


def test_long_lists_of_failing_checks_are_cut_with_a_count():
    failing = [check(name=f"c{n}", status="DOWN", reason="timeout") for n in range(MAX_FAILING + 3)]
    view = status_view(reading(sites=[SiteReading("dc-a", StoredStatus("UP"), failing)]))
    text = "\n".join(view.text())
    assert f"failing ({MAX_FAILING + 3}):" in text and "... and 3 more (--json lists all)" in text
    assert len(view.to_json()["sites"]["dc-a"]["failing"]) == MAX_FAILING + 3


def test_a_down_check_that_passes_again_says_so_instead_of_a_blank_reason():
    """After a failback the returning site's checks pass, held DOWN by successes_to_up for a round or two."""
    recovering = check(status="DOWN", reason="")
    view = status_view(reading(sites=[SiteReading("dc-a", StoredStatus("UP"), [recovering])]))
    text = "\n".join(view.text())
    assert "DOWN shop-home@aws-home: passes again, UP after successes_to_up in a row" in text
    assert "?" not in text


def at(seconds: float) -> str:
    return (NOW + timedelta(seconds=seconds)).isoformat()


def recovery(outcome="succeeded", mode="disaster", dns_s=38.0, **more):
    """A recovery's audit record: it started at NOW, DNS was in sync (and answered) `dns_s` later, it ended at 40 s."""
    record = {"outcome": outcome, "mode": mode, "request": {"mode": mode, "from": "dc-a", "to": "dc-b"}}
    in_sync = {"step": "CheckDns", "started": at(dns_s - 2), "at": at(dns_s), "detail": "INSYNC, answers verified"}
    return record | {"startedAt": at(0), "finishedAt": at(40), "durationS": 40.0, "timeline": [in_sync]} | more


DOWN = {"kind": "site", "site": "dc-a", "status": "DOWN", "failingSince": at(-12), "decidedAt": at(-5)}


def test_the_rto_is_the_reports_from_the_first_failed_probe_to_dns_in_sync_and_a_drills_to_its_records():
    assert rto_s(recovery()) == 38.0, "without its incident's DOWN decision: from the workflow's start"
    assert rto_s(recovery(), [DOWN]) == 50.0, "from the first failed probe of the streak that turned dc-a DOWN"
    assert rto_s(recovery("failed")) is None, "a failed failover recovered nothing"
    drill = recovery("drill-passed", "drill", drill={"measured": {"drill records in sync": 31.5, "cleaned up": 40}})
    assert kind_of(drill) == "drill" and rto_s(drill) == 31.5


def test_the_last_failover_is_the_cooldowns_record_with_its_audit():
    entries = [AuditEntry("i-1", NOW, recovery(dns_s=12.0)), AuditEntry("i-2", NOW, recovery(dns_s=30.0))]
    view = status_view(reading(last_failover=LastFailover("i-1", NOW), audit=entries))
    assert view.last_failover == {
        "incidentId": "i-1",
        "at": NOW.isoformat(),
        "to": "dc-b",
        "mode": "disaster",
        "outcome": "succeeded",
        "rtoS": 12.0,
    }


def test_history_is_oldest_first_filtered_by_kind_and_time():
    entries = [
        AuditEntry("automation", NOW + timedelta(minutes=2), {"kind": "automation", "enabled": False, "by": "al"}),
        AuditEntry("i-1", NOW, {"kind": "site", "site": "dc-a", "status": "DOWN", "explanation": "3 of 3 failed"}),
        AuditEntry("i-1", NOW + timedelta(minutes=1), recovery()),
    ]
    assert [(line.kind, line.outcome) for line in history(entries)] == [
        ("incident", "DOWN"),
        ("failover", "succeeded"),
        ("automation", "off"),
    ]
    assert [line.kind for line in history(entries, kinds=["failover"])] == ["failover"]
    assert len(history(entries, since=NOW + timedelta(seconds=30))) == 2


def test_one_incident_whole_has_its_explanation_its_steps_and_who_acted():
    approval = {"approved": True, "by": "carol", "reason": "go", "at": NOW.isoformat()}
    step = {"step": "SwitchDns", "at": (NOW + timedelta(seconds=9)).isoformat(), "detail": "UPSERT"}
    record = recovery(approval=approval, timeline=[step | {"started": NOW.isoformat(), "duration_s": 9.0}])
    entries = [
        AuditEntry("i-1", NOW, {"kind": "site", "site": "dc-a", "status": "DOWN", "explanation": "3 of 3 failed"}),
        AuditEntry("i-1", NOW + timedelta(minutes=1), record),
    ]
    view = incident("i-1", entries)
    assert view.explanations == ["03:00:00 3 of 3 failed"]
    assert [(s.step, s.duration_s) for s in view.steps] == [("SwitchDns", 9.0)]
    assert view.actors[0].startswith("carol approved the plan")
