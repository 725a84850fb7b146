"""A recovery Step Functions stopped or timed out: its own lock back, an audit record, one alert that says act."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from dcwatch.recovery.executions import (
    ExecutionStatusChange,
    audit_record,
    ended_message,
    execution_ended,
    execution_ended_pattern,
)
from dcwatch.wiring import execution_ended_rule, function
from tests.helpers import demo_config, load_event
from tests.unit.fakes import FakeLeases, FakeNotifier, FakeOnce, FakeStore

SAMPLE = "samples/StepFunctionsExecutionStatusChange.json"
NOW = datetime(2024, 5, 14, 8, 41, tzinfo=UTC)


def sample(**detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event(SAMPLE))
    event["detail"].update(detail)
    return event


def change(**detail: Any) -> ExecutionStatusChange:
    return ExecutionStatusChange.model_validate(sample(**detail)["detail"])


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for `{field: [values]}` patterns, nested objects included."""
    return all(
        matches(want, event.get(field) or {}) if isinstance(want, dict) else event.get(field) in want
        for field, want in pattern.items()
    )


def held_by(owner: str) -> FakeLeases:
    leases = FakeLeases()
    leases.acquire(owner, 900, NOW)
    return leases


def test_the_sample_is_a_full_aws_states_event_whose_detail_fits_the_schema_and_parses():
    event = load_event(SAMPLE)
    assert (event["source"], event["detail-type"]) == ("aws.states", "Step Functions Execution Status Change")
    schema = load_event("schemas/ExecutionStatusChange.json")
    assert list(Draft202012Validator(schema).iter_errors(event["detail"])) == []
    parsed = ExecutionStatusChange.model_validate(event["detail"])
    assert (parsed.status, parsed.name, parsed.stop_date) == ("ABORTED", "dc-a-down-20240514T083200Z", 1715676067000)


def test_the_rule_matches_this_machines_stopped_and_timed_out_executions_only():
    machine = load_event(SAMPLE)["detail"]["stateMachineArn"]
    rule = execution_ended_rule(machine)
    assert rule.target == function("ExecutionEnded").key and rule.pattern == execution_ended_pattern(machine)
    assert matches(rule.pattern, sample(status="ABORTED"))
    assert matches(rule.pattern, sample(status="TIMED_OUT"))
    # FAILED went through the workflow's own NotifyFailure and ReleaseLeaseAfterFailure already.
    for status in ("FAILED", "SUCCEEDED", "RUNNING"):
        assert not matches(rule.pattern, sample(status=status)), status
    assert not matches(rule.pattern, sample(stateMachineArn=machine + "-other"))


def test_the_incident_id_comes_from_the_execution_input_where_it_can_be_its_own_else_from_its_name():
    # The evaluator's execution is named after its incident
    evaluators = "dc-a-down-20240514T083200Z"
    assert change(name=evaluators).incident_id == evaluators
    # Another execution naming that incident is filed under its own name: it never writes into another incident
    assert change(name="run-1").incident_id == "manual-run-1"
    by_hand = {"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "by hand", "incidentId": "manual-chg-7"}
    assert change(name="console-1", input=json.dumps(by_hand)).incident_id == "manual-chg-7"
    no_incident = json.dumps({"mode": "disaster", "from": "dc-a", "to": "dc-b", "reason": "by hand"})
    assert change(name="manual-dc-a-1", input=no_incident).incident_id == "manual-dc-a-1"
    assert change(name="console-2", input=no_incident).incident_id == "manual-console-2", "as the workflow names it"
    assert change(name="manual-dc-a-2", input="not json").incident_id == "manual-dc-a-2"


def test_a_stopped_execution_holding_the_lock_gets_it_released_audited_and_one_alert_that_says_act():
    # Given the execution stopped by an operator still holds the lock
    ended = change()
    leases, store, notifier = held_by(ended.name), FakeStore(), FakeNotifier()

    # When its end is handled
    message_id = execution_ended(ended, leases, store, notifier, FakeOnce(), demo_config())

    # Then the lock is free, the audit record names the run, and the alert tells the reader to act
    assert leases.holder() is None
    [(subject, body)] = notifier.sent
    assert message_id == "msg-1"
    assert subject == f"[dcwatch] ACTION NEEDED: failover {ended.name} was stopped (ABORTED)"
    assert "Lock: released" in body
    assert "Standby VMs at dc-b" in body and "DNS records" in body
    assert ended.execution_arn in body and "console.aws.amazon.com/states" in body
    [record] = store.audits["dc-a-down-20240514T083200Z"]
    assert record["status"] == "ABORTED" and record["executionArn"] == ended.execution_arn
    assert record["executionName"] == ended.name and record["request"]["to"] == "dc-b"
    assert (record["startedAt"], record["stoppedAt"]) == (
        "2024-05-14T08:32:01+00:00",
        "2024-05-14T08:41:07+00:00",
    )
    assert str(record["lock"]).startswith("released")


def test_a_timed_out_execution_leaves_another_executions_lock_alone_and_says_who_holds_it():
    ended = change(status="TIMED_OUT", error="States.Timeout")
    leases, store, notifier = held_by("manual-dc-a-20240514T090000Z-abc123"), FakeStore(), FakeNotifier()

    execution_ended(ended, leases, store, notifier, FakeOnce(), demo_config())

    holder = leases.holder()
    assert holder is not None and holder.owner == "manual-dc-a-20240514T090000Z-abc123"
    [(subject, body)] = notifier.sent
    assert subject == f"[dcwatch] ACTION NEEDED: failover {ended.name} timed out (TIMED_OUT)"
    assert "not held by dc-a-down-20240514T083200Z; held by manual-dc-a-20240514T090000Z-abc123" in body
    assert "Error: States.Timeout" in body


def test_a_redelivered_event_sends_no_second_alert_and_writes_no_second_record():
    ended, once = change(), FakeOnce()
    leases, store, notifier = held_by(ended.name), FakeStore(), FakeNotifier()

    first = execution_ended(ended, leases, store, notifier, once)
    again = execution_ended(ended, leases, store, notifier, once)

    assert first == again and len(notifier.sent) == 1
    assert len(store.audits[ended.incident_id]) == 1


def test_the_message_without_a_config_or_an_input_still_names_what_to_check():
    ended = change(input=None)
    subject, body = ended_message(ended, "not held by it (free: nothing to release)")
    assert subject.startswith("[dcwatch] ACTION NEEDED:")
    assert "Standby VMs at the standby site" in body and ended.execution_arn in body
    assert audit_record(ended, "free")["request"] is None


@pytest.mark.parametrize("status", ["ABORTED", "TIMED_OUT"])
def test_the_audit_outcome_is_the_status_the_execution_ended_with(status):
    assert audit_record(change(status=status), "released")["outcome"] == status.lower()


def test_the_lock_of_a_run_stopped_long_ago_is_not_taken_from_its_successor():
    # The successor took the expired lease over; the old run's late event must not give it back.
    ended = change()
    leases = held_by(ended.name)
    leases.acquire("successor", 900, NOW + timedelta(hours=1))
    execution_ended(ended, leases, FakeStore(), FakeNotifier(), FakeOnce())
    holder = leases.holder()
    assert holder is not None and holder.owner == "successor"
