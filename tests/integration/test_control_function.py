"""The control function as the Lambda console invokes it, against the tables as deployed (moto)."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from dcwatch import runtime
from dcwatch.adapters.dynamodb import DynamoStateStore
from dcwatch.adapters.stepfunctions import Approvals
from dcwatch.control import ControlInputError, answer_approval
from dcwatch.errors import ApprovalNotWaiting
from dcwatch.local.cloud import create_tables
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.lambdas import LambdaContext, load_handler
from dcwatch.wiring import function
from tests.helpers import load_event, moto_credentials
from tests.unit.fakes import FakeStore as FakeAuditStore

pytestmark = pytest.mark.integration


@pytest.fixture
def control(monkeypatch):
    moto_credentials(monkeypatch)
    # Explicitly not executing state machines: a local runtime run earlier in this process may have switched
    # moto's in-process Step Functions to executing ones, which then refuses tokens it did not hand out.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        names = create_tables(boto3.client("dynamodb"), "control")
        monkeypatch.setenv("DCWATCH_TABLE_NAME", names["State"])
        monkeypatch.setenv("DCWATCH_AUDIT_TABLE_NAME", names["Audit"])
        monkeypatch.setenv("DCWATCH_CONFIG", str(DEMO_CONFIG))
        runtime.reset()
        handler = load_handler(function("Control"))
        context = LambdaContext("control", "arn:aws:lambda:eu-west-1:1:function:control", "req-1")
        yield (lambda event: handler(event, context)), DynamoStateStore(names["State"], names["Audit"])
        runtime.reset()


def test_the_console_switches_automation_off_and_gets_the_new_state_back(control):
    invoke, store = control
    outcome = invoke(load_event("control/automation-off.json"))
    assert outcome["action"] == "automation" and outcome["automation"]["enabled"] is False
    assert outcome["automation"]["description"].startswith("automation off since")
    assert not store.automation().enabled
    (record,) = store.audit("automation")
    assert (record["by"], record["reason"]) == ("alice", "storage migration at dc-a tonight")
    assert invoke({"action": "status"})["automation"]["enabled"] is False


def test_the_console_acknowledges_an_incident_held_back_by_the_cooldown(control):
    invoke, store = control
    invoke(load_event("control/ack.json"))
    assert store.acknowledged("dc-a-down-20261125T030000Z")
    assert store.audit("dc-a-down-20261125T030000Z")[0]["kind"] == "acknowledgement"


def test_a_bad_request_fails_the_invocation_with_the_field_named_and_changes_nothing(control):
    invoke, store = control
    with pytest.raises(ControlInputError, match="state: Input should be 'on' or 'off'"):
        invoke({"action": "automation", "state": "of", "reason": "typo", "by": "alice"})
    assert store.automation().enabled and store.audit("automation") == []


def test_the_console_answers_an_approval_gate_through_step_functions_and_the_answer_is_audited(control):
    # moto accepts SendTaskSuccess for any token (it keeps no task tokens): this proves the call and the audit;
    # a token no workflow waits for is the Approvals adapter's test, with botocore's Stubber.
    invoke, store = control
    outcome = invoke(load_event("control/approve.json"))
    assert outcome["approved"] is True and "alice approved the waiting workflow" in outcome["explanation"]
    (record,) = store.audit("approval")
    assert record["approved"] is True and record["by"] == "alice" and "PASTE" not in record["token"]


def test_a_token_no_workflow_waits_for_is_refused_by_name_and_nothing_is_audited():
    sfn = boto3.client("stepfunctions", region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
    store = FakeAuditStore()
    with Stubber(sfn) as stub:
        stub.add_client_error("send_task_success", service_error_code="TaskTimedOut", http_status_code=400)
        with pytest.raises(ApprovalNotWaiting, match=r"no workflow waits for this token \(TaskTimedOut\)"):
            answer_approval(store, Approvals(sfn), "token-1", False, "too late", "alice", datetime.now(UTC))
    assert store.audits == {}
