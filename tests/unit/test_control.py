"""The operator's switches as the control function takes them: every sample valid, every action audited,
every bad request refused with the field it got wrong and nothing changed."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema
import pytest

from dcwatch.contracts import schema
from dcwatch.control import ControlInputError, parse_control, run_control
from tests.helpers import EVENTS, load_event
from tests.unit.fakes import FakeStore

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
SAMPLES = sorted(p.name for p in (EVENTS / "control").glob("*.json"))


class FakeApprovals:
    def __init__(self) -> None:
        self.answers: list[tuple[str, dict[str, object]]] = []

    def answer(self, token: str, decision: dict[str, object]) -> None:
        self.answers.append((token, decision))


def run(event: object, store: FakeStore, approvals: FakeApprovals | None = None) -> dict[str, object]:
    return run_control(parse_control(event), store, approvals or FakeApprovals(), NOW)


@pytest.mark.parametrize("name", SAMPLES)
def test_every_console_sample_fits_the_schema_and_parses(name):
    event = load_event(f"control/{name}")
    jsonschema.validate(event, schema("ControlRequest"))
    assert parse_control(event).action == event["action"]


def test_there_is_a_sample_for_every_action():
    assert {load_event(f"control/{n}")["action"] for n in SAMPLES} == {"status", "automation", "ack", "approve", "deny"}


def test_automation_is_switched_off_and_on_audited_and_the_new_state_returned():
    store = FakeStore()
    outcome = run(load_event("control/automation-off.json"), store)
    assert outcome["automation"]["enabled"] is False and outcome["automation"]["changedBy"] == "alice"
    assert not store.automation().enabled
    run(load_event("control/automation-on.json"), store)
    assert store.automation().enabled
    assert [(r["enabled"], r["by"]) for r in store.records("automation")] == [(False, "alice"), (True, "alice")]


def test_status_shows_the_switch_and_changes_nothing():
    store = FakeStore()
    outcome = run({"action": "status"}, store)
    assert outcome["automation"] == {
        "enabled": True,
        "changedBy": None,
        "changedAt": None,
        "reason": None,
        "description": "automation on (never switched)",
    }
    assert store.audits == {}


def test_an_acknowledgement_lets_the_refused_second_failover_start_and_is_audited():
    store = FakeStore()
    outcome = run(load_event("control/ack.json"), store)
    assert store.acknowledged("dc-a-down-20261125T030000Z") and outcome["acknowledged"] is True
    (record,) = store.records("acknowledgement")
    assert record["by"] == "alice"


def test_an_approval_answer_goes_to_the_waiting_task_and_is_audited_without_the_token():
    store, approvals = FakeStore(), FakeApprovals()
    outcome = run(load_event("control/deny.json"), store, approvals)
    ((token, decision),) = approvals.answers
    assert token == "PASTE-THE-TOKEN-OF-THE-APPROVAL-MESSAGE"
    assert (decision["approved"], decision["by"]) == (False, "alice") and outcome["approved"] is False
    (record,) = store.records("approval")
    assert record["approved"] is False and record["token"] != token and token not in str(record)


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"action": "automation", "state": "off", "by": "alice"}, "reason: Field required"),
        ({"action": "automation", "state": "maybe", "reason": "why not", "by": "alice"}, "state: Input should be"),
        (
            {"action": "automation", "state": "off", "reason": "x", "by": "alice"},
            "reason: String should have at least 3",
        ),
        ({"action": "status", "force": True}, "force: Extra inputs are not permitted"),
        ({"action": "reboot"}, "(request): Input tag 'reboot' found using 'action' does not match"),
        ({"state": "off"}, "Unable to extract tag using discriminator 'action'"),
        ({"action": "ack", "incidentId": "dc-a; drop", "reason": "gone", "by": "alice"}, "incidentId: String should"),
        ("automation off", "Input should be a valid dictionary"),
    ],
)
def test_a_bad_request_is_refused_naming_what_is_wrong_and_nothing_changes(event, named):
    store, approvals = FakeStore(), FakeApprovals()
    with pytest.raises(ControlInputError) as refused:
        run(event, store, approvals)
    text = str(refused.value)
    assert text.startswith("control request refused, nothing changed: ") and named in text, text
    assert "Expected one of: {action: status}" in text
    assert store.audits == {} and store.automation().enabled and approvals.answers == []
