"""`dcwatch status` and `dcwatch history` against the tables as deployed (moto), filled by the evaluator's, the
operators' and the workflow's own writers; a running workflow in moto's Step Functions (executed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.cli import main
from dcwatch.config import load_config
from dcwatch.control import acknowledge, switch_automation
from dcwatch.local.cloud import create_tables
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.model import CheckState, StoredStatus
from dcwatch.recovery import steps
from tests.helpers import moto_credentials
from tests.unit.fakes import Clock, FakeDrillLab, FakeNotifier, ZoneDns

pytestmark = pytest.mark.integration

VANTAGES = ("aws-home", "aws-vpc")
STANDBY_VMS = ["shop-db-b", "shop-web-b1", "shop-web-b2", "transit-db-b", "transit-app-b", "radio-stream-b"]
WAITING = {
    "StartAt": "ValidateRequest",
    "States": {
        "ValidateRequest": {"Type": "Pass", "Next": "RequestApproval"},
        "RequestApproval": {"Type": "Wait", "Seconds": 600, "End": True},
    },
}


@pytest.fixture
def tables(monkeypatch) -> dict[str, str]:
    moto_credentials(monkeypatch)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        names = create_tables(boto3.client("dynamodb"), "views")
        for env, key in (("TABLE", "State"), ("AUDIT_TABLE", "Audit"), ("LOCKS_TABLE", "Locks")):
            monkeypatch.setenv(f"DCWATCH_{env}_NAME", names[key])
        monkeypatch.setenv("DCWATCH_CONFIG", str(DEMO_CONFIG))
        monkeypatch.delenv("DCWATCH_STATE_MACHINE_ARN", raising=False)
        yield names


@pytest.fixture
def store(tables) -> DynamoStateStore:
    return DynamoStateStore(tables["State"], tables["Audit"])


def checks_all_up(store: DynamoStateStore, now: datetime) -> None:
    """Every check of the demo from two vantage points, UP: what the round evaluator writes for a healthy pair."""
    config = load_config(DEMO_CONFIG)
    states = [
        CheckState(s.name, c.name, svc.name, c.critical, "UP", successes=3, last_observed_at=now, vantage=v)
        for s in config.sites
        for svc, at in config.services_at(s.name)
        for c in at.checks
        for v in VANTAGES
    ]
    store.put_checks(states)


def status(capsys, *extra: str) -> tuple[int, dict]:
    code = main(["status", "--json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_a_healthy_pair_is_all_well_and_exits_0(store, capsys):
    checks_all_up(store, datetime.now(UTC))
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "ALL WELL" in out and "production runs at dc-a" in out
    assert "lock: free" in out and "last drill: none recorded" in out

    code, view = status(capsys)
    assert code == 0 and view["healthy"] and view["activeSite"] == "dc-a"
    assert view["sites"]["dc-a"]["services"]["shop"] == {"aws-home": "UP", "aws-vpc": "UP"}
    assert view["lock"] is None and view["workflow"] is None and view["lastFailover"] is None


def test_a_down_active_site_with_automation_off_and_the_lock_held_needs_attention(store, tables, capsys):
    now = datetime.now(UTC)
    checks_all_up(store, now)
    failing = CheckState("dc-a", "shop-home", "shop", True, "DOWN", failures=3, reason="connection refused")
    failing = CheckState(**{**failing.__dict__, "vantage": "aws-home", "failing_since": now - timedelta(minutes=2)})
    store.put_checks([failing])
    incident = "dc-a-down-20261125T030000Z"
    assert store.change_condition("site/dc-a", StoredStatus("UP"), StoredStatus("DOWN", now, incident, version=1))
    switch_automation(store, False, "storage migration", "alice", now)
    DynamoLeases(tables["Locks"]).acquire(incident, 600, now, leaving="dc-a")

    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert "NEEDS ATTENTION (4)" in out
    assert "! dc-a (active) DOWN" in out and "! automation off: storage migration" in out
    assert f"! failover lock held by {incident}" in out
    assert "DOWN shop-home@aws-home since" in out and "connection refused" in out

    code, view = status(capsys)
    assert code == 1 and not view["healthy"]
    assert view["sites"]["dc-a"]["status"] == "DOWN"
    assert view["sites"]["dc-a"]["services"]["shop"] == {"aws-home": "DOWN", "aws-vpc": "UP"}
    (failed,) = view["sites"]["dc-a"]["failing"]
    assert (failed["check"], failed["vantage"], failed["reason"]) == ("shop-home", "aws-home", "connection refused")
    assert view["automation"] == {"on": False, "reason": "storage migration", "by": "alice", "at": now.isoformat()}
    assert view["lock"]["owner"] == incident


def test_a_running_workflow_is_shown_at_the_state_it_last_entered(store, capsys):
    checks_all_up(store, datetime.now(UTC))
    sfn = boto3.client("stepfunctions")
    role = "arn:aws:iam::123456789012:role/sfn"
    arn = sfn.create_state_machine(name="wf", definition=json.dumps(WAITING), roleArn=role)["stateMachineArn"]
    execution = sfn.start_execution(
        stateMachineArn=arn, name="manual-drill-dc-a-1", input=json.dumps({"mode": "drill"})
    )
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while datetime.now(UTC) < deadline:
            code, view = status(capsys, "--state-machine-arn", arn)
            if view["workflow"] and view["workflow"]["step"] == "RequestApproval":
                break
        assert code == 1 and view["workflow"]["execution"] == "manual-drill-dc-a-1"
        assert view["workflow"]["mode"] == "drill" and view["workflow"]["step"] == "RequestApproval"
        assert main(["status", "--state-machine-arn", arn]) == 1
        assert "workflow: manual-drill-dc-a-1 (drill) at RequestApproval since" in capsys.readouterr().out
    finally:
        sfn.stop_execution(executionArn=execution["executionArn"])


def test_without_a_state_table_or_with_a_missing_one_status_cannot_read_and_exits_2(tables, monkeypatch, capsys):
    monkeypatch.delenv("DCWATCH_TABLE_NAME")
    assert main(["status"]) == 2
    assert "cannot read the state: --table (or DCWATCH_TABLE_NAME) is required" in capsys.readouterr().err
    assert main(["status", "--table", "no-such-table"]) == 2
    assert "cannot read the state: state table: AWS:" in capsys.readouterr().err


def passed_drill(store: DynamoStateStore, clock: Clock) -> str:
    """A drill as the workflow's steps run it (its vCenter and DNS in memory), recorded by its own RecordAudit."""
    config = load_config(DEMO_CONFIG)
    lab, dns = FakeDrillLab({vm: "poweredOff" for vm in STANDBY_VMS}, clock), ZoneDns()
    state = steps.validate_request(
        {"mode": "drill", "from": "dc-a", "to": "dc-b", "reason": "quarterly drill"}, config, clock, active_site="dc-a"
    )
    state = steps.check_standby(state, lab, clock)
    state = steps.prepare_drill(state, lab, dns, clock)
    state = steps.check_clones(state, lab, clock)
    while not state.progress.all_groups_up:
        state = steps.start_group(state, lab, 60, clock)
        state = steps.check_group(state, lab, clock)
        clock.now += timedelta(seconds=5)
    state = steps.switch_dns(state, dns, 60, clock)
    state = steps.check_dns(state, dns, clock)
    state = steps.clean_up_drill(state, lab, dns, clock)
    steps.record_audit(steps.notify(state, FakeNotifier(), clock), store, clock)
    return state.incident_id


def failover(store: DynamoStateStore, clock: Clock, took_s: float) -> str:
    """A disaster recovery's outcome as RecordAudit writes it (record, active site and cooldown together), its
    DNS in sync `took_s` after its start (as CheckDns notes it): its RTO, with no DOWN decision on record."""
    request = {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "dc-a lost", "trigger": "automatic"}
    request["incidentId"] = "dc-a-down-20261125T030000Z"
    state = steps.validate_request(request, load_config(DEMO_CONFIG), clock, active_site="dc-a")
    started = clock()
    clock.now += timedelta(seconds=took_s)
    state.note("CheckDns", "Route 53 changes INSYNC; verified: the records answer dc-b's values", clock, started)
    steps.record_audit(state, store, clock)
    return state.incident_id


def test_the_last_failover_and_drill_come_with_their_rto(store, capsys):
    checks_all_up(store, datetime.now(UTC))
    clock = Clock(datetime.now(UTC) - timedelta(hours=2))
    drill = passed_drill(store, clock)
    incident = failover(store, clock, 42.5)

    code, view = status(capsys)
    assert view["activeSite"] == "dc-b", "the failover moved production"
    assert view["lastFailover"]["incidentId"] == incident and view["lastFailover"]["to"] == "dc-b"
    assert view["lastFailover"]["rtoS"] == pytest.approx(42.5, abs=0.01)
    assert view["lastDrill"]["incidentId"] == drill and view["lastDrill"]["outcome"] == "drill-passed"
    assert view["lastDrill"]["rtoS"] > 0
    assert code == 0, "dc-a answers again here: nothing needs attention"
    main(["status"])
    out = capsys.readouterr().out
    assert f"last failover: {incident} to dc-b at" in out and "succeeded, RTO 42.5 s" in out
    assert f"last drill: {drill} at" in out and "drill-passed, proven in" in out


def test_history_lists_every_record_by_kind_and_since_and_shows_one_incident_whole(store, capsys):
    clock = Clock(datetime.now(UTC) - timedelta(hours=2))
    drill = passed_drill(store, clock)
    switch_automation(store, False, "storage migration", "alice", clock())
    written = datetime.now(UTC)  # the trail is by the time each record was written
    incident = failover(store, clock, 30.0)
    acknowledge(store, incident, "dc-a really is gone", "bob", clock())

    assert main(["history", "--json"]) == 0
    lines = json.loads(capsys.readouterr().out)
    assert [line["kind"] for line in lines] == ["drill", "automation", "failover", "approval"], "oldest first"
    assert lines[2] | {"at": None, "summary": None} == {
        "id": incident,
        "kind": "failover",
        "at": None,
        "outcome": "succeeded",
        "rtoS": 30.0,
        "summary": None,
    }
    assert main(["history", "--kind", "drill", "--kind", "automation"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "drill-passed RTO" in out[0] and "automation off" in out[1]
    assert main(["history", "--since", (written + timedelta(hours=1)).isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [], "nothing written after that"
    assert main(["history", "--since", written.isoformat(), "--json"]) == 0
    assert [line["id"] for line in json.loads(capsys.readouterr().out)] == [incident, incident]

    assert main(["history", "show", drill]) == 0
    shown = capsys.readouterr().out
    assert "timeline (start, duration, step: detail):" in shown and "CleanUpDrill" in shown
    assert main(["history", "show", incident, "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    assert [e["outcome"] for e in whole["events"]] == ["succeeded", "acknowledged"]
    assert any(a.startswith("bob: acknowledgement: dc-a really is gone") for a in whole["actors"])
    assert "started by the evaluator" in whole["actors"]
    assert main(["history", "show", "no-such-incident"]) == 1


def test_history_without_an_audit_table_cannot_read_and_exits_2(tables, monkeypatch, capsys):
    monkeypatch.delenv("DCWATCH_AUDIT_TABLE_NAME")
    assert main(["history"]) == 2
    assert "--audit-table (or DCWATCH_AUDIT_TABLE_NAME) is required" in capsys.readouterr().err
