"""`dcwatch automation` and `dcwatch ack` against the tables as deployed (moto): every flip audited."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.cli import main
from dcwatch.local.cloud import create_tables
from dcwatch.local.demo import DEMO_CONFIG
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration


@pytest.fixture
def tables(monkeypatch) -> dict[str, str]:
    moto_credentials(monkeypatch)
    with mock_aws():
        names = create_tables(boto3.client("dynamodb"), "cli")
        monkeypatch.setenv("DCWATCH_TABLE_NAME", names["State"])
        monkeypatch.setenv("DCWATCH_AUDIT_TABLE_NAME", names["Audit"])
        yield names


def test_automation_is_switched_off_and_on_with_a_reason_and_every_flip_is_audited(tables, capsys):
    store = DynamoStateStore(tables["State"], tables["Audit"])
    assert main(["automation", "status"]) == 0
    assert capsys.readouterr().out.strip() == "automation on (never switched)"

    assert main(["automation", "off", "--reason", "storage migration", "--by", "alice"]) == 0
    assert "automation off since" in capsys.readouterr().out
    assert not store.automation().enabled
    assert main(["automation", "on", "--reason", "migration done", "--by", "bob"]) == 0
    assert store.automation().enabled and store.automation().changed_by == "bob"

    flips = store.audit("automation")
    assert [(r["enabled"], r["by"], r["reason"]) for r in flips] == [
        (False, "alice", "storage migration"),
        (True, "bob", "migration done"),
    ]


def test_switching_automation_without_a_reason_is_refused_and_changes_nothing(tables, capsys):
    assert main(["automation", "off"]) == 2
    assert "--reason is required" in capsys.readouterr().err
    assert DynamoStateStore(tables["State"], tables["Audit"]).automation().enabled


def test_without_the_table_names_the_command_says_which_option_is_missing(tables, monkeypatch, capsys):
    monkeypatch.delenv("DCWATCH_TABLE_NAME")
    assert main(["automation", "status"]) == 2
    assert "--table (or DCWATCH_TABLE_NAME) is required" in capsys.readouterr().err


def test_an_acknowledgement_lets_a_held_back_failover_start_and_is_audited(tables, capsys):
    store = DynamoStateStore(tables["State"], tables["Audit"])
    assert main(["ack", "dc-a-down-20261125T030000Z", "--reason", "dc-a really is gone", "--by", "alice"]) == 0
    assert "alice acknowledged dc-a-down-20261125T030000Z" in capsys.readouterr().out
    assert store.acknowledged("dc-a-down-20261125T030000Z")
    (record,) = store.audit("dc-a-down-20261125T030000Z")
    assert record["kind"] == "acknowledgement" and record["reason"] == "dc-a really is gone"


def test_a_manual_failover_is_refused_while_another_holds_the_lock(tables, capsys):
    DynamoLeases(tables["Locks"]).acquire("dc-a-down-20261125T030000Z", 600, datetime.now(UTC))
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:dcwatch-failover"
    code = main(
        ["failover", "--from", "dc-a", "--to", "dc-b", "--reason", "drill", "--state-machine-arn", arn]
        + ["--locks-table", tables["Locks"]]
    )
    assert code == 1
    assert "another failover holds the lock: dc-a-down-20261125T030000Z" in capsys.readouterr().err


def test_a_maintenance_window_opened_by_hand_is_stored_listed_and_audited(tables, capsys):
    store = DynamoStateStore(tables["State"], tables["Audit"])
    config = str(DEMO_CONFIG)
    args = ["--config", config, "--site", "dc-a", "--service", "shop", "--minutes", "30", "--by", "alice"]
    assert main(["maintenance", "open", *args, "--reason", "shop database upgrade"]) == 0
    assert "maintenance window open: shop@dc-a" in capsys.readouterr().out

    (window,) = store.maintenance_windows()
    assert (window.site, window.service, window.reason) == ("dc-a", "shop", "shop database upgrade")
    assert window.covers(datetime.now(UTC)) and (window.end - window.start).total_seconds() == 1800
    assert main(["maintenance", "list", "--config", config]) == 0
    assert "shop@dc-a" in capsys.readouterr().out
    (record,) = store.audit("maintenance")
    assert record["by"] == "alice" and "shop database upgrade" in record["explanation"]


def test_a_maintenance_window_for_an_unknown_service_is_refused_and_nothing_is_stored(tables, capsys):
    store = DynamoStateStore(tables["State"], tables["Audit"])
    args = ["--config", str(DEMO_CONFIG), "--site", "dc-a", "--service", "mail", "--minutes", "30"]
    assert main(["maintenance", "open", *args, "--reason", "x-ray"]) == 2
    assert "unknown service 'mail'" in capsys.readouterr().err
    assert store.maintenance_windows() == [] and store.audit("maintenance") == []


@pytest.fixture
def same_second(monkeypatch) -> datetime:
    """Every clock read of the CLI answers the same second, as for two starts typed at once."""
    frozen = datetime.now(UTC).replace(microsecond=0)

    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return frozen

    monkeypatch.setattr("dcwatch.cli.recovery.datetime", Frozen)
    return frozen


def workflow_arn() -> str:
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    role = "arn:aws:iam::123456789012:role/dcwatch-failover"
    return boto3.client("stepfunctions").create_state_machine(name="wf", definition=definition, roleArn=role)[
        "stateMachineArn"
    ]


def start(arn: str, reason: str, *extra: str) -> int:
    return main(["failover", "--from", "dc-a", "--to", "dc-b", "--reason", reason, "--state-machine-arn", arn, *extra])


def test_a_second_manual_start_in_the_same_second_is_refused_and_the_first_keeps_its_lock(tables, same_second, capsys):
    arn, locks = workflow_arn(), ["--locks-table", tables["Locks"]]
    assert start(arn, "dc-a lost power", *locks) == 0
    (first,) = boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]
    assert DynamoLeases(tables["Locks"]).holder().owner == first["name"], "the execution's name owns the lock"
    capsys.readouterr()

    assert start(arn, "dc-a still without power", *locks) == 1
    assert f"another failover holds the lock: {first['name']}" in capsys.readouterr().err
    assert DynamoLeases(tables["Locks"]).holder().owner == first["name"], "the first execution keeps its lock"
    assert len(boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]) == 1


def test_manual_starts_in_the_same_second_get_names_of_their_own(tables, same_second):
    arn = workflow_arn()
    assert start(arn, "dc-a lost power") == 0
    assert start(arn, "dc-a still without power") == 0, "no ExecutionAlreadyExists"
    names = {e["name"] for e in boto3.client("stepfunctions").list_executions(stateMachineArn=arn)["executions"]}
    assert len(names) == 2 and all(n.startswith(f"manual-dc-a-{same_second:%Y%m%dT%H%M%SZ}-") for n in names)


def test_a_start_that_fails_gives_back_only_the_lock_it_took(tables, same_second, capsys):
    missing = "arn:aws:states:eu-west-1:123456789012:stateMachine:not-deployed"
    assert start(missing, "dc-a lost power", "--locks-table", tables["Locks"]) == 1
    assert "dcwatch: AWS: An error occurred (StateMachineDoesNotExist)" in capsys.readouterr().err
    assert DynamoLeases(tables["Locks"]).holder() is None


def test_a_failback_is_checked_against_the_recorded_site_status_before_anything_starts(tables, capsys):
    # Given dc-b serves after a failover and the evaluator still records dc-a DOWN
    store = DynamoStateStore(tables["State"], tables["Audit"])
    store.set_active_site("dc-b", "dc-a-down-1")
    up = store.condition("site/dc-a", "UP")
    assert store.change_condition("site/dc-a", up, replace(up, status="DOWN", version=up.version + 1))
    failback = ["failback", "--config", str(DEMO_CONFIG), "--from", "dc-b", "--to", "dc-a", "--reason", "repaired"]

    # When an operator asks for the failback, it is refused, naming the site and what to wait for
    assert main(failback) == 2
    assert "to: dc-a is DOWN by the evaluator's record" in capsys.readouterr().err

    # And once the evaluator records dc-a UP again, the same request is accepted
    down = store.condition("site/dc-a", "UP")
    assert store.change_condition("site/dc-a", down, replace(down, status="UP", version=down.version + 1))
    assert main(failback) == 0
    assert "request checked, nothing started" in capsys.readouterr().out


def test_drill_schedule_status_names_the_next_run_and_reads_the_last_drills_from_the_audit(tables, tmp_path, capsys):
    import yaml

    from dcwatch.recovery.scheduled import skipped_record

    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["drill"]["schedule"] = {"expression": "cron(0 3 ? * TUE *)", "time_zone": "Europe/Berlin"}
    config = tmp_path / "scheduled.yaml"
    config.write_text(yaml.safe_dump(doc))
    store = DynamoStateStore(tables["State"], tables["Audit"])
    request = {"mode": "drill", "trigger": "scheduled", "reason": "scheduled drill"}
    record = skipped_record(request, "sched-1", "automation is off", datetime(2026, 12, 1, 2, tzinfo=UTC))
    store.append_audit(record["incidentId"], record)
    store.append_audit("automation", {"enabled": False, "by": "alice", "reason": "storage"})

    assert main(["drill", "--schedule-status", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "schedule: cron(0 3 ? * TUE *) (Europe/Berlin): scheduled drill"
    assert lines[1].startswith("next run: ") and lines[1].endswith(":00 UTC")
    assert lines[2] == "last drills (1 of 1):"
    assert lines[3].split() == [
        "2026-12-01T02:00:00+00:00",
        "scheduled",
        "skipped",
        "manual-sched-1:",
        "automation",
        "is",
        "off",
    ]
    assert main(["drill", "--schedule-status", "--config", str(config), "--from", "dc-a"]) == 2
    assert "--schedule-status starts nothing: drop --from" in capsys.readouterr().err
