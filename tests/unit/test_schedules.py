"""Scheduled drills: the EventBridge Scheduler expressions a config accepts and when they fire next, the request
the schedule starts, what holds it back, and the record and notice of a skipped drill (pure, over fakes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from dcwatch.config import ConfigError, MaintenanceWindow, parse_config
from dcwatch.config.schedule import Cron, Rate, ScheduleError, next_fire, parse_expression
from dcwatch.errors import DrillHeldBack, InvalidRequest, LeaseHeld
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.model import AutomationSwitch, StoredStatus
from dcwatch.recovery import scheduled, steps
from dcwatch.recovery.request import parse_request
from tests.unit.fakes import FakeLeases, FakeNotifier, FakeOnce, FakeStore

T0 = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)  # a Monday


def config_with_schedule(**schedule: object):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["drill"]["schedule"] = schedule
    return parse_config(doc)


@pytest.mark.parametrize(
    ("text", "every_s"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(7 days)", 604800)],
)
def test_a_rate_is_a_period(text, every_s):
    assert parse_expression(text) == Rate(every_s)


def test_a_cron_allows_the_values_its_fields_name():
    cron = parse_expression("cron(0/15 3,4 ? JAN-MAR TUE-THU *)")
    assert isinstance(cron, Cron)
    assert cron.minutes == {0, 15, 30, 45} and cron.hours == {3, 4} and cron.months == {1, 2, 3}
    assert cron.days is None and cron.weekdays == {3, 4, 5}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("every tuesday", "is `cron(...)` or `rate(...)`"),
        ("rate(5 fortnights)", "minute(s), hour(s) or day(s)"),
        ("rate(1 minutes)", "singular for 1 only"),
        ("rate(0 minutes)", "at least 1"),
        ("cron(0 3 * * *)", "a cron has 6 fields"),
        ("cron(0 3 * * TUE *)", "exactly one of day-of-month and day-of-week must be `?`"),
        ("cron(0 25 ? * TUE *)", "hours: '25' is not a value from 0 to 23"),
        ("cron(0 3 ? * FUNDAY *)", "day-of-week: 'FUNDAY' is not a value from 1 to 7 or SUN-SAT"),
        ("cron(0 3 L * ? *)", "not L, W or #"),
        ("cron(0/0 3 ? * TUE *)", "step that is not a positive number"),
        ("cron(0 5-3 ? * TUE *)", "runs backwards"),
        ("cron(? 3 * * ? *)", "`?` is for day-of-month or day-of-week only, not minutes"),
    ],
)
def test_an_expression_scheduler_would_refuse_is_refused_saying_what_is_wrong(text, says):
    with pytest.raises(ScheduleError, match=None) as raised:
        parse_expression(text)
    assert says in str(raised.value)


def test_the_config_names_the_field_of_a_bad_expression_or_time_zone():
    with pytest.raises(ConfigError) as raised:
        config_with_schedule(expression="cron(0 3 * * TUE *)", time_zone="Europe/Atlantis")
    text = str(raised.value)
    assert "drill.schedule.expression" in text and "exactly one of day-of-month" in text
    assert "drill.schedule.time_zone" in text and "not an IANA time zone" in text


def test_a_cron_fires_next_at_its_local_time_in_its_time_zone():
    tuesdays_3am = parse_expression("cron(0 3 ? * TUE *)")
    # Berlin is UTC+1 in December: 03:00 local is 02:00 UTC, on Tuesday the 8th.
    assert next_fire(tuesdays_3am, "Europe/Berlin", T0) == datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    # Just after it fired: a week later.
    after = datetime(2026, 12, 8, 2, 0, 1, tzinfo=UTC)
    assert next_fire(tuesdays_3am, "Europe/Berlin", after) == datetime(2026, 12, 15, 2, 0, tzinfo=UTC)
    first_of_month = parse_expression("cron(30 22 1 * ? *)")
    assert next_fire(first_of_month, "UTC", T0) == datetime(2027, 1, 1, 22, 30, tzinfo=UTC)


def test_a_cron_follows_summer_time_and_one_that_never_matches_again_has_no_next_run():
    tuesdays_3am = parse_expression("cron(0 3 ? * TUE *)")
    july = datetime(2027, 7, 1, tzinfo=UTC)  # Berlin is UTC+2 in summer
    assert next_fire(tuesdays_3am, "Europe/Berlin", july) == datetime(2027, 7, 6, 1, 0, tzinfo=UTC)
    assert next_fire(parse_expression("cron(0 3 1 1 ? 2020)"), "UTC", T0) is None


def test_a_rate_fires_every_period_from_its_last_run():
    every_5 = parse_expression("rate(5 minutes)")
    assert next_fire(every_5, "UTC", T0, since=T0 - timedelta(minutes=12)) == T0 + timedelta(minutes=3)
    assert next_fire(every_5, "UTC", T0, since=T0) == T0 + timedelta(minutes=5)
    assert next_fire(every_5, "UTC", T0) == T0 + timedelta(minutes=5), "no run known: a period from now"


def test_the_schedule_starts_a_scheduled_drill_that_leaves_its_sites_to_the_workflow():
    config = config_with_schedule(expression="cron(0 3 ? * TUE *)", time_zone="Europe/Berlin")
    assert config.drill is not None and config.drill.schedule is not None
    assert config.drill.schedule.request() == {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"}


def test_a_scheduled_drill_runs_from_the_active_site_at_the_time_to_the_other():
    config = config_with_schedule(expression="rate(1 day)")
    request = {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"}
    assert (parse_request(request, config).from_site, parse_request(request, config).to) == ("dc-a", "dc-b")
    moved = parse_request(request, config, active_site="dc-b")
    assert (moved.from_site, moved.to) == ("dc-b", "dc-a"), "production moved since: the drill follows it"


def test_only_a_drill_runs_on_a_schedule():
    config = config_with_schedule(expression="rate(1 day)")
    with pytest.raises(InvalidRequest, match="trigger: only a drill runs on a schedule, not a migration"):
        parse_request({"mode": "migration", "trigger": "scheduled", "reason": "weekly"}, config)


@pytest.fixture
def gates():
    config = config_with_schedule(expression="rate(1 day)")
    store, leases = FakeStore(), FakeLeases()
    return config, store, leases, scheduled.HoldBack(config, store, store, leases)


def test_a_scheduled_drill_runs_when_nothing_holds_it_back(gates):
    config, _, _, hold_back = gates
    state = steps.validate_request(
        {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"},
        config,
        lambda: T0,
        execution="sched-1",
        hold_back=hold_back,
    )
    assert state.plan.mode == "drill" and state.plan.to == "dc-b"
    assert "scheduled drill dc-a -> dc-b" in state.timeline[-1].detail


def test_a_scheduled_drill_is_held_back_by_a_down_site_the_lock_automation_off_or_maintenance(gates):
    config, store, leases, hold_back = gates
    assert hold_back.reasons(T0) == []
    store.conditions["site/dc-b"] = StoredStatus("DOWN", incident_id="dc-b-down-1")
    leases.acquire("dc-b-down-1", 900, T0)
    store.switch = AutomationSwitch(enabled=False, reason="storage upgrade", changed_by="ops")
    store.windows.append(
        MaintenanceWindow(site="dc-a", start=T0 - timedelta(hours=1), end=T0 + timedelta(hours=1), reason="patching")
    )
    reasons = hold_back.reasons(T0)
    assert reasons[0] == "dc-b is DOWN by the evaluator's record"
    assert reasons[1].startswith("a recovery holds the failover lock (dc-b-down-1 until ")
    assert reasons[2] == "automation is off by ops: storage upgrade"
    assert reasons[3].startswith("maintenance window open: dc-a ") and reasons[3].endswith(": patching")
    with pytest.raises(DrillHeldBack, match="dc-b is DOWN by the evaluator's record; a recovery holds"):
        steps.validate_request(
            {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"},
            config,
            lambda: T0,
            execution="sched-2",
            hold_back=hold_back,
        )


def test_a_scheduled_drill_that_finds_the_lock_taken_after_its_check_is_skipped_not_failed(gates):
    """The race ValidateRequest cannot close: a recovery takes the lock between its check and AcquireLease."""
    config, _, leases, hold_back = gates
    raw = {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"}
    state = steps.validate_request(raw, config, lambda: T0, execution="sched-4", hold_back=hold_back)
    leases.acquire("dc-b-down-1", 900, T0)
    with pytest.raises(DrillHeldBack, match=r"^a recovery holds the failover lock \(dc-b-down-1 until "):
        steps.acquire_lease(state, leases, ttl_s=900, clock=lambda: T0)
    assert leases.holder().owner == "dc-b-down-1" and leases.acquired == ["dc-b-down-1"]


def test_a_drill_started_by_hand_that_finds_the_lock_taken_fails_as_any_request_does(gates):
    config, _, leases, hold_back = gates
    request = {"mode": "drill", "from": "dc-a", "to": "dc-b", "reason": "the auditors are here"}
    state = steps.validate_request(request, config, lambda: T0, execution="by-hand-2", hold_back=hold_back)
    leases.acquire("dc-b-down-1", 900, T0)
    with pytest.raises(LeaseHeld, match="another failover holds the lock: dc-b-down-1"):
        steps.acquire_lease(state, leases, ttl_s=900, clock=lambda: T0)


def test_a_drill_started_by_hand_is_never_held_back(gates):
    config, store, _, hold_back = gates
    store.switch = AutomationSwitch(enabled=False, reason="storage upgrade")
    request = {"mode": "drill", "from": "dc-a", "to": "dc-b", "reason": "the auditors are here"}
    state = steps.validate_request(request, config, lambda: T0, execution="by-hand", hold_back=hold_back)
    assert state.plan.mode == "drill"


def test_a_skipped_drill_is_audited_and_announced_once_with_its_reason():
    store, notifier, once = FakeStore(), FakeNotifier(), FakeOnce()
    raw = {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"}
    cause = '{"errorMessage": "automation is off by ops: storage upgrade", "errorType": "DrillHeldBack"}'
    for _ in range(2):  # a retried DrillSkipped state
        scheduled.drill_skipped(raw, "sched-3", cause, T0, store, notifier, once)
    ((incident, records),) = store.audits.items()
    assert incident == "manual-sched-3" and len(records) == 1
    assert records[0] | {"startedAt": None, "finishedAt": None} == {
        "incidentId": "manual-sched-3",
        "outcome": "skipped",
        "mode": "drill",
        "trigger": "scheduled",
        "executionName": "sched-3",
        "request": raw,
        "reason": "automation is off by ops: storage upgrade",
        "startedAt": None,
        "finishedAt": None,
    }
    ((subject, message),) = notifier.sent
    assert subject == "[dcwatch] OK: scheduled drill skipped, automation is off by ops: storage upgrade"
    assert "Why: automation is off by ops: storage upgrade" in message


def test_the_schedule_status_names_the_next_run_and_the_last_drills_newest_first():
    config = config_with_schedule(expression="cron(0 3 ? * TUE *)", time_zone="Europe/Berlin")
    skipped = scheduled.skipped_record(
        {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"}, "s-2", "automation is off", T0
    )
    passed = {
        "incidentId": "manual-s-1",
        "outcome": "drill-passed",
        "mode": "drill",
        "request": {"mode": "drill", "trigger": "scheduled"},
        "startedAt": (T0 - timedelta(days=7)).isoformat(),
        "durationS": 42.5,
    }
    decision = {"incidentId": "dc-a-down-1", "decision": "failover", "at": T0.isoformat()}
    lines = scheduled.schedule_status(config, [passed, decision, skipped], T0)
    assert lines[0] == "schedule: cron(0 3 ? * TUE *) (Europe/Berlin): scheduled drill"
    assert lines[1] == "next run: 2026-12-08 02:00 UTC"
    assert lines[2] == "last drills (2 of 2):"
    assert "skipped" in lines[3] and lines[3].endswith("manual-s-2: automation is off")
    assert "drill-passed, 42.5 s" in lines[4]


def test_a_rate_s_next_run_counts_from_the_last_scheduled_drill():
    config = config_with_schedule(expression="rate(1 day)")
    started = {"incidentId": "m", "outcome": "drill-passed", "mode": "drill", "trigger": "scheduled"}
    started["startedAt"] = (T0 - timedelta(hours=20)).isoformat()
    assert scheduled.schedule_status(config, [started], T0)[1] == "next run: 2026-12-07 22:00 UTC"
    assert scheduled.schedule_status(config, [], T0)[1].endswith(
        "(a period from now: no scheduled drill on record yet)"
    )
